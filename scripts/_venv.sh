# Sourced by the top-level scripts: create or update .venv from requirements.lock (the exact
# versions the tests pass with; made from requirements.txt by scripts/lock.sh).
# SVFAP_NEWEST=1 installs the newest versions requirements.txt allows instead.
# Re-installs only when the requirement files (or SVFAP_NEWEST) changed since the last install.
# SVFAP_SKIP_SETUP=1 uses the python already on PATH; SVFAP_VENV picks another venv folder.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SVFAP_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ "${SVFAP_SKIP_SETUP:-0}" = "1" ]; then
  # an environment is already active (the test suite runs the scripts this way)
  cd "$ROOT"
  return 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
REQS="$ROOT/requirements.lock"
[ "${SVFAP_NEWEST:-0}" = "1" ] && REQS="$ROOT/requirements.txt"
STAMP="$VENV/.requirements.sha256"
WANT="$(cat "$REQS" "$ROOT/requirements-nodeps.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "[setup] installing $(basename "$REQS") into $VENV (first time: a few minutes)"
  # torch's Linux wheels bring the CUDA libraries: the venv takes about 6.5 GB at its peak
  FREE_MB="$(df -Pm "$(dirname "$VENV")" 2>/dev/null | awk 'NR==2 {print $4}')" || FREE_MB=""
  if [ -n "$FREE_MB" ] && [ "$FREE_MB" -lt 7000 ]; then
    echo "[setup] warning: $FREE_MB MB free under $(dirname "$VENV"); the install needs about 7000 MB" \
         "(PIP_NO_CACHE_DIR=1 saves the 3 GB wheel cache; SVFAP_VENV=DIR puts the venv elsewhere)" >&2
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r "$REQS"
  "$VENV/bin/python" -m pip install -q --no-deps -r "$ROOT/requirements-nodeps.txt"
  # pip check: clean but for two known, harmless reports, each printed with its reason
  { "$VENV/bin/python" -m pip check 2>&1 || true; } | while IFS= read -r line; do
    case "$line" in
      "facenet-pytorch "*) echo "[setup] pip check: $line (expected: its metadata pins 2024 releases;" \
                                "installed with --no-deps, its MTCNN runs on these, docs/preprocess.md)" ;;
      "decord "*"not supported on this platform") echo "[setup] pip check: $line (expected: pip" \
                                "does not list decord's manylinux2010 tag; it imports and reads, tests/test_data_reader.py)" ;;
      "No broken requirements found.") ;;
      *) echo "[setup] pip check: $line" ;;
    esac
  done
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"

# Sourced by the top-level scripts: create or update .venv from requirements.txt.
# Re-installs only when requirements*.txt changed since the last successful install.
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
STAMP="$VENV/.requirements.sha256"
WANT="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-nodeps.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "[setup] installing requirements into $VENV (first time: a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.txt"
  "$VENV/bin/python" -m pip install -q --no-deps -r "$ROOT/requirements-nodeps.txt"
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"

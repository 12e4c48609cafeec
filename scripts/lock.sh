#!/usr/bin/env bash
# Regenerate requirements.lock from requirements.txt with pip-tools' pip-compile (exact versions of
# every package, the dependencies' dependencies included). By default the lock keeps the versions
# installed in .venv, the set the test suite passed with; LOCK_NEWEST=1 resolves the newest
# versions requirements.txt allows instead (then run scripts/test.sh before committing the lock).
# facenet-pytorch is not in it: requirements-nodeps.txt pins it and it is installed without its
# (stale) dependencies.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
python3 -m venv "$TMP/tools"
"$TMP/tools/bin/pip" install -q pip-tools
cp "$ROOT/requirements.txt" "$TMP/requirements.in"
if [ "${LOCK_NEWEST:-0}" != "1" ]; then
  "$ROOT/.venv/bin/pip" freeze --exclude facenet-pytorch > "$TMP/tested.txt"
  echo "-c tested.txt" >> "$TMP/requirements.in"
fi
(cd "$TMP" && tools/bin/pip-compile -q --no-header --strip-extras --no-emit-index-url \
   --no-emit-find-links --no-emit-trusted-host --output-file requirements.lock requirements.in)
{
  echo "# Exact versions of every package SVFAP installs (scripts/_venv.sh, CI, environment.yml),"
  echo "# made from requirements.txt by pip-tools' pip-compile: bash scripts/lock.sh"
  echo "# Newest versions instead: SVFAP_NEWEST=1 bash scripts/test.sh (installs from requirements.txt)."
  sed -e '/-c tested.txt/d' -e 's/-r requirements.in/-r requirements.txt/' "$TMP/requirements.lock"
} > "$ROOT/requirements.lock"
echo "wrote $ROOT/requirements.lock ($(grep -c '==' "$ROOT/requirements.lock") packages)"

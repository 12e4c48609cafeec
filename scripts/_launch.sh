# Sourced by the launchers' shared parts (scripts/finetune/_run_folds.sh, scripts/pretrain/_pretrain.sh):
# the repository root, the launcher's name, the per-GPU batch and the interpreter.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT="scripts/$(basename "$(dirname "$0")")/$(basename "$0")"

# BATCH_SIZE from TOTAL_BATCH / (NGPUS * UPDATE_FREQ) unless given; refuses a remainder.
per_gpu_batch() {
  if [ -z "${BATCH_SIZE:-}" ]; then
    if (( TOTAL_BATCH % (NGPUS * UPDATE_FREQ) != 0 )); then
      echo "error: TOTAL_BATCH=$TOTAL_BATCH is not divisible by NGPUS*UPDATE_FREQ=$((NGPUS * UPDATE_FREQ)); set BATCH_SIZE" >&2
      exit 2
    fi
    BATCH_SIZE=$(( TOTAL_BATCH / (NGPUS * UPDATE_FREQ) ))
  fi
}

# The project's .venv comes first on PATH unless PYTHON is set or another venv is active.
use_project_venv() {
  cd "$ROOT"
  if [ -z "${PYTHON:-}" ] && [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then
    export PATH="$ROOT/.venv/bin:$PATH"
  fi
  PYTHON="${PYTHON:-python}"
}

# Sourced by the launchers' shared parts (scripts/finetune/_run_folds.sh, scripts/pretrain/_pretrain.sh):
# the repository root, the launcher's name, the per-GPU batch, the interpreter and torchrun.
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

# Everything a launcher needs before torchrun (TOTAL_BATCH set): GPUs and accumulation (NGPUS 4,
# UPDATE_FREQ 1 unless given), the per-GPU batch, the interpreter, and the launcher and its
# rendezvous port (TORCHRUN torchrun, MASTER_PORT 29500 unless given).
prepare_launch() {
  NGPUS="${NGPUS:-4}"
  UPDATE_FREQ="${UPDATE_FREQ:-1}"
  per_gpu_batch
  use_project_venv
  TORCHRUN="${TORCHRUN:-torchrun}"
  MASTER_PORT="${MASTER_PORT:-29500}"
}

# torchrun ENTRY_POINT DATA_PATH OUTPUT_DIR [flags...] with the recipe ($CONFIG) and the batch geometry.
run_entry_point() {
  local entry="$1" data="$2" out="$3"
  shift 3
  "$TORCHRUN" --nproc_per_node="$NGPUS" --master_port="$MASTER_PORT" "$entry" \
    --config "$CONFIG" \
    --data_path "$data" \
    --output_dir "$out" \
    --batch_size "$BATCH_SIZE" --update_freq "$UPDATE_FREQ" \
    "$@"
}

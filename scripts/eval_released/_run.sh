# Sourced by scripts/eval_released/<dataset>.sh after it sets DATASET: tests the authors' released
# fine-tuned SVFAP-B checkpoints on every fold and compares with the per-fold values of their README
# (tools/eval_released.py).
# Variables: CKPTS (a folder holding one checkpoint per fold, or the files in fold order;
# checkpoints/released/$DATASET), SPLITS (data/splits/$DATASET), OUT (output/released/$DATASET).
# Extra arguments go to run_finetune.py (e.g. --device cuda --batch_size 32).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then export PATH="$ROOT/.venv/bin:$PATH"; fi
CKPTS="${CKPTS:-checkpoints/released/$DATASET}"
SPLITS="${SPLITS:-data/splits/$DATASET}"
OUT="${OUT:-output/released/$DATASET}"
# shellcheck disable=SC2086  # CKPTS may list several files
python -m tools.eval_released --data_set "$DATASET" --checkpoints $CKPTS --data_path "$SPLITS" \
  --output_dir "$OUT" "$@"

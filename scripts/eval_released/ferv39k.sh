#!/usr/bin/env bash
# Test the authors' released fine-tuned SVFAP-B checkpoints for ferv39k on every fold and compare with
# the per-fold values of their README (tools/eval_released.py).
# Usage: CKPTS=folder-or-files SPLITS=data/splits/ferv39k OUT=output/released/ferv39k bash scripts/eval_released/ferv39k.sh [run_finetune.py flags]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then export PATH="$ROOT/.venv/bin:$PATH"; fi
CKPTS="${CKPTS:-checkpoints/released/ferv39k}"
SPLITS="${SPLITS:-data/splits/ferv39k}"
OUT="${OUT:-output/released/ferv39k}"
# shellcheck disable=SC2086
python -m tools.eval_released --data_set ferv39k --checkpoints $CKPTS --data_path "$SPLITS" --output_dir "$OUT" "$@"

#!/usr/bin/env bash
# Test the authors' released fine-tuned SVFAP-B checkpoints for dfew on every fold and compare with
# the per-fold values of their README (tools/eval_released.py).
# Usage: CKPTS=folder-or-files SPLITS=data/splits/dfew OUT=output/released/dfew bash scripts/eval_released/dfew.sh [run_finetune.py flags]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then export PATH="$ROOT/.venv/bin:$PATH"; fi
CKPTS="${CKPTS:-checkpoints/released/dfew}"
SPLITS="${SPLITS:-data/splits/dfew}"
OUT="${OUT:-output/released/dfew}"
# shellcheck disable=SC2086
python -m tools.eval_released --data_set dfew --checkpoints $CKPTS --data_path "$SPLITS" --output_dir "$OUT" "$@"

#!/usr/bin/env bash
# Test the authors' released fine-tuned SVFAP-B checkpoints for ferv39k against their README's values.
# Usage: CKPTS=folder-or-files SPLITS=data/splits/ferv39k OUT=output/released/ferv39k bash scripts/eval_released/ferv39k.sh [run_finetune.py flags]
DATASET=ferv39k
source "$(dirname "${BASH_SOURCE[0]}")/_run.sh"

#!/usr/bin/env bash
# Test the authors' released fine-tuned SVFAP-B checkpoints for mafw against their README's values.
# Usage: CKPTS=folder-or-files SPLITS=data/splits/mafw OUT=output/released/mafw bash scripts/eval_released/mafw.sh [run_finetune.py flags]
DATASET=mafw
source "$(dirname "${BASH_SOURCE[0]}")/_run.sh"

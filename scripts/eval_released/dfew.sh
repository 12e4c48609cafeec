#!/usr/bin/env bash
# Test the authors' released fine-tuned SVFAP-B checkpoints for dfew against their README's values.
# Usage: CKPTS=folder-or-files SPLITS=data/splits/dfew OUT=output/released/dfew bash scripts/eval_released/dfew.sh [run_finetune.py flags]
DATASET=dfew
source "$(dirname "${BASH_SOURCE[0]}")/_run.sh"

#!/usr/bin/env bash
# Fine-tune SVFAP on dfew (classification; 5-fold, predictions of all folds pooled) and pool the folds.
# Paper (SVFAP-B): uar 62.83, war 74.27.
# Usage: MODEL=base|small PRETRAINED=ckpt.pth bash scripts/finetune/dfew.sh [run_finetune.py flags]; -h for all variables.
set -euo pipefail
DATASET=dfew
CONFIG_NAME=dfew
FOLDS=(1 2 3 4 5)
SPLITS_DEFAULT=data/splits/dfew
source "$(dirname "${BASH_SOURCE[0]}")/_run_folds.sh"

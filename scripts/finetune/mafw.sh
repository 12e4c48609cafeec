#!/usr/bin/env bash
# Fine-tune SVFAP on mafw (classification; 5-fold, predictions of all folds pooled) and pool the folds.
# Paper (SVFAP-B): uar 41.19, war 54.28.
# Usage: MODEL=base|small PRETRAINED=ckpt.pth bash scripts/finetune/mafw.sh [run_finetune.py flags]; -h for all variables.
set -euo pipefail
DATASET=mafw
CONFIG_NAME=mafw
FOLDS=(1 2 3 4 5)
SPLITS_DEFAULT=data/splits/mafw
source "$(dirname "${BASH_SOURCE[0]}")/_run_folds.sh"

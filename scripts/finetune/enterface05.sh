#!/usr/bin/env bash
# Fine-tune SVFAP on enterface05 (classification; 5-fold subject-independent, pooled) and pool the folds.
# Paper (SVFAP-B): uar 60.58, war 60.54.
# Usage: MODEL=base|small PRETRAINED=ckpt.pth bash scripts/finetune/enterface05.sh [run_finetune.py flags]; -h for all variables.
set -euo pipefail
DATASET=enterface05
CONFIG_NAME=enterface05
FOLDS=(1 2 3 4 5)
SPLITS_DEFAULT=data/splits/enterface05
source "$(dirname "${BASH_SOURCE[0]}")/_run_folds.sh"

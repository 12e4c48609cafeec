#!/usr/bin/env bash
# Fine-tune SVFAP on crema-d (classification; 5-fold subject-independent (actors), pooled) and pool the folds.
# Paper (SVFAP-B): uar 77.31, war 77.37.
# Usage: MODEL=base|small PRETRAINED=ckpt.pth bash scripts/finetune/crema_d.sh [run_finetune.py flags]; -h for all variables.
set -euo pipefail
DATASET=crema-d
CONFIG_NAME=crema_d
FOLDS=(1 2 3 4 5)
SPLITS_DEFAULT=data/splits/crema-d
source "$(dirname "${BASH_SOURCE[0]}")/_run_folds.sh"

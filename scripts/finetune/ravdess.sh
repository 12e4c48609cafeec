#!/usr/bin/env bash
# Fine-tune SVFAP on ravdess (classification; 6-fold subject-independent (4 actors per fold), speech video-only, pooled) and pool the folds.
# Paper (SVFAP-B): uar 75.15, war 75.01.
# Usage: MODEL=base|small PRETRAINED=ckpt.pth bash scripts/finetune/ravdess.sh [run_finetune.py flags]; -h for all variables.
set -euo pipefail
DATASET=ravdess
CONFIG_NAME=ravdess
FOLDS=(1 2 3 4 5 6)
SPLITS_DEFAULT=data/splits/ravdess
source "$(dirname "${BASH_SOURCE[0]}")/_run_folds.sh"

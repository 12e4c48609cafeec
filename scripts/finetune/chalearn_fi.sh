#!/usr/bin/env bash
# Fine-tune SVFAP on chalearn-fi (regression; official 6000/2000/2000 train/validation/test) and pool the folds.
# Paper (SVFAP-B): ccc_mean 0.6645, acc_mean 0.9175.
# Usage: MODEL=base|small PRETRAINED=ckpt.pth bash scripts/finetune/chalearn_fi.sh [run_finetune.py flags]; -h for all variables.
set -euo pipefail
DATASET=chalearn-fi
CONFIG_NAME=chalearn_fi
FOLDS=(official)
SPLITS_DEFAULT=data/splits/chalearn-fi
source "$(dirname "${BASH_SOURCE[0]}")/_run_folds.sh"

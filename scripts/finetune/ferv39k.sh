#!/usr/bin/env bash
# Fine-tune SVFAP on ferv39k (classification; official train/test split) and pool the folds.
# Paper (SVFAP-B): uar 42.14, war 52.29.
# Usage: MODEL=base|small PRETRAINED=ckpt.pth bash scripts/finetune/ferv39k.sh [run_finetune.py flags]; -h for all variables.
set -euo pipefail
DATASET=ferv39k
CONFIG_NAME=ferv39k
FOLDS=(official)
SPLITS_DEFAULT=data/splits/ferv39k
source "$(dirname "${BASH_SOURCE[0]}")/_run_folds.sh"

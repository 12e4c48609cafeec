#!/usr/bin/env bash
# Fine-tune SVFAP on avcaffe-arousal (classification; official 86/20 participant split; clip scores averaged per participant x task) and pool the folds.
# Paper (SVFAP-B): weighted_f1 40.36.
# Usage: MODEL=base|small PRETRAINED=ckpt.pth bash scripts/finetune/avcaffe_arousal.sh [run_finetune.py flags]; -h for all variables.
set -euo pipefail
DATASET=avcaffe-arousal
CONFIG_NAME=avcaffe_arousal
FOLDS=(official)
SPLITS_DEFAULT=data/splits/avcaffe/arousal
source "$(dirname "${BASH_SOURCE[0]}")/_run_folds.sh"

#!/usr/bin/env bash
# Fine-tune SVFAP on avcaffe-valence (classification; official 86/20 participant split; clip scores averaged per participant x task) and pool the folds.
# Paper (SVFAP-B): weighted_f1 41.49.
# Usage: MODEL=base|small PRETRAINED=ckpt.pth bash scripts/finetune/avcaffe_valence.sh [run_finetune.py flags]; -h for all variables.
set -euo pipefail
DATASET=avcaffe-valence
CONFIG_NAME=avcaffe_valence
FOLDS=(official)
SPLITS_DEFAULT=data/splits/avcaffe/valence
source "$(dirname "${BASH_SOURCE[0]}")/_run_folds.sh"

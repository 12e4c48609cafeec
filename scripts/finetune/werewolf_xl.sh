#!/usr/bin/env bash
# Fine-tune SVFAP on werewolf-xl (regression; 5-fold session-independent (sessions 1-6, 7-12, ...), speaker clips, pooled) and pool the folds.
# Paper (SVFAP-B): ccc_arousal 0.1896, ccc_valence 0.6427, ccc_dominance 0.2969, pcc_arousal 0.2351, pcc_valence 0.6711, pcc_dominance 0.3461.
# Usage: MODEL=base|small PRETRAINED=ckpt.pth bash scripts/finetune/werewolf_xl.sh [run_finetune.py flags]; -h for all variables.
set -euo pipefail
DATASET=werewolf-xl
CONFIG_NAME=werewolf_xl
FOLDS=(1 2 3 4 5)
SPLITS_DEFAULT=data/splits/werewolf-xl
source "$(dirname "${BASH_SOURCE[0]}")/_run_folds.sh"

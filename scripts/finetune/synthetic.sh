#!/usr/bin/env bash
# Fine-tune on the embedded synthetic facial-expression set (7 classes; 5 folds, pooled): the
# launchers' dry run without a dataset or a GPU. The set comes from the quickstart
# (bash scripts/quickstart.sh) or python -m tools.make_synthetic.
# Usage: MODEL=tiny NGPUS=1 PRETRAINED=none SPLITS=output/quickstart/data bash scripts/finetune/synthetic.sh [flags]
set -euo pipefail
DATASET=synthetic
CONFIG_NAME=synthetic
FOLDS=(1 2 3 4 5)
SPLITS_DEFAULT=output/quickstart/data
MODEL="${MODEL:-tiny}"
TOTAL_BATCH="${TOTAL_BATCH:-16}"
NGPUS="${NGPUS:-1}"
PRETRAINED="${PRETRAINED:-none}"
source "$(dirname "${BASH_SOURCE[0]}")/_run_folds.sh"

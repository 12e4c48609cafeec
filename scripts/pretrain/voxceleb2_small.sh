#!/usr/bin/env bash
# Pre-train SVFAP-small (masked facial video autoencoding) on VoxCeleb2 dev, one node, torchrun.
# Usage: NGPUS=4 DATA=data/splits/voxceleb2/pretrain.csv OUTPUT=... bash scripts/pretrain/voxceleb2_small.sh [flags]; -h for all variables.
set -euo pipefail
MODEL_SIZE=small
source "$(dirname "${BASH_SOURCE[0]}")/_pretrain.sh"

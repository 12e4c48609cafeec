#!/usr/bin/env bash
# Pre-train SVFAP-base (masked facial video autoencoding) on VoxCeleb2 dev, one node, torchrun.
# Usage: NGPUS=4 DATA=data/splits/voxceleb2/pretrain.csv OUTPUT=... bash scripts/pretrain/voxceleb2_base.sh [flags]; -h for all variables.
set -euo pipefail
MODEL_SIZE=base
source "$(dirname "${BASH_SOURCE[0]}")/_pretrain.sh"

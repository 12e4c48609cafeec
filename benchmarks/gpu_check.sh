#!/usr/bin/env bash
# The one prepared device check (at most 8 minutes on one Hopper GPU): CUDA correctness tests,
# both entry points with kill + --auto_resume, a one-process torchrun NCCL launch, and the bf16
# training-step throughput / MFU of TPSBT-B and SVFAP-B, eager and compiled.
#   bash benchmarks/gpu_check.sh [OUT]        (OUT default: output/gpu_check)
# Results: OUT/gpu_check.json and OUT/summary.txt, logs in OUT/logs/. Without CUDA it runs the CPU
# dry run, says so and exits 0. Uses the python on PATH when it has torch, else sets up .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-output/gpu_check}"
if python -c 'import torch, timm' 2>/dev/null; then
  export SVFAP_SKIP_SETUP=1
fi
source scripts/_venv.sh
exec python -m benchmarks.gpu_check --out "$OUT" "${@:2}"

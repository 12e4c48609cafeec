#!/usr/bin/env bash
# Set up .venv (if needed) and run the whole SVFAP pipeline on the embedded synthetic facial videos:
# generate -> masked-autoencoder pre-training -> fine-tuning -> test (UAR, WAR, confusion matrix).
# Extra arguments go to tools/quickstart.py (e.g. --out DIR, --preset tiny, --device cpu).
source "$(dirname "$0")/_venv.sh"
python -m tools.quickstart "$@"

#!/usr/bin/env bash
# Set up .venv (if needed) and run the test suite. Extra arguments go to pytest.
source "$(dirname "$0")/_venv.sh"
python -m pytest -q "$@" tests

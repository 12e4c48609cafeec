"""Shared pytest setup: run from the repository root, small thread count, fixed seeds."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402

# One thread: tiny test models are dominated by overhead, and DataLoader workers share the cores.
torch.set_num_threads(int(os.environ.get("SVFAP_TEST_THREADS", "1")))

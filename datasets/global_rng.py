"""Replaying Python's and NumPy's global random state: timm's RandAugment and RandomErasing draw
from them, so a clip's augmentation is made reproducible (and identical on every frame) by seeding
and resetting them around each call."""
from __future__ import annotations

import random
from contextlib import contextmanager

import numpy as np

__all__ = ['replay_global_rng']


@contextmanager
def replay_global_rng(seed: int):
    """Seed Python's ``random`` and NumPy's legacy global RNG with ``seed``; yields ``reset()``,
    which puts both back to that seeded state (so a sequence of random calls can be replayed
    exactly). The previous global states are restored on exit. Not thread safe (DataLoader
    workers are processes, so this is fine there)."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    try:
        random.seed(seed)
        np.random.seed(seed % (2 ** 32))
        py_seeded = random.getstate()
        np_seeded = np.random.get_state()

        def reset():
            random.setstate(py_seeded)
            np.random.set_state(np_seeded)

        yield reset
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)

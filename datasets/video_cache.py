"""An in-memory cache of whole decoded videos, per loader process (``--cache_gb``).

Small data sets (the quickstart's synthetic clips, a fold of CREMA-D face crops) are decoded again
every epoch; on a CPU-only machine that costs as much as the training step. With a budget > 0 the
first read of a video decodes all of its frames with the configured reader and keeps them; later
reads index the kept array. The frames are the reader's own, decoded once in order, so a cached and
an uncached run see the same pixels (the readers are frame-exact, tests/test_data_decoding.py).

The cache holds raw decoded frames (before any resize or augmentation), so augmentation still
differs per epoch. Memory: ``frames x H x W x 3`` bytes per video, in *each* process that reads it
(every DataLoader worker keeps its own copy; training workers are persistent, evaluation workers are
not, so evaluation benefits with ``--num_workers 0``). Videos that would exceed the budget are read
from disk as before. A video that fails to decode is not cached: the error reaches the dataset,
which reports and substitutes it as without a cache.
"""
from __future__ import annotations

import os
from typing import Dict, Sequence

import numpy as np

from .video_reader import DEFAULT_READER, _check_indices, open_video

__all__ = ['DecodedVideo', 'VideoCache']


class DecodedVideo:
    """A video held in memory with the readers' interface: ``num_frames``, ``get``, ``close``."""

    def __init__(self, path: str, frames: np.ndarray):
        self.path = path
        self.frames = frames  # uint8 (N, H, W, 3), read-only
        self.num_frames = int(frames.shape[0])

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 (len(indices), H, W, 3) RGB, a copy (the caller may write to it)."""
        return self.frames[_check_indices(self.path, indices, self.num_frames)]

    def close(self):
        pass


class VideoCache:
    """Whole decoded videos kept up to ``max_bytes`` in this process; ``open`` as ``open_video``."""

    def __init__(self, max_bytes: int, reader: str = DEFAULT_READER):
        self.max_bytes = int(max_bytes)
        self.reader = reader
        self._empty()

    def _empty(self):
        self.bytes = 0
        self.full = self.max_bytes <= 0   # set when the first video does not fit
        self._videos: Dict[str, DecodedVideo] = {}

    def __len__(self) -> int:
        return len(self._videos)

    def __getstate__(self):  # a worker starts empty: never pickle decoded frames to it
        return {'max_bytes': self.max_bytes, 'reader': self.reader}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._empty()

    def open(self, path: str):
        key = os.path.abspath(path)
        hit = self._videos.get(key)
        if hit is not None:
            return hit
        v = open_video(path, self.reader)
        if self.full:
            return v  # budget spent: read from disk as without a cache
        try:
            frames = v.get(range(v.num_frames))
        finally:
            v.close()
        frames.setflags(write=False)
        video = DecodedVideo(path, frames)
        if self.bytes + frames.nbytes <= self.max_bytes:
            self._videos[key] = video
            self.bytes += frames.nbytes
        else:
            self.full = True  # the first video that does not fit ends the filling
        return video

"""Which frames make a clip.

Two temporal samplings, chosen with ``--temporal_sampling`` (docs/training.md says why both exist):

``published`` (default) - the frame indices of the published SVFAP training and test code, so the
authors' checkpoints see the clips they were trained and tested on. With ``F`` = ``num_frames``,
``s`` = ``stride`` and ``L`` frames:

* fine-tuning, training: when ``L > F*s``, an end drawn uniformly from ``[F*s, L)``, the start
  ``end - F*s`` and ``F`` indices ``linspace(start, end, F)`` truncated to integers and clipped to
  ``end - 1``, so the gaps are ``s`` or ``s + 1`` (4 and 5 for 16 x 4); when ``L <= F*s``,
  ``linspace(0, L, L // s)`` padded with ``L`` to ``F`` indices, clipped to ``L - 1`` and truncated.
* pre-training: a start drawn uniformly from ``[0, L - F*s]``, then ``start + s*i``; a short
  video starts at 0 and, once the next step would reach ``L - 1``, repeats its last frame on the
  stride grid (the published loader never steps onto the final frame).
* test / validation: the stride grid ``0, s, 2s, ...`` below ``L`` (padded with its last entry to
  ``F``); clip ``k`` of ``K`` is ``F`` consecutive entries of that grid from
  ``int(k * (n - F) / (K - 1))``, ``n`` the grid's length, so the last clip ends on the grid, not
  on the last frame. ``K = 1`` (where the published code divides by zero) takes the centred entries
  ``(n - F) // 2``.

``exact_stride`` - every clip is ``F`` frames exactly ``s`` apart, ``start + s*i`` (paper Sec.
4.1: 16 frames, stride 4), never a stride of 5. Training starts uniformly in ``[0, L - span]``
(``span = (F - 1)*s + 1``, so every frame can be sampled); test clips start at
``round(k * (L - span) / (K - 1))`` (the last clip ends on the last frame; one clip is centred);
videos shorter than ``span`` start at 0 and clamp indices past the end to ``L - 1``.

Spatial test crops: ``num_crops`` crops of size ``crop`` spread uniformly along the long side,
offsets ``round(k * (long - crop) / (num_crops - 1))``; one crop is centred.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

TEMPORAL_SAMPLINGS = ("published", "exact_stride")
PURPOSES = ("finetune", "pretrain")


def check_temporal_sampling(sampling: str):
    if sampling not in TEMPORAL_SAMPLINGS:
        raise ValueError(f"temporal_sampling must be one of {TEMPORAL_SAMPLINGS}, got {sampling!r}")


def clip_span(num_frames: int, stride: int) -> int:
    """Number of video frames a clip at exact stride covers, first to last inclusive."""
    if num_frames < 1 or stride < 1:
        raise ValueError(f"num_frames and stride must be >= 1, got {num_frames}, {stride}")
    return (num_frames - 1) * stride + 1


def clip_indices(start: int, num_frames: int, stride: int, video_len: int) -> np.ndarray:
    """Exact-stride clip starting at ``start``; indices past the end are clamped to the last frame."""
    if video_len < 1:
        raise ValueError("video has no frames")
    idx = start + stride * np.arange(num_frames, dtype=np.int64)
    return np.minimum(idx, video_len - 1)


# ----------------------------------------------------------------------------- exact stride
def sample_train_indices(video_len: int, num_frames: int = 16, stride: int = 4,
                         rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Exact-stride training clip: uniformly random start, clamping for short videos."""
    rng = rng if rng is not None else np.random.default_rng()
    max_start = video_len - clip_span(num_frames, stride)
    start = int(rng.integers(0, max_start + 1)) if max_start > 0 else 0
    return clip_indices(start, num_frames, stride, video_len)


def eval_clip_starts(video_len: int, num_frames: int = 16, stride: int = 4,
                     num_segments: int = 2) -> List[int]:
    """Exact-stride test clips: deterministic starts spread uniformly over the video."""
    if num_segments < 1:
        raise ValueError("num_segments must be >= 1")
    max_start = max(video_len - clip_span(num_frames, stride), 0)
    if num_segments == 1:
        return [max_start // 2]
    return [int(round(k * max_start / (num_segments - 1))) for k in range(num_segments)]


# ----------------------------------------------------------------------------- published
def published_finetune_train_indices(video_len: int, num_frames: int = 16, stride: int = 4,
                                     rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """The published fine-tuning training clip (module docstring): strides ``s`` and ``s + 1``."""
    if video_len < 1:
        raise ValueError("video has no frames")
    rng = rng if rng is not None else np.random.default_rng()
    length = num_frames * stride
    if video_len <= length:
        n = video_len // stride
        idx = np.concatenate([np.linspace(0, video_len, num=n),
                              np.full(num_frames - n, float(video_len))])
        return np.clip(idx, 0, video_len - 1).astype(np.int64)
    end = int(rng.integers(length, video_len))
    start = end - length
    return np.clip(np.linspace(start, end, num=num_frames), start, end - 1).astype(np.int64)


def published_pretrain_indices(video_len: int, num_frames: int = 16, stride: int = 4,
                               rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """The published pre-training clip: start uniform in ``[0, L - F*s]``, exact stride; short
    videos hold the last grid frame before ``L - 1``."""
    if video_len < 1:
        raise ValueError("video has no frames")
    rng = rng if rng is not None else np.random.default_rng()
    room = video_len - num_frames * stride + 1
    pos = int(rng.integers(room)) if room > 0 else 0
    idx = np.empty(num_frames, dtype=np.int64)
    for i in range(num_frames):
        idx[i] = pos
        if pos + 1 + stride < video_len:
            pos += stride
    return idx


def published_eval_grid(video_len: int, num_frames: int = 16, stride: int = 4) -> np.ndarray:
    """The published test path's frame list: ``0, s, 2s, ... < L``, padded with its last entry."""
    if video_len < 1:
        raise ValueError("video has no frames")
    grid = np.arange(0, video_len, stride, dtype=np.int64)
    if len(grid) < num_frames:
        grid = np.concatenate([grid, np.full(num_frames - len(grid), grid[-1], dtype=np.int64)])
    return grid


def published_eval_start(grid_len: int, segment: int, num_frames: int, num_segments: int) -> int:
    """Position in the grid of test clip ``segment`` (``int(k * (n - F) / (K - 1))``)."""
    if num_segments == 1:
        return (grid_len - num_frames) // 2
    step = max(1.0 * (grid_len - num_frames) / (num_segments - 1), 0)
    return int(segment * step)


# ----------------------------------------------------------------------------- by name
def train_indices(video_len: int, num_frames: int, stride: int, rng: np.random.Generator,
                  sampling: str = "published", purpose: str = "finetune") -> np.ndarray:
    """A training clip's indices for ``purpose`` 'finetune' | 'pretrain' under ``sampling``."""
    check_temporal_sampling(sampling)
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
    if sampling == "exact_stride":
        return sample_train_indices(video_len, num_frames, stride, rng)
    if purpose == "pretrain":
        return published_pretrain_indices(video_len, num_frames, stride, rng)
    return published_finetune_train_indices(video_len, num_frames, stride, rng)


def eval_clip_indices(video_len: int, segment: int, num_frames: int = 16, stride: int = 4,
                      num_segments: int = 2, sampling: str = "published") -> np.ndarray:
    """Indices of test clip ``segment`` of ``num_segments`` (deterministic)."""
    check_temporal_sampling(sampling)
    if not 0 <= segment < num_segments:
        raise IndexError(f"segment {segment} not in 0..{num_segments - 1}")
    if sampling == "exact_stride":
        start = eval_clip_starts(video_len, num_frames, stride, num_segments)[segment]
        return clip_indices(start, num_frames, stride, video_len)
    grid = published_eval_grid(video_len, num_frames, stride)
    start = published_eval_start(len(grid), segment, num_frames, num_segments)
    return grid[start:start + num_frames]


def crop_offsets(length: int, crop: int, num_crops: int) -> List[int]:
    """Offsets of ``num_crops`` windows of size ``crop`` spread uniformly over ``length``."""
    if crop > length:
        raise ValueError(f"crop {crop} larger than the image side {length}")
    if num_crops == 1:
        return [(length - crop) // 2]
    return [int(round(k * (length - crop) / (num_crops - 1))) for k in range(num_crops)]

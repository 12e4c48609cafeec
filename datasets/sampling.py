"""Which frames make a clip.

A clip is ``num_frames`` frames at an exact temporal ``stride``: indices ``start + stride * i`` for
``i = 0 .. num_frames-1`` (paper Sec. 4.1: 16 frames, stride 4). The stride is never rounded from a
``linspace`` (that drifts between 3 and 5 frames); it is always exactly ``stride``.

Videos shorter than the span ``(num_frames - 1) * stride + 1``: **clamping** - the clip starts at
frame 0, keeps the exact stride, and every index past the end is replaced by the last frame
(``min(start + stride * i, L - 1)``), i.e. the last frame is repeated. This is what the
published SVFAP/VideoMAE code does (it pads with the last frame), keeps the motion speed of the
real frames the same as in long videos, and never jumps back in time the way looping would. A
1-frame video gives 16 copies of that frame.

Training: the start is drawn uniformly from ``0 .. L - span`` (inclusive), so every frame can be
sampled.

Test / validation: ``num_segments`` clips spread uniformly over the video, starts
``round(k * (L - span) / (num_segments - 1))`` for ``k = 0 .. num_segments-1`` (first clip at the
beginning, last clip ending at the last frame); a single segment is centred:
``(L - span) // 2``. Short videos: all starts are 0 (clamped as above). Fully deterministic.

Spatial test crops: ``num_crops`` crops of size ``crop`` spread uniformly along the long side,
offsets ``round(k * (long - crop) / (num_crops - 1))``; one crop is centred.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np


def clip_span(num_frames: int, stride: int) -> int:
    """Number of video frames a clip covers, first to last inclusive."""
    if num_frames < 1 or stride < 1:
        raise ValueError(f"num_frames and stride must be >= 1, got {num_frames}, {stride}")
    return (num_frames - 1) * stride + 1


def clip_indices(start: int, num_frames: int, stride: int, video_len: int) -> np.ndarray:
    """Frame indices of the clip starting at ``start``; indices past the end are clamped to the
    last frame (the last frame repeats)."""
    if video_len < 1:
        raise ValueError("video has no frames")
    idx = start + stride * np.arange(num_frames, dtype=np.int64)
    return np.minimum(idx, video_len - 1)


def sample_train_indices(video_len: int, num_frames: int = 16, stride: int = 4,
                         rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Training clip: uniformly random start, exact stride, clamping for short videos."""
    rng = rng if rng is not None else np.random.default_rng()
    max_start = video_len - clip_span(num_frames, stride)
    start = int(rng.integers(0, max_start + 1)) if max_start > 0 else 0
    return clip_indices(start, num_frames, stride, video_len)


def eval_clip_starts(video_len: int, num_frames: int = 16, stride: int = 4,
                     num_segments: int = 2) -> List[int]:
    """Deterministic starts of ``num_segments`` clips spread uniformly over the video."""
    if num_segments < 1:
        raise ValueError("num_segments must be >= 1")
    max_start = max(video_len - clip_span(num_frames, stride), 0)
    if num_segments == 1:
        return [max_start // 2]
    return [int(round(k * max_start / (num_segments - 1))) for k in range(num_segments)]


def eval_clip_indices(video_len: int, segment: int, num_frames: int = 16, stride: int = 4,
                      num_segments: int = 2) -> np.ndarray:
    start = eval_clip_starts(video_len, num_frames, stride, num_segments)[segment]
    return clip_indices(start, num_frames, stride, video_len)


def crop_offsets(length: int, crop: int, num_crops: int) -> List[int]:
    """Offsets of ``num_crops`` windows of size ``crop`` spread uniformly over ``length``."""
    if crop > length:
        raise ValueError(f"crop {crop} larger than the image side {length}")
    if num_crops == 1:
        return [(length - crop) // 2]
    return [int(round(k * (length - crop) / (num_crops - 1))) for k in range(num_crops)]

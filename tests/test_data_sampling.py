"""Frame sampling: exact stride, random start, short-clip clamping, deterministic test views."""
import numpy as np
import pytest

from datasets.sampling import (clip_indices, clip_span, crop_offsets, eval_clip_indices,
                               eval_clip_starts, sample_train_indices)


def test_exact_stride_and_random_start_cover_range():
    rng = np.random.default_rng(0)
    starts = set()
    for L in (61, 62, 100, 1000):
        for _ in range(200):
            idx = sample_train_indices(L, 16, 4, rng)
            assert idx.shape == (16,) and idx.dtype == np.int64
            assert (np.diff(idx) == 4).all()          # exact stride, never drifting
            assert 0 <= idx[0] and idx[-1] <= L - 1
            if L == 100:
                starts.add(int(idx[0]))
    assert starts == set(range(0, 100 - 61 + 1))      # every start 0..39 reachable
    assert clip_span(16, 4) == 61
    assert sample_train_indices(61, 16, 4, rng).tolist() == list(range(0, 61, 4))


def test_short_videos_clamp_to_last_frame():
    rng = np.random.default_rng(1)
    idx = sample_train_indices(20, 16, 4, rng)
    assert idx.tolist() == [0, 4, 8, 12, 16] + [19] * 11
    assert sample_train_indices(1, 16, 4, rng).tolist() == [0] * 16
    assert clip_indices(0, 4, 4, 10).tolist() == [0, 4, 8, 9]
    with pytest.raises(ValueError):
        clip_indices(0, 4, 4, 0)


def test_eval_views_spread_uniformly_and_deterministically():
    assert eval_clip_starts(161, 16, 4, 2) == [0, 100]           # last clip ends at the last frame
    assert eval_clip_indices(161, 1, 16, 4, 2)[-1] == 160
    assert eval_clip_starts(161, 16, 4, 3) == [0, 50, 100]
    assert eval_clip_starts(161, 16, 4, 1) == [50]               # one clip: centred
    assert eval_clip_starts(40, 16, 4, 2) == [0, 0]              # short: both clamp from 0
    assert eval_clip_starts(161, 16, 4, 2) == eval_clip_starts(161, 16, 4, 2)
    for seg in range(2):
        assert (np.diff(eval_clip_indices(300, seg, 16, 4, 2)) == 4).all()
    assert crop_offsets(213, 160, 2) == [0, 53]
    assert crop_offsets(213, 160, 3) == [0, 26, 53] or crop_offsets(213, 160, 3) == [0, 27, 53]
    assert crop_offsets(200, 160, 1) == [20]

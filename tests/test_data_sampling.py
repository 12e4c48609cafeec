"""Frame sampling: the published indices (written out here) and exact stride; random starts,
short videos, deterministic test views."""
import numpy as np
import pytest

from datasets.sampling import (clip_indices, clip_span, crop_offsets, eval_clip_indices,
                               eval_clip_starts, sample_train_indices, train_indices)


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
    assert eval_clip_indices(161, 1, 16, 4, 2, "exact_stride")[-1] == 160
    assert eval_clip_starts(161, 16, 4, 3) == [0, 50, 100]
    assert eval_clip_starts(161, 16, 4, 1) == [50]               # one clip: centred
    assert eval_clip_starts(40, 16, 4, 2) == [0, 0]              # short: both clamp from 0
    assert eval_clip_starts(161, 16, 4, 2) == eval_clip_starts(161, 16, 4, 2)
    for seg in range(2):
        assert (np.diff(eval_clip_indices(300, seg, 16, 4, 2, "exact_stride")) == 4).all()
    assert crop_offsets(213, 160, 2) == [0, 53]
    assert crop_offsets(213, 160, 3) == [0, 26, 53] or crop_offsets(213, 160, 3) == [0, 27, 53]
    assert crop_offsets(200, 160, 1) == [20]


# ----------------------------------------------------------------------------- published
def test_published_test_clips_sit_on_the_stride_grid_from_frame_0():
    """Test clip k of K: the grid 0, 4, 8, ... < L padded with its last entry to 16, and 16
    entries of it from int(k * (n - 16) / (K - 1))."""
    for L, second in [(30, [0, 4, 8, 12, 16, 20, 24, 28] + [28] * 8),
                      (64, list(range(0, 64, 4))),            # n = 16: both clips the same
                      (97, list(range(36, 97, 4))),           # n = 25: from entry 9
                      (150, list(range(88, 150, 4)))]:        # n = 38: from entry 22
        assert eval_clip_indices(L, 1, 16, 4, 2).tolist() == second, L
        first = eval_clip_indices(L, 0, 16, 4, 2).tolist()
        assert first == (second if L <= 64 else list(range(0, 61, 4))), L
    # exact stride differs exactly where the issue measured it: 64 and 150 frames
    assert eval_clip_indices(64, 1, 16, 4, 2, "exact_stride").tolist() == list(range(3, 64, 4))
    assert eval_clip_indices(150, 1, 16, 4, 2, "exact_stride").tolist() == list(range(89, 150, 4))
    # three clips, and one (centred on the grid, where the published code divides by zero)
    assert [eval_clip_indices(150, k, 16, 4, 3)[0] for k in range(3)] == [0, 44, 88]
    assert eval_clip_indices(150, 0, 16, 4, 1)[0] == 4 * ((38 - 16) // 2)
    assert eval_clip_indices(40, 0, 16, 1, 2).tolist() == list(range(16))     # FERV39k: stride 1
    assert eval_clip_indices(40, 1, 16, 1, 2).tolist() == list(range(24, 40))


def test_published_finetune_training_clips():
    """L > 64: an end in [64, L), linspace(end - 64, end, 16) clipped to end - 1, truncated: gaps
    of 4 and 5; L <= 64: linspace(0, L, L // 4) padded with L, clipped to L - 1."""
    rng = np.random.default_rng(0)
    for L in (65, 97, 150):
        ends = set()
        for _ in range(2000):
            idx = train_indices(L, 16, 4, rng, "published", "finetune")
            end = int(idx[-1]) + 1
            assert 64 <= end < L
            assert idx.tolist() == [min(int((end - 64) + k * 64 / 15), end - 1) for k in range(16)]
            assert set(np.diff(idx).tolist()) <= {4, 5} and idx[-1] - idx[0] == 63
            ends.add(end)
        assert ends == set(range(64, L))                        # every end reachable
    assert train_indices(64, 16, 4, rng).tolist() == \
        [int(k * 64 / 15) for k in range(15)] + [63]
    assert train_indices(30, 16, 4, rng).tolist() == \
        [int(k * 30 / 6) for k in range(6)] + [29] * 10       # linspace(0, 30, 7): 0 5 10 .. 30->29
    assert train_indices(3, 16, 4, rng).tolist() == [2] * 16    # 3 // 4 = 0 entries, padded


def test_published_pretraining_clips():
    """Start uniform in [0, L - 64], stride 4; a short video steps while the next step stays below
    L - 1, then repeats."""
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(300):
        idx = train_indices(100, 16, 4, rng, "published", "pretrain")
        assert (np.diff(idx) == 4).all()
        starts.add(int(idx[0]))
    assert starts == set(range(0, 100 - 64 + 1))
    assert train_indices(30, 16, 4, rng, purpose="pretrain").tolist() == list(range(0, 29, 4)) + [28] * 8
    assert train_indices(29, 16, 4, rng, purpose="pretrain").tolist() == list(range(0, 25, 4)) + [24] * 9
    assert train_indices(64, 16, 4, rng, purpose="pretrain").tolist() == list(range(0, 61, 4))
    assert train_indices(1, 16, 4, rng, purpose="pretrain").tolist() == [0] * 16
    with pytest.raises(ValueError, match="temporal_sampling"):
        train_indices(100, 16, 4, rng, "linspace")

"""Transforms: shapes, value ranges, identical augmentation across the frames of a clip."""
import random

import cv2
import numpy as np
import pytest
import torch

from tests.helpers import pattern_frames
from datasets.transforms import (PRETRAIN_SCALES, EvalTransform, FinetuneTrainTransform,
                                 PretrainTransform, denormalize, multi_scale_crop_params)

S = 64


def _same_frames(t=8, h=72, w=96, seed=0):
    f = pattern_frames(1, h, w, seed=seed)[0]
    f[10:30, 20:50] = (200, 30, 90)   # some structure for the geometric ops to move
    return np.repeat(f[None], t, axis=0)


def _in_unit_range(clip):
    x = denormalize(clip)
    return float(x.min()) >= -1e-4 and float(x.max()) <= 1 + 1e-4


def test_output_shapes_dtypes_ranges():
    frames = pattern_frames(8, 72, 96)
    rng = np.random.default_rng(0)
    for tf in (PretrainTransform(S),
               FinetuneTrainTransform(S, reprob=0.0),
               lambda f, r: EvalTransform(S, 80, 2)(f, 1)):
        clip = tf(frames, rng)
        assert clip.shape == (3, 8, S, S) and clip.dtype == torch.float32
        assert clip.is_contiguous() and _in_unit_range(clip)
    # normalisation: a mid-grey frame maps to (0.5 - mean) / std
    grey = np.full((2, S, S, 3), 128, np.uint8)
    clip = EvalTransform(S)(grey, 0)
    expect = (128 / 255 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(clip[:, 0, 0, 0], expect, atol=1e-5)


def test_randaugment_identical_across_frames_and_rng_restored():
    frames = _same_frames()
    tf = FinetuneTrainTransform(S, reprob=0.0)
    plain = FinetuneTrainTransform(S, auto_augment=None, reprob=0.0)
    state_py, state_np = random.getstate(), np.random.get_state()[1].copy()
    n_changed = 0
    for seed in range(12):
        clip = tf(frames, np.random.default_rng(seed))
        for t in range(1, clip.shape[1]):
            assert torch.equal(clip[:, t], clip[:, 0]), f"seed {seed}: frame {t} differs"
        ref = plain(frames, np.random.default_rng(seed))
        n_changed += not torch.allclose(clip, ref)
    assert n_changed >= 6     # RandAugment really does something
    assert random.getstate() == state_py and np.array_equal(np.random.get_state()[1], state_np)
    # reproducible from the clip's generator
    a = tf(frames, np.random.default_rng(5))
    b = tf(frames, np.random.default_rng(5))
    assert torch.equal(a, b)


def test_random_erasing_clip_vs_frame():
    frames = _same_frames()
    base = FinetuneTrainTransform(S, reprob=0.0)
    for mode in ("clip", "frame"):
        tf = FinetuneTrainTransform(S, reprob=1.0, erase_mode=mode)
        boxes_differ = 0
        for seed in range(6):
            ref = base(frames, np.random.default_rng(seed))
            out = tf(frames, np.random.default_rng(seed))
            erased = (out != ref).any(dim=0)          # (T, H, W) erased pixels
            assert erased.any()
            same = all(torch.equal(erased[t], erased[0]) for t in range(1, erased.shape[0]))
            if mode == "clip":
                assert same
            boxes_differ += not same
        if mode == "frame":
            assert boxes_differ >= 5


def test_pretrain_fixed_crop_and_multiscale():
    # frames: the fixed crop window (rows 0-40, cols 16-56) is black, the rest white
    f = np.full((4, 64, 72, 3), 255, np.uint8)
    f[:, 0:40, 16:56] = 0
    tf = PretrainTransform(32, input_crop=(0, 40, 16, 56))
    for seed in range(10):
        clip = tf(f, np.random.default_rng(seed))
        assert clip.shape == (3, 4, 32, 32)
        assert float(denormalize(clip).abs().max()) < 1e-4   # nothing from outside the crop
    with pytest.raises(ValueError, match="does not fit"):
        PretrainTransform(32, input_crop=(0, 100, 0, 10))(f, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    sizes = {int(160 * s) for s in PRETRAIN_SCALES}
    for _ in range(100):
        top, left, ch, cw = multi_scale_crop_params(160, 160, 160, rng=rng)
        assert ch in sizes and cw in sizes and top + ch <= 160 and left + cw <= 160
        order = sorted(sizes, reverse=True)
        assert abs(order.index(ch) - order.index(cw)) <= 1


def test_eval_crops_along_long_side():
    # horizontal ramp: the right crop is brighter than the left one
    ramp = np.tile(np.linspace(0, 255, 96).astype(np.uint8)[None, :, None], (48, 1, 3))
    frames = np.repeat(ramp[None], 2, axis=0)               # 48 x 96 -> short side 64 -> 64 x 128
    tf = EvalTransform(S, short_side_size=S, num_crops=2, resize_mode="short_side")
    left, right = tf(frames, 0), tf(frames, 1)
    assert left.shape == right.shape == (3, 2, S, S)
    assert float(left.mean()) < float(right.mean())
    assert torch.equal(left, tf(frames, 0))                  # deterministic
    tall = np.transpose(frames, (0, 2, 1, 3))               # 96 x 48: crops along the height
    top, bottom = tf(tall, 0), tf(tall, 1)
    assert float(top.mean()) < float(bottom.mean())
    with pytest.raises(ValueError):
        EvalTransform(S, short_side_size=S - 1)


def test_pretrain_scales_one_means_the_whole_frame():
    """--pretrain_scales 1.0: the pre-training item is the whole (resized) frame, every time."""
    from datasets.transforms import PretrainTransform
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(4, 48, 48, 3), dtype=np.uint8)
    t = PretrainTransform(48, scales=(1.0,))
    ref = t(frames, np.random.default_rng(1))
    for seed in range(5):
        assert torch.equal(t(frames, np.random.default_rng(seed)), ref)
    expect = (torch.from_numpy(frames).float() / 255 - torch.tensor([0.485, 0.456, 0.406])) / \
        torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(ref, expect.permute(3, 0, 1, 2), atol=1e-5, rtol=0)
    many = PretrainTransform(48)                           # the default multi-scale crop varies
    assert len({many(frames, np.random.default_rng(s)).sum().item() for s in range(8)}) > 1


def _ramp(h=48, w=96, t=2):
    ramp = np.tile(np.linspace(0, 255, w).astype(np.uint8)[None, :, None], (h, 1, 3))
    return np.repeat(ramp[None], t, axis=0)


def test_published_views_squash_the_frame():
    """Published: every frame squashed to s x s, so both test "crops" are the whole frame; at
    training the (here full-frame) random resized crop sees the whole width too."""
    from datasets.transforms import squash_frames, to_normalized_tensor
    frames = _ramp()                                         # 48 x 96, aspect 2
    ev = EvalTransform(S, short_side_size=S, num_crops=2)    # resize_mode 'squash' by default
    a, b = ev(frames, 0), ev(frames, 1)
    assert torch.equal(a, b)
    assert torch.equal(a, to_normalized_tensor(squash_frames(frames, S)))
    x = denormalize(a)[0, 0]                                 # red channel, first frame
    assert float(x[:, 0].mean()) < 0.02 and float(x[:, -1].mean()) > 0.98   # both ends visible
    tr = FinetuneTrainTransform(S, scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=0.0, auto_augment=None,
                                reprob=0.0)
    y = denormalize(tr(frames, np.random.default_rng(0)))[0, 0]
    assert float(y[:, 0].mean()) < 0.02 and float(y[:, -1].mean()) > 0.98
    z = denormalize(FinetuneTrainTransform(S, scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=0.0,
                                           auto_augment=None, reprob=0.0, resize_mode="short_side")(
        frames, np.random.default_rng(0)))[0, 0]
    assert float(z[:, 0].mean()) > 0.1 or float(z[:, -1].mean()) < 0.9      # part of the width only


def test_published_order_randaugment_sees_the_full_frame_with_fill_128():
    """RandAugment runs on the squashed full frame before the crop (published; it is asked only for
    the crop's region), or on the crop (crop_first); its fill is 128 (published) or the ImageNet mean."""
    from datasets.transforms import squash_frames
    frames = _same_frames(h=72, w=96)
    seen = {}
    for order in ("published", "crop_first"):
        tf = FinetuneTrainTransform(S, scale=(0.3, 0.3), ratio=(1.0, 1.0), reprob=0.0, order=order)
        fills = {op.kwargs.get("fillcolor") for op in tf.rand_augment.ra.ops if "fillcolor" in op.kwargs}
        assert fills == ({(128, 128, 128)} if order == "published" else {(124, 116, 104)})

        class Record(type(tf.rand_augment)):
            def apply(self, f, seed, box=None, order=order):
                seen[order] = (f.copy(), box)
                return super().apply(f, seed, box)
        tf.rand_augment.__class__ = Record
        tf(frames, np.random.default_rng(0))
    full, box = seen["published"]
    assert np.array_equal(full, squash_frames(frames, S))              # the whole frame
    assert box[2:] == (35, 35)                                          # asked for a 30 % crop
    crop_first, box = seen["crop_first"]
    assert box is None and crop_first.shape == (8, S, S, 3)
    assert not np.array_equal(crop_first, squash_frames(frames, S))     # a 30 % crop, resized


def test_randaugment_of_a_region_equals_the_region_of_the_full_result():
    """Asked for a box, ClipRandAugment augments only what the box needs (walking back from the
    box: pointwise ops on the same pixels, sharpness with a 1-pixel margin, a geometric op on the
    source of its output pixels, whole frames before a frame-statistics op): the result equals the
    box cut from the per-frame timm RandAugment of the full frame, replayed frame by frame
    (written out here), for every kind of op that can come last and for chains of geometric ops."""
    from PIL import Image
    from datasets.global_rng import replay_global_rng
    from datasets.tensor_augment import timm_plan
    from datasets.transforms import NEIGHBOURHOOD_OPS, POINTWISE_OPS, ClipRandAugment
    frames = np.stack([pattern_frames(1, 48, 56, seed=t)[0] for t in range(3)])
    ra = ClipRandAugment(input_size=48, fill=128)
    last_kinds, chains = set(), 0
    geometric = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}
    for s in range(60):
        rng = np.random.default_rng(s)
        top, left = int(rng.integers(0, 20)), int(rng.integers(0, 20))
        box = (top, left, int(rng.integers(8, 48 - top)), int(rng.integers(8, 56 - left)))
        seed = 1000 + s
        expect = np.empty_like(frames)
        with replay_global_rng(seed) as reset:
            for i, f in enumerate(frames):
                reset()
                expect[i] = np.asarray(ra.ra(Image.fromarray(f)))
        t, l, h, w = box
        got = ra.apply(frames, seed, box)
        assert np.array_equal(got, expect[:, t:t + h, l:l + w]), (s, box)
        assert np.array_equal(ra.apply(frames, seed), expect)
        reach = [n for n, _, _ in timm_plan(ra.ra, seed) if n not in POINTWISE_OPS]
        last_kinds.add("none" if not reach else "sharpness" if reach[-1] in NEIGHBOURHOOD_OPS
                       else "geometric" if reach[-1] in geometric else "statistics")
        chains += sum(n in geometric for n in reach) >= 2
    assert last_kinds == {"none", "sharpness", "geometric", "statistics"}
    assert chains >= 3


def test_autocontrast_and_equalize_tables_equal_imageops():
    """AutoContrast and Equalize run as one lookup table per frame and channel, computed from the
    frame's histogram: equal to PIL's ImageOps on full-range, narrow, flat and two-valued frames."""
    from PIL import Image, ImageOps
    from datasets.transforms import _frame_luts
    rng = np.random.default_rng(0)
    clips = [pattern_frames(3, 24, 32, seed=1),
             rng.integers(100, 103, (3, 24, 32, 3), dtype=np.uint8),
             np.full((3, 24, 32, 3), 77, np.uint8),
             (rng.integers(0, 2, (3, 24, 32, 3)) * 200).astype(np.uint8),
             np.clip(rng.normal(240, 20, (3, 24, 32, 3)), 0, 255).astype(np.uint8)]
    for clip in clips:
        for name, op in (("AutoContrast", ImageOps.autocontrast), ("Equalize", ImageOps.equalize)):
            for frame, lut in zip(clip, _frame_luts(name, clip)):
                expect = np.asarray(op(Image.fromarray(frame)))
                assert np.array_equal(cv2.LUT(frame, lut), expect), name


def test_published_crop_is_bilinear_on_the_normalised_clip():
    """The random resized crop of the published order can be predicted: same generator, same
    params; the crop is resized bilinearly (half-pixel centres) after normalisation, then flipped."""
    from datasets.transforms import random_resized_crop_params, squash_frames, to_normalized_tensor
    frames = pattern_frames(4, 72, 96)
    tf = FinetuneTrainTransform(S, scale=(0.2, 0.5), auto_augment=None, reprob=0.0)
    for seed in range(5):
        out = tf(frames, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        top, left, ch, cw = random_resized_crop_params(S, S, (0.2, 0.5), (3 / 4, 4 / 3), rng)
        x = to_normalized_tensor(squash_frames(frames, S))[:, :, top:top + ch, left:left + cw]
        want = torch.nn.functional.interpolate(x.reshape(-1, ch, cw)[None], size=(S, S),
                                               mode="bilinear", align_corners=False)[0].reshape(3, 4, S, S)
        if rng.random() < 0.5:
            want = want.flip(-1)
        assert torch.allclose(out, want, atol=1e-6), seed

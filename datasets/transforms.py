"""Clip transforms: uint8 frames ``(T, H, W, 3)`` RGB -> float32 tensor ``(3, T, H, W)`` normalised.

All randomness comes from a ``numpy.random.Generator`` passed per call, so a clip's augmentation is
reproducible from one seed (the dataset draws that seed from torch's RNG, which the DataLoader seeds
per worker and epoch).

* :class:`PretrainTransform` - optional fixed crop (``input_crop=(top, bottom, left, right)``, e.g.
  VoxCeleb2's rows 0-160, cols 32-192), then the VideoMAE/TSN multi-scale crop (scales 1, .875,
  .75, .66 of the short side, height/width scale indices at most 1 apart, one of 13 fixed
  offsets), resized to ``input_size``; ImageNet normalisation. The same crop for every frame.
* :class:`FinetuneTrainTransform` - optional fixed crop, then, in the published order (default,
  ``order='published'``): every frame resized to ``input_size`` x ``input_size`` (``resize_mode=
  'squash'``, aspect not kept, bilinear; or ``'short_side'``), timm RandAugment
  (``rand-m7-n4-mstd0.5-inc1``, fill 128) applied **identically to every frame of a clip** (see
  :class:`ClipRandAugment`) on the full frame, ImageNet normalisation, random resized crop (area
  0.08-1, aspect 3/4-4/3, bilinear on the normalised clip), horizontal flip (p=0.5), and timm
  RandomErasing (p=0.25, 'pixel' mode) with **one box for the whole clip** whose noise differs per
  frame (``erase_mode='clip'``, the published ``cube=True``; ``'frame'``: a box per frame, not
  published). ``order='crop_first'``: the random resized crop from the native frame (area-averaged),
  flip, then RandAugment with the ImageNet-mean fill, then normalisation and erasing. Crop and flip
  are the same for all frames.
* :class:`EvalTransform` - optional fixed crop; ``resize_mode='squash'`` (published): every frame
  resized to ``short_side_size`` x ``short_side_size``, so with ``short_side_size == input_size``
  all ``num_crops`` crops are the whole frame; ``'short_side'``: the short side resized to
  ``short_side_size``, then one of ``num_crops`` square crops of ``input_size`` spread uniformly
  along the long side (centred along the short side); normalisation.

Resizing (``resize_filter``): ``'pil'`` (default) is PIL's bilinear, which the published pipeline
applies to PIL images everywhere (its ``Resize`` and its multi-scale crop); PIL widens the filter
when it shrinks (antialiasing). It is computed with torch's uint8 antialiased kernel
(:func:`pil_bilinear`). ``'opencv'``: OpenCV per frame, INTER_LINEAR for the squash (no
antialiasing), INTER_AREA when other resizes shrink, INTER_LINEAR when they enlarge.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.data.auto_augment import rand_augment_transform
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import str_to_pil_interp
import torch

from .global_rng import replay_global_rng
from .sampling import crop_offsets

try:
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None

# the normalisation of every clip (timm's ImageNet constants; the targets are un-normalised with them)
IMAGENET_MEAN, IMAGENET_STD = IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
PRETRAIN_SCALES = (1.0, 0.875, 0.75, 0.66)
DEFAULT_AA = "rand-m7-n4-mstd0.5-inc1"
RA_BACKENDS = ("pil", "tensor")   # timm's PIL ops frame by frame | the same decisions on the clip tensor

Crop = Optional[Tuple[int, int, int, int]]
Box = Tuple[int, int, int, int]   # (top, left, height, width)


# ----------------------------------------------------------------------------- helpers
class InputCropError(ValueError):
    """The fixed input crop does not fit the frames: a setting, not a broken video."""


def crop_fits(crop: Crop, height: int, width: int) -> bool:
    if crop is None:
        return True
    top, bottom, left, right = (int(c) for c in crop)
    return 0 <= top < bottom <= height and 0 <= left < right <= width


def apply_fixed_crop(frames: np.ndarray, crop: Crop) -> np.ndarray:
    """``frames[:, top:bottom, left:right]``; checks the crop fits."""
    if crop is None:
        return frames
    top, bottom, left, right = (int(c) for c in crop)
    _, h, w, _ = frames.shape
    if not crop_fits(crop, h, w):
        raise InputCropError(f"input_crop {crop} (top, bottom, left, right) does not fit frames of "
                             f"size {h}x{w}")
    return frames[:, top:bottom, left:right]


RESIZE_FILTERS = ("pil", "opencv")


def _check_filter(resize_filter: str):
    if resize_filter not in RESIZE_FILTERS:
        raise ValueError(f"resize_filter must be one of {RESIZE_FILTERS}, got {resize_filter!r}")


def pil_bilinear(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (T, H, W, 3) -> (T, height, width, 3) as ``PIL.Image.resize(BILINEAR)`` per frame: the
    filter widens with the shrink factor (antialiased), half-pixel centres. torch's uint8
    antialiased kernel computes it (fixed point like PIL; mean difference 0.008-0.04 grey levels,
    at most 2 on pixel noise), 4-6x faster than PIL (benchmarks/resize_filters.py)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    y = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear",
                                        align_corners=False, antialias=True)
    return np.ascontiguousarray(y.permute(0, 2, 3, 1).numpy())


def _opencv(frames: np.ndarray, height: int, width: int, interp: int) -> np.ndarray:
    t, _, _, c = frames.shape
    out = np.empty((t, height, width, c), dtype=frames.dtype)
    for i in range(t):
        out[i] = cv2.resize(np.ascontiguousarray(frames[i]), (width, height), interpolation=interp)
    return out


def resize_frames(frames: np.ndarray, height: int, width: int, resize_filter: str = "pil",
                  opencv_interp: Optional[int] = None) -> np.ndarray:
    """Every frame resized to ``height`` x ``width``: ``'pil'`` PIL's bilinear (the published
    pipeline's); ``'opencv'`` ``opencv_interp``, by default INTER_AREA when shrinking, INTER_LINEAR
    when enlarging."""
    _check_filter(resize_filter)
    _, h, w, _ = frames.shape
    if (h, w) == (height, width):
        return np.ascontiguousarray(frames)
    if resize_filter == "pil":
        return pil_bilinear(frames, height, width)
    if opencv_interp is None:
        opencv_interp = cv2.INTER_AREA if (height <= h and width <= w) else cv2.INTER_LINEAR
    return _opencv(frames, height, width, opencv_interp)


def resize_short_side(frames: np.ndarray, size: int, resize_filter: str = "pil") -> np.ndarray:
    _, h, w, _ = frames.shape
    if h <= w:
        nh, nw = size, max(size, int(round(w * size / h)))
    else:
        nh, nw = max(size, int(round(h * size / w))), size
    return resize_frames(frames, nh, nw, resize_filter)


def to_normalized_tensor(frames: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (3, T, H, W), ``(x / 255 - mean) / std`` (as ``x * a + b``, equal
    within 4e-7). The channels are split with OpenCV first, so the arithmetic runs on contiguous
    planes: 4x faster than indexing the interleaved array (benchmarks/published_pipeline.py)."""
    if frames.dtype != np.uint8:
        raise TypeError(f"frames must be uint8, got {frames.dtype}")
    t, h, w, _ = frames.shape
    planes = cv2.split(np.ascontiguousarray(frames).reshape(t * h, w, 3))
    out = np.empty((3, t, h, w), np.float32)
    for c in range(3):
        plane = out[c].reshape(t * h, w)
        np.multiply(planes[c], np.float32(1.0 / (255.0 * std[c])), out=plane, dtype=np.float32)
        plane += np.float32(-mean[c] / std[c])
    return torch.from_numpy(out)


def denormalize(clip: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    m = torch.tensor(mean, dtype=clip.dtype).view(3, 1, 1, 1)
    s = torch.tensor(std, dtype=clip.dtype).view(3, 1, 1, 1)
    return clip * s + m


# timm RandAugment ops by how far a pixel's result reaches: pointwise ops need only that pixel,
# the sharpness filter its 3x3 neighbourhood; the others (statistics of the frame, geometry) more.
POINTWISE_OPS = frozenset({'Invert', 'Posterize', 'PosterizeIncreasing', 'PosterizeOriginal',
                           'Solarize', 'SolarizeIncreasing', 'SolarizeAdd', 'Color', 'ColorIncreasing',
                           'Brightness', 'BrightnessIncreasing'})
NEIGHBOURHOOD_OPS = frozenset({'Sharpness', 'SharpnessIncreasing'})


def _pil_affine(fn, size, args, kwargs):
    """``(matrix, resample, fillcolor)`` that timm's op ``fn`` hands to PIL's ``Image.transform``
    for an image of ``size`` (PIL's own rotate arithmetic included); None when the op does not end
    in exactly one AFFINE transform (e.g. a rotation by 0, which PIL copies)."""
    from PIL import Image
    probe = Image.new('RGB', size)
    calls = []

    def record(size_, method, data=None, resample=0, fill=1, fillcolor=None):
        calls.append((method, tuple(data), resample, fillcolor))
        return probe
    probe.transform = record
    fn(probe, *args, **dict(kwargs))
    if len(calls) != 1 or calls[0][0] != Image.Transform.AFFINE:
        return None
    return calls[0][1:]


# Pointwise ops that are one lookup table for every channel: run once on the whole clip.
CHANNEL_LUT_OPS = frozenset({'Invert', 'Posterize', 'PosterizeIncreasing', 'PosterizeOriginal', 'Solarize',
                             'SolarizeIncreasing', 'SolarizeAdd', 'Brightness', 'BrightnessIncreasing'})


def _channel_lut(fn, args, kwargs) -> np.ndarray:
    """The (256,) uint8 table of a :data:`CHANNEL_LUT_OPS` op: timm's op run on a grey ramp."""
    from PIL import Image
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)
    return np.ascontiguousarray(np.asarray(fn(Image.fromarray(ramp), *args, **kwargs))[0, :, 0])


# Frame-statistics ops that are one lookup table per frame and channel, made from the frame's
# histogram with ImageOps' own arithmetic (bit-identical: tests/test_data_transforms.py).
FRAME_LUT_OPS = frozenset({'AutoContrast', 'Equalize'})


def _histograms(frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) -> (T, 3, 256) int64 counts."""
    return np.stack([np.stack([cv2.calcHist([f], [c], None, [256], [0, 256])[:, 0] for c in range(3)])
                     for f in frames]).astype(np.int64)


def _autocontrast_lut(h: np.ndarray) -> np.ndarray:
    """``ImageOps.autocontrast`` (no cutoff) for one channel's histogram ``h`` (256,)."""
    used = np.flatnonzero(h)
    lo, hi = int(used[0]), int(used[-1])
    if hi <= lo:
        return np.arange(256, dtype=np.uint8)
    scale = 255.0 / (hi - lo)
    return np.clip(np.trunc(np.arange(256, dtype=np.float64) * scale + (-lo * scale)), 0, 255).astype(np.uint8)


def _equalize_lut(h: np.ndarray) -> np.ndarray:
    """``ImageOps.equalize`` for one channel's histogram ``h`` (256,); PIL clips the table to 255."""
    used = h[h != 0]
    step = (int(used.sum()) - int(used[-1])) // 255 if len(used) > 1 else 0
    if not step:
        return np.arange(256, dtype=np.uint8)
    n = step // 2 + np.concatenate([[0], np.cumsum(h)[:-1]])
    return np.minimum(n // step, 255).astype(np.uint8)


def _frame_luts(name: str, frames: np.ndarray) -> np.ndarray:
    """(T, 256, 1, 3) uint8: the table of :data:`FRAME_LUT_OPS` op ``name`` for every frame."""
    make = _autocontrast_lut if name == 'AutoContrast' else _equalize_lut
    hist = _histograms(frames)
    return np.stack([np.stack([make(hist[t, c]) for c in range(3)], axis=-1)
                     for t in range(len(frames))])[:, :, None, :]


Region = Tuple[int, int, int, int]   # (x0, y0, x1, y1) in frame pixels, end exclusive


def _grown(region: Region, margin: int, w: int, h: int) -> Region:
    x0, y0, x1, y1 = region
    return max(x0 - margin, 0), max(y0 - margin, 0), min(x1 + margin, w), min(y1 + margin, h)


def _affine_source(matrix, out: Region, w: int, h: int) -> Region:
    """The input region an AFFINE transform reads for the output pixels ``out``: the mapped
    corners' bounding box plus the bicubic taps (-1..+2) and one pixel of rounding, within the
    frame and at least one pixel (where every source lies outside the frame, its pixels are fill
    whatever the region)."""
    a, b, c, d, e, f = matrix
    x0, y0, x1, y1 = out
    corners = [(x + 0.5, y + 0.5) for x in (x0, x1 - 1) for y in (y0, y1 - 1)]
    xs = [a * x + b * y + c for x, y in corners]
    ys = [d * x + e * y + f for x, y in corners]
    sx0 = min(max(math.floor(min(xs) - 0.5) - 2, 0), w - 1)
    sy0 = min(max(math.floor(min(ys) - 0.5) - 2, 0), h - 1)
    sx1 = max(min(math.floor(max(xs) - 0.5) + 4, w), sx0 + 1)
    sy1 = max(min(math.floor(max(ys) - 0.5) + 4, h), sy0 + 1)
    return sx0, sy0, sx1, sy1


class _FrameStack:
    """A clip held as one uint8 (T, H, W, 3) array or as PIL images, converted when an op needs the
    other: lookup-table ops run once on the array, the others frame by frame on PIL images. It
    holds the ``region`` (x0, y0, x1, y1) of the full frame it has made so far."""

    def __init__(self, frames: np.ndarray):
        self._array, self._images = frames, None
        self.region = (0, 0, frames.shape[2], frames.shape[1])

    def images(self) -> list:
        if self._images is None:
            from PIL import Image
            self._images, self._array = [Image.fromarray(np.ascontiguousarray(f)) for f in self._array], None
        return self._images

    def set_images(self, images: list, region: Optional[Region] = None) -> None:
        self._images, self._array = images, None
        self.region = region or self.region

    def array(self) -> np.ndarray:
        if self._array is None:
            self._array, self._images = np.stack([np.asarray(im) for im in self._images]), None
        return self._array

    def _local(self, region: Region) -> Region:
        ox, oy = self.region[:2]
        return region[0] - ox, region[1] - oy, region[2] - ox, region[3] - oy

    def crop(self, region: Region) -> None:
        """Keep ``region`` (within the one held)."""
        if region == self.region:
            return
        x0, y0, x1, y1 = self._local(region)
        if self._images is not None:
            self._images = [im.crop((x0, y0, x1, y1)) for im in self._images]
        else:
            self._array = self._array[:, y0:y1, x0:x1]
        self.region = region

    def apply(self, fn, name: str, args, kwargs) -> None:
        if name in CHANNEL_LUT_OPS:
            a = np.ascontiguousarray(self.array())
            t, h, w, c = a.shape
            self._array = cv2.LUT(a.reshape(t * h, w, c), _channel_lut(fn, args, kwargs)).reshape(t, h, w, c)
        elif name in FRAME_LUT_OPS:
            a = np.ascontiguousarray(self.array())
            self._array = np.stack([cv2.LUT(f, lut) for f, lut in zip(a, _frame_luts(name, a))])
        else:
            self.set_images([fn(im, *args, **kwargs) for im in self.images()])

    def transform(self, matrix, resample, fill, out: Region) -> None:
        """PIL's AFFINE transform of the full frame (``matrix``), made for the pixels ``out`` only
        from the region held (the matrix moved to both regions)."""
        from PIL import Image
        a, b, c, d, e, f = matrix
        (ox, oy, ox1, oy1), (ix, iy) = out, self.region[:2]
        moved = (a, b, c + a * ox + b * oy - ix, d, e, f + d * ox + e * oy - iy)
        self.set_images([im.transform((ox1 - ox, oy1 - oy), Image.Transform.AFFINE, moved, resample,
                                      fillcolor=fill) for im in self.images()], out)


class ClipRandAugment:
    """timm RandAugment applied with the same ops and magnitudes to every frame of a clip.

    timm's ``RandAugment`` draws its ops with ``np.random`` and probabilities/magnitudes with
    ``random``; a clip's seed replays those draws (``tensor_augment.timm_plan``), and the plan's
    ops run on every frame: timm's own PIL functions, or the same arithmetic on the whole clip
    array (one lookup table per clip for pointwise ops, per frame for AutoContrast and Equalize).
    With ``box`` only the pixels the box needs are made (see ``_planned``): after the last op that
    reads whole frames, each op runs on the region its successors read, and a geometric op samples
    only those output pixels (PIL's transform with the matrix moved), so the published order's
    random resized crop pays for the pixels it keeps. The region equals the full result's, bit for
    bit (``tests/test_data_transforms.py``).
    """

    def __init__(self, config_str: str = DEFAULT_AA, input_size: int = 160, mean=IMAGENET_MEAN,
                 interpolation: str = "bicubic", fill: Optional[int] = None, backend: str = "pil"):
        if backend not in RA_BACKENDS:
            raise ValueError(f"backend must be one of {RA_BACKENDS}, got {backend!r}")
        self.backend = backend
        img_mean = (int(fill),) * 3 if fill is not None else tuple(min(255, round(255 * x)) for x in mean)
        hparams = dict(translate_const=int(input_size * 0.45), img_mean=img_mean,
                       interpolation=str_to_pil_interp(interpolation))
        self.config_str = config_str
        self.ra = rand_augment_transform(config_str, hparams)
        self._fns = {op.name: op.aug_fn for op in self.ra.ops}
        # timm draws a random interpolation inside the op when it is given several: only replaying
        # every frame through timm's RandAugment follows those draws.
        self._replay = any(isinstance(op.kwargs.get('resample'), (list, tuple)) for op in self.ra.ops)

    @staticmethod
    def draw_seed(rng: np.random.Generator) -> int:
        return int(rng.integers(0, 2 ** 63 - 1))

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """uint8 (T, H, W, 3) -> the augmented clip."""
        return self.apply(frames, self.draw_seed(rng))

    def apply(self, frames: np.ndarray, seed: int, box: Optional[Box] = None) -> np.ndarray:
        """The clip augmented with ``seed``'s decisions, or only its ``box`` = (top, left, h, w)."""
        t, h, w, _ = frames.shape
        top, left, ch, cw = box if box is not None else (0, 0, h, w)
        if self.backend == "tensor":  # timm's decisions for this seed, applied to the whole clip
            from .tensor_augment import apply_plan, timm_plan
            x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
            y = apply_plan(x.contiguous(), timm_plan(self.ra, seed))
            return np.ascontiguousarray(y.permute(0, 2, 3, 1)[:, top:top + ch, left:left + cw].numpy())
        if self._replay:
            return self._replayed(frames, seed)[:, top:top + ch, left:left + cw]
        return self._planned(frames, seed, (top, left, ch, cw))

    def _replayed(self, frames: np.ndarray, seed: int) -> np.ndarray:
        from PIL import Image
        out = np.empty_like(frames)
        with replay_global_rng(seed) as reset:
            for i in range(frames.shape[0]):
                reset()
                out[i] = np.asarray(self.ra(Image.fromarray(frames[i])))
        return out

    def _planned(self, frames: np.ndarray, seed: int, box: Box) -> np.ndarray:
        """The plan's ops on the pixels ``box`` needs. Walking back from the box, each op's input
        region is found: pointwise ops need the same pixels, sharpness one more on each side, an
        AFFINE op the source of its output pixels; an op that reads the whole frame (frame
        statistics, a geometric op that is not one AFFINE transform) needs the whole frame, and
        so does everything before it."""
        from .tensor_augment import timm_plan
        plan = timm_plan(self.ra, seed)
        _, h, w, _ = frames.shape
        steps = []
        for name, args, kwargs in plan:
            fn = self._fns[name]
            affine = None
            if name in POINTWISE_OPS:
                kind = "pointwise"
            elif name in NEIGHBOURHOOD_OPS:
                kind = "neighbourhood"
            else:
                affine = _pil_affine(fn, (w, h), args, kwargs)
                kind = "frame" if affine is None else "affine"
            steps.append((kind, name, fn, args, kwargs, affine))
        first = max([i + 1 for i, st in enumerate(steps) if st[0] == "frame"], default=0)
        top, left, ch, cw = box
        need = [None] * len(steps) + [(left, top, left + cw, top + ch)]
        for k in range(len(steps) - 1, first - 1, -1):    # the region each op's input needs
            kind, affine = steps[k][0], steps[k][5]
            need[k] = (need[k + 1] if kind == "pointwise" else _grown(need[k + 1], 1, w, h)
                       if kind == "neighbourhood" else _affine_source(affine[0], need[k + 1], w, h))
        clip = _FrameStack(frames)
        for kind, name, fn, args, kwargs, _ in steps[:first]:
            clip.apply(fn, name, args, kwargs)
        clip.crop(need[first])
        for k in range(first, len(steps)):
            kind, name, fn, args, kwargs, affine = steps[k]
            if kind == "affine":
                clip.transform(*affine, out=need[k + 1])
            else:   # sharpness runs on the region and its margin (PIL keeps the frame's own border)
                clip.apply(fn, name, args, kwargs)
                clip.crop(need[k + 1])
        return clip.array()

    def __repr__(self):
        return f"ClipRandAugment({self.config_str!r})"


def random_resized_crop_params(h: int, w: int, scale, ratio, rng: np.random.Generator):
    """torchvision's RandomResizedCrop.get_params with a numpy generator -> (top, left, ch, cw)."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        cw = int(round(math.sqrt(target_area * aspect)))
        ch = int(round(math.sqrt(target_area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(rng.integers(0, h - ch + 1))
            left = int(rng.integers(0, w - cw + 1))
            return top, left, ch, cw
    in_ratio = w / h  # fallback: central crop
    if in_ratio < min(ratio):
        cw, ch = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        ch, cw = h, int(round(h * max(ratio)))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def multi_scale_crop_params(h: int, w: int, input_size: int, scales=PRETRAIN_SCALES,
                            max_distort: int = 1, more_fix_crop: bool = True,
                            rng: Optional[np.random.Generator] = None):
    """TSN/VideoMAE GroupMultiScaleCrop (fix_crop=True) -> (top, left, ch, cw)."""
    rng = rng if rng is not None else np.random.default_rng()
    base = min(h, w)
    sizes = [int(base * s) for s in scales]
    sizes = [input_size if abs(s - input_size) < 3 else s for s in sizes]
    pairs = [(cw, ch) for i, ch in enumerate(sizes) for j, cw in enumerate(sizes)
             if abs(i - j) <= max_distort]
    cw, ch = pairs[int(rng.integers(len(pairs)))]
    cw, ch = min(cw, w), min(ch, h)
    ws, hs = (w - cw) // 4, (h - ch) // 4
    offsets = [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)]
    if more_fix_crop:
        offsets += [(0, 2 * hs), (4 * ws, 2 * hs), (2 * ws, 4 * hs), (2 * ws, 0),
                    (1 * ws, 1 * hs), (3 * ws, 1 * hs), (1 * ws, 3 * hs), (3 * ws, 3 * hs)]
    left, top = offsets[int(rng.integers(len(offsets)))]
    return top, left, ch, cw


# ----------------------------------------------------------------------------- transforms
class PretrainTransform:
    def __init__(self, input_size: int = 160, scales: Sequence[float] = PRETRAIN_SCALES,
                 input_crop: Crop = None, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 max_distort: int = 1, more_fix_crop: bool = True, resize_filter: str = "pil"):
        _check_filter(resize_filter)
        self.resize_filter = resize_filter
        self.input_size = int(input_size)
        self.scales = tuple(scales)
        self.input_crop = input_crop
        self.mean, self.std = mean, std
        self.max_distort, self.more_fix_crop = max_distort, more_fix_crop

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        frames = apply_fixed_crop(frames, self.input_crop)
        _, h, w, _ = frames.shape
        top, left, ch, cw = multi_scale_crop_params(h, w, self.input_size, self.scales,
                                                    self.max_distort, self.more_fix_crop, rng)
        frames = resize_frames(frames[:, top:top + ch, left:left + cw],
                               self.input_size, self.input_size, self.resize_filter)
        return to_normalized_tensor(frames, self.mean, self.std)

    # ---- --augment_on device
    def worker_stage(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """The workers' share with ``--augment_on device``: the fixed crop; uint8 (T, H, W, 3)."""
        return torch.from_numpy(np.ascontiguousarray(apply_fixed_crop(frames, self.input_crop)))

    def batch_stage(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, 3) uint8 on the training device -> (B, 3, T, s, s): per clip the multi-scale
        crop (numpy's global RNG, seeded per epoch by the engine), resized bilinearly (antialiased
        when shrinking), normalised."""
        mean = torch.tensor(self.mean, device=x.device).view(3, 1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(3, 1, 1, 1)
        s = self.input_size
        out = []
        for clip in x:
            rng = np.random.default_rng(int(np.random.randint(0, 2 ** 62, dtype=np.int64)))
            t, h, w, _ = clip.shape
            top, left, ch, cw = multi_scale_crop_params(h, w, s, self.scales, self.max_distort,
                                                        self.more_fix_crop, rng)
            c = clip[:, top:top + ch, left:left + cw].permute(0, 3, 1, 2).float()
            if (ch, cw) != (s, s):
                c = torch.nn.functional.interpolate(c, size=(s, s), mode="bilinear", align_corners=False,
                                                    antialias=ch > s or cw > s)
            out.append(((c.clamp(0, 255).round() / 255.0).permute(1, 0, 2, 3) - mean) / std)
        return torch.stack(out)


RESIZE_MODES = ("squash", "short_side")
AUG_ORDERS = ("published", "crop_first")
PUBLISHED_RA_FILL = 128


def squash_frames(frames: np.ndarray, size: int, resize_filter: str = "pil") -> np.ndarray:
    """Every frame resized to ``size`` x ``size``, aspect not kept (the published ``Resize((s, s))``
    on PIL images: PIL's bilinear). ``'opencv'``: INTER_LINEAR, not antialiased."""
    return resize_frames(frames, size, size, resize_filter, opencv_interp=cv2.INTER_LINEAR)


def resize_for_view(frames: np.ndarray, size: int, resize_mode: str, resize_filter: str) -> np.ndarray:
    """The first resize of the fine-tuning and test paths: squash to ``size`` x ``size`` or short
    side to ``size``."""
    if resize_mode == "squash":
        return squash_frames(frames, size, resize_filter)
    return resize_short_side(frames, size, resize_filter)


def _resize_float_clip(clip: torch.Tensor, top: int, left: int, ch: int, cw: int, size: int) -> torch.Tensor:
    """Crop (3, T, H, W) float and resize to size x size, bilinear (half-pixel centres, as
    ``F.interpolate(..., mode='bilinear', align_corners=False)``)."""
    c, t = clip.shape[:2]
    x = clip[:, :, top:top + ch, left:left + cw].reshape(c * t, ch, cw)
    if (ch, cw) == (size, size):
        return x.reshape(c, t, size, size).contiguous()
    y = torch.nn.functional.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False)
    return y[0].reshape(c, t, size, size)


class FinetuneTrainTransform:
    def __init__(self, input_size: int = 160, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                 hflip: float = 0.5, auto_augment: Optional[str] = DEFAULT_AA,
                 reprob: float = 0.25, remode: str = "pixel", recount: int = 1,
                 erase_mode: str = "clip", input_crop: Crop = None,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, order: str = "published",
                 resize_mode: str = "squash", ra_backend: str = "pil", resize_filter: str = "pil"):
        _check_filter(resize_filter)
        self.resize_filter = resize_filter
        if erase_mode not in ("clip", "frame"):
            raise ValueError("erase_mode must be 'clip' or 'frame'")
        if order not in AUG_ORDERS:
            raise ValueError(f"order must be one of {AUG_ORDERS}, got {order!r}")
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}")
        self.input_size = int(input_size)
        self.scale, self.ratio, self.hflip = tuple(scale), tuple(ratio), hflip
        self.input_crop = input_crop
        self.mean, self.std = mean, std
        self.order, self.resize_mode = order, resize_mode
        fill = PUBLISHED_RA_FILL if order == "published" else None
        self.rand_augment = (ClipRandAugment(auto_augment, self.input_size, mean, fill=fill,
                                             backend=ra_backend)
                             if auto_augment and auto_augment.lower() != "none" else None)
        self.erase_mode, self._remode = erase_mode, remode
        self.eraser = (RandomErasing(reprob, mode=remode, max_count=recount, num_splits=0,
                                     device="cpu") if reprob and reprob > 0 else None)
        self._erasers = {"cpu": self.eraser}

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        frames = apply_fixed_crop(frames, self.input_crop)
        if self.order == "published":
            clip = self._published(frames, rng)
        else:
            clip = self._crop_first(frames, rng)
        return self._erase(clip, rng)

    def _published(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """Resize (squash to s x s, or short side s) -> RandAugment on the full frame (fill 128)
        -> normalise -> random resized crop (bilinear, on the normalised clip) -> flip. The crop is
        drawn before RandAugment runs (the draws keep their order: RandAugment's seed, the crop,
        the flip), so only its pixels are augmented and normalised."""
        s = self.input_size
        frames = resize_for_view(frames, s, self.resize_mode, self.resize_filter)
        seed = self.rand_augment.draw_seed(rng) if self.rand_augment is not None else None
        _, h, w, _ = frames.shape
        top, left, ch, cw = random_resized_crop_params(h, w, self.scale, self.ratio, rng)
        if seed is None:
            crop = frames[:, top:top + ch, left:left + cw]
        else:
            crop = self.rand_augment.apply(np.ascontiguousarray(frames), seed, (top, left, ch, cw))
        clip = _resize_float_clip(to_normalized_tensor(crop, self.mean, self.std), 0, 0, ch, cw, s)
        return self._flip(clip, rng)

    def _crop_flip(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Normalised (3, T, h, w) -> random resized crop to (3, T, s, s), bilinear -> flip."""
        h, w = clip.shape[2:]
        top, left, ch, cw = random_resized_crop_params(h, w, self.scale, self.ratio, rng)
        return self._flip(_resize_float_clip(clip, top, left, ch, cw, self.input_size), rng)

    def _flip(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if self.hflip > 0 and rng.random() < self.hflip:
            clip = clip.flip(-1)
        return clip.contiguous()

    # ---- --augment_on device: the workers decode and resize, the training device does the rest
    def worker_stage(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """The loader workers' share with ``--augment_on device``: fixed crop and the published
        resize; uint8 (T, s, s, 3) (short_side: (T, s', s'', 3), equal within a data set of one size)."""
        if self.order != "published":
            raise ValueError("--augment_on device follows the published order (--aug_order published)")
        frames = apply_fixed_crop(frames, self.input_crop)
        s = self.input_size
        frames = resize_for_view(frames, s, self.resize_mode, self.resize_filter)
        return torch.from_numpy(np.ascontiguousarray(frames))

    def batch_stage(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, 3) uint8 on the training device -> (B, 3, T, s, s) float: the rest of the
        published order per clip (RandAugment with timm's decisions on the clip tensor, normalise,
        random resized crop, flip, erasing). The random draws come from numpy's global RNG, which
        the engine seeds per (seed, epoch, rank); given the same generator a clip equals the
        worker path with ``ra_backend='tensor'``."""
        out = []
        for clip in x:
            rng = np.random.default_rng(int(np.random.randint(0, 2 ** 62, dtype=np.int64)))
            out.append(self.augment_tensor(clip.permute(0, 3, 1, 2), rng))
        return torch.stack(out)

    def augment_tensor(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """uint8 (T, 3, H, W) resized clip, any device -> (3, T, s, s) float, in the worker path's
        order of random draws."""
        if self.rand_augment is not None:
            from .tensor_augment import apply_plan, timm_plan
            seed = int(rng.integers(0, 2 ** 63 - 1))
            clip = apply_plan(clip.contiguous(), timm_plan(self.rand_augment.ra, seed))
        mean = torch.tensor(self.mean, device=clip.device).view(3, 1, 1, 1)
        std = torch.tensor(self.std, device=clip.device).view(3, 1, 1, 1)
        norm = (clip.permute(1, 0, 2, 3).float() / 255.0 - mean) / std
        return self._erase(self._crop_flip(norm, rng), rng)

    def _crop_first(self, frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """Random resized crop from the native frame (area-averaged) -> flip -> RandAugment (fill:
        the ImageNet mean) -> normalise."""
        _, h, w, _ = frames.shape
        top, left, ch, cw = random_resized_crop_params(h, w, self.scale, self.ratio, rng)
        frames = resize_frames(frames[:, top:top + ch, left:left + cw],
                               self.input_size, self.input_size, self.resize_filter)
        if self.hflip > 0 and rng.random() < self.hflip:
            frames = frames[:, :, ::-1]
        if self.rand_augment is not None:
            frames = self.rand_augment(np.ascontiguousarray(frames), rng)
        return to_normalized_tensor(frames, self.mean, self.std)

    def _eraser_on(self, device: torch.device):
        """The eraser whose noise is drawn on ``device`` (one per device, made on first use)."""
        if self.eraser is None:
            return None
        if str(device) not in self._erasers:
            e = self.eraser
            self._erasers[str(device)] = RandomErasing(e.probability, mode=self._remode,
                                                       max_count=e.max_count, num_splits=0,
                                                       device=str(device))
        return self._erasers[str(device)]

    def _erase(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        eraser = self._eraser_on(clip.device)
        if eraser is not None:
            seed = int(rng.integers(0, 2 ** 63 - 1))
            with replay_global_rng(seed):
                c, t, hh, ww = clip.shape
                if self.erase_mode == "clip":   # one box shared by all frames
                    eraser(clip.view(c * t, hh, ww))
                else:                          # one box per frame
                    eraser(clip.permute(1, 0, 2, 3))
        return clip


class EvalTransform:
    def __init__(self, input_size: int = 160, short_side_size: Optional[int] = None,
                 num_crops: int = 1, input_crop: Crop = None, mean=IMAGENET_MEAN,
                 std=IMAGENET_STD, resize_mode: str = "squash", resize_filter: str = "pil"):
        _check_filter(resize_filter)
        self.resize_filter = resize_filter
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}")
        self.resize_mode = resize_mode
        self.input_size = int(input_size)
        self.short_side_size = int(short_side_size or input_size)
        if self.short_side_size < self.input_size:
            raise ValueError(f"short_side_size {self.short_side_size} < input_size "
                             f"{self.input_size}")
        self.num_crops = int(num_crops)
        self.input_crop = input_crop
        self.mean, self.std = mean, std

    def __call__(self, frames: np.ndarray, crop_index: int = 0) -> torch.Tensor:
        if not 0 <= crop_index < self.num_crops:
            raise IndexError(f"crop_index {crop_index} not in 0..{self.num_crops - 1}")
        frames = apply_fixed_crop(frames, self.input_crop)
        # squash (the published test view): with short_side == input_size every "crop" is the whole frame
        frames = resize_for_view(frames, self.short_side_size, self.resize_mode, self.resize_filter)
        _, h, w, _ = frames.shape
        s = self.input_size
        if w >= h:
            left = crop_offsets(w, s, self.num_crops)[crop_index]
            top = (h - s) // 2
        else:
            top = crop_offsets(h, s, self.num_crops)[crop_index]
            left = (w - s) // 2
        return to_normalized_tensor(frames[:, top:top + s, left:left + s], self.mean, self.std)

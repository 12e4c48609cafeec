"""RandAugment on uint8 clip tensors ``(T, 3, H, W)``, on the CPU or a GPU, with timm's decisions.

:class:`ClipRandAugment` (``datasets.transforms``) runs timm's RandAugment frame by frame on PIL
images; this module runs the same augmentation on a whole clip tensor at once. The *decisions*
(which ops, their probabilities, magnitudes and signs) are timm's own: :func:`timm_plan` runs the
timm ``RandAugment`` with every op's pixel function replaced by a recorder, so the plan for a seed is
exactly what the PIL path would apply. The *pixel* functions below follow PIL's definitions (the
AFFINE inverse mapping at pixel centres, ImageEnhance's blends, ImageOps' equalize and
autocontrast, all per frame); geometric ops interpolate bilinearly (timm's configured bicubic is
not available on tensors), so geometric ops differ from the PIL path by interpolation only
(``tests/test_tensor_augment.py`` compares every op with PIL).
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from .global_rng import replay_global_rng

__all__ = ['timm_plan', 'apply_plan', 'TENSOR_OPS']

Plan = List[Tuple[str, tuple, dict]]


def timm_plan(ra, seed: int) -> Plan:
    """The ops timm's RandAugment ``ra`` applies for ``seed`` (the PIL path's replay seed), as
    ``[(op name, level args, kwargs)]``, in order."""
    plan: Plan = []
    saved = [op.aug_fn for op in ra.ops]
    try:
        for op in ra.ops:
            op.aug_fn = (lambda name: lambda img, *a, **k: (plan.append((name, a, k)), img)[1])(op.name)
        with replay_global_rng(seed) as reset:
            reset()
            ra(None)
    finally:
        for op, fn in zip(ra.ops, saved):
            op.aug_fn = fn
    return plan


# ----------------------------------------------------------------------------- geometry
def _affine(x: torch.Tensor, coeffs: Sequence[float], fill) -> torch.Tensor:
    """PIL ``Image.transform(AFFINE, (a, b, c, d, e, f))``: output pixel centre (x, y) samples the
    input at (a x + b y + c, d x + e y + f); outside the frame: ``fill``. Bilinear."""
    t, c, h, w = x.shape
    a, b, cc, d, e, f = (float(v) for v in coeffs)
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=torch.float32) + 0.5,
                            torch.arange(w, device=x.device, dtype=torch.float32) + 0.5, indexing='ij')
    gx = (a * xs + b * ys + cc) / w * 2 - 1
    gy = (d * xs + e * ys + f) / h * 2 - 1
    grid = torch.stack([gx, gy], dim=-1)[None].expand(t, h, w, 2)
    src = torch.cat([x.float(), torch.ones((t, 1, h, w), device=x.device)], dim=1)
    out = F.grid_sample(src, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    inside = out[:, c:]
    fill_t = torch.tensor(fill, dtype=torch.float32, device=x.device).view(1, c, 1, 1)
    res = out[:, :c] + (1 - inside) * fill_t
    return res.round_().clamp_(0, 255).to(torch.uint8)


def _rotate(x, degrees, fillcolor=(128, 128, 128), **_):
    h, w = x.shape[-2:]
    ang = -math.radians(degrees)
    ca, sa = math.cos(ang), math.sin(ang)
    cx, cy = w / 2.0, h / 2.0
    # input = M (output - centre) + centre, M = [[cos, sin], [-sin, cos]] (PIL's rotate)
    return _affine(x, (ca, sa, cx - ca * cx - sa * cy, -sa, ca, cy + sa * cx - ca * cy), fillcolor)


def _shear_x(x, factor, fillcolor=(128, 128, 128), **_):
    return _affine(x, (1, factor, 0, 0, 1, 0), fillcolor)


def _shear_y(x, factor, fillcolor=(128, 128, 128), **_):
    return _affine(x, (1, 0, 0, factor, 1, 0), fillcolor)


def _translate_x_rel(x, pct, fillcolor=(128, 128, 128), **_):
    return _affine(x, (1, 0, pct * x.shape[-1], 0, 1, 0), fillcolor)


def _translate_y_rel(x, pct, fillcolor=(128, 128, 128), **_):
    return _affine(x, (1, 0, 0, 0, 1, pct * x.shape[-2]), fillcolor)


# ----------------------------------------------------------------------------- point ops
def _lut(x: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    return lut.to(x.device)[x.long()]


def _posterize(x, bits, **_):
    shift = 8 - int(bits)
    if shift >= 8:
        return torch.zeros_like(x)
    return (x >> shift) << shift


def _solarize(x, thresh, **_):
    return torch.where(x >= int(thresh), 255 - x, x)


def _solarize_add(x, add, thresh=128, **_):
    lut = torch.tensor([min(255, i + int(add)) if i < thresh else i for i in range(256)], dtype=torch.uint8)
    return _lut(x, lut)


def _invert(x, **_):
    return 255 - x


def _grey(x: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L: (R 19595 + G 38470 + B 7471 + 2^15) >> 16, as (T, 1, H, W) int."""
    xi = x.to(torch.int32)
    return (xi[:, 0:1] * 19595 + xi[:, 1:2] * 38470 + xi[:, 2:3] * 7471 + 0x8000) >> 16


def _blend(degenerate: torch.Tensor, x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL ``Image.blend(degenerate, image, factor)``."""
    out = degenerate.float() + factor * (x.float() - degenerate.float())
    return out.clamp_(0, 255).to(torch.uint8)


def _color(x, factor, **_):
    return _blend(_grey(x).expand_as(x), x, factor)


def _contrast(x, factor, **_):
    mean = (_grey(x).float().mean(dim=(1, 2, 3), keepdim=True) + 0.5).floor()
    return _blend(mean.expand_as(x), x, factor)


def _brightness(x, factor, **_):
    return _blend(torch.zeros_like(x), x, factor)


def _sharpness(x, factor, **_):
    k = torch.tensor([[1., 1., 1.], [1., 5., 1.], [1., 1., 1.]], device=x.device) / 13.0
    c = x.shape[1]
    smooth = F.conv2d(x.float(), k.view(1, 1, 3, 3).repeat(c, 1, 1, 1), groups=c)
    degenerate = x.float().clone()
    degenerate[:, :, 1:-1, 1:-1] = (smooth + 0.5).floor()  # PIL keeps the border pixels
    return _blend(degenerate, x, factor)


def _histograms(x: torch.Tensor) -> torch.Tensor:
    """Per-frame, per-channel 256-bin histograms of a uint8 (T, C, H, W) clip: (T * C, 256), on its
    device (one bincount, no host copy)."""
    t, c = x.shape[:2]
    rows = torch.arange(t * c, device=x.device).view(t, c, 1, 1) * 256
    return torch.bincount((x.long() + rows).flatten(), minlength=t * c * 256).view(t * c, 256)


def _apply_row_luts(x: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """``lut`` (T * C, 256) applied to each frame and channel of ``x`` (T, C, H, W)."""
    t, c, h, w = x.shape
    flat = x.reshape(t * c, h * w).long()
    return torch.gather(lut.clamp(0, 255).to(torch.uint8), 1, flat).view(t, c, h, w)


def _equalize(x, **_):
    """PIL ``ImageOps.equalize`` per frame and channel: step = (pixels - count of the last used
    level) // 255; level i -> (step // 2 + pixels below i) // step; identity when step is 0."""
    h = _histograms(x)
    levels = torch.arange(256, device=x.device)
    last = torch.where(h > 0, levels, -1).amax(dim=1, keepdim=True)
    step = (h.sum(dim=1, keepdim=True) - h.gather(1, last.clamp(min=0))) // 255
    below = torch.cumsum(h, dim=1) - h
    lut = (step // 2 + below) // step.clamp(min=1)
    return _apply_row_luts(x, torch.where(step > 0, lut, levels.expand_as(lut)))


def _auto_contrast(x, **_):
    """PIL ``ImageOps.autocontrast`` (no cutoff) per frame and channel: [lo, hi] stretched to [0, 255]."""
    h = _histograms(x)
    levels = torch.arange(256, device=x.device, dtype=torch.float64)
    used = h > 0
    lo = torch.where(used, levels, 256.0).amin(dim=1, keepdim=True)
    hi = torch.where(used, levels, -1.0).amax(dim=1, keepdim=True)
    scale = 255.0 / (hi - lo).clamp(min=1.0)
    lut = torch.floor(levels * scale - lo * scale).to(torch.int64)
    return _apply_row_luts(x, torch.where(hi > lo, lut, levels.to(torch.int64).expand_as(lut)))


TENSOR_OPS: Dict[str, Callable] = {
    'AutoContrast': _auto_contrast, 'Equalize': _equalize, 'Invert': _invert, 'Rotate': _rotate,
    'Posterize': _posterize, 'PosterizeIncreasing': _posterize, 'PosterizeOriginal': _posterize,
    'Solarize': _solarize, 'SolarizeIncreasing': _solarize, 'SolarizeAdd': _solarize_add,
    'Color': _color, 'ColorIncreasing': _color, 'Contrast': _contrast, 'ContrastIncreasing': _contrast,
    'Brightness': _brightness, 'BrightnessIncreasing': _brightness, 'Sharpness': _sharpness,
    'SharpnessIncreasing': _sharpness, 'ShearX': _shear_x, 'ShearY': _shear_y,
    'TranslateXRel': _translate_x_rel, 'TranslateYRel': _translate_y_rel,
}


def apply_plan(x: torch.Tensor, plan: Plan) -> torch.Tensor:
    """uint8 clip (T, 3, H, W), any device -> the same clip with ``plan``'s ops applied to every
    frame (the same op and magnitude for all frames; per-frame statistics where PIL has them)."""
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
        raise TypeError(f'expected a uint8 (T, 3, H, W) clip, got {tuple(x.shape)} {x.dtype}')
    for name, args, kwargs in plan:
        fn = TENSOR_OPS.get(name)
        if fn is None:
            raise NotImplementedError(f'RandAugment op {name} has no tensor implementation')
        x = fn(x, *args, **{k: v for k, v in kwargs.items() if k == 'fillcolor'})
    return x

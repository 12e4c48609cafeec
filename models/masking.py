"""Tube masks on the model side: the masked-token count, validation, indices and gathering.

A tube mask (B, t*h*w) bool, True = masked, hides the same spatial positions in every temporal
slice (paper Sec. 3.1.2), so the visible tokens form a (t, N_vis) grid in time-major order. The
masks themselves are drawn on the data side (``datasets.masking``).
"""
from typing import Optional, Tuple

import torch

__all__ = ['CHECK_DEVICE_MASKS', 'is_compiling', 'num_masked_tokens', 'check_tube_mask', 'count_masked',
           'tube_mask_indices', 'gather_tokens']

# Full tube-mask validation for masks on an accelerator: it reads the mask back (a device -> host
# synchronisation), so it is off by default (set ``models.masking.CHECK_DEVICE_MASKS = True`` to
# debug); masks on the CPU are always validated outside torch.compile (no synchronisation there).
CHECK_DEVICE_MASKS = False


def is_compiling() -> bool:
    """True while torch.jit traces or torch.compile compiles (no data-dependent checks then)."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def num_masked_tokens(grid: Tuple[int, int, int], mask_ratio: float) -> int:
    """Masked tokens per clip of a tube mask at ``mask_ratio`` over the (t, h, w) token grid:
    floor(ratio * h*w) positions in each of the t slices (the generator's count; the epsilon keeps
    0.9 * 100 = 89.99999 from rounding down)."""
    t, h, w = grid
    return t * int(mask_ratio * h * w + 1e-6)


def check_tube_mask(mask: torch.Tensor, grid: Tuple[int, int, int],
                    num_masked: Optional[int] = None, check_content: bool = True) -> None:
    """Validate a tube mask: bool (B, t*h*w), the same positions masked in every temporal slice,
    the same non-zero number of visible positions in every clip (``num_masked`` masked tokens per
    clip when given). The shape check is free; the content check reads the mask, so it runs only on
    CPU tensors (no synchronisation there) or with ``CHECK_DEVICE_MASKS``, and never while tracing
    or compiling."""
    t, h, w = grid
    if mask.dtype != torch.bool or mask.dim() != 2 or mask.shape[1] != t * h * w:
        raise ValueError(f'mask must be bool (B, {t * h * w}), got {mask.dtype} {tuple(mask.shape)}')
    if num_masked is not None and (num_masked % t or not 0 <= num_masked < t * h * w):
        raise ValueError(f'num_masked={num_masked} masked tokens per clip do not form a tube mask '
                         f'over {t} slices of {h * w} positions with at least one visible')
    if not check_content or is_compiling() or (mask.device.type != 'cpu' and not CHECK_DEVICE_MASKS):
        return
    per_slice = mask.view(mask.shape[0], t, h * w)
    if not torch.equal(per_slice, per_slice[:, :1].expand_as(per_slice)):
        raise ValueError('mask must be a tube mask: the same spatial positions masked in every temporal slice')
    visible = (~per_slice[:, 0]).sum(dim=1)
    if (visible != visible[0]).any() or visible[0] == 0:
        raise ValueError(f'every clip needs the same, non-zero number of visible positions, got {visible.tolist()}')
    if num_masked is not None and int(visible[0]) != h * w - num_masked // t:
        raise ValueError(f'num_masked={num_masked} does not match the mask '
                         f'({t * (h * w - int(visible[0]))} masked tokens per clip)')


def count_masked(mask: torch.Tensor) -> int:
    """Masked tokens per clip of a (valid) mask, read from its first clip (a host sync on CUDA:
    pass ``num_masked`` on hot paths instead)."""
    return int(mask[0].sum())


def tube_mask_indices(mask: torch.Tensor, grid: Tuple[int, int, int],
                      num_masked: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Token indices of a tube mask without boolean indexing (no ``nonzero``, no host sync).

    mask: (B, t*h*w) bool tube mask (True = masked); num_masked: masked tokens per clip (a Python
    int, a multiple of t). Returns (visible (B, t*n_vis), masked (B, t*n_masked)) int64 indices in
    token order (time-major, spatial positions ascending) - the order of ``x[~mask]`` / ``x[mask]``.
    Only the first temporal slice is read (a tube mask is the same in every slice).
    """
    t, h, w = grid
    hw = h * w
    B = mask.shape[0]
    m = num_masked // t
    # stable sort of 0 (visible) / 1 (masked): visible positions first, each group in position order
    order = torch.argsort(mask[:, :hw].to(torch.uint8), dim=1, stable=True)
    tokens = order.unsqueeze(1) + torch.arange(0, t * hw, hw, device=mask.device).view(1, t, 1)
    return tokens[:, :, :hw - m].reshape(B, -1), tokens[:, :, hw - m:].reshape(B, -1)


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, N, C), index (B, L) int64 -> (B, L, C) = x[b, index[b]]."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))

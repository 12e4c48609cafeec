"""Pre-training: the masked-tube reconstruction loss and the reconstruction image for TensorBoard.

Loss (SPEC section 2): targets = ``models.mae.patchify_targets(clip)`` - per-tube, per-channel
normalised pixels, (B, N, 1536) - gathered at the masked tokens in token order; MSE against the
decoder's predictions (B, N_masked, 1536).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from engine.step import autocast_context

__all__ = ['IMAGENET_MEAN', 'IMAGENET_STD', 'masked_targets', 'make_pretrain_loss',
           'reconstruction_grid']

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def masked_targets(clip: torch.Tensor, mask: torch.Tensor, tubelet: int = 2, patch: int = 16,
                   mean=IMAGENET_MEAN, std=IMAGENET_STD, num_masked: Optional[int] = None) -> torch.Tensor:
    """(B, N_masked, 3 * tubelet * patch^2) normalised-pixel targets of the masked tubes, in token order.

    ``num_masked`` (masked tokens per clip, a Python int) avoids reading the mask back to the host;
    without it the count is read from the mask (free on the CPU, one synchronisation on CUDA).
    """
    from models.mae import patchify_targets
    from models.tpsbt import TPSBT, gather_tokens, tube_mask_indices
    with torch.no_grad():
        t = patchify_targets(clip.float(), mean, std, tubelet=tubelet, patch=patch)
        T, H, W = clip.shape[2:]
        grid = (T // tubelet, H // patch, W // patch)
        mask = mask.to(t.device)
        if num_masked is None:
            TPSBT._check_tube_mask(mask, grid)
            num_masked = TPSBT.count_masked(mask)
        _, ids_masked = tube_mask_indices(mask, grid, num_masked)
        return gather_tokens(t, ids_masked)


def _unwrap(model):
    """The module under DDP (``.module``) / torch.compile (``._orig_mod``) wrappers."""
    while True:
        inner = getattr(model, 'module', None)
        if not isinstance(inner, torch.nn.Module):
            inner = getattr(model, '_orig_mod', None)
        if not isinstance(inner, torch.nn.Module):
            return model
        model = inner


def make_pretrain_loss(model, device: torch.device, tubelet: int = 2, patch: int = 16):
    """``compute_loss(batch)`` for :func:`engine.loop.train_one_epoch`; batch = (clip, mask, n_broken).

    The number of masked tokens per clip is read from the batch's mask while it is still on the CPU
    (as the data loader delivers it: no device traffic), or, for a mask already on the device, taken
    from the model's ``mask_ratio``; the model and the targets then gather tokens by index, with no
    device -> host synchronisation and no graph break under torch.compile.
    """
    ratio_model = _unwrap(model)

    def compute_loss(batch):
        clip, mask = batch[0], batch[1]
        clip = clip.to(device, non_blocking=True)
        if mask.device.type == 'cpu':
            num_masked = int(mask[0].sum())  # host tensor: no device traffic
        elif hasattr(ratio_model, 'num_masked_from_ratio'):
            num_masked = ratio_model.num_masked_from_ratio(
                (clip.shape[2] // tubelet, clip.shape[3] // patch, clip.shape[4] // patch))
        else:
            num_masked = None
        mask = mask.to(device, non_blocking=True).flatten(1).to(torch.bool)
        target = masked_targets(clip, mask, tubelet, patch, num_masked=num_masked)
        pred = model(clip, mask, num_masked)
        loss = F.mse_loss(pred.float(), target)
        n_broken = batch[2] if len(batch) > 2 else None
        return loss, n_broken

    return compute_loss


def _patchify_raw(x: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """(C, T, H, W) -> (N, tubelet*patch*patch, C) in token order (time-major), (t, h, w) inside."""
    C, T, H, W = x.shape
    t, h, w = T // tubelet, H // patch, W // patch
    x = x.reshape(C, t, tubelet, h, patch, w, patch)
    return x.permute(1, 3, 5, 2, 4, 6, 0).reshape(t * h * w, tubelet * patch * patch, C)


def _unpatchify_raw(p: torch.Tensor, shape: Sequence[int], tubelet: int, patch: int) -> torch.Tensor:
    C, T, H, W = shape
    t, h, w = T // tubelet, H // patch, W // patch
    x = p.reshape(t, h, w, tubelet, patch, patch, C)
    return x.permute(6, 0, 3, 1, 4, 2, 5).reshape(C, T, H, W)


@torch.no_grad()
def reconstruction_grid(model, clip: torch.Tensor, mask: torch.Tensor, device: torch.device,
                        amp: str = 'none', tubelet: int = 2, patch: int = 16, max_frames: int = 4,
                        mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """Image (3, 3*H, F*W) in [0, 1]: rows original / masked (masked tubes grey) / reconstruction
    (visible tubes original, masked tubes predicted, with each tube's per-channel normalisation
    undone using the original tube's mean and std), for ``F`` evenly spaced frames of one clip."""
    was_training = model.training
    model.eval()
    try:
        clip = clip[:1].to(device).float()
        mask = mask[:1].to(device).flatten(1).bool()
        with autocast_context(device, amp):
            pred = model(clip, mask)
        pred = pred.float()[0]  # (N_masked, D)
    finally:
        model.train(was_training)
    C, T, H, W = clip.shape[1:]
    m = torch.tensor(mean, device=device).view(C, 1, 1, 1)
    s = torch.tensor(std, device=device).view(C, 1, 1, 1)
    pix = (clip[0] * s + m).clamp(0, 1)  # (C, T, H, W) in [0, 1]
    patches = _patchify_raw(pix, tubelet, patch)  # (N, P, C)
    p_mean = patches.mean(dim=1, keepdim=True)
    p_std = patches.var(dim=1, unbiased=True, keepdim=True).sqrt() + 1e-6
    m0 = mask[0]
    rec = patches.clone()
    pred = pred.reshape(pred.shape[0], -1, C)  # (N_masked, P, C), (t, h, w, channel) order
    rec[m0] = pred * p_std[m0] + p_mean[m0]
    masked = patches.clone()
    masked[m0] = 0.5
    rows = [pix, _unpatchify_raw(masked, (C, T, H, W), tubelet, patch),
            _unpatchify_raw(rec, (C, T, H, W), tubelet, patch).clamp(0, 1)]
    frames = np.unique(np.linspace(0, T - 1, min(max_frames, T)).round().astype(int))
    grid = torch.cat([torch.cat([r[:, f] for f in frames], dim=2) for r in rows], dim=1)
    return grid.cpu().numpy()

"""Pre-training: the masked-tube reconstruction loss and the reconstruction image for TensorBoard.

Loss: the MSE of Eq. (11) (paper Sec. 3.1.4), on the published code's per-patch normalised targets
(the paper states pixel space only): targets = ``models.mae.patchify_targets(clip)`` - per-tube, per-channel
normalised pixels, (B, N, 1536) - gathered at the masked tokens in token order; MSE against the
decoder's predictions (B, N_masked, 1536).
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from datasets.transforms import IMAGENET_MEAN, IMAGENET_STD
from engine.step import autocast_context
from models.checkpoint import unwrap_model
from models.mae import patch_statistics, patchify, patchify_targets, unpatchify
from models.masking import check_tube_mask, count_masked, gather_tokens, tube_mask_indices

__all__ = ['reconstruct', 'masked_targets', 'make_pretrain_loss',
           'reconstruction_grid']



def masked_targets(clip: torch.Tensor, mask: torch.Tensor, tubelet: int = 2, patch: int = 16,
                   mean=IMAGENET_MEAN, std=IMAGENET_STD, num_masked: Optional[int] = None) -> torch.Tensor:
    """(B, N_masked, 3 * tubelet * patch^2) normalised-pixel targets of the masked tubes, in token order.

    ``num_masked`` (masked tokens per clip, a Python int) avoids reading the mask back to the host;
    without it the count is read from the mask (free on the CPU, one synchronisation on CUDA).
    """
    with torch.no_grad():
        t = patchify_targets(clip.float(), mean, std, tubelet=tubelet, patch=patch)
        T, H, W = clip.shape[2:]
        grid = (T // tubelet, H // patch, W // patch)
        mask = mask.to(t.device)
        if num_masked is None:
            check_tube_mask(mask, grid)
            num_masked = count_masked(mask)
        _, ids_masked = tube_mask_indices(mask, grid, num_masked)
        return gather_tokens(t, ids_masked)


def make_pretrain_loss(model, device: torch.device, tubelet: int = 2, patch: int = 16,
                       batch_augment=None):
    """``compute_loss(batch)`` for :func:`engine.loop.train_one_epoch`; batch = (clip, mask, n_broken).

    The number of masked tokens per clip is read from the batch's mask while it is still on the CPU
    (as the data loader delivers it: no device traffic), or, for a mask already on the device, taken
    from the model's ``mask_ratio``; the model and the targets then gather tokens by index, with no
    device -> host synchronisation and no graph break under torch.compile.
    """
    ratio_model = unwrap_model(model)

    def compute_loss(batch):
        clip, mask = batch[0], batch[1]
        clip = clip.to(device, non_blocking=True)
        if batch_augment is not None:  # --augment_on device: uint8 in, augmented float out
            clip = batch_augment(clip)
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


@torch.no_grad()
def reconstruct(model, clip: torch.Tensor, mask: torch.Tensor, device: Optional[torch.device] = None,
                amp: str = 'none', tubelet: int = 2, patch: int = 16, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                grey: float = 0.5) -> Dict[str, torch.Tensor]:
    """One clip through a pre-training model: clip (1, 3, T, H, W) normalised, mask (1, N) bool ->
    ``original``, ``masked`` (masked tubes ``grey``) and ``reconstruction`` (visible tubes original,
    masked tubes predicted, each tube's per-channel normalisation undone with the original tube's
    mean and std), each (3, T, H, W) in [0, 1]; plus ``mask`` (N,) bool. The model's training mode
    is restored. ``device``: default the model's."""
    device = device or next(model.parameters(), clip).device
    was_training = model.training
    model.eval()
    try:
        clip = clip[:1].to(device).float()
        mask = mask[:1].to(device).flatten(1).bool()
        with autocast_context(device, amp):
            pred = model(clip, mask)
        pred = pred.float()[0]  # (N_masked, D), (t, h, w, channel) order inside a tube
    finally:
        model.train(was_training)
    shape = tuple(clip.shape[1:])
    C = shape[0]
    m = torch.tensor(mean, device=device).view(1, C, 1, 1, 1)
    s = torch.tensor(std, device=device).view(1, C, 1, 1, 1)
    pix = (clip * s + m).clamp(0, 1)
    tubes = patchify(pix, tubelet, patch)[0]  # (N, P, C)
    mu, sd = patch_statistics(tubes)
    m0 = mask[0]
    rec = tubes.clone()
    rec[m0] = pred.reshape(pred.shape[0], -1, C) * sd[m0] + mu[m0]
    masked = tubes.clone()
    masked[m0] = grey
    return dict(original=pix[0], masked=unpatchify(masked[None], shape, tubelet, patch)[0],
                reconstruction=unpatchify(rec[None], shape, tubelet, patch)[0].clamp(0, 1), mask=m0)


@torch.no_grad()
def reconstruction_grid(model, clip: torch.Tensor, mask: torch.Tensor, device: torch.device,
                        amp: str = 'none', tubelet: int = 2, patch: int = 16, max_frames: int = 4,
                        mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """Image (3, 3*H, F*W) in [0, 1]: rows original / masked (masked tubes grey) / reconstruction
    (:func:`reconstruct`), for ``F`` evenly spaced frames of one clip."""
    out = reconstruct(model, clip, mask, device, amp, tubelet, patch, mean, std)
    rows = [out['original'], out['masked'], out['reconstruction']]
    T = rows[0].shape[1]
    frames = np.unique(np.linspace(0, T - 1, min(max_frames, T)).round().astype(int))
    grid = torch.cat([torch.cat([r[:, f] for f in frames], dim=2) for r in rows], dim=1)
    return grid.cpu().numpy()

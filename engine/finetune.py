"""Fine-tuning: video mixup/cutmix and the losses (Eqs. (12), (13), paper Sec. 3.2). Evaluation
is ``engine.evaluation``."""
from __future__ import annotations

import os
from typing import Callable, Dict, Optional

import torch
import torch.nn as nn
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

from engine.config import TrainConfig
from models.checkpoint import read_checkpoint

__all__ = ['VideoMixup', 'build_mixup', 'build_criterion', 'make_finetune_loss', 'test_final_weights']


class VideoMixup:
    """timm ``Mixup`` for video batches ``(B, C, T, H, W)``.

    timm cuts the CutMix box on the last two dimensions of a 4-D image batch. A video batch is
    reshaped to ``(B, C*T, H, W)`` around the call, so the box is spatial and the same for every
    frame, and mixup's lambda is shared by all frames of a clip.
    """

    def __init__(self, **mixup_kwargs):
        self.mixup = Mixup(**mixup_kwargs)

    def __call__(self, x: torch.Tensor, target: torch.Tensor):
        if x.ndim != 5:
            return self.mixup(x, target)
        B, C, T, H, W = x.shape
        flat = x.reshape(B, C * T, H, W)
        flat, target = self.mixup(flat, target)
        return flat.reshape(B, C, T, H, W), target

    @property
    def mixup_enabled(self):
        return self.mixup.mixup_enabled


def build_mixup(cfg: TrainConfig) -> Optional[VideoMixup]:
    """Mixup/CutMix for classification when ``--mixup > 0`` or ``--cutmix > 0`` (label smoothing is
    folded into the soft targets)."""
    if cfg.task != 'classification':
        return None
    active = cfg.mixup > 0 or cfg.cutmix > 0 or cfg.cutmix_minmax is not None
    if not active:
        return None
    if cfg.batch_size % 2:
        raise ValueError(f'mixup/cutmix needs an even --batch_size (got {cfg.batch_size}); '
                         f'or pass --mixup 0 --cutmix 0')
    return VideoMixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix,
                      cutmix_minmax=cfg.cutmix_minmax, prob=cfg.mixup_prob,
                      switch_prob=cfg.mixup_switch_prob, mode=cfg.mixup_mode,
                      label_smoothing=cfg.smoothing, num_classes=cfg.nb_classes)


def build_criterion(cfg: TrainConfig, mixup_fn) -> nn.Module:
    if cfg.loss == 'mse' or (cfg.loss == 'auto' and cfg.task == 'regression'):
        return nn.MSELoss()
    if mixup_fn is not None:
        return SoftTargetCrossEntropy()
    if cfg.smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=cfg.smoothing)
    return nn.CrossEntropyLoss()


def make_finetune_loss(model, criterion, mixup_fn, device: torch.device, batch_augment=None):
    """``compute_loss(batch)`` for :func:`engine.loop.train_one_epoch`; batch = (clip, target, index,
    n_broken). ``batch_augment``: the dataset's device stage (``--augment_on device``: uint8 clips
    in, augmented float clips out, on ``device``)."""

    def compute_loss(batch):
        clip, target = batch[0], batch[1]
        clip = clip.to(device, non_blocking=True)
        if batch_augment is not None:
            clip = batch_augment(clip)
        target = target.to(device, non_blocking=True)
        if mixup_fn is not None:
            clip, target = mixup_fn(clip, target)
        out = model(clip)
        loss = criterion(out.float(), target.float() if target.is_floating_point() else target)
        n_broken = batch[3] if len(batch) > 3 else None
        return loss, n_broken

    return compute_loss


def test_final_weights(run_test: Callable[[str, nn.Module], Dict], model_without_ddp: nn.Module,
                       model_ema=None, best: Optional[Dict] = None, best_state: Optional[Dict] = None,
                       best_path: str = '') -> Dict[str, Dict]:
    """After the last epoch: the last weights (``'test'``), the EMA weights (``'test_ema'``, when
    given) and the best validation epoch's (``'test_best'``, when one was selected: its state from
    memory, or from ``best_path`` after a resume; every process holds the same weights, so each
    keeps its own copy). ``run_test(tag, model)`` tests one model; returns ``{tag: its result}``."""
    out = {'test': run_test('test', model_without_ddp)}
    if model_ema is not None:
        out['test_ema'] = run_test('test_ema', model_ema.module)
    if best is not None and (best_state is not None or (best_path and os.path.isfile(best_path))):
        if best_state is None:
            best_state = read_checkpoint(best_path)['model']
        model_without_ddp.load_state_dict(best_state)
        print(f'| testing checkpoint-best.pth ({best["metric"]} {best["value"]:.4f}, '
              f'epoch {best["epoch"]})')
        out['test_best'] = run_test('test_best', model_without_ddp)
    return out

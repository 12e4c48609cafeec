"""Model construction from flags, and the device / torch.compile / DDP wrapping."""
from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

import timm
import torch
import torch.nn as nn

import models  # noqa: F401  (registers the SVFAP names with timm)
from engine.config import TrainConfig
from engine.distributed import is_main_process
from models.checkpoint import load_checkpoint
from models.layers import set_attention_backend

__all__ = ['model_kwargs', 'create_model', 'wrap_model', 'count_parameters', 'build_ema']

def model_kwargs(cfg: TrainConfig, pretrain: bool) -> Dict:
    """timm.create_model keywords: the input, drop path, the model flags that were given, and the
    decoder (pre-training) or the head (fine-tuning)."""
    kw = dict(img_size=cfg.input_size, all_frames=cfg.num_frames, tubelet_size=cfg.tubelet_size,
              drop_path_rate=cfg.drop_path, use_checkpoint=bool(cfg.use_checkpoint))
    kw.update(cfg.model_overrides())
    if pretrain:
        kw['mask_ratio'] = cfg.mask_ratio
        for name in ('decoder_depth', 'decoder_embed_dim', 'decoder_num_heads'):
            if getattr(cfg, name) is not None:
                kw[name] = getattr(cfg, name)
    else:
        kw.update(num_classes=cfg.nb_classes, init_scale=cfg.init_scale, fc_drop_rate=cfg.fc_drop_rate,
                  output_activation=cfg.output_activation or 'none')
    return kw


def create_model(cfg: TrainConfig, pretrain: bool) -> nn.Module:
    set_attention_backend(cfg.attention_backend or 'sdpa')
    return timm.create_model(cfg.model, pretrained=False, **model_kwargs(cfg, pretrain))


def load_initial_weights(model: nn.Module, path: str, output_dir: Optional[str] = None):
    """``--finetune``: ``models.checkpoint.load_checkpoint`` and its report, once: a short summary
    on the console, the full list of skipped and new keys in ``<output_dir>/finetune_load_report.txt``."""
    report = load_checkpoint(model, path, verbose=False)
    full = os.path.join(output_dir, 'finetune_load_report.txt') if output_dir and is_main_process() else None
    if full:
        os.makedirs(output_dir, exist_ok=True)
        with open(full, 'w') as f:
            f.write(report.summary() + '\n')
    line = f'| --finetune: loaded {len(report.loaded)} tensors from {path}'
    if report.skipped:
        line += f'; skipped {len(report.skipped)} checkpoint keys'
    if report.initialised:
        shown = ', '.join(report.initialised[:4]) + (' ...' if len(report.initialised) > 4 else '')
        line += f'; newly initialised {len(report.initialised)} ({shown})'
    print(line + (f'; full report: {full}' if full and (report.skipped or report.initialised) else ''))
    return report


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def wrap_model(model: nn.Module, cfg: TrainConfig) -> Tuple[nn.Module, nn.Module]:
    """Move to the device, optionally ``torch.compile``, wrap in DDP when distributed.

    Returns ``(model, model_without_ddp)``: the first is what runs forward/backward, the second the
    plain module whose ``state_dict`` is saved and whose parameters the optimizer holds.
    """
    device = torch.device(cfg.device)
    model.to(device)
    model_without_ddp = model
    run_model = model
    if cfg.distributed:
        ids = [device.index] if device.type == 'cuda' else None
        run_model = torch.nn.parallel.DistributedDataParallel(
            run_model, device_ids=ids, output_device=ids[0] if ids else None,
            find_unused_parameters=bool(cfg.find_unused_parameters))
    if cfg.compile:
        # compile the DDP-wrapped module (DDPOptimizer splits graphs at gradient buckets)
        run_model = torch.compile(run_model)
    return run_model, model_without_ddp


def find_ddp(model: nn.Module):
    """The DistributedDataParallel instance inside ``model`` (through torch.compile), or None."""
    m = model
    for _ in range(3):
        if isinstance(m, torch.nn.parallel.DistributedDataParallel):
            return m
        m = getattr(m, '_orig_mod', None)
        if m is None:
            return None
    return None


def build_ema(cfg: TrainConfig, model_without_ddp):
    if not cfg.model_ema:
        return None
    from timm.utils import ModelEmaV3
    ema = ModelEmaV3(model_without_ddp, decay=cfg.model_ema_decay)
    print(f'| EMA of the weights, decay {cfg.model_ema_decay}')
    return ema

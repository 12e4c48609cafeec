"""Model construction from flags, and the device / torch.compile / DDP wrapping."""
from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

import timm
import torch
import torch.nn as nn

import models  # noqa: F401  (registers the SVFAP names with timm)
from engine.distributed import is_main_process
from models.checkpoint import load_checkpoint
from models.layers import set_attention_backend

__all__ = ['model_kwargs_from_args', 'create_model', 'wrap_model', 'count_parameters', 'build_ema']

# flags passed to timm.create_model only when set (otherwise the registered config decides)
_OPTIONAL_MODEL_FLAGS = {
    'stage_depths': 'stage_depths',
    'num_bottleneck_tokens': 'num_bottleneck_tokens',
    'temporal_downsample': 'temporal_downsample',
    'spatial_bottleneck': 'spatial_bottleneck',
    'embed_dim': 'embed_dim',
    'num_heads': 'num_heads',
}


def model_kwargs_from_args(args, pretrain: bool) -> Dict:
    kw = dict(img_size=args.input_size, all_frames=args.num_frames,
              drop_path_rate=args.drop_path, use_checkpoint=bool(getattr(args, 'use_checkpoint', False)))
    if getattr(args, 'tubelet_size', None):
        kw['tubelet_size'] = args.tubelet_size
    for flag, name in _OPTIONAL_MODEL_FLAGS.items():
        v = getattr(args, flag, None)
        if v is not None:
            kw[name] = tuple(v) if isinstance(v, list) else v
    if pretrain:
        kw['mask_ratio'] = args.mask_ratio
        for flag in ('decoder_depth', 'decoder_embed_dim', 'decoder_num_heads'):
            v = getattr(args, flag, None)
            if v is not None:
                kw[flag] = v
    else:
        kw['num_classes'] = args.nb_classes
        kw['init_scale'] = args.init_scale
        kw['fc_drop_rate'] = args.fc_drop_rate
        kw['output_activation'] = args.output_activation or 'none'
    return kw


def create_model(args, pretrain: bool) -> nn.Module:
    set_attention_backend(getattr(args, 'attention_backend', 'sdpa') or 'sdpa')
    return timm.create_model(args.model, pretrained=False, **model_kwargs_from_args(args, pretrain))


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


def wrap_model(model: nn.Module, args) -> Tuple[nn.Module, nn.Module]:
    """Move to the device, optionally ``torch.compile``, wrap in DDP when distributed.

    Returns ``(model, model_without_ddp)``: the first is what runs forward/backward, the second the
    plain module whose ``state_dict`` is saved and whose parameters the optimizer holds.
    """
    device = torch.device(args.device)
    model.to(device)
    model_without_ddp = model
    run_model = model
    if getattr(args, 'distributed', False):
        ids = [device.index] if device.type == 'cuda' else None
        run_model = torch.nn.parallel.DistributedDataParallel(
            run_model, device_ids=ids, output_device=ids[0] if ids else None,
            find_unused_parameters=bool(getattr(args, 'find_unused_parameters', False)))
    if getattr(args, 'compile', False):
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


def build_ema(args, model_without_ddp):
    if not getattr(args, 'model_ema', False):
        return None
    from timm.utils import ModelEmaV3
    ema = ModelEmaV3(model_without_ddp, decay=args.model_ema_decay)
    print(f'| EMA of the weights, decay {args.model_ema_decay}')
    return ema

"""Optimizer, parameter groups (weight-decay exclusion, layer-wise lr decay) and per-step schedules.

Parameter groups follow BEiT / VideoMAE: layer ids come from the model's ``get_layer_id(name)``
(patch embedding 0, block i -> i + 1, head ``get_num_layers() + 1``); a parameter of layer ``l`` gets
``lr_scale = layer_decay ** (num_layers + 1 - l)``. No weight decay on 1-D parameters (norms,
biases, ``q_bias``/``v_bias``), on position / mask / cls tokens and on the names the model lists in
``no_weight_decay()``. The optimizer itself is made by ``timm.optim.create_optimizer_v2``; AdamW is
the fused CUDA kernel when the parameters live on a GPU, the multi-tensor (foreach) one on the CPU.
"""
from __future__ import annotations

import inspect
import math
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from timm.optim import create_optimizer_v2, get_optimizer_class

from engine.config import TrainConfig

__all__ = ['NO_DECAY_TOKENS', 'param_groups', 'build_optimizer', 'cosine_scheduler',
           'apply_schedules', 'build_schedules']

# parameter names (last component) that never get weight decay, whatever their shape
NO_DECAY_TOKENS = ('pos_embed', 'mask_token', 'cls_token', 'pos_embed_spatial', 'pos_embed_temporal',
                   'decoder_pos_embed', 'q_bias', 'v_bias', 'rel_pos_bias', 'bottleneck_tokens')


def _skip_decay(name: str, param: torch.Tensor, skip: Iterable[str]) -> bool:
    if param.ndim <= 1 or name.endswith('.bias'):
        return True
    last = name.split('.')[-1]
    if last in NO_DECAY_TOKENS:
        return True
    for s in skip:
        if name == s or name.endswith('.' + s) or last == s:
            return True
    return False


def param_groups(model: nn.Module, weight_decay: float, layer_decay: Optional[float] = None,
                 skip_list: Iterable[str] = (), verbose: bool = False,
                 assignment: str = 'published') -> List[Dict]:
    """Groups of parameters with ``weight_decay`` and ``lr_scale`` (1.0 without layer decay).

    Layer decay needs ``model.get_num_layers()`` and ``model.get_layer_id(name)``; a model without
    them (the pre-training autoencoder) gets one scale for all. ``skip_list`` defaults to the model's
    ``no_weight_decay()``. ``assignment``: the layer ids of the downsampling modules
    (``models.tpsbt.TPSBT.get_layer_id``).
    """
    skip = set(skip_list)
    if hasattr(model, 'no_weight_decay'):
        skip |= set(model.no_weight_decay())
    use_ld = layer_decay is not None and layer_decay != 1.0 and hasattr(model, 'get_layer_id') \
        and hasattr(model, 'get_num_layers')
    if layer_decay is not None and layer_decay != 1.0 and not use_ld:
        print(f'| layer decay {layer_decay} ignored: {type(model).__name__} has no get_layer_id()')
    if use_ld:
        num_layers = model.get_num_layers() + 2
        scales = [layer_decay ** (num_layers - 1 - i) for i in range(num_layers)]

    groups: Dict[str, Dict] = {}
    names: Dict[str, List[str]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = _skip_decay(name, p, skip)
        wd = 0.0 if no_decay else weight_decay
        if use_ld:
            layer_id = int(model.get_layer_id(name, assignment))
            layer_id = min(max(layer_id, 0), num_layers - 1)
            scale = scales[layer_id]
        else:
            layer_id, scale = 0, 1.0
        key = f'layer_{layer_id}_{"no_decay" if no_decay else "decay"}'
        if key not in groups:
            groups[key] = {'params': [], 'weight_decay': wd, 'lr_scale': scale,
                           'layer_id': layer_id, 'group_name': key}
            names[key] = []
        groups[key]['params'].append(p)
        names[key].append(name)
    if verbose:
        for k in sorted(names, key=lambda k: (groups[k]['layer_id'], k)):
            g = groups[k]
            print(f'| param group {k}: lr_scale {g["lr_scale"]:.4g} weight_decay {g["weight_decay"]} '
                  f'{len(names[k])} tensors')
    out = list(groups.values())
    for g in out:
        g['param_names'] = names[g['group_name']]
    return out


def _takes_foreach(opt_name: str) -> bool:
    """Whether timm's optimizer class for ``opt_name`` accepts ``foreach`` (torch.optim's do)."""
    try:
        cls = get_optimizer_class(opt_name, bind_defaults=False)
        return 'foreach' in inspect.signature(cls.__init__).parameters
    except Exception:  # unknown name: create_optimizer_v2 reports it
        return False


def build_optimizer(cfg: TrainConfig, model: nn.Module, skip_list: Iterable[str] = (),
                    layer_decay: Optional[float] = None) -> torch.optim.Optimizer:
    """AdamW (or any timm optimizer name) over :func:`param_groups`; ``fused=True`` on CUDA,
    ``foreach=True`` on the CPU (when the optimizer class takes it)."""
    groups = param_groups(model, cfg.weight_decay, layer_decay, skip_list, verbose=False,
                          assignment=cfg.layer_decay_assignment or 'published')
    # keep names out of the optimizer state dict (strings are fine for weights_only, but noisy)
    for g in groups:
        g.pop('param_names', None)
    opt_name = cfg.opt.lower()
    kwargs = {}
    if cfg.opt_eps is not None:
        kwargs['eps'] = cfg.opt_eps
    if cfg.opt_betas is not None:
        kwargs['betas'] = tuple(cfg.opt_betas)
    on_cuda = next(model.parameters()).is_cuda
    if opt_name in ('adamw', 'adam') and on_cuda:
        kwargs['fused'] = True
    elif not on_cuda and _takes_foreach(opt_name):
        # CPU: the multi-tensor (foreach) update instead of one small kernel per parameter
        kwargs['foreach'] = True
    if opt_name in ('sgd', 'momentum', 'nesterov'):
        kwargs['momentum'] = cfg.momentum
    opt = create_optimizer_v2(groups, opt=opt_name, lr=cfg.lr, weight_decay=cfg.weight_decay,
                              **kwargs)
    return opt


def cosine_scheduler(base_value: float, final_value: float, epochs: int, niter_per_ep: int,
                     warmup_epochs: float = 0, start_warmup_value: float = 0.0,
                     warmup_steps: int = -1) -> np.ndarray:
    """Per-step values: linear warm-up from ``start_warmup_value`` to ``base_value`` over
    ``warmup_steps`` (or ``warmup_epochs * niter_per_ep``) steps, then half-cosine to ``final_value``.

    Step ``i`` of the warm-up has ``start + (base - start) * i / warmup_iters``; step ``j`` of the
    cosine part (of ``n`` steps) has ``final + (base - final) * (1 + cos(pi * j / n)) / 2``.
    Length ``epochs * niter_per_ep``.
    """
    total = int(epochs * niter_per_ep)
    warmup_iters = int(warmup_steps) if warmup_steps is not None and warmup_steps > 0 \
        else int(round(warmup_epochs * niter_per_ep))
    warmup_iters = min(warmup_iters, total)
    warm = start_warmup_value + (base_value - start_warmup_value) * np.arange(warmup_iters) \
        / max(warmup_iters, 1)
    n = total - warmup_iters
    j = np.arange(n)
    cos = final_value + 0.5 * (base_value - final_value) * (1 + np.cos(math.pi * j / max(n, 1)))
    sched = np.concatenate([warm, cos]).astype(np.float64)
    assert len(sched) == total
    return sched


def apply_schedules(optimizer: torch.optim.Optimizer, it: int, lr_schedule: Sequence[float],
                    wd_schedule: Optional[Sequence[float]] = None) -> float:
    """Set every group's lr (times its ``lr_scale``) and, for decayed groups, weight decay for
    global optimizer step ``it``. Returns the unscaled lr."""
    it = min(it, len(lr_schedule) - 1)
    lr = float(lr_schedule[it])
    for g in optimizer.param_groups:
        g['lr'] = lr * g.get('lr_scale', 1.0)
        if wd_schedule is not None and g.get('weight_decay', 0.0) > 0:
            g['weight_decay'] = float(wd_schedule[it])
    return lr


def build_schedules(cfg: TrainConfig, steps_per_epoch: int):
    """Per-optimizer-step lr and weight-decay arrays of the finalized flags (``cli.args.finalize_args``
    has kept --min_lr and --warmup_lr at or below the lr)."""
    lr_schedule = cosine_scheduler(cfg.lr, cfg.min_lr, cfg.epochs, steps_per_epoch,
                                   warmup_epochs=cfg.warmup_epochs, start_warmup_value=cfg.warmup_lr,
                                   warmup_steps=cfg.warmup_steps)
    wd_schedule = None
    if cfg.weight_decay_end is not None:
        wd_schedule = cosine_scheduler(cfg.weight_decay, cfg.weight_decay_end, cfg.epochs,
                                       steps_per_epoch)
    return lr_schedule, wd_schedule

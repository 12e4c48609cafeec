"""What the engine reads of a run, typed: :class:`TrainConfig`, made once from the finalized flags.

    args = cli.args.finalize_args(parsed, env, entry_step)      # the one finalize step
    cfg = TrainConfig.from_args(args)                           # what the engine is given

The values have one home, the entry point's parser (and the recipe over it): the fields carry no
defaults of their own. The fields an entry point has no flag for (the fine-tuning head and loss in
pre-training, the decoder in fine-tuning) are None there. ``flags`` keeps every finalized flag, data
flags included, for ``args.json``, the checkpoints and the resume check.
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

__all__ = ['TrainConfig', 'plain_flags']

# a model flag that, when given, overrides the registered config (timm.create_model keyword)
_OVERRIDE = {'model_override': True}


def plain_flags(args) -> Dict[str, Any]:
    """``args`` (a Namespace or a mapping) as a dict of plain python values, safe for
    ``weights_only`` loading."""
    d = vars(args) if isinstance(args, argparse.Namespace) else dict(args)

    def conv(v):
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, np.floating):
            return float(v)
        return str(v)

    return {k: conv(v) for k, v in d.items() if not k.startswith('_')}


@dataclass(frozen=True)
class TrainConfig:
    """The finalized values the engine reads (flag names, see ``python run_finetune.py --help``)."""
    # ---- model: a timm registration, the input it is built for, and the flags that override it
    model: str
    input_size: int
    num_frames: int
    tubelet_size: int
    drop_path: float
    use_checkpoint: bool
    attention_backend: str
    finetune: str                                   # initial weights ('' : none)
    stage_depths: Optional[Tuple[int, ...]] = field(metadata=_OVERRIDE)
    num_bottleneck_tokens: Optional[Union[int, Tuple[int, ...]]] = field(metadata=_OVERRIDE)
    temporal_downsample: Optional[str] = field(metadata=_OVERRIDE)
    spatial_bottleneck: Optional[bool] = field(metadata=_OVERRIDE)
    embed_dim: Optional[int] = field(metadata=_OVERRIDE)
    num_heads: Optional[int] = field(metadata=_OVERRIDE)
    # ---- optimisation (lr, min_lr, warmup_lr absolute: scaled by finalize_args)
    batch_size: int
    update_freq: int
    total_batch_size: int
    epochs: int
    max_steps_per_epoch: Optional[int]
    opt: str
    opt_eps: Optional[float]
    opt_betas: Optional[Tuple[float, ...]]
    momentum: float
    clip_grad: Optional[float]
    weight_decay: float
    weight_decay_end: Optional[float]
    lr: float
    min_lr: float
    warmup_lr: float
    warmup_epochs: float
    warmup_steps: int
    # ---- runtime
    device: str
    distributed: bool
    world_size: int
    seed: int
    amp: str
    compile: bool
    find_unused_parameters: bool
    num_workers: int
    pin_mem: bool
    prefetch_factor: int
    log_every: int
    output_dir: Optional[str]
    log_dir: Optional[str]
    save_ckpt: bool
    save_ckpt_freq: int
    resume: str
    auto_resume: bool
    force_resume: bool
    force_restart: bool
    start_epoch: int
    flags: Dict[str, Any]                           # every finalized flag, plain values
    # ---- pre-training only (None in fine-tuning)
    mask_ratio: Optional[float] = None
    decoder_depth: Optional[int] = None
    decoder_embed_dim: Optional[int] = None
    decoder_num_heads: Optional[int] = None
    # ---- fine-tuning only (None in pre-training): head, loss, mixup, layer decay, EMA, evaluation
    task: Optional[str] = None
    nb_classes: Optional[int] = None
    init_scale: Optional[float] = None
    fc_drop_rate: Optional[float] = None
    output_activation: Optional[str] = None
    loss: Optional[str] = None
    smoothing: Optional[float] = None
    mixup: Optional[float] = None
    cutmix: Optional[float] = None
    cutmix_minmax: Optional[Tuple[float, float]] = None
    mixup_prob: Optional[float] = None
    mixup_switch_prob: Optional[float] = None
    mixup_mode: Optional[str] = None
    layer_decay_assignment: Optional[str] = None
    model_ema: Optional[bool] = None
    model_ema_decay: Optional[float] = None
    eval: Optional[bool] = None
    eval_batch_size: Optional[int] = None

    @classmethod
    def from_args(cls, args) -> 'TrainConfig':
        """The fields of the finalized flags (``cli.args.finalize_args``); a flag every entry point
        has that is missing is an error naming it."""
        kw: Dict[str, Any] = {'flags': plain_flags(args)}
        for f in fields(cls):
            if f.name == 'flags':
                continue
            if hasattr(args, f.name):
                v = getattr(args, f.name)
                kw[f.name] = tuple(v) if isinstance(v, list) else v
            elif f.default is MISSING:
                raise AttributeError(f'TrainConfig: the finalized flags have no {f.name!r}')
        return cls(**kw)

    def model_overrides(self) -> Dict[str, Any]:
        """The model flags that were given (timm.create_model keywords); the rest is the
        registered config's."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.metadata.get('model_override') and getattr(self, f.name) is not None}

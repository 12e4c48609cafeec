"""Command-line flags of ``run_pretrain.py`` and ``run_finetune.py`` (VideoMAE names).

``--config FILE`` (a YAML recipe from ``configs/``, see ``cli.config``) sets defaults; flags given
on the command line override it; a key that is not a flag of the entry point is an error naming it.
"""
from __future__ import annotations

import argparse
import os
from typing import Callable, Optional, Sequence

import torch

from cli.config import parse_args_with_config
from datasets.config import DataConfig, resolve_task
from datasets.sampling import TEMPORAL_SAMPLINGS
from datasets.transforms import AUG_ORDERS, RESIZE_FILTERS, RESIZE_MODES
from datasets.video_reader import READERS

D = DataConfig()  # the data flags' defaults live in datasets.config

__all__ = ['str2bool', 'HelpFormatter', 'common_parser', 'pretrain_parser', 'finetune_parser', 'parse_args',
           'finalize_args', 'FinalArgs', 'fill_task_from_registry', 'scale_epochs_to_fraction',
           'Shape', 'Runtime', 'RuntimeTrue', 'resume_roles', 'NEUTRAL', 'REFUSED', 'resolve_amp']


def str2bool(v) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ('1', 'true', 'yes', 'y', 'on'):
        return True
    if s in ('0', 'false', 'no', 'n', 'off'):
        return False
    raise argparse.ArgumentTypeError(f'expected a boolean, got {v!r}')


# What changing a flag between a run and its resumption means (engine.checkpoint.auto_load):
# ``action=Shape``: shapes or data, another experiment, refused unless --force_resume;
# ``action=Runtime`` (``RuntimeTrue``): not what is trained (paths, workers, logging), not mentioned;
# any other flag (optimisation, augmentation, ...) may change, with a warning naming it.
NEUTRAL, REFUSED = 'neutral', 'refused'


class Shape(argparse._StoreAction):
    resume = REFUSED


class Runtime(argparse._StoreAction):
    resume = NEUTRAL


class RuntimeTrue(argparse._StoreTrueAction):
    resume = NEUTRAL


# set by finalize_args from outside the flags: the recipe's path (its values are compared one by
# one) and the process's place in the run
_RUNTIME_NON_FLAGS = ('config', 'distributed', 'rank', 'world_size', 'gpu')


def resume_roles(parser: argparse.ArgumentParser) -> dict:
    """``{key: NEUTRAL | REFUSED}`` of ``parser``'s Shape and Runtime flags (and the runtime
    non-flags); the keys not in it are warned about when they change on resume."""
    roles = {a.dest: a.resume for a in parser._actions if hasattr(a, 'resume')}
    roles.update(dict.fromkeys(_RUNTIME_NON_FLAGS, NEUTRAL))
    return roles


def add_switch(group, name: str, default: bool, help: str, off_help: str = None,
               action=argparse._StoreAction) -> None:
    """``--name`` [true|false] (bare: true); with ``off_help`` also ``--no_name``, which sets it false;
    ``action=Runtime`` for a runtime switch."""
    group.add_argument(f'--{name}', action=action, type=str2bool, nargs='?', const=True, default=default,
                       help=help)
    if off_help:
        group.add_argument(f'--no_{name}', action='store_false', dest=name, help=off_help)


def _amp_type(v) -> str:
    s = str(v).strip().lower()
    aliases = {'true': 'auto', '1': 'auto', 'yes': 'auto', 'false': 'none', '0': 'none',
               'no': 'none', 'fp32': 'none', 'float32': 'none', 'bfloat16': 'bf16',
               'float16': 'fp16', 'half': 'fp16'}
    s = aliases.get(s, s)
    if s not in ('none', 'bf16', 'fp16', 'auto'):
        raise argparse.ArgumentTypeError(f'--amp must be none | bf16 | fp16 | auto, got {v!r}')
    return s


def resolve_amp(amp, device: str) -> str:
    """'auto' (also YAML ``amp: true``) -> bf16 on a GPU that supports it, fp16 on other GPUs,
    none on CPU. YAML ``amp: false`` -> none."""
    if isinstance(amp, bool):
        amp = 'auto' if amp else 'none'
    amp = _amp_type(amp)
    if amp == 'auto':
        if str(device).startswith('cuda') and torch.cuda.is_available():
            return 'bf16' if torch.cuda.is_bf16_supported() else 'fp16'
        return 'none'
    return amp


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default once: not when its help already says it, nor for None defaults and
    the ``--no_*`` switches (their default belongs to the flag they switch off)."""

    def _get_help_string(self, action) -> str:
        text = action.help or ''
        if ('default' in text.lower() or action.default in (None, argparse.SUPPRESS)
                or isinstance(action, argparse._StoreFalseAction)):
            return text
        return text + ' (default: %(default)s)'


def common_parser(description: str) -> argparse.ArgumentParser:
    """The flags both entry points take, in four groups: model, data, optimisation, runtime."""
    p = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    for add in (_model_flags, _data_flags, _optimisation_flags, _runtime_flags):
        add(p)
    return p


def _model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group('model')
    g.add_argument('--model', action=Shape, type=str, required=False, help='timm name of the model')
    g.add_argument('--drop_path', type=float, default=0.0, help='stochastic depth rate')
    g.add_argument('--stage_depths', action=Shape, type=int, nargs='+', default=None,
                   help='blocks per stage, e.g. 12 6 3 (default: the model config)')
    g.add_argument('--num_bottleneck_tokens', action=Shape, type=int, nargs='+', default=None,
                   help='K bottleneck tokens per later stage (one value, or one per stage)')
    g.add_argument('--temporal_downsample', action=Shape, type=str, default=None,
                   choices=['conv', 'avg', 'max', 'none'], help='temporal pyramid operator')
    g.add_argument('--spatial_bottleneck', action=Shape, type=str2bool, default=None,
                   help='SBT stages (false: standard blocks in later stages, ablation)')
    g.add_argument('--embed_dim', action=Shape, type=int, default=None,
                   help='encoder width (default: the model config)')
    g.add_argument('--num_heads', action=Shape, type=int, default=None,
                   help='attention heads (default: the model config)')
    g.add_argument('--tubelet_size', action=Shape, type=int, default=2,
                   help='frames per token (patch embedding, Sec. 3.1.1)')
    add_switch(g, 'use_checkpoint', False, 'gradient checkpointing of every block')
    g.add_argument('--attention_backend', type=str, default='sdpa', choices=['sdpa', 'naive'],
                   help='sdpa (fused kernels) or naive (explicit softmax(QK^T)V, for checks)')
    g.add_argument('--finetune', type=str, default='',
                   help='start from these weights (models.checkpoint.load_checkpoint: released '
                        'or our own checkpoints)')


def _data_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group('data')
    g.add_argument('--data_path', action=Shape, type=str, default=None,
                   help='fine-tuning: a folder with train.csv / val.csv / test.csv; '
                        'pre-training: a split file or a folder with pretrain.csv')
    g.add_argument('--data_root', type=str, default=None,
                   help='prefix joined to relative paths in split files')
    g.add_argument('--data_set', action=Shape, type=str, default=None, help='dataset registry name')
    g.add_argument('--num_frames', action=Shape, type=int, default=D.num_frames,
                   help='frames per clip')
    g.add_argument('--sampling_rate', action=Shape, type=int, default=D.sampling_rate,
                   help='temporal stride between sampled frames')
    g.add_argument('--temporal_sampling', action=Shape, choices=TEMPORAL_SAMPLINGS, default=D.temporal_sampling,
                   help='published: the frame indices of the published code (fine-tuning clips of '
                        'strides 4 and 5 ending at a random frame, test clips on the stride grid '
                        'from frame 0); exact_stride: every clip exactly sampling_rate apart '
                        '(docs/training.md)')
    g.add_argument('--resize_filter', action=Shape, choices=RESIZE_FILTERS, default=D.resize_filter,
                   help="pil: PIL's bilinear, antialiased when shrinking (the published pipeline's "
                        "pixels); opencv: cv2 INTER_LINEAR squash / INTER_AREA shrink")
    g.add_argument('--input_size', action=Shape, type=int, default=D.input_size,
                   help='side of the square model input (pixels)')
    g.add_argument('--input_crop', action=Shape, type=int, nargs=4, default=None,
                   metavar=('TOP', 'BOTTOM', 'LEFT', 'RIGHT'),
                   help="fixed crop of every frame before any augmentation (default: the data set's, "
                        "e.g. voxceleb2: 0 160 32 192)")
    g.add_argument('--augment_on', choices=('workers', 'device'), default=D.augment_on,
                   help='workers: the loader workers augment (CPU); device: the workers only decode and '
                        'resize, the training device augments each batch (uint8 transfer; the published '
                        'order, RandAugment with timm\'s decisions on tensors)')
    g.add_argument('--num_sample', type=int, default=D.num_sample,
                   help='repeated sampling: decode each training video once and augment it this many '
                        'times (clips per step = batch_size x num_sample; the lr scales with '
                        'batch_size, as in the published code)')
    g.add_argument('--reader', type=str, default=D.reader, choices=READERS,
                   help='video decoder, frame-exact in all three (decord only where verified; other '
                        'files go to PyAV)')
    g.add_argument('--cache_gb', action=Runtime, type=float, default=D.cache_gb,
                   help='keep decoded videos in memory, up to this many GiB per loader process '
                        '(each worker holds its own copy; small data sets on CPU-only machines)')
    g.add_argument('--num_workers', action=Runtime, type=int, default=10,
                   help='data-loader worker processes per training process')
    add_switch(g, 'pin_mem', True, 'pin host memory of batches (faster copies to the GPU)',
               'do not pin host memory', action=Runtime)
    g.add_argument('--prefetch_factor', action=Runtime, type=int, default=4,
                   help='batches each worker loads ahead')


def _optimisation_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group('optimisation')
    g.add_argument('--batch_size', type=int, default=8, help='per process (GPU)')
    g.add_argument('--epochs', type=int, default=100,
                   help='training epochs')
    g.add_argument('--update_freq', type=int, default=1, help='gradient accumulation steps')
    g.add_argument('--opt', type=str, default='adamw',
                   help='optimizer (any timm optimizer name)')
    g.add_argument('--opt_eps', type=float, default=1e-8,
                   help='optimizer epsilon')
    g.add_argument('--opt_betas', type=float, nargs='+', default=None,
                   help='AdamW betas (default: 0.9 0.95 pre-training, 0.9 0.999 fine-tuning)')
    g.add_argument('--momentum', type=float, default=0.9,
                   help='SGD momentum (only for --opt sgd / momentum)')
    g.add_argument('--clip_grad', type=float, default=None, help='max grad norm (none: no clip)')
    g.add_argument('--weight_decay', type=float, default=0.05,
                   help='weight decay (not on norms, biases and tokens)')
    g.add_argument('--weight_decay_end', type=float, default=None,
                   help='cosine weight-decay schedule end value (default: constant)')
    g.add_argument('--lr', type=float, default=None, help='absolute lr (overrides --blr)')
    g.add_argument('--blr', type=float, default=None,
                   help='base lr: lr = blr * batch_size * update_freq * world_size / 256')
    g.add_argument('--min_lr', type=float, default=1e-6,
                   help='final lr of the cosine schedule; with --blr scaled by total batch / 256 '
                        'like the lr (the published code) unless --no_scale_min_lr')
    add_switch(g, 'scale_min_lr', True,
               'scale --min_lr by total batch / 256 when the lr comes from --blr', '--min_lr is absolute')
    g.add_argument('--warmup_lr', type=float, default=0.0,
                   help='lr at the start of the linear warm-up (the published code: 0)')
    g.add_argument('--warmup_epochs', type=float, default=5,
                   help='epochs of linear lr warm-up')
    g.add_argument('--warmup_steps', type=int, default=-1,
                   help='warm-up optimizer steps (overrides --warmup_epochs when > 0)')


def _runtime_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group('runtime')
    g.add_argument('--output_dir', action=Runtime, type=str, default='output',
                   help='checkpoints, log.jsonl, args.json, predictions and TensorBoard go here')
    g.add_argument('--log_dir', action=Runtime, type=str, default=None,
                   help='TensorBoard folder (default: output_dir/tb)')
    g.add_argument('--device', action=Runtime, type=str, default='cuda',
                   help='cuda | cuda:N | cpu (cuda falls back to the CPU when there is none)')
    g.add_argument('--seed', type=int, default=0,
                   help='seed of weights, data order, augmentation and subsets')
    g.add_argument('--debug', action=RuntimeTrue,
                   help='show the traceback of user errors (bad split line, unreadable checkpoint, ...)')
    g.add_argument('--resume', action=Runtime, type=str, default='', help='resume from this training checkpoint')
    add_switch(g, 'auto_resume', True, 'resume from output_dir/checkpoint-last.pth when present',
               'start afresh even when output_dir holds checkpoint-last.pth', action=Runtime)
    g.add_argument('--force_resume', action=RuntimeTrue,
                   help='resume even when the checkpoint was trained with other model, data or input flags')
    g.add_argument('--force_restart', action=RuntimeTrue,
                   help='start from epoch 0 although --output_dir holds checkpoints that cannot be '
                        'read (set aside as *.unreadable); without it such a folder is refused')
    g.add_argument('--start_epoch', action=Runtime, type=int, default=0,
                   help='first epoch (set by resume; rarely given by hand)')
    add_switch(g, 'save_ckpt', True, 'write checkpoints at all', action=Runtime)
    g.add_argument('--save_ckpt_freq', action=Runtime, type=int, default=10,
                   help='also keep checkpoint-<epoch>.pth every N epochs (checkpoint-last.pth is '
                        'rewritten every epoch)')
    g.add_argument('--amp', type=_amp_type, default='auto',
                   help='mixed precision: none | bf16 | fp16 (GradScaler) | auto (bf16 on GPUs '
                        'that support it, fp16 on other GPUs, none on CPU)')
    add_switch(g, 'compile', False, 'torch.compile the model')
    g.add_argument('--log_every', action=Runtime, type=int, default=20, help='console/TensorBoard interval (steps)')
    g.add_argument('--max_steps_per_epoch', type=int, default=None,
                   help='cap on optimizer steps per epoch (quick runs)')
    add_switch(g, 'find_unused_parameters', False,
               'DDP find_unused_parameters (only for models with unused branches)')
    g.add_argument('--local_rank', '--local-rank', action=Runtime, type=int, default=None,
                   help='ignored (torch.distributed.launch compatibility; use torchrun)')


def pretrain_parser() -> argparse.ArgumentParser:
    p = common_parser('SVFAP masked facial video autoencoder pre-training')
    p.set_defaults(model='pretrain_svfap_base_patch16_160', data_set='voxceleb2', batch_size=64,
                   blr=3e-4, min_lr=1e-5, opt_betas=[0.9, 0.95], epochs=100, warmup_epochs=5)
    g = p.add_argument_group('pre-training')
    g.add_argument('--mask_type', type=str, default='tube', choices=['tube'],
                   help='masking strategy (tube masking, Sec. 3.1.2)')
    g.add_argument('--mask_ratio', action=Shape, type=float, default=D.mask_ratio,
                   help='fraction of spatial positions masked in every slice (Sec. 3.1.2)')
    g.add_argument('--decoder_depth', action=Shape, type=int, default=None,
                   help='decoder blocks (default: the model config, 4 for base/small)')
    g.add_argument('--decoder_embed_dim', action=Shape, type=int, default=None,
                   help='decoder width (default: the model config)')
    g.add_argument('--decoder_num_heads', action=Shape, type=int, default=None,
                   help='decoder heads (default: the model config)')
    g.add_argument('--pretrain_scales', type=float, nargs='+', default=list(D.pretrain_scales),
                   help='multi-scale crop sizes as fractions of the short side (1.0 alone: no crop)')
    g.add_argument('--pretrain_fraction', action=Shape, type=float, default=D.pretrain_fraction,
                   help='random subset of the pre-training set (deterministic for --seed); the '
                        'epochs scale by 1 / fraction (paper Table I) unless --no_scale_epochs')
    add_switch(g, 'scale_epochs', True,
               'with --pretrain_fraction f < 1: epochs, warm-up epochs, save_ckpt_freq and vis_every '
               'x 1 / f, the same optimizer steps as the whole set (Table I)',
               '--epochs as given, whatever --pretrain_fraction')
    g.add_argument('--vis_every', action=Runtime, type=int, default=5,
                   help='reconstruction image to TensorBoard every N epochs (0: never)')
    add_switch(g, 'normalize_target', True,
               'per-patch normalised pixel targets (the published code; false is not supported)')
    return p


def finetune_parser() -> argparse.ArgumentParser:
    p = common_parser('SVFAP fine-tuning and evaluation')
    p.set_defaults(model='svfap_base_patch16_160', batch_size=24, blr=1e-3, opt_betas=[0.9, 0.999],
                   drop_path=0.1)
    g = p.add_argument_group('fine-tuning')
    g.add_argument('--nb_classes', action=Shape, type=int, default=None, help='outputs (default: the registry\'s)')
    g.add_argument('--task', action=Shape, type=str, default=None, choices=['classification', 'regression'],
                   help='only for a data_set outside the registry')
    g.add_argument('--loss', type=str, default='auto', choices=['auto', 'ce', 'mse'],
                   help='auto: cross-entropy for classification, MSE for regression')
    g.add_argument('--output_activation', type=str, default=None,
                   choices=['none', 'sigmoid', 'tanh', 'relu'],
                   help='head output activation (default: the registry\'s)')
    g.add_argument('--init_scale', type=float, default=0.001,
                   help="scale of the classification head's initial weights")
    g.add_argument('--fc_drop_rate', type=float, default=0.0,
                   help='dropout before the head')
    g.add_argument('--layer_decay_assignment', type=str, default='published', choices=['published', 'stage'],
                   help='layer ids of the temporal-pyramid convs and spatial-attention pools: published '
                        '(lr scale 1.0, as the published code) or stage (the first block of their stage)')
    g.add_argument('--layer_decay', type=float, default=0.75,
                   help='layer-wise lr decay factor (1: off)')
    add_switch(g, 'model_ema', False, 'keep an exponential moving average of the weights')
    g.add_argument('--model_ema_decay', type=float, default=0.9999,
                   help='EMA decay per optimizer step')
    add_switch(g, 'model_ema_eval', True, 'also test the EMA weights at the end')
    g.add_argument('--smoothing', type=float, default=0.1,
                   help='label smoothing (classification)')
    g.add_argument('--mixup', type=float, default=0.8,
                   help='mixup alpha (0: off)')
    g.add_argument('--cutmix', type=float, default=1.0,
                   help='cutmix alpha (0: off)')
    g.add_argument('--cutmix_minmax', type=float, nargs=2, default=None,
                   help='cutmix box area range MIN MAX (overrides --cutmix alpha)')
    g.add_argument('--mixup_prob', type=float, default=1.0,
                   help='probability of applying mixup or cutmix to a batch')
    g.add_argument('--mixup_switch_prob', type=float, default=0.5,
                   help='probability of cutmix instead of mixup when both are on')
    g.add_argument('--mixup_mode', type=str, default='batch', choices=['batch', 'pair', 'elem'],
                   help='mix per batch, per pair or per element')
    g.add_argument('--aa', type=str, default=D.aa,
                   help='RandAugment config ("none": off)')
    g.add_argument('--train_crop_scale', type=float, nargs=2, default=list(D.train_crop_scale),
                   metavar=('MIN', 'MAX'), help='area range of the training random resized crop')
    g.add_argument('--resize_mode', action=Shape, choices=RESIZE_MODES, default=D.resize_mode,
                   help='squash: every frame to input_size x input_size, aspect not kept (the '
                        'published code; the two test crops are then the same frame); short_side: '
                        'keep the aspect, crops along the long side')
    g.add_argument('--aug_order', choices=AUG_ORDERS, default=D.aug_order,
                   help='published: RandAugment on the full frame (fill 128), then the random '
                        'resized crop; crop_first: crop from the native frame, then RandAugment '
                        '(ImageNet-mean fill)')
    g.add_argument('--reprob', type=float, default=D.reprob,
                   help='random-erasing probability')
    g.add_argument('--remode', type=str, default=D.remode,
                   help='random-erasing fill (pixel | rand | const)')
    g.add_argument('--recount', type=int, default=D.recount,
                   help='random-erasing boxes per clip (at most)')
    g.add_argument('--short_side_size', type=int, default=None, help='eval resize (default input_size)')
    g.add_argument('--test_num_segment', type=int, default=D.test_num_segment,
                   help='test clips per video, spread uniformly in time (Sec. 4.1)')
    g.add_argument('--test_num_crop', type=int, default=D.test_num_crop,
                   help='test spatial crops per clip')
    g.add_argument('--train_fraction', action=Shape, type=float, default=D.train_fraction,
                   help='few-shot subset of the training split (stratified, deterministic)')
    add_switch(g, 'skip_broken_eval', False,
               'leave unreadable evaluation videos out (listed in the log)')
    g.add_argument('--eval', action=RuntimeTrue, help='only test (weights from --finetune/--resume)')
    add_switch(g, 'dist_eval', True, 'shard evaluation over processes (padding duplicates are removed)',
               'evaluate on every process in full (no sharding)', action=Runtime)
    g.add_argument('--eval_batch_size', action=Runtime, type=int, default=None,
                   help='evaluation batch (default: --batch_size)')
    g.add_argument('--val_metric', type=str, default=None,
                   help='metric that selects checkpoint-best.pth (default: the registry\'s first)')
    add_switch(g, 'save_predictions', True, 'write per-view and per-video prediction CSVs', action=Runtime)
    g.add_argument('--test_every_epoch', action='store_true',
                   help='also test after every epoch and keep the best epoch on test, as the '
                        'published logs do: OPTIMISTIC (model selection on test), labelled so; the '
                        'result stays the last epoch')
    return p


def parse_args(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None):
    args = parse_args_with_config(parser, argv)
    import timm
    import models  # noqa: F401  (registers the SVFAP names with timm)
    if getattr(args, 'model', None) and not timm.is_model(args.model):
        known = ', '.join(timm.list_models('svfap_*'))
        parser.error(f'--model {args.model}: unknown model (SVFAP models: {known})')
    return args


class FinalArgs(argparse.Namespace):
    """The finalized flags (:func:`finalize_args`): read-only, so every derived value is made in
    that one step and what a run reads is what ``args.json`` records."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def __setattr__(self, name, value):
        self.__delattr__(name)

    def __delattr__(self, name):
        raise AttributeError(f'the finalized flags are read-only (--{name}): derive values in '
                             f'cli.args.finalize_args')


def fill_task_from_registry(args) -> None:
    """Fine-tuning: task, outputs and output activation from the data set's registry entry (flags
    override); the evaluation short side; no mixup / cutmix / label smoothing for regression."""
    spec = resolve_task(args.data_set, args.task, args.nb_classes)
    info = spec.info
    if info is not None and info.task not in ('classification', 'regression'):
        raise ValueError(f'{args.data_set} is a {info.task} dataset: use run_pretrain.py')
    args.task = spec.task
    if args.nb_classes is None:
        args.nb_classes = spec.num_outputs
    elif info is not None and args.nb_classes != info.num_outputs:
        print(f'| warning: --nb_classes {args.nb_classes} differs from the registry\'s '
              f'{info.num_outputs} for {info.name}; metrics use the registry\'s label names only '
              f'when the counts match')
    if args.output_activation is None:
        args.output_activation = spec.output_activation
    if args.short_side_size is None:
        args.short_side_size = args.input_size
    if args.task == 'regression' and (args.mixup > 0 or args.cutmix > 0):
        print('| regression: mixup / cutmix disabled')
        args.mixup, args.cutmix, args.cutmix_minmax = 0.0, 0.0, None
    if args.task == 'regression':
        args.smoothing = 0.0


def scale_epochs_to_fraction(args) -> None:
    """Pre-training, paper Sec. 4.3, Table I: a subset of fraction f is pre-trained for epochs / f,
    so it gets as many optimizer steps as the whole set (100 epochs at 100 %, 1000 at 10 %).
    Warm-up, checkpoint and picture intervals scale alike. Said loudly either way."""
    f = float(args.pretrain_fraction)
    if f >= 1.0:
        return
    if not args.scale_epochs:
        print(f'| WARNING: --pretrain_fraction {f:g} with --no_scale_epochs: {args.epochs} epochs of '
              f'the subset, {f:.0%} of the whole set\'s steps (Table I scales epochs by 1/{f:g})', flush=True)
        return
    before = (args.epochs, args.warmup_epochs, args.save_ckpt_freq, args.vis_every)
    args.epochs = int(round(args.epochs / f))
    args.warmup_epochs = args.warmup_epochs / f
    args.save_ckpt_freq = max(1, int(round(args.save_ckpt_freq / f)))
    args.vis_every = int(round(args.vis_every / f))
    print(f'| --pretrain_fraction {f:g}: epochs {before[0]} -> {args.epochs}, warm-up {before[1]:g} -> '
          f'{args.warmup_epochs:g}, save_ckpt_freq {before[2]} -> {args.save_ckpt_freq}, vis_every '
          f'{before[3]} -> {args.vis_every} (paper Table I: the same steps as the whole set; '
          f'--no_scale_epochs to keep them)', flush=True)


def _keep_schedule_ends_below_lr(args) -> None:
    """A scaled lr below the absolute ``--min_lr`` (a small total batch) would make the cosine
    schedule climb to min_lr; clamp min_lr (and the warm-up start) to the lr, with a warning
    (printed by the first process)."""
    for flag in ('min_lr', 'warmup_lr'):
        v = getattr(args, flag, None)
        if v is not None and v > args.lr:
            if args.rank == 0:
                print(f'| WARNING: --{flag} {v:.3g} is above the lr {args.lr:.3g} (total batch '
                      f'{args.total_batch_size}): the schedule would rise; --{flag} set to '
                      f'{args.lr:.3g}', flush=True)
            setattr(args, flag, args.lr)


def finalize_args(args, env, entry_step: Optional[Callable] = None) -> FinalArgs:
    """The one step from parsed flags to the values a run reads, returned read-only (the parsed
    ``args`` are left as they are). ``env``: the process's place in the run
    (``engine.distributed.DistEnv``: device, rank, world size); ``entry_step``: the entry point's
    own derivations, run first (:func:`fill_task_from_registry`, :func:`scale_epochs_to_fraction`).
    Then the shared ones: amp mode, absolute lr, log dir, list-valued flags."""
    args = argparse.Namespace(**vars(args))
    args.device, args.distributed = env.device, env.distributed
    args.rank, args.world_size, args.gpu = env.rank, env.world_size, env.local_rank
    if entry_step is not None:
        entry_step(args)
    args.amp = resolve_amp(args.amp, args.device)
    total_batch = args.batch_size * args.update_freq * args.world_size
    args.total_batch_size = total_batch
    if args.lr is None:
        if args.blr is None:
            raise ValueError('give --lr or --blr')
        args.lr = args.blr * total_batch / 256.0
        if getattr(args, 'scale_min_lr', False):  # the published code scales min_lr alike
            args.base_min_lr = args.min_lr
            args.min_lr = args.min_lr * total_batch / 256.0
    _keep_schedule_ends_below_lr(args)
    if args.log_dir is None and args.output_dir:
        args.log_dir = os.path.join(args.output_dir, 'tb')
    if args.opt_betas is not None:
        args.opt_betas = [float(b) for b in args.opt_betas]
    if isinstance(args.num_bottleneck_tokens, list) and len(args.num_bottleneck_tokens) == 1:
        args.num_bottleneck_tokens = args.num_bottleneck_tokens[0]
    if args.update_freq < 1:
        raise ValueError('--update_freq must be >= 1')
    return FinalArgs(**vars(args))

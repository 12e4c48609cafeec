"""Rebuilding a trained model from a checkpoint for the "use a trained model" commands (predict,
extract_features, visualize_*): the common model flags, the device, and the model itself (ours:
``args`` dict in the checkpoint; the authors': argparse ``Namespace`` or ``--model``).

Checkpoints are always read through :func:`models.checkpoint.load_checkpoint` (``weights_only``).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch


import models  # noqa: F401  (registers the SVFAP names with timm)
from datasets.registry import CLASSIFICATION, REGRESSION, get_dataset_info
from datasets.transforms import EvalTransform
from datasets.video_reader import DEFAULT_READER, READERS
from models.checkpoint import CheckpointError, extract_state_dict, load_checkpoint, read_checkpoint


# architecture fields taken from a checkpoint's ``args`` when present
_ARCH_KEYS = ('stage_depths', 'num_bottleneck_tokens', 'temporal_downsample', 'spatial_bottleneck',
              'embed_dim', 'num_heads', 'tubelet_size')
_DECODER_KEYS = ('decoder_depth', 'decoder_embed_dim', 'decoder_num_heads')
_SIZE_BY_WIDTH = {512: 'base', 384: 'small', 96: 'tiny'}


# ----------------------------------------------------------------------------------------------
# command-line flags shared by the four commands

def add_model_args(p: argparse.ArgumentParser, data: bool = True) -> None:
    g = p.add_argument_group('model')
    g.add_argument('--checkpoint', required=True,
                   help="our checkpoint (model + args) or one of the authors' released files")
    g.add_argument('--model', default=None,
                   help='timm name (default: the checkpoint\'s args); needed for the authors\' files '
                        'whose args name another model')
    g.add_argument('--data_set', default=None,
                   help='registry name for label names / task (default: the checkpoint\'s args)')
    g.add_argument('--num_frames', type=int, default=None, help='frames per clip (default: checkpoint)')
    g.add_argument('--sampling_rate', type=int, default=None, help='temporal stride (default: checkpoint)')
    g.add_argument('--input_size', type=int, default=None, help='model input side (default: checkpoint)')
    g.add_argument('--short_side_size', type=int, default=None,
                   help='frames are resized to this short side before the crop (default: input_size)')
    g.add_argument('--input_crop', type=int, nargs=4, default=None, metavar=('TOP', 'BOTTOM', 'LEFT', 'RIGHT'),
                   help='fixed crop before resizing, e.g. 0 160 32 192 for VoxCeleb2 frames (default: none)')
    g.add_argument('--device', default='auto', help='auto | cpu | cuda | cuda:N')
    if data:
        g.add_argument('--reader', default=DEFAULT_READER, choices=READERS,
                       help='video reader (pyav: frame-exact; decord, opencv)')
        g.add_argument('--batch_size', type=int, default=8, help='clips per forward pass')


def one_video_parser(description: str):
    """The parser of a one-video picture tool (the visualisers): ``--video``, the model flags, and
    a 'picture' group holding ``--start``. Returns ``(parser, picture_group)``."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--video', required=True, help='a video file or frame folder')
    add_model_args(p)
    g = p.add_argument_group('picture')
    g.add_argument('--start', type=int, default=None, help='first frame of the clip (default: centred clip)')
    return p, g


def resolve_device(name: str) -> torch.device:
    name = (name or 'auto').lower()
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name.startswith('cuda') and not torch.cuda.is_available():
        print('CUDA is not available: running on CPU', file=sys.stderr)
        return torch.device('cpu')
    return torch.device(name)


# ----------------------------------------------------------------------------------------------
# model from a checkpoint

@dataclass
class LoadedModel:
    model: torch.nn.Module
    model_name: str
    kind: str                      # 'finetune' | 'pretrain' (the built model)
    checkpoint_kind: str           # 'finetune' | 'pretrain' (what the file holds)
    data_set: Optional[str]
    task: str                      # 'classification' | 'regression' | 'features'
    label_names: Tuple[str, ...]
    num_frames: int
    sampling_rate: int
    input_size: int
    short_side_size: int
    input_crop: Optional[Tuple[int, int, int, int]]
    tubelet_size: int = 2
    patch_size: int = 16
    mask_ratio: float = 0.9
    notes: List[str] = field(default_factory=list)

    @property
    def encoder(self):
        """The TPSBT encoder (the classifier itself, or the pre-training model's ``encoder``)."""
        return self.model.encoder if self.kind == 'pretrain' else self.model

    def eval_transform(self, num_crops: int = 1) -> EvalTransform:
        return EvalTransform(self.input_size, self.short_side_size, num_crops, input_crop=self.input_crop)


def _ckpt_args(obj) -> Dict:
    a = obj.get('args') if isinstance(obj, dict) else None
    if a is None:
        return {}
    if isinstance(a, argparse.Namespace):
        return vars(a)
    return dict(a) if isinstance(a, dict) else {}


def _checkpoint_kind(state: Dict[str, torch.Tensor]) -> str:
    if any(k.startswith(('decoder.', 'encoder_to_decoder.', 'mask_token')) for k in state):
        return 'pretrain'
    if any(k.startswith('encoder.') for k in state) and 'head.weight' not in state:
        return 'pretrain'
    return 'finetune'


def _size_from_state(state: Dict[str, torch.Tensor]) -> Optional[str]:
    for key in ('patch_embed.proj.weight', 'encoder.patch_embed.proj.weight'):
        if key in state:
            return _SIZE_BY_WIDTH.get(int(state[key].shape[0]))
    return None


def _registered(name: str) -> bool:
    import timm
    return bool(name) and name in timm.list_models(name)


def _model_name(requested: Optional[str], ckpt_name: Optional[str], state, want: str) -> Tuple[str, List[str]]:
    """The timm name of the model to build: ``--model`` > checkpoint args > inferred from widths;
    then switched to the fine-tuning / pre-training variant ``want`` asks for."""
    notes = []
    name = requested or ckpt_name
    if name and not _registered(name.replace('pretrain_', '', 1)):
        size = _size_from_state(state)
        if size is None:
            raise CheckpointError(f'the checkpoint names model {name!r}, which is not an SVFAP model; '
                                  f'give --model (e.g. svfap_base_patch16_160)')
        notes.append(f'checkpoint names model {name!r}; using svfap_{size}_patch16_160 (from its width)')
        name = f'svfap_{size}_patch16_160'
    if not name:
        size = _size_from_state(state)
        if size is None:
            raise CheckpointError('the checkpoint names no model and its width is not a registered size; '
                                  'give --model')
        name = f'svfap_{size}_patch16_160'
        notes.append(f'no model name in the checkpoint; using {name} (from its width)')
    base = name[len('pretrain_'):] if name.startswith('pretrain_') else name
    return (('pretrain_' + base) if want == 'pretrain' else base), notes


def _first(*values):
    for v in values:
        if v is not None:
            return v
    return None


def _tuple_or_int(v):
    if isinstance(v, (list, tuple)):
        return v[0] if len(v) == 1 else tuple(int(x) for x in v)
    return v


def _decoder_or_head(build_kind: str, ckind: str, state: Dict, cargs: Dict, info, path: str):
    """``(create_model keywords, task, label names)`` of what sits on the encoder: the decoder as
    the checkpoint recorded it, the fine-tuned head (its outputs, checked against the data set's
    labels), or nothing (a pre-training file in the fine-tuning model: the encoder only)."""
    if build_kind == 'pretrain':
        return {k: int(cargs[k]) for k in _DECODER_KEYS if cargs.get(k) is not None}, 'features', ()
    if not (ckind == 'finetune' and 'head.weight' in state):
        return {'num_classes': 0}, 'features', ()
    n_out = int(state['head.weight'].shape[0])
    if info is not None and info.task in (CLASSIFICATION, REGRESSION):
        if info.num_outputs != n_out:
            raise CheckpointError(f'{path}: the head has {n_out} outputs but data set {info.name!r} has '
                                  f'{info.num_outputs} ({", ".join(info.label_names)}); give the right '
                                  f'--data_set')
        task, label_names = info.task, tuple(info.label_names)
    else:
        task = str(cargs.get('task') or CLASSIFICATION)
        label_names = tuple(f'class_{i}' if task == CLASSIFICATION else f'output_{i}' for i in range(n_out))
    act = cargs.get('output_activation') or (info.output_activation if info is not None else 'none')
    return {'num_classes': n_out, 'output_activation': act or 'none'}, task, label_names


def load_model(args, want: str = 'classifier', device: Optional[torch.device] = None,
               verbose: bool = True) -> LoadedModel:
    """Build the model a command needs and load ``args.checkpoint`` into it.

    want: 'classifier' (fine-tuned head required: predict), 'features' (classifier; a pre-training
    checkpoint gives the encoder only, no head), 'pretrain' (masked autoencoder with its decoder:
    reconstruction), 'encoder' (either file; the TPSBT encoder is used: bottleneck maps).
    """
    import timm
    path = args.checkpoint
    obj = read_checkpoint(path)
    state = extract_state_dict(obj, path)
    cargs = _ckpt_args(obj)
    ckind = _checkpoint_kind(state)
    if want == 'classifier' and ckind == 'pretrain':
        raise CheckpointError(f'{path} is a pre-training checkpoint (no classification head); predict '
                              f'needs a fine-tuned one (use tools.extract_features for its encoder)')
    if want == 'pretrain' and ckind != 'pretrain':
        raise CheckpointError(f'{path} is a fine-tuned checkpoint without a decoder; reconstruction needs '
                              f'a pre-training checkpoint')
    build_kind = 'pretrain' if want == 'pretrain' or (want == 'encoder' and ckind == 'pretrain') else 'finetune'
    name, notes = _model_name(getattr(args, 'model', None), cargs.get('model'), state, build_kind)

    data_set = _first(getattr(args, 'data_set', None), cargs.get('data_set'))
    info = None
    if data_set:
        try:
            info = get_dataset_info(str(data_set))
        except KeyError:
            notes.append(f'data set {data_set!r} is not in the registry: generic label names')
    input_size = int(_first(getattr(args, 'input_size', None), cargs.get('input_size'), 160))
    num_frames = int(_first(getattr(args, 'num_frames', None), cargs.get('num_frames'), 16))
    sampling_rate = int(_first(getattr(args, 'sampling_rate', None), cargs.get('sampling_rate'), 4))
    short_side = int(_first(getattr(args, 'short_side_size', None), cargs.get('short_side_size'), input_size))
    # a fixed crop (VoxCeleb2's rows 0-160, cols 32-192) only when asked for: user videos are not
    # laid out like the training set, so neither the registry's nor the checkpoint's is implied
    crop = getattr(args, 'input_crop', None)
    crop = tuple(int(c) for c in crop) if crop is not None else None

    kw = dict(img_size=input_size, all_frames=num_frames)
    for key in _ARCH_KEYS:
        if cargs.get(key) is not None:
            kw[key] = _tuple_or_int(cargs[key])
    top, task, label_names = _decoder_or_head(build_kind, ckind, state, cargs, info, path)
    kw.update(top)

    model = timm.create_model(name, pretrained=False, **kw)
    report_ = load_checkpoint(model, obj, verbose=False, strict=True)
    report_.source = path
    if verbose:
        print(f'model {name}: loaded {len(report_.loaded)} tensors from {path}'
              + (f' ({len(report_.skipped)} checkpoint keys not used)' if report_.skipped else ''),
              file=sys.stderr)
    if want in ('classifier', 'features') and ckind == 'finetune':
        untrained = [k for k in report_.initialised if k.startswith(('head.', 'fc_norm.'))]
        if untrained:
            raise CheckpointError(f'{path}: {", ".join(untrained)} not in the checkpoint (or of another shape): '
                                  f'the head would be untrained')
    device = device or torch.device('cpu')
    model.to(device).eval()
    lm = LoadedModel(model=model, model_name=name, kind=build_kind, checkpoint_kind=ckind,
                     data_set=info.name if info is not None else data_set, task=task, label_names=label_names,
                     num_frames=num_frames, sampling_rate=sampling_rate, input_size=input_size,
                     short_side_size=short_side, input_crop=crop,
                     tubelet_size=int(kw.get('tubelet_size', 2)),
                     mask_ratio=float(_first(cargs.get('mask_ratio'), 0.9)), notes=notes)
    for n in notes:
        print(f'note: {n}', file=sys.stderr)
    return lm



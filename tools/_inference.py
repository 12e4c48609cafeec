"""Shared code of the "use a trained model" commands (predict, extract_features, visualize_*).

One place for: the common command-line flags, rebuilding a model from a checkpoint (ours: ``args``
dict; the authors': argparse ``Namespace`` or ``--model``), finding the inputs (files, frame
folders, directories searched recursively), checking a video before use (one ``path: reason``
line per bad input), the sliding windows of ``predict``, the face-crop step, and the picture grid
the two visualisations draw.

Checkpoints are always read through :func:`models.checkpoint.load_checkpoint` (``weights_only``).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import models  # noqa: E402,F401  (registers the SVFAP names with timm)
from datasets.registry import CLASSIFICATION, REGRESSION, get_dataset_info  # noqa: E402
from datasets.sampling import clip_indices, clip_span  # noqa: E402
from datasets.transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform  # noqa: E402
from datasets.video_reader import IMAGE_EXTENSIONS, VideoReadError, natural_key, open_video  # noqa: E402
from models.checkpoint import CheckpointError, extract_state_dict, load_checkpoint, read_checkpoint  # noqa: E402

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.flv', '.mkv', '.mov', '.webm', '.mpg', '.mpeg', '.m4v', '.wmv')

# architecture fields taken from a checkpoint's ``args`` when present
_ARCH_KEYS = ('stage_depths', 'num_bottleneck_tokens', 'temporal_downsample', 'spatial_bottleneck',
              'embed_dim', 'num_heads', 'tubelet_size')
_DECODER_KEYS = ('decoder_depth', 'decoder_embed_dim', 'decoder_num_heads')
_SIZE_BY_WIDTH = {512: 'base', 384: 'small', 96: 'tiny'}


class InputError(RuntimeError):
    """A bad input file: reported as one ``path: reason`` line, the other inputs go on."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f'{path}: {reason}')


def report(path: str, reason: str, stream=None) -> None:
    """The one-line message for an input that was skipped."""
    # written directly (not print): under torchrun, print is silenced on ranks other than 0
    stream = stream or sys.stderr
    stream.write(f'{path}: {reason}\n')
    stream.flush()


def run_single_input(run, args) -> int:
    """Exit code of a one-video tool: 0 done, 1 the input could not be used (one line naming it),
    2 the checkpoint could not be used."""
    try:
        run(args)
    except CheckpointError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except InputError as e:
        report(e.path, e.reason)
        return 1
    return 0


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
        g.add_argument('--reader', default='decord', choices=['decord', 'opencv'])
        g.add_argument('--batch_size', type=int, default=8, help='clips per forward pass')


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
    task, label_names = 'features', ()
    if build_kind == 'pretrain':
        for key in _DECODER_KEYS:
            if cargs.get(key) is not None:
                kw[key] = int(cargs[key])
    elif ckind == 'finetune' and 'head.weight' in state:
        n_out = int(state['head.weight'].shape[0])
        kw['num_classes'] = n_out
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
        kw['output_activation'] = act or 'none'
    else:  # pre-training file into the fine-tuning model: encoder only
        kw['num_classes'] = 0

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


# ----------------------------------------------------------------------------------------------
# inputs

def has_frames(folder: str) -> bool:
    try:
        return any(n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith('.') for n in os.listdir(folder))
    except OSError:
        return False


def collect_inputs(paths: Sequence[str]) -> List[Tuple[str, Optional[str]]]:
    """Expand the command-line inputs into clips: ``[(path, error or None)]``.

    A file is a video (any extension when named explicitly). A folder holding images is one
    frame-folder clip; any other folder is searched recursively for video files (by extension) and
    frame folders. A missing path, or a folder with neither, is kept with its error.
    """
    out: List[Tuple[str, Optional[str]]] = []
    for p in paths:
        if not os.path.exists(p):
            out.append((p, 'no such file or folder'))
        elif os.path.isfile(p):
            out.append((p, None))
        elif has_frames(p):
            out.append((p, None))
        else:
            found = []
            for dirpath, dirs, files in os.walk(p):
                dirs.sort(key=natural_key)
                for d in dirs:
                    full = os.path.join(dirpath, d)
                    if has_frames(full):
                        found.append(full)
                found += [os.path.join(dirpath, f) for f in sorted(files, key=natural_key)
                          if f.lower().endswith(VIDEO_EXTENSIONS) and not f.startswith('.')]
            if found:
                out += [(f, None) for f in sorted(found, key=natural_key)]
            else:
                out.append((p, 'empty folder: no video files and no jpg/png frames'))
    return out


@dataclass
class VideoInfo:
    path: str
    num_frames: int
    height: int
    width: int
    fps: Optional[float]
    notes: List[str]


def _fps(path: str) -> Optional[float]:
    if os.path.isdir(path):
        return None
    import cv2
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return float(fps) if fps and np.isfinite(fps) and 1 <= fps <= 1000 else None


class native_stderr_silenced:
    """Send file descriptor 2 to /dev/null for a while: FFmpeg / decord print their own errors
    ("moov atom not found") straight to it; we report bad inputs ourselves, in one line."""

    def __enter__(self):
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        return False


def inspect_video(path: str, reader: str = 'decord', input_size: int = 160) -> VideoInfo:
    """Open a clip and decode its first and last frame. Raises :class:`InputError` (with the reason)
    when it cannot be used; notes (not errors) for grayscale and for frames smaller than the model
    input (they are upscaled)."""
    try:
        with native_stderr_silenced():
            v = open_video(path, reader)
            try:
                n = int(v.num_frames)
                if n <= 0:
                    raise InputError(path, 'zero frames')
                frames = v.get([0, n - 1] if n > 1 else [0])
            finally:
                v.close()
    except VideoReadError as e:
        reason = e.reason
        if 'no such file' in reason:
            reason = 'no such file or folder'
        elif 'cannot open' in reason or 'decodes no frames' in reason or '0 frames' in reason:
            reason = f'not a readable video (zero frames or not a video file): {reason}'
        raise InputError(path, reason) from e
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - anything else a decoder throws is a bad input
        raise InputError(path, f'cannot read it: {type(e).__name__}: {e}') from e
    _, h, w, _ = frames.shape
    notes = []
    f0 = frames[0].astype(np.int16)
    if np.abs(f0[..., 0] - f0[..., 1]).max() <= 2 and np.abs(f0[..., 1] - f0[..., 2]).max() <= 2:
        notes.append('grayscale: the channel is repeated 3 times')
    if min(h, w) < input_size:
        notes.append(f'small frames {w}x{h} upscaled to short side {input_size}: predictions on so little '
                     f'detail are unreliable')
    return VideoInfo(path, n, h, w, _fps(path), notes)


# ----------------------------------------------------------------------------------------------
# windows over a video (predict)

def window_starts(video_len: int, num_frames: int, sampling_rate: int, stride: int) -> List[int]:
    """First frames of the sliding windows of ``predict``.

    A window is one clip: ``num_frames`` frames at exactly ``sampling_rate`` apart, spanning
    ``(num_frames - 1) * sampling_rate + 1`` frames. Starts are ``0, stride, 2 * stride, ...`` while the
    clip fits; if the last one does not reach the end, one more window ending at the last frame is
    added (so the tail is covered). A video shorter than one span gets one window at 0 whose
    indices past the end repeat the last frame (the dataset's clamping).
    """
    if video_len < 1:
        raise ValueError('video has no frames')
    if stride < 1:
        raise ValueError('window stride must be >= 1')
    span = clip_span(num_frames, sampling_rate)
    last = video_len - span
    if last <= 0:
        return [0]
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


def num_windows(video_len: int, num_frames: int, sampling_rate: int, stride: int) -> int:
    """``len(window_starts(...))`` in closed form: 1 for short videos, else ceil((L - span) / stride) + 1."""
    span = clip_span(num_frames, sampling_rate)
    if video_len <= span:
        return 1
    return -(-(video_len - span) // stride) + 1


def read_windows(path: str, reader: str, starts: Sequence[int], num_frames: int, sampling_rate: int,
                 video_len: int, max_frames: int = 512):
    """Yield ``(window_index, frames uint8 (T, H, W, 3))`` for every start, reading several windows'
    frames in one decoder call (at most ``max_frames`` distinct frames at a time)."""
    v = open_video(path, reader)
    try:
        group: List[int] = []
        wanted: set = set()

        def flush():
            idx = sorted(wanted)
            frames = v.get(idx)
            pos = {f: i for i, f in enumerate(idx)}
            for w in group:
                ci = clip_indices(starts[w], num_frames, sampling_rate, video_len)
                yield w, frames[[pos[int(i)] for i in ci]]

        for w in range(len(starts)):
            ci = set(int(i) for i in clip_indices(starts[w], num_frames, sampling_rate, video_len))
            if group and len(wanted | ci) > max_frames:
                yield from flush()
                group, wanted = [], set()
            group.append(w)
            wanted |= ci
        if group:
            yield from flush()
    finally:
        v.close()


def read_clip(path: str, reader: str, indices: Sequence[int]) -> np.ndarray:
    v = open_video(path, reader)
    try:
        return v.get(indices)
    finally:
        v.close()


def centre_clip_indices(video_len: int, num_frames: int, sampling_rate: int, start: Optional[int] = None):
    """One clip: centred in the video (or from ``start``), exact stride, clamped when short."""
    span = clip_span(num_frames, sampling_rate)
    if start is None:
        start = max(video_len - span, 0) // 2
    return clip_indices(int(start), num_frames, sampling_rate, video_len)


# ----------------------------------------------------------------------------------------------
# face crop (predict --face_crop)

class FaceCropper:
    """Crops each input's face into a temporary mp4 (``preprocess.face_crop``); ``fallback='center'``
    uses a centred square when no face is found, otherwise that file is reported and skipped."""

    def __init__(self, size: int, fallback: Optional[str] = None, min_face: float = 0.1, detect_every: int = 5):
        self.size, self.fallback, self.min_face, self.detect_every = size, fallback, min_face, detect_every
        self._tmp = tempfile.TemporaryDirectory(prefix='svfap_face_')
        self._n = 0

    def __call__(self, path: str) -> Tuple[str, str]:
        """Returns ``(cropped video path, message)``; raises InputError when no face is found."""
        from preprocess.face_crop import NoFaceError, crop_face_video
        self._n += 1
        out = os.path.join(self._tmp.name, f'{self._n:06d}.mp4')
        try:
            info = crop_face_video(path, out, size=self.size, detect_every=self.detect_every,
                                   fallback=self.fallback, min_face=self.min_face)
        except NoFaceError:
            raise InputError(path, 'no face found (use --face_fallback center to use a centre crop instead)')
        except Exception as e:  # noqa: BLE001
            raise InputError(path, f'face crop failed: {e}')
        return out, info['message']

    def cleanup(self):
        self._tmp.cleanup()


# ----------------------------------------------------------------------------------------------
# pictures

def to_uint8(img: np.ndarray) -> np.ndarray:
    """float [0, 1] (H, W, 3) -> uint8."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def denormalise_clip(clip: torch.Tensor) -> np.ndarray:
    """Normalised (3, T, H, W) -> float (T, H, W, 3) in [0, 1]."""
    m = torch.tensor(IMAGENET_MEAN, dtype=clip.dtype).view(3, 1, 1, 1)
    s = torch.tensor(IMAGENET_STD, dtype=clip.dtype).view(3, 1, 1, 1)
    return (clip.cpu() * s + m).clamp(0, 1).permute(1, 2, 3, 0).numpy()


@dataclass
class GridLayout:
    """Pixel layout of :func:`make_grid`: cell (r, c) is ``img[top(r):top(r)+cell_h, left(c):left(c)+cell_w]``."""
    rows: int
    cols: int
    cell_h: int
    cell_w: int
    header_h: int
    label_w: int
    col_label_h: int
    gap: int = 2

    def top(self, r: int) -> int:
        return self.header_h + self.col_label_h + r * (self.cell_h + self.gap)

    def left(self, c: int) -> int:
        return self.label_w + c * (self.cell_w + self.gap)

    @property
    def shape(self) -> Tuple[int, int, int]:
        return (self.top(self.rows), self.left(self.cols), 3)


def _wrap(text: str, width_px: int, scale: float) -> List[str]:
    import cv2
    lines = []
    for para in text.split('\n'):
        words, cur = para.split(' '), ''
        for w in words:
            trial = (cur + ' ' + w).strip()
            if cur and cv2.getTextSize(trial, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > width_px:
                lines.append(cur)
                cur = w
            else:
                cur = trial
        lines.append(cur)
    return lines


def make_grid(cells: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str] = (),
              col_labels: Sequence[str] = (), caption: str = '', scale: int = 1) -> Tuple[np.ndarray, GridLayout]:
    """Compose uint8 RGB cells (all the same size) into one picture with a caption on top, row labels
    on the left and column labels above. Cells are enlarged ``scale`` x by pixel repetition (so pixel
    values are kept exactly). Returns ``(image uint8 (H, W, 3) RGB, layout)``."""
    import cv2
    rows, cols = len(cells), max(len(r) for r in cells)
    ch, cw = cells[0][0].shape[0] * scale, cells[0][0].shape[1] * scale
    font, fs = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    line_h = 14
    label_w = (max(cv2.getTextSize(s, font, fs, 1)[0][0] for s in row_labels) + 8) if row_labels else 0
    col_label_h = line_h + 4 if col_labels else 0
    gap = 2
    total_w = label_w + cols * (cw + gap)
    lines = _wrap(caption, max(total_w - 8, 100), fs) if caption else []
    header_h = len(lines) * line_h + (6 if lines else 0)
    lay = GridLayout(rows, cols, ch, cw, header_h, label_w, col_label_h, gap)
    img = np.full(lay.shape, 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(img, line, (4, 4 + (i + 1) * line_h - 3), font, fs, (0, 0, 0), 1, cv2.LINE_AA)
    for c, s in enumerate(col_labels):
        cv2.putText(img, s, (lay.left(c) + 2, header_h + line_h), font, fs, (0, 0, 0), 1, cv2.LINE_AA)
    for r, row in enumerate(cells):
        if r < len(row_labels):
            cv2.putText(img, row_labels[r], (3, lay.top(r) + ch // 2 + 4), font, fs, (0, 0, 0), 1, cv2.LINE_AA)
        for c, cell in enumerate(row):
            big = np.repeat(np.repeat(cell, scale, axis=0), scale, axis=1) if scale > 1 else cell
            img[lay.top(r):lay.top(r) + ch, lay.left(c):lay.left(c) + cw] = big
    return img, lay


def auto_scale(cell_side: int, target: int = 128) -> int:
    """Integer enlargement so that a cell is at least about ``target`` pixels."""
    return max(1, int(np.ceil(target / max(cell_side, 1))))


def save_png(path: str, img_rgb: np.ndarray) -> None:
    import cv2
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    if not cv2.imwrite(path, np.ascontiguousarray(img_rgb[:, :, ::-1])):
        raise OSError(f'cannot write {path}')


def load_input_clip(lm: LoadedModel, path: str, reader: str, start: Optional[int] = None):
    """One centred (or ``start``) test clip of ``path`` for the visualisations:
    ``(clip (1, 3, T, S, S) normalised, frame indices, VideoInfo)``. Raises InputError."""
    info = inspect_video(path, reader, lm.input_size)
    for n in info.notes:
        report(path, n)
    idx = centre_clip_indices(info.num_frames, lm.num_frames, lm.sampling_rate, start)
    try:
        frames = read_clip(path, reader, idx)
    except VideoReadError as e:
        raise InputError(path, e.reason) from e
    return lm.eval_transform(1)(frames, 0).unsqueeze(0), idx, info


def quiet_warnings():
    warnings.filterwarnings('ignore', category=UserWarning, module='torch')

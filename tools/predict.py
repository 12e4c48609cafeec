"""Predict facial expressions (or regression targets) for videos with a fine-tuned SVFAP model.

    python -m tools.predict --checkpoint output/dfew/checkpoint-best.pth clip.mp4 more_videos/
    python -m tools.predict --checkpoint checkpoints/svfap_base_dfew_fold1.pth --model svfap_base_patch16_160 \
        --data_set dfew --face_crop --face_fallback center --output preds.csv videos/

Inputs: video files, frame folders, or folders searched recursively for both; any length and
resolution. Each video is cut into sliding windows (one clip of ``num_frames`` frames at stride
``sampling_rate`` each; ``--window_stride`` frames apart, default ``num_frames * sampling_rate``;
a video shorter than one clip gets one window whose missing frames repeat the last one). Every
window is resized (short side) and centre-cropped like the engine's test transform (``--num_crops``
crops along the long side). Classification: softmax probabilities, averaged over crops (window) and
over windows (video). Regression: the head's outputs (output activation applied), averaged the same
way.

Output: a table on stdout; ``--output X.csv`` writes ``X.csv`` (one row per video) and
``X_windows.csv`` (one row per window); ``--output X.json`` writes both in one JSON document.
Bad inputs are reported as one ``path: reason`` line on stderr (and as ``status=error`` rows) and
the other inputs are still processed; the exit code is 1 only when no input could be processed.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Dict, List

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tools.inputs import (FaceCropper, InputError, collect_inputs,  # noqa: E402
                          inspect_video, read_windows, report, window_starts)
from tools.loading import CheckpointError, add_model_args, load_model, resolve_device  # noqa: E402
from datasets.sampling import clip_indices  # noqa: E402
from engine.logger import progress_iter  # noqa: E402
from datasets.video_reader import VideoReadError  # noqa: E402


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('inputs', nargs='+', help='video files, frame folders, or folders of them (recursive)')
    add_model_args(p)
    g = p.add_argument_group('prediction')
    g.add_argument('--window_stride', type=int, default=None,
                   help='frames between window starts (default num_frames * sampling_rate: no overlap)')
    g.add_argument('--num_crops', type=int, default=1, help='test crops along the long side per window')
    g.add_argument('--face_crop', action='store_true', help='detect and crop the face first (Haar cascade)')
    g.add_argument('--face_fallback', choices=['none', 'center'], default='none',
                   help='no face found: skip the file (none) or use a centred square crop (center)')
    g.add_argument('--face_min_size', type=float, default=0.1, help='smallest face, x shorter frame side')
    g.add_argument('--output', default=None, help='write predictions to .csv (+ _windows.csv) or .json')
    g.add_argument('--print_windows', action='store_true', help='also print the per-window table')
    g.add_argument('--top_k', type=int, default=3, help='classes shown per video in the printed table')
    return p


class Predictor:
    """Runs the model on batches of windows of one video."""

    def __init__(self, lm, device: torch.device, batch_size: int, num_crops: int):
        self.lm, self.device = lm, device
        self.batch_size, self.num_crops = max(1, batch_size), max(1, num_crops)
        self.transform = lm.eval_transform(self.num_crops)

    @torch.no_grad()
    def _run(self, clips: List[torch.Tensor]) -> np.ndarray:
        out = self.lm.model(torch.stack(clips).to(self.device)).float()
        if self.lm.task == 'classification':
            out = out.softmax(dim=-1)
        return out.cpu().numpy().astype(np.float64)

    def video(self, path: str, reader: str, num_frames_video: int, starts: List[int],
              frame_bytes: int = 224 * 224 * 3) -> np.ndarray:
        """(num_windows, num_outputs): scores per window, mean over the crops. Frames of several
        windows are decoded together, at most ~256 MB of raw frames at a time."""
        lm = self.lm
        sums = np.zeros((len(starts), lm.model.num_classes), np.float64)
        clips, owners = [], []
        max_frames = max(lm.num_frames, (256 << 20) // max(frame_bytes, 1))
        for w, frames in read_windows(path, reader, starts, lm.num_frames, lm.sampling_rate, num_frames_video,
                                      max_frames=max_frames):
            for c in range(self.num_crops):
                clips.append(self.transform(frames, c))
                owners.append(w)
            if len(clips) >= self.batch_size:
                np.add.at(sums, owners, self._run(clips))
                clips, owners = [], []
        if clips:
            np.add.at(sums, owners, self._run(clips))
        return sums / self.num_crops


def predict(args) -> Dict:
    device = resolve_device(args.device)
    lm = load_model(args, 'classifier', device)
    stride = args.window_stride or lm.num_frames * lm.sampling_rate
    names = list(lm.label_names)
    predictor = Predictor(lm, device, args.batch_size, args.num_crops)
    cropper = None
    if args.face_crop:
        cropper = FaceCropper(size=lm.short_side_size, fallback=None if args.face_fallback == 'none' else 'center',
                              min_face=args.face_min_size)
    videos, windows = [], []
    inputs = collect_inputs(args.inputs)
    try:
        for path, err in progress_iter(inputs, len(inputs), 'predict', 'videos'):
            row = dict(path=path, status='error', message='', num_frames=0, fps=None, num_windows=0)
            try:
                if err:
                    raise InputError(path, err)
                info = inspect_video(path, args.reader, lm.input_size)
                notes = list(info.notes)
                src = path
                if cropper is not None:
                    src, msg = cropper(path)
                    notes.append(msg)
                    crop_info = inspect_video(src, args.reader, lm.input_size)
                    n_src, frame_bytes = crop_info.num_frames, crop_info.height * crop_info.width * 3
                else:
                    n_src, frame_bytes = info.num_frames, info.height * info.width * 3
                for n in notes:
                    if not n.startswith('face found'):
                        report(path, n)
                starts = window_starts(n_src, lm.num_frames, lm.sampling_rate, stride)
                scores = predictor.video(src, args.reader, n_src, starts, frame_bytes)
            except InputError as e:
                report(e.path, e.reason)
                row['message'] = e.reason
                videos.append(row)
                continue
            except VideoReadError as e:
                report(path, e.reason)
                row['message'] = e.reason
                videos.append(row)
                continue
            fps = info.fps
            mean = scores.mean(axis=0)
            row.update(status='ok', message='; '.join(notes), num_frames=n_src, fps=fps, num_windows=len(starts),
                       scores=mean)
            videos.append(row)
            for w, s in enumerate(starts):
                idx = clip_indices(s, lm.num_frames, lm.sampling_rate, n_src)
                first, last = int(idx[0]), int(idx[-1])
                windows.append(dict(path=path, window=w, start_frame=first, end_frame=last,
                                    start_s=None if not fps else first / fps,
                                    end_s=None if not fps else (last + 1) / fps, scores=scores[w]))
    finally:
        if cropper is not None:
            cropper.cleanup()
    result = dict(checkpoint=args.checkpoint, model=lm.model_name, data_set=lm.data_set, task=lm.task,
                  label_names=names, num_frames=lm.num_frames, sampling_rate=lm.sampling_rate,
                  window_stride=stride, num_crops=predictor.num_crops, videos=videos, windows=windows)
    return result


# ----------------------------------------------------------------------------------------------
# output

def _score_cols(task: str, names) -> List[str]:
    return [f'prob_{n}' for n in names] if task == 'classification' else [f'pred_{n}' for n in names]


def _fmt(x) -> str:
    return '' if x is None else (f'{x:.7g}' if isinstance(x, float) else str(x))


def write_csv(result: Dict, path: str) -> List[str]:
    task, names = result['task'], result['label_names']
    cols = _score_cols(task, names)
    cls = task == 'classification'
    stem = path[:-4] if path.lower().endswith('.csv') else path
    win_path = stem + '_windows.csv'
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['path', 'status', 'message', 'num_frames', 'fps', 'num_windows']
                   + (['pred', 'pred_label'] if cls else []) + cols)
        for v in result['videos']:
            row = [v['path'], v['status'], v['message'], v['num_frames'], _fmt(v['fps']), v['num_windows']]
            if v['status'] == 'ok':
                s = v['scores']
                row += ([int(np.argmax(s)), names[int(np.argmax(s))]] if cls else []) + [f'{x:.7g}' for x in s]
            else:
                row += [''] * ((2 if cls else 0) + len(cols))
            w.writerow(row)
    with open(win_path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['path', 'window', 'start_frame', 'end_frame', 'start_s', 'end_s']
                   + (['pred', 'pred_label'] if cls else []) + cols)
        for r in result['windows']:
            s = r['scores']
            w.writerow([r['path'], r['window'], r['start_frame'], r['end_frame'], _fmt(r['start_s']),
                        _fmt(r['end_s'])] + ([int(np.argmax(s)), names[int(np.argmax(s))]] if cls else [])
                       + [f'{x:.7g}' for x in s])
    return [path, win_path]


def to_json(result: Dict) -> Dict:
    names, cls = result['label_names'], result['task'] == 'classification'
    key = 'probabilities' if cls else 'outputs'

    def scores(s):
        d = {key: {n: float(x) for n, x in zip(names, s)}}
        if cls:
            d['pred'] = int(np.argmax(s))
            d['pred_label'] = names[d['pred']]
        return d

    out = {k: v for k, v in result.items() if k not in ('videos', 'windows')}
    by_path: Dict[str, List] = {}
    for r in result['windows']:
        e = {k: v for k, v in r.items() if k not in ('scores', 'path')}
        e.update(scores(r['scores']))
        by_path.setdefault(r['path'], []).append(e)
    vids = []
    for v in result['videos']:
        e = {k: val for k, val in v.items() if k != 'scores'}
        if v['status'] == 'ok':
            e.update(scores(v['scores']))
            e['windows'] = by_path.get(v['path'], [])
        vids.append(e)
    out['videos'] = vids
    return out


def print_tables(result: Dict, top_k: int, windows: bool) -> None:
    names, task = result['label_names'], result['task']
    cls = task == 'classification'

    def describe(s):
        if cls:
            order = np.argsort(-s)[:max(1, top_k)]
            return '  '.join(f'{names[i]} {s[i]:.3f}' for i in order)
        return '  '.join(f'{n} {x:.4f}' for n, x in zip(names, s))

    ok = [v for v in result['videos'] if v['status'] == 'ok']
    width = max([len(v['path']) for v in result['videos']] + [4])
    head = 'prediction (probability)' if cls else 'outputs'
    print(f'{"path":<{width}}  {"windows":>7}  {head}')
    for v in result['videos']:
        text = describe(v['scores']) if v['status'] == 'ok' else f'ERROR: {v["message"]}'
        print(f'{v["path"]:<{width}}  {v["num_windows"]:>7}  {text}')
    if windows:
        print()
        print(f'{"path":<{width}}  {"window":>6}  {"frames":>11}  {head}')
        for r in result['windows']:
            fr = f'{r["start_frame"]}-{r["end_frame"]}'
            print(f'{r["path"]:<{width}}  {r["window"]:>6}  {fr:>11}  {describe(r["scores"])}')
    print(f'\n{len(ok)} of {len(result["videos"])} inputs predicted '
          f'({len(result["windows"])} windows, {result["num_frames"]} frames x stride {result["sampling_rate"]}, '
          f'window stride {result["window_stride"]})')


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    if args.output and not args.output.lower().endswith(('.csv', '.json')):
        print('--output must end in .csv or .json', file=sys.stderr)
        return 2
    try:
        result = predict(args)
    except CheckpointError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print_tables(result, args.top_k, args.print_windows)
    if args.output:
        if args.output.lower().endswith('.json'):
            os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
            with open(args.output, 'w') as f:
                json.dump(to_json(result), f, indent=1)
            print(f'wrote {args.output}')
        else:
            print('wrote ' + ', '.join(write_csv(result, args.output)))
    n_ok = sum(v['status'] == 'ok' for v in result['videos'])
    return 0 if n_ok > 0 else 1


if __name__ == '__main__':
    sys.exit(main())

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

With ``--face_crop`` each video's face track (``preprocess.face_track``: one person followed,
frames without the face marked) crops every window to the face; a window has a face when at least
half of its frames do, and a window without one is reported as such and not predicted. The
video's result is the mean over its windows with a face.

Output: a table on stdout; ``--output X.csv`` writes ``X.csv`` (one row per video) and
``X_windows.csv`` (the timeline: one row per window with its start and end in seconds, whether it
has a face, and its probabilities); ``--output X.json`` writes both in one JSON document.
``--render out.mp4`` writes the video with the face box and a live bar of the class probabilities,
``--plot out.png`` the probabilities over time (``tools.timeline``; with several inputs both name
a folder).
Bad inputs are reported as one ``path: reason`` line on stderr (and as ``status=error`` rows) and
the other inputs are still processed; the exit code is 1 only when no input could be processed.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Dict, List, Optional

import numpy as np
import torch


from cli.args import HelpFormatter
from tools.inputs import (FaceWindows, InputError, add_face_args, collect_inputs,
                          inspect_video, read_windows, report, window_starts)
from tools.loading import CheckpointError, add_model_args, load_model, resolve_device
from datasets.sampling import clip_indices
from engine.evaluation import score_columns
from engine.logger import progress_iter
from datasets.video_reader import VideoReadError


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    p.add_argument('inputs', nargs='+', help='video files, frame folders, or folders of them (recursive)')
    add_model_args(p)
    g = p.add_argument_group('prediction')
    g.add_argument('--window_stride', type=int, default=None,
                   help='frames between window starts (default num_frames * sampling_rate: no overlap)')
    g.add_argument('--num_crops', type=int, default=1, help='test crops along the long side per window')
    add_face_args(g)
    g.add_argument('--render', default=None, metavar='OUT.mp4',
                   help='write the video with the face box and a live bar of the probabilities')
    g.add_argument('--plot', default=None, metavar='OUT.png', help='draw the probabilities over time')
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
              frame_bytes: int = 224 * 224 * 3, prepare=None) -> np.ndarray:
        """(num_windows, num_outputs): scores per window, mean over the crops; NaN for a window
        ``prepare(window, frames)`` turns down (returns None). Frames of several windows are
        decoded together, at most ~256 MB of raw frames at a time."""
        lm = self.lm
        sums = np.zeros((len(starts), lm.model.num_classes), np.float64)
        used = np.zeros(len(starts), bool)
        clips, owners = [], []
        max_frames = max(lm.num_frames, (256 << 20) // max(frame_bytes, 1))
        for w, frames in read_windows(path, reader, starts, lm.num_frames, lm.sampling_rate, num_frames_video,
                                      max_frames=max_frames):
            if prepare is not None:
                frames = prepare(w, frames)
                if frames is None:
                    continue
            used[w] = True
            for c in range(self.num_crops):
                clips.append(self.transform(frames, c))
                owners.append(w)
            if len(clips) >= self.batch_size:
                np.add.at(sums, owners, self._run(clips))
                clips, owners = [], []
        if clips:
            np.add.at(sums, owners, self._run(clips))
        out = sums / self.num_crops
        out[~used] = np.nan
        return out


def _predict_video(path: str, args, lm, predictor: Predictor, faces: Optional[FaceWindows], stride: int):
    """(video row, window rows, face track or None) of one input; raises InputError / VideoReadError."""
    info = inspect_video(path, args.reader, lm.input_size)
    notes, n = list(info.notes), info.num_frames
    for note in notes:
        report(path, note)
    track, prepare, present = None, None, {}
    if faces is not None:
        track = faces.track(path)
        n = min(n, track.num_frames)
        notes.append(track.choice if track.num_detected else 'no face found; centre crops used')

        def prepare(w, frames):
            present[w], boxes = faces.boxes(track, clip_indices(starts[w], lm.num_frames, lm.sampling_rate, n))
            return faces.crop(frames, boxes) if boxes else None
    starts = window_starts(n, lm.num_frames, lm.sampling_rate, stride)
    scores = predictor.video(path, args.reader, n, starts, info.height * info.width * 3, prepare)
    fps = info.fps
    times = frame_seconds(info.times, n, fps)
    windows = []
    for w, s in enumerate(starts):
        idx = clip_indices(s, lm.num_frames, lm.sampling_rate, n)
        first, last = int(idx[0]), int(idx[-1])
        windows.append(dict(path=path, window=w, start_frame=first, end_frame=last,
                            start_s=None if times is None else float(times[first]),
                            end_s=None if times is None else float(times[last + 1]),
                            face=present.get(w) if faces is not None else None,
                            scores=None if np.isnan(scores[w]).any() else scores[w]))
    done = [r['scores'] for r in windows if r['scores'] is not None]
    row = dict(path=path, status='ok' if done else 'no_face', message='; '.join(notes), num_frames=n, fps=fps,
               num_windows=len(starts), num_face_windows=sum(bool(r['face']) for r in windows),
               face_fraction=track.face_fraction if track is not None else None,
               scores=np.mean(done, axis=0) if done else None)
    if not done:
        row['message'] = 'no window has the face' + (f'; {row["message"]}' if row['message'] else '')
    row['times'] = times
    return row, windows, track


def frame_seconds(t: Optional[np.ndarray], n: int, fps: Optional[float]) -> Optional[np.ndarray]:
    """(n + 1,) start time of every frame and the end of the last, in seconds: the stream's
    timestamps ``t`` (variable frame rates as recorded), else frame / fps; None without either."""
    if t is not None and len(t) >= n:
        step = float(np.median(np.diff(t[:n]))) if n > 1 else (1.0 / fps if fps else 0.04)
        return np.append(t[:n], t[n] if len(t) > n else t[n - 1] + step)
    return None if not fps else np.arange(n + 1) / fps


def predict(args) -> Dict:
    device = resolve_device(args.device)
    lm = load_model(args, 'classifier', device)
    stride = args.window_stride or lm.num_frames * lm.sampling_rate
    predictor = Predictor(lm, device, args.batch_size, args.num_crops)
    faces = None
    if args.face_crop:
        faces = FaceWindows(size=lm.short_side_size, fallback=None if args.face_fallback == 'none' else 'center',
                            min_face=args.face_min_size, detector=args.face_detector, margin=args.face_margin)
    videos, windows, tracks = [], [], {}
    inputs = collect_inputs(args.inputs)
    for path, err in progress_iter(inputs, len(inputs), 'predict', 'videos'):
        try:
            if err:
                raise InputError(path, err)
            row, rows, tracks[path] = _predict_video(path, args, lm, predictor, faces, stride)
        except (InputError, VideoReadError) as e:
            report(e.path, e.reason)
            videos.append(dict(path=path, status='error', message=e.reason, num_frames=0, fps=None,
                               num_windows=0, num_face_windows=0, face_fraction=None, scores=None))
            continue
        if row['status'] == 'no_face':
            report(path, row['message'])
        videos.append(row)
        windows.extend(rows)
    return dict(checkpoint=args.checkpoint, model=lm.model_name, data_set=lm.data_set, task=lm.task,
                label_names=list(lm.label_names), num_frames=lm.num_frames, sampling_rate=lm.sampling_rate,
                window_stride=stride, num_crops=predictor.num_crops, face_crop=bool(args.face_crop),
                videos=videos, windows=windows, tracks=tracks)


# ----------------------------------------------------------------------------------------------
# output

def _fmt(x) -> str:
    return '' if x is None else (f'{x:.7g}' if isinstance(x, float) else str(x))


def _face_cell(face) -> str:
    return '' if face is None else ('yes' if face else 'no')


def _scores_cells(s, names, cls: bool) -> List[str]:
    if s is None:
        return [''] * ((2 if cls else 0) + len(names))
    return ([str(int(np.argmax(s))), names[int(np.argmax(s))]] if cls else []) + [f'{x:.7g}' for x in s]


def write_csv(result: Dict, path: str) -> List[str]:
    """``path`` (one row per video) and ``<stem>_windows.csv`` (the timeline)."""
    task, names = result['task'], result['label_names']
    cols = score_columns(task, names)
    cls = task == 'classification'
    pred_cols = ['pred', 'pred_label'] if cls else []
    stem = path[:-4] if path.lower().endswith('.csv') else path
    win_path = stem + '_windows.csv'
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['path', 'status', 'message', 'num_frames', 'fps', 'num_windows', 'num_face_windows',
                    'face_fraction'] + pred_cols + cols)
        for v in result['videos']:
            w.writerow([v['path'], v['status'], v['message'], v['num_frames'], _fmt(v['fps']), v['num_windows'],
                        v['num_face_windows'] if result['face_crop'] else '', _fmt(v['face_fraction'])]
                       + _scores_cells(v['scores'], names, cls))
    with open(win_path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['path', 'window', 'start_frame', 'end_frame', 'start_s', 'end_s', 'face'] + pred_cols + cols)
        for r in result['windows']:
            w.writerow([r['path'], r['window'], r['start_frame'], r['end_frame'], _fmt(r['start_s']),
                        _fmt(r['end_s']), _face_cell(r['face'])] + _scores_cells(r['scores'], names, cls))
    return [path, win_path]


def to_json(result: Dict) -> Dict:
    names, cls = result['label_names'], result['task'] == 'classification'
    key = 'probabilities' if cls else 'outputs'

    def scores(s):
        if s is None:
            return {key: None}
        d = {key: {n: float(x) for n, x in zip(names, s)}}
        if cls:
            d['pred'] = int(np.argmax(s))
            d['pred_label'] = names[d['pred']]
        return d

    out = {k: v for k, v in result.items() if k not in ('videos', 'windows', 'tracks')}
    by_path: Dict[str, List] = {}
    for r in result['windows']:
        e = {k: v for k, v in r.items() if k not in ('scores', 'path')}
        e.update(scores(r['scores']))
        by_path.setdefault(r['path'], []).append(e)
    vids = []
    for v in result['videos']:
        e = {k: val for k, val in v.items() if k not in ('scores', 'times')}
        if v['status'] != 'error':
            e.update(scores(v['scores']))
            e['windows'] = by_path.get(v['path'], [])
        vids.append(e)
    out['videos'] = vids
    return out


def print_tables(result: Dict, top_k: int, windows: bool) -> None:
    names, task = result['label_names'], result['task']
    cls = task == 'classification'

    def describe(s):
        if s is None:
            return 'no face'
        if cls:
            order = np.argsort(-s)[:max(1, top_k)]
            return '  '.join(f'{names[i]} {s[i]:.3f}' for i in order)
        return '  '.join(f'{n} {x:.4f}' for n, x in zip(names, s))

    ok = [v for v in result['videos'] if v['status'] == 'ok']
    width = max([len(v['path']) for v in result['videos']] + [4])
    head = 'prediction (probability)' if cls else 'outputs'
    faces = result['face_crop']
    print(f'{"path":<{width}}  {"windows" + (" (face)" if faces else ""):>15}  {head}')
    for v in result['videos']:
        text = describe(v['scores']) if v['status'] != 'error' else f'ERROR: {v["message"]}'
        count = f'{v["num_windows"]}' + (f' ({v["num_face_windows"]})' if faces else '')
        print(f'{v["path"]:<{width}}  {count:>15}  {text}')
    if windows:
        print()
        print(f'{"path":<{width}}  {"window":>6}  {"seconds":>13}  {head}')
        for r in result['windows']:
            sec = (f'{r["start_s"]:.2f}-{r["end_s"]:.2f}' if r['start_s'] is not None
                   else f'f{r["start_frame"]}-{r["end_frame"]}')
            print(f'{r["path"]:<{width}}  {r["window"]:>6}  {sec:>13}  {describe(r["scores"])}')
    print(f'\n{len(ok)} of {len(result["videos"])} inputs predicted '
          f'({len(result["windows"])} windows, {result["num_frames"]} frames x stride {result["sampling_rate"]}, '
          f'window stride {result["window_stride"]})')


def _picture_paths(target: str, result: Dict, ext: str) -> Dict[str, str]:
    """Where ``--render`` / ``--plot`` write each predicted video: ``target`` itself for one video
    (when it ends in ``ext``), else ``target/<input name>.ext``."""
    done = [v['path'] for v in result['videos'] if v['status'] != 'error']
    if len(done) == 1 and target.lower().endswith(ext):
        return {done[0]: target}
    names = {}
    for p in done:
        stem = os.path.splitext(os.path.basename(os.path.normpath(p)))[0]
        name, k = stem, 1
        while name in names.values():
            k += 1
            name = f'{stem}_{k}'
        names[p] = name
    return {p: os.path.join(target, name + ext) for p, name in names.items()}


def write_pictures(result: Dict, args) -> List[str]:
    from tools.timeline import plot_timeline, render_video
    written = []
    for flag, ext, fn in (('render', '.mp4', render_video), ('plot', '.png', plot_timeline)):
        target = getattr(args, flag)
        if not target:
            continue
        for path, out in _picture_paths(target, result, ext).items():
            video = next(v for v in result['videos'] if v['path'] == path)
            rows = [r for r in result['windows'] if r['path'] == path]
            written.append(fn(path, video, rows, result['label_names'], result['tracks'].get(path), out,
                              reader=args.reader, margin=args.face_margin, task=result['task']))
    return written


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
    for out in write_pictures(result, args):
        print(f'wrote {out}')
    n_ok = sum(v['status'] == 'ok' for v in result['videos'])
    return 0 if n_ok > 0 else 1


if __name__ == '__main__':
    sys.exit(main())

"""Face cropping speed on real footage, per core, this project's cropper against a baseline cropper.

Both run as a user runs them: one ``face_crop`` process over a folder of clips (MTCNN, every 5th
frame, centre-crop fallback, output written), pinned to one core (``taskset -c 0``, one thread for
torch and OpenCV), process start included; rounds interleaved, the median round reported. Speed is
the clips' displayed frames (a full FFmpeg decode) per second of wall time.

The clips: every video in ``--clips`` (default ``../shared/realdata`` and its ``cremad`` folder:
a talking face, a face then a cartoon, a cartoon with an edit list, the six CREMA-D clips of one
actor; their README gives provenance and licences). The baseline is any earlier ``face_crop.py``
run as a script from the repository root (``--baseline FILE``; e.g. the one-box-per-shot cropper,
exported from the history with ``git show <revision>:preprocess/face_crop.py > FILE``); without it
only this project's cropper is timed.

    python -m benchmarks.face_crop [--baseline FILE] [--rounds 3]
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from datasets.video_reader import open_video

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIDEO_EXTS = ('.mp4', '.mov', '.flv', '.avi', '.mkv', '.webm', '.wmv')


def clips_in(folder: str):
    found = []
    for pattern in ('*', os.path.join('*', '*')):
        found += [p for p in glob.glob(os.path.join(folder, pattern)) if p.lower().endswith(VIDEO_EXTS)]
    return sorted(found)


def run_once(cmd, out: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONPATH=ROOT)
    pin = ['taskset', '-c', '0'] if shutil.which('taskset') else []
    t0 = time.perf_counter()
    r = subprocess.run(pin + cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f'{" ".join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}')
    return wall


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--clips', default=os.path.join(ROOT, '..', 'shared', 'realdata'),
                   help='folder of real clips (searched one level deep)')
    p.add_argument('--baseline', default=None, help="an earlier face_crop.py to time beside this project's")
    p.add_argument('--rounds', type=int, default=3, help='interleaved rounds; the median is reported')
    args = p.parse_args(argv)
    clips = clips_in(args.clips)
    if not clips:
        raise SystemExit(f'no clips in {args.clips}')
    frames = 0
    for c in clips:
        v = open_video(c)
        frames += v.num_frames
        v.close()
    common = ['--output', None, '--detector', 'mtcnn', '--fallback', 'center', '--every', '5',
              '--overwrite']
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, 'clips')
        os.makedirs(inp)
        for i, c in enumerate(clips):
            os.symlink(os.path.abspath(c), os.path.join(inp, f'{i:02d}_{os.path.basename(c)}'))
        pipelines = {'this project (face track)': [sys.executable, '-m', 'preprocess.face_crop', '--redetect']}
        if args.baseline:
            pipelines['baseline: ' + os.path.basename(args.baseline)] = [sys.executable, os.path.abspath(args.baseline)]
        times = {k: [] for k in pipelines}
        for _ in range(args.rounds):
            for name, cmd in pipelines.items():
                out = os.path.join(tmp, 'out')
                argv_ = cmd + ['--input', inp] + [out if a is None else a for a in common]
                times[name].append(run_once(argv_, out))
    print(f'{len(clips)} clips, {frames} displayed frames; one core (taskset -c 0, one thread), '
          f'process start included; median of {args.rounds} interleaved rounds\n')
    print('| cropper | seconds | frames/s per core | x baseline |')
    print('|---|---|---|---|')
    base = statistics.median(times[list(times)[-1]]) if args.baseline else None
    for name, ts in times.items():
        t = statistics.median(ts)
        ratio = f'{base / t:.2f}' if base else '-'
        print(f'| {name} | {t:.1f} | {frames / t:.1f} | {ratio} |')


if __name__ == '__main__':
    main()

"""Data-loading throughput: decoded (and augmented) clips per second for ONE worker process.

Generates its own temporary videos (mp4 via OpenCV 'mp4v', and jpg frame folders), then times
(best of 3 rounds, so that other jobs on the machine distort less), in this single process (torch
and OpenCV limited to one thread, as in a DataLoader worker):

* decode      - open the video, sample a 16-frame stride-4 training clip, decode it
* fine-tune   - the training item: decode + random resized crop + flip + RandAugment + erasing
* pre-train   - the pre-training item: decode + multi-scale crop + tube mask
* test view   - one test view: decode + short-side resize + crop

for mp4 read by decord, mp4 read by OpenCV, and jpg frame folders. Multiply by the number of
DataLoader workers (up to the core count) for a machine's rough total.

    python -m benchmarks.data_loading [--clips 20] [--size 224] [--video_frames 120]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time


import numpy as np
import torch

from datasets.build import build_finetune_dataset, build_pretrain_dataset
from datasets.config import DataConfig
from datasets.sampling import sample_train_indices
from datasets.split_file import write_split_file
from benchmarks.decoding import synthetic_frames
from datasets.video_writer import write_frame_folder, write_mp4
from datasets.video_reader import HAS_DECORD, open_video


def _make_videos(d, n_videos, n_frames, size):
    mp4s, folders = [], []
    for i in range(n_videos):
        frames = synthetic_frames(n_frames, size, seed=i)   # moving texture: the codec does real work
        mp4s.append(write_mp4(os.path.join(d, f"v{i}.mp4"), frames))
        folders.append(write_frame_folder(os.path.join(d, f"f{i}"), frames, "jpg", quality=90))
    return mp4s, folders


def _time(fn, n, warmup=2, rounds=3):
    """Clips per second of the best of ``rounds`` rounds of ``n`` clips (robust to other load)."""
    for k in range(warmup):
        fn(k)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for k in range(n):
            fn(k)
        best = min(best, time.perf_counter() - t0)
    return n / best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clips", type=int, default=20, help="clips per timed round (3 rounds)")
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--video_frames", type=int, default=120)
    ap.add_argument("--size", type=int, default=224, help="frame side of the generated videos")
    ap.add_argument("--input_size", type=int, default=160)
    ap.add_argument("--num_frames", type=int, default=16)
    ap.add_argument("--sampling_rate", type=int, default=4)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)

    d = tempfile.mkdtemp(prefix="svfap_bench_")
    try:
        mp4s, folders = _make_videos(d, a.videos, a.video_frames, a.size)
        sources = []
        if HAS_DECORD:
            sources.append(("mp4", "decord", mp4s))
        sources.append(("mp4", "opencv", mp4s))
        sources.append(("jpg folder", "-", folders))
        rows = []
        for kind, reader, paths in sources:
            rd = reader if reader != "-" else "decord"
            split = os.path.join(d, f"split_{kind.replace(' ', '_')}_{reader}.txt")
            write_split_file(split, [(p, i % 7) for i, p in enumerate(paths)])
            args = DataConfig(data_set="dfew", num_frames=a.num_frames,
                             sampling_rate=a.sampling_rate,
                             input_size=a.input_size, short_side_size=a.input_size, reader=rd,
                             test_num_segment=2, test_num_crop=2, seed=0, mask_ratio=0.9)
            rng = np.random.default_rng(0)

            def decode(k):
                v = open_video(paths[k % len(paths)], rd)
                v.get(sample_train_indices(v.num_frames, a.num_frames, a.sampling_rate, rng))
                v.close()

            ft = build_finetune_dataset(split, "train", args)
            pt = build_pretrain_dataset(split, args)
            te = build_finetune_dataset(split, "test", args)
            rows.append((kind, reader,
                         _time(decode, a.clips),
                         _time(lambda k: ft[k % len(ft)], a.clips),
                         _time(lambda k: pt[k % len(pt)], a.clips),
                         _time(lambda k: te[(k * 5) % len(te)], a.clips)))
    finally:
        shutil.rmtree(d, ignore_errors=True)

    print(f"# clips/s per worker (1 process, 1 thread); {a.num_frames} frames stride "
          f"{a.sampling_rate} from {a.video_frames}-frame {a.size}x{a.size} videos -> "
          f"{a.input_size}x{a.input_size}; best of 3 rounds of {a.clips} clips per cell")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, torch {torch.__version__}, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")
    print("| source | reader | decode | fine-tune train item | pre-train item | test view |")
    print("|---|---|---|---|---|---|")
    for kind, reader, *v in rows:
        print(f"| {kind} | {reader} | " + " | ".join(f"{x:.1f}" for x in v) + " |")


if __name__ == "__main__":
    main()

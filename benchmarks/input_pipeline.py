"""Training items per second on one CPU core: this project's input pipeline against the pipeline
of commit ade756a (the baseline of the 4x target), side by side in one process, interleaved rounds.

Files (written here with PyAV): VoxCeleb2-like H.264 MP4, 224x224, 25 fps, 8 s, B-frames (libx264
defaults: GOP 250), and the same clips as folders of JPEGs (quality 90). Items:

* pre-training item: a random 16-frame clip at stride 4, the VoxCeleb2 face crop (rows 0-160,
  cols 32-192), the multi-scale crop to 160x160, normalisation, a 90 % tube mask;
* fine-tuning item: a random 16-frame clip at stride 4, the published fine-tuning augmentation
  (RandAugment rand-m7-n4-mstd0.5-inc1, random resized crop, flip, erasing 0.25) to 160x160.

The baseline comes from a temporary git worktree of ade756a (its ``datasets`` package loaded under
another name; its default reader, decord). ``--num_sample n`` rows are this project's repeated
sampling: one decode, n augmented clips (items are clips). ``--augment_on device`` rows time what
the loader workers still do per clip when the training device augments the batch (decode, fixed
crop, resize; the device's share runs on the GPU and is not counted here). One core: torch and
OpenCV use one thread.

    python -m benchmarks.input_pipeline [--rounds 5] [--clips 12] [--baseline ade756a]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import torch  # noqa: E402

from benchmarks.decoding import synthetic_frames  # noqa: E402
from datasets.masking import TubeMaskGenerator  # noqa: E402
from datasets.transforms import FinetuneTrainTransform, PretrainTransform  # noqa: E402
from datasets.video_dataset import read_train_frames  # noqa: E402
from datasets.video_writer import write_frame_folder, write_video  # noqa: E402

VOX_CROP = (0, 160, 32, 192)
GRID = (8, 10, 10)


def load_package(path: str, name: str):
    """Import the package at ``path`` (its relative imports intact) as ``name``."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(path, "__init__.py"),
                                                  submodule_search_locations=[path])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def baseline_pipeline(commit: str, tmp: str):
    wt = os.path.join(tmp, "baseline")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", wt, commit], check=True,
                   capture_output=True)
    load_package(os.path.join(wt, "datasets"), "baseline_datasets")
    import importlib
    vd = importlib.import_module("baseline_datasets.video_dataset")
    tf = importlib.import_module("baseline_datasets.transforms")
    return wt, vd.read_train_frames, tf.PretrainTransform, tf.FinetuneTrainTransform


def make_items(read, PT, FT, reader, num_sample, workers_share=False):
    pt = PT(160, input_crop=VOX_CROP)
    ft = FT(160)
    if workers_share:  # --augment_on device: what the workers still do per clip
        pt, ft = pt.worker_stage, ft.worker_stage
    mask = TubeMaskGenerator(GRID, 0.9)

    def pretrain(path, rng):
        frames = read(path, reader, 16, 4, rng)
        for _ in range(num_sample):
            pt(frames, rng)
            mask(rng)
        return num_sample

    def finetune(path, rng):
        frames = read(path, reader, 16, 4, rng)
        for _ in range(num_sample):
            ft(frames, rng)
        return num_sample
    return {"pre-training": pretrain, "fine-tuning": finetune}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    p.add_argument("--clips", type=int, default=12, help="clips per configuration and round")
    p.add_argument("--videos", type=int, default=4, help="files of each kind")
    p.add_argument("--baseline", default="ade756a", help="commit of the baseline pipeline")
    p.add_argument("--num_sample", type=int, nargs="+", default=[2, 4], help="repeated-sampling rows")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        wt, b_read, b_pt, b_ft = baseline_pipeline(args.baseline, tmp)
        try:
            files = {"mp4": [], "jpg": []}
            for v in range(args.videos):
                frames = synthetic_frames(200, seed=v)
                files["mp4"].append(write_video(os.path.join(tmp, f"v{v}.mp4"), frames, codec="libx264",
                                                gop_size=250, max_b_frames=2))
                files["jpg"].append(write_frame_folder(os.path.join(tmp, f"v{v}"), frames, quality=90))
            configs = {f"baseline {args.baseline} (decord)": make_items(b_read, b_pt, b_ft, "decord", 1),
                       "now (pyav)": make_items(read_train_frames, PretrainTransform,
                                                FinetuneTrainTransform, "pyav", 1)}
            for n in args.num_sample:
                configs[f"now, --num_sample {n}"] = make_items(read_train_frames, PretrainTransform,
                                                               FinetuneTrainTransform, "pyav", n)
            for n in [1] + list(args.num_sample):
                configs[f"now, --augment_on device, --num_sample {n} (workers' share)"] = make_items(
                    read_train_frames, PretrainTransform, FinetuneTrainTransform, "pyav", n, True)
            rates = {}  # (kind, item, config) -> [clips/s per round]
            rng = np.random.default_rng(0)
            for r in range(args.rounds):
                for kind, paths in files.items():
                    for item in ("pre-training", "fine-tuning"):
                        for name, items in configs.items():
                            t0, n = time.perf_counter(), 0
                            while n < args.clips:
                                n += items[item](paths[int(rng.integers(len(paths)))], rng)
                            rates.setdefault((kind, item, name), []).append(n / (time.perf_counter() - t0))
        finally:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", wt], capture_output=True)
    base = f"baseline {args.baseline} (decord)"
    lines = ["| file | item | pipeline | clips/s per core (median of rounds) | x baseline |",
             "|---|---|---|---|---|"]
    for (kind, item, name), v in rates.items():
        med = float(np.median(v))
        ref = float(np.median(rates[(kind, item, base)]))
        lines.append(f"| {kind} | {item} | {name} | {med:.1f} | {med / ref:.2f} |")
    print("\n".join(lines))
    return rates


if __name__ == "__main__":
    main()

"""Writing the synthetic set: every clip as MP4 or a frame folder, k stratified folds of split
files, ``pretrain.csv`` and ``meta.json``; and the preview grid of docs/synthetic.md."""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from ..video_writer import write_frame_folder, write_mp4
from .render import make_clip, render_clip
from .spec import (_KIND_LABELED, _KIND_UNLABELED, AU_NAMES, CLASS_AUS, CLASS_TIMING, LABEL_NAMES,
                   RenderStyle, sample_clip_spec)

DEFAULTS = dict(num_labeled=350, num_unlabeled=210, num_frames=64, size=128, num_folds=5, seed=0,
                fmt="mp4", label_noise=0.03, val_fraction=0.1, fps=25)


def _job(args):
    seed, kind, index, label, num_frames, size, fps, path, fmt, style = args
    cv2.setNumThreads(1)
    frames, spec = make_clip(seed, kind, index, label, num_frames, size, fps, style)
    if fmt == "mp4":
        write_mp4(path, frames, fps, bgr=True)
    else:
        write_frame_folder(path, frames, bgr=True)
    return index, kind


def _stratified_folds(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold id (0..k-1) per sample: per class, shuffled and dealt round-robin, continuing the
    deal across classes so fold sizes differ by at most one."""
    fold = np.empty(len(labels), np.int64)
    pos = 0
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        fold[idx] = (pos + np.arange(len(idx))) % k
        pos += len(idx)
    return fold


def _stratified_val(labels: np.ndarray, idx: np.ndarray, frac: float,
                    rng: np.random.Generator) -> np.ndarray:
    """A stratified `frac` of `idx` (at least one per class that has >= 3 samples)."""
    out = []
    for c in np.unique(labels[idx]):
        ic = idx[labels[idx] == c]
        n = int(round(frac * len(ic)))
        if n == 0 and frac > 0 and len(ic) >= 3:
            n = 1
        out.extend(ic[rng.permutation(len(ic))[:n]].tolist())
    return np.array(sorted(out), np.int64)


def _class_sequence(n: int, num_classes: int, distribution: str,
                    rng: np.random.Generator) -> np.ndarray:
    if distribution == "uniform":
        w = np.ones(num_classes)
    elif distribution == "dfew":       # DFEW class proportions (happy .. fear)
        w = np.array([0.23, 0.16, 0.23, 0.19, 0.12, 0.025, 0.045])
    else:
        raise ValueError(f"unknown class distribution {distribution!r}")
    w = w / w.sum()
    counts = np.floor(w * n).astype(int)
    for i in np.argsort(-(w * n - counts))[: n - counts.sum()]:
        counts[i] += 1
    labels = np.repeat(np.arange(num_classes), counts)
    return labels[rng.permutation(n)]


def _write_split(path: str, rows: Sequence[Tuple[str, int]]) -> None:
    with open(path, "w") as f:
        for p, y in rows:
            f.write(f"{p} {int(y)}\n")


def _written_before(meta_path: str, params: dict) -> bool:
    """``meta.json`` records these parameters and every clip it lists is there."""
    if not os.path.isfile(meta_path):
        return False
    try:
        with open(meta_path) as f:
            old = json.load(f)
        return old.get("params") == params and all(os.path.exists(c["path"]) for c in old.get("clips", []))
    except (OSError, ValueError, KeyError):
        return False


def _with_label_noise(true: np.ndarray, label_noise: float, rng: np.random.Generator):
    """``(noisy labels, number flipped)``: ``round(label_noise * n)`` clips, chosen at random, get
    another class, also at random."""
    n = len(true)
    noisy = true.copy()
    n_noise = int(round(label_noise * n))
    flip = np.sort(rng.permutation(n)[:n_noise]) if n_noise else np.zeros(0, int)
    for i in flip:
        noisy[i] = (true[i] + rng.integers(1, len(LABEL_NAMES))) % len(LABEL_NAMES)
    return noisy, n_noise


def _render_jobs(jobs: list, workers: int, progress=None) -> None:
    """Render and write every clip job, in ``workers`` spawned processes when more than one."""
    tick = progress.update if progress is not None else (lambda n: None)
    if workers == 1 or len(jobs) < 4:
        for j in jobs:
            _job(j)
            tick(1)
        return
    import multiprocessing as mp
    with mp.get_context("spawn").Pool(workers) as pool:
        for _ in pool.imap_unordered(_job, jobs, chunksize=4):
            tick(1)


def _write_folds(out_dir: str, paths: Sequence[str], labels: np.ndarray, num_folds: int,
                 val_fraction: float, rng: np.random.Generator) -> dict:
    """``fold_{i}/{train,val,test}.csv``: test = the i-th stratified fold, val = a stratified
    ``val_fraction`` of the rest, train = the remainder. Returns the per-class counts of each."""
    folds_meta = {}
    fold = _stratified_folds(labels, num_folds, rng)
    for i in range(num_folds):
        test = np.flatnonzero(fold == i)
        rest = np.flatnonzero(fold != i)
        val = _stratified_val(labels, rest, val_fraction, rng)
        train = np.setdiff1d(rest, val)
        d = os.path.join(out_dir, f"fold_{i + 1}")
        os.makedirs(d, exist_ok=True)
        counts = {}
        for name, idx in (("train", train), ("val", val), ("test", test)):
            _write_split(os.path.join(d, f"{name}.csv"), [(paths[j], labels[j]) for j in idx])
            counts[name] = {LABEL_NAMES[c]: int((labels[idx] == c).sum()) for c in range(len(LABEL_NAMES))}
            counts[name]["total"] = int(len(idx))
        folds_meta[str(i + 1)] = counts
    return folds_meta


def _meta(params: dict, true: np.ndarray, noisy: np.ndarray, n_noise: int, folds_meta: dict,
          lab_paths: Sequence[str], unl_paths: Sequence[str]) -> dict:
    """``meta.json``: the parameters, the classes' AUs and timing, the counts and every clip."""
    names = LABEL_NAMES
    return dict(
        params=params, label_names=list(names),
        class_aus={k: {str(a): w for a, w in v.items()} for k, v in CLASS_AUS.items()},
        class_timing=CLASS_TIMING, au_names={str(k): v for k, v in AU_NAMES.items()},
        counts=dict(
            labeled_total=len(lab_paths), unlabeled_total=len(unl_paths),
            per_class={names[c]: int((noisy == c).sum()) for c in range(len(names))},
            per_class_true={names[c]: int((true == c).sum()) for c in range(len(names))},
            noisy_labels=int(n_noise), folds=folds_meta),
        clips=[dict(path=lab_paths[i], label=int(noisy[i]), true_label=int(true[i]))
               for i in range(len(lab_paths))] + [dict(path=p, label=-1) for p in unl_paths],
    )


def _layout(out_dir: str, num_labeled: int, num_unlabeled: int, num_folds: int) -> dict:
    """Where the set's files go (what :func:`generate_synthetic_dataset` returns, but the time)."""
    folds = {str(i): {s: os.path.join(out_dir, f"fold_{i}", f"{s}.csv") for s in ("train", "val", "test")}
             for i in range(1, num_folds + 1)} if num_labeled > 0 else {}
    return dict(out_dir=out_dir, meta=os.path.join(out_dir, "meta.json"),
                pretrain=os.path.join(out_dir, "pretrain.csv"), folds=folds,
                label_names=list(LABEL_NAMES), num_labeled=int(num_labeled), num_unlabeled=int(num_unlabeled))


def generate_synthetic_dataset(out_dir: str, num_labeled: int = DEFAULTS["num_labeled"],
                               num_unlabeled: int = DEFAULTS["num_unlabeled"],
                               num_frames: int = DEFAULTS["num_frames"],
                               size: int = DEFAULTS["size"], num_folds: int = 5, seed: int = 0,
                               fmt: str = "mp4", label_noise: float = 0.03, workers: int = 1,
                               val_fraction: float = 0.1, fps: int = 25,
                               class_distribution: str = "uniform", reuse: bool = False, progress=None,
                               verbose: bool = False,
                               style: Optional[RenderStyle] = None) -> dict:
    """Render the synthetic dataset into `out_dir` and write its split files.

    Layout: ``labeled/clip_00000.mp4`` (or ``labeled/clip_00000/{1..T}.jpg`` with
    ``fmt='frames'``), ``unlabeled/talk_00000.*``, ``fold_{i}/{train,val,test}.csv`` for
    i = 1..num_folds, ``pretrain.csv`` and ``meta.json``.  Split lines are
    ``<absolute path> <0-based label>``.  Test fold i is the i-th stratified fold; val is a
    stratified `val_fraction` of the remaining clips, removed from train (train, val and test of a
    fold are disjoint and together are the whole labeled set).

    ``progress``: anything with ``update(n)`` (e.g. ``engine.logger.make_progress``), told of every
    clip written.

    Returns ``{'out_dir', 'meta', 'pretrain', 'folds': {'1': {'train','val','test'}, ...},
    'label_names', 'num_labeled', 'num_unlabeled', 'seconds'}``.
    """
    if fmt not in ("mp4", "frames"):
        raise ValueError("fmt must be 'mp4' or 'frames'")
    if num_labeled > 0 and num_folds < 2:
        raise ValueError("num_folds must be >= 2")
    if not 0.0 <= label_noise < 1.0:
        raise ValueError("label_noise must be in [0, 1)")
    out_dir = os.path.abspath(out_dir)
    style = RenderStyle.from_dict(style)
    params = dict(num_labeled=int(num_labeled), num_unlabeled=int(num_unlabeled),
                  num_frames=int(num_frames), size=int(size), num_folds=int(num_folds),
                  seed=int(seed), fmt=fmt, label_noise=float(label_noise),
                  val_fraction=float(val_fraction), fps=int(fps),
                  class_distribution=class_distribution)
    if style != RenderStyle():
        params["style"] = asdict(style)
    meta_path = os.path.join(out_dir, "meta.json")
    result = _layout(out_dir, num_labeled, num_unlabeled, num_folds)
    if reuse and _written_before(meta_path, params):
        result["seconds"] = 0.0
        result["reused"] = True
        return result
    t0 = time.time()
    ext = ".mp4" if fmt == "mp4" else ""
    for sub in ("labeled", "unlabeled"):
        d = os.path.join(out_dir, sub)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
    split_rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7]))
    true = _class_sequence(num_labeled, len(LABEL_NAMES), class_distribution, split_rng)
    noisy, n_noise = _with_label_noise(true, label_noise, split_rng)

    lab_paths = [os.path.join(out_dir, "labeled", f"clip_{i:05d}{ext}") for i in range(num_labeled)]
    unl_paths = [os.path.join(out_dir, "unlabeled", f"talk_{i:05d}{ext}")
                 for i in range(num_unlabeled)]
    jobs = [(seed, _KIND_LABELED, i, int(true[i]), num_frames, size, fps, lab_paths[i], fmt, style)
            for i in range(num_labeled)]
    jobs += [(seed, _KIND_UNLABELED, i, -1, num_frames, size, fps, unl_paths[i], fmt, style)
             for i in range(num_unlabeled)]
    workers = max(1, int(workers))
    _render_jobs(jobs, workers, progress)

    folds_meta = {}
    if num_labeled > 0:
        folds_meta = _write_folds(out_dir, lab_paths, noisy, num_folds, val_fraction, split_rng)
    _write_split(result["pretrain"], [(p, 0) for p in unl_paths])
    seconds = time.time() - t0
    meta = _meta(params, true, noisy, n_noise, folds_meta, lab_paths, unl_paths)
    meta.update(seconds=round(seconds, 2), workers=workers)
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)
    result["seconds"] = seconds
    if verbose:
        print(f"wrote {num_labeled} labeled + {num_unlabeled} unlabeled clips to {out_dir} "
              f"in {seconds:.1f}s")
    return result


def preview_grid(path: str = "", seed: int = 0, others: int = 2, num_frames: int = 64,
                 size: int = 96) -> np.ndarray:
    """A BGR grid, one row per class: four frames of one clip (start, onset, apex, end), then the
    apex frame of `others` more identities.  Written as PNG when `path` is given."""
    rows = []
    for c, name in enumerate(LABEL_NAMES):
        row = []
        for r in range(1 + others):
            rng = np.random.default_rng(np.random.SeedSequence([seed, 99, c, r]))
            spec = sample_clip_spec(rng, c, num_frames, size)
            clip = render_clip(spec)
            energy = sum(v for v in spec.au.values())
            apex = int(np.argmax(energy)) if energy.max() > 0 else num_frames // 2
            if r == 0:
                rising = np.flatnonzero(energy >= 0.5 * energy.max()) if energy.max() > 0 else []
                onset = int(rising[0]) if len(rising) else num_frames // 4
                row += [clip[0], clip[onset], clip[apex], clip[-1]]
            else:
                row.append(clip[apex])
        row = np.concatenate(row, 1)
        cv2.putText(row, name, (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1,
                    cv2.LINE_AA)
        rows.append(row)
    grid = np.concatenate(rows, 0)
    if path:
        try:                       # a 256-colour palette keeps the PNG small (docs/img)
            from PIL import Image
            Image.fromarray(grid[..., ::-1].copy()).quantize(256).save(path, optimize=True)
        except ImportError:
            cv2.imwrite(path, grid, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return grid

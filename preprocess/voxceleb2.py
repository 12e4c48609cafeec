"""VoxCeleb2 (dev) -> the unlabeled pre-training split file.

Lists ``<root>/dev/mp4/idNNNNN/<YouTube id>/NNNNN.mp4`` (``--root`` may also point at ``dev/mp4``
itself) and writes ``<out>/pretrain.csv`` with ``<path> 0`` lines (dummy label, the published format).
``--check`` decodes every file in parallel (``--workers`` processes; first, middle and last frame, or
every frame with ``--full_decode``), writes the undecodable ones with the reason to
``<out>/undecodable.txt`` and leaves them out of the split. ``--exclude FILE`` leaves out the paths
listed in an earlier undecodable.txt without checking again.

    python -m preprocess.voxceleb2 --root /data/VoxCeleb2 --out data/splits/voxceleb2 --check --workers 16
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time

from datasets.video_reader import DEFAULT_READER, READERS, VideoReadError, open_video
from engine.logger import make_progress
from preprocess import common

NAME = "voxceleb2"
BAD_FILE = "undecodable.txt"


def mp4_dir(root: str) -> str:
    for cand in (os.path.join(root, "dev", "mp4"), os.path.join(root, "mp4"), root):
        if os.path.isdir(cand) and any(e.name.startswith("id") and e.is_dir() for e in os.scandir(cand)):
            return cand
    raise FileNotFoundError(f"no idNNNNN speaker folders in {root}/dev/mp4, {root}/mp4 or {root}")


def list_clips(base: str):
    """Sorted ``id*/*/*.mp4`` below base (os.scandir: fast on a million files)."""
    out = []
    for spk in sorted((e for e in os.scandir(base) if e.is_dir() and e.name.startswith("id")),
                      key=lambda e: e.name):
        for yt in sorted((e for e in os.scandir(spk.path) if e.is_dir()), key=lambda e: e.name):
            out += sorted(e.path for e in os.scandir(yt.path)
                          if e.is_file() and e.name.lower().endswith(".mp4"))
    return out


def check_video(path: str, full: bool = False, reader: str = DEFAULT_READER):
    """-> (path, None) if the video decodes with the training reader, else (path, reason).
    Decodes the first, middle and last frame, or every frame with ``full``."""
    try:
        v = open_video(path, reader)
        try:
            n = v.num_frames
            if full:
                for s in range(0, n, 64):
                    v.get(list(range(s, min(n, s + 64))))
            else:
                v.get(sorted({0, n // 2, n - 1}))
        finally:
            v.close()
        return path, None
    except VideoReadError as e:
        return path, e.reason
    except Exception as e:  # noqa: BLE001 - every failure is a reason to exclude the file
        return path, f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"


def check_all(paths, workers: int, full: bool = False, reader: str = DEFAULT_READER,
              stall_timeout: float = 300.0, progress: bool = True):
    """Decode every path in a multiprocessing Pool; -> {path: reason} of the failures. A task whose
    worker dies (a crashing decoder) or stalls longer than ``stall_timeout`` counts as a failure."""
    bad = {}
    bar = make_progress(len(paths), "decoding", "clips", progress)
    if workers <= 1:
        for p in paths:
            _, why = check_video(p, full, reader)
            if why:
                bad[p] = why
            bar.update(1)
        bar.close()
        return bad
    with mp.Pool(workers) as pool:
        pending = [(p, pool.apply_async(check_video, (p, full, reader),
                                        callback=lambda _r: bar.update(1)))
                   for p in paths]
        for p, res in pending:
            t0 = time.time()
            try:
                _, why = res.get(timeout=stall_timeout)
            except mp.TimeoutError:
                why = f"no result after {time.time() - t0:.0f} s (decoder crashed or hung)"
                bar.update(1)
            if why:
                bad[p] = why
    bar.close()
    return bad


def main(argv=None):
    p = common.base_parser(__doc__.split("\n")[0], dataset=NAME)
    p.add_argument("--check", action="store_true", help="decode every file, exclude undecodable ones")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    p.add_argument("--full_decode", action="store_true", help="with --check: decode every frame")
    p.add_argument("--reader", choices=READERS, default=DEFAULT_READER, help="video reader of --check")
    p.add_argument("--stall_timeout", type=float, default=300.0,
                   help="with --check: seconds to wait for one file before declaring it broken")
    p.add_argument("--exclude", default=None, help="file of paths to leave out (e.g. an earlier "
                   "undecodable.txt; the first tab-separated field of each line is the path)")
    p.add_argument("--limit", type=int, default=0, help="only the first N clips (for a quick try)")
    args = p.parse_args(argv)
    base = mp4_dir(args.root)
    paths = list_clips(base)
    if args.limit:
        paths = paths[: args.limit]
    n_spk = len({os.path.relpath(x, base).split(os.sep)[0] for x in paths})
    print(f"found {len(paths)} clips of {n_spk} speakers in {base}")
    excluded = set()
    if args.exclude:
        excluded = {os.path.abspath(l.split("\t")[0].strip()) for l in common.read_lines(args.exclude)}
    bad = {}
    if args.check:
        todo = [x for x in paths if os.path.abspath(x) not in excluded]
        bad = check_all(todo, args.workers, args.full_decode, args.reader, args.stall_timeout)
        os.makedirs(args.out, exist_ok=True)
        bad_path = os.path.join(args.out, BAD_FILE)
        with open(bad_path, "w", encoding="utf-8") as f:
            for x in sorted(bad):
                f.write(f"{os.path.abspath(x)}\t{bad[x]}\n")
        print(f"{len(bad)} undecodable clips written to {bad_path}")
    rows = []
    for x in paths:
        if x in bad or os.path.abspath(x) in excluded:
            continue
        rows.append((common.finalize_path(common.redirect_path(x, base, args), args), 0))
    if excluded:
        print(f"left out {len(paths) - len(bad) - len(rows)} clips listed in {args.exclude}")
    rows = common.apply_missing_policy(rows, args)
    out = os.path.join(args.out, "pretrain.csv")
    common.write_split(out, rows)
    n_spk = len({os.path.relpath(r[0], base).split(os.sep)[0] for r in rows}) if not (
        args.frames_root or args.video_root) else None
    print(f"pretrain split: {len(rows)} clips" + (f" of {n_spk} speakers" if n_spk else "")
          + f" -> {out}")
    return rows, bad


if __name__ == "__main__":
    main()

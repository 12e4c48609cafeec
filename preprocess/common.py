"""Helpers shared by the per-dataset preprocess scripts.

Conventions (see docs/preprocess.md):

* Every script is run from the repository root as ``python -m preprocess.<name> --root <official
  distribution> --out <folder>`` and has a ``main(argv=None)`` entry point (tests call it in-process).
* Split files (docs/data.md): plain text, space separated, no header, one sample a line,
  ``<path> <label>`` (0-based int) or ``<path> <v1> <v2> ...`` (regression floats). Paths may contain
  spaces (eNTERFACE'05); readers parse the labels from the right.
* Per fold the files are written to ``<out>/<fold dir>/{train,val,test}.csv`` where the fold dir is
  ``split01`` .. ``split0K`` for numbered folds and ``official`` for single-split datasets (the
  published code's ``--data_path .../split01`` convention; the ``.csv`` files are space separated).
* ``--frames_root DIR`` points the split files at frame folders instead of the videos: the frame
  folder of a video is ``DIR/<video path relative to the dataset's video folder, extension dropped>``,
  the layout ``python -m preprocess.face_crop --format frames`` writes. ``--video_root DIR`` does the
  same for re-encoded videos (``DIR/<relative path>`` with ``--video_ext``).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter, OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from datasets.split_file import write_split_file
from datasets.video_reader import natural_key  # noqa: F401  (the one sort order of names)

Label = Union[int, Sequence[float]]
Row = Tuple[str, Label]

SPLIT_NAMES = ("train", "val", "test")
VIDEO_EXTS = (".mp4", ".avi", ".flv", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv")

VAL_IS_TEST_NOTE = ("NOTE: {name} has no validation split; val.csv is a copy of test.csv (the "
                    "published protocol), so choosing the 'best epoch' on val is choosing it on test.")


# ----------------------------------------------------------------------------------------------
# argument parsing

def base_parser(description: str, *, frames: bool = True, dataset: Optional[str] = None
                ) -> argparse.ArgumentParser:
    """The arguments every script shares: --root, --out, path redirection, missing-path policy."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--root", required=True, help="root folder of the official distribution")
    p.add_argument("--out", required=True, help="output folder for the split files"
                   + (f" (e.g. data/splits/{dataset})" if dataset else ""))
    if frames:
        p.add_argument("--frames_root", default=None,
                       help="write frame-folder paths under this folder instead of video paths "
                            "(layout: <frames_root>/<relative video path without extension>)")
        p.add_argument("--video_root", default=None,
                       help="write video paths under this folder instead of the originals "
                            "(e.g. face-cropped mp4s from preprocess.face_crop)")
        p.add_argument("--video_ext", default=None,
                       help="extension of the videos under --video_root (default: keep the original)")
    p.add_argument("--relative", action="store_true",
                   help="write paths as given (relative to the current folder) instead of absolute")
    p.add_argument("--drop_missing", action="store_true",
                   help="leave out samples whose path does not exist (default: keep them, warn)")
    return p


def redirect_path(video_path: str, video_dir: str, args) -> str:
    """The path to write for ``video_path`` (a file under ``video_dir``), honouring --frames_root /
    --video_root."""
    rel = os.path.relpath(video_path, video_dir)
    stem, ext = os.path.splitext(rel)
    if getattr(args, "frames_root", None):
        return os.path.join(args.frames_root, stem)
    if getattr(args, "video_root", None):
        new_ext = args.video_ext or ext
        if new_ext and not new_ext.startswith("."):
            new_ext = "." + new_ext
        return os.path.join(args.video_root, stem + new_ext)
    return video_path


def finalize_path(path: str, args) -> str:
    return path if getattr(args, "relative", False) else os.path.abspath(path)


# ----------------------------------------------------------------------------------------------
# small parsers

def split_last_field(line: str) -> Tuple[str, str]:
    """Split ``'<name> <label>'`` or ``'<name>,<label>'`` at the last separator (names may hold spaces)."""
    line = line.strip()
    m = re.match(r"^(.*?)[\s,]+([^\s,]+)$", line)
    if not m:
        raise ValueError(f"cannot split {line!r} into name and label")
    return m.group(1).strip(), m.group(2).strip()


def norm_label(s: str) -> str:
    return re.sub(r"[\s_\-]+", "-", s.strip().lower())


def label_index(name: str, label_names: Sequence[str], *, where: str = "") -> int:
    table = {norm_label(n): i for i, n in enumerate(label_names)}
    key = norm_label(name)
    if key not in table:
        raise ValueError(f"unknown label {name!r}{' in ' + where if where else ''}; "
                         f"expected one of {list(label_names)}")
    return table[key]


def read_lines(path: str) -> List[str]:
    with open(path, "r", encoding="utf-8-sig", errors="replace") as f:
        return [ln.rstrip("\r\n") for ln in f if ln.strip()]


def find_file(root: str, name: str) -> Optional[str]:
    """``root/name`` if it exists, else the first file called ``basename(name)`` below root."""
    direct = os.path.join(root, name)
    if os.path.exists(direct):
        return direct
    base = os.path.basename(name)
    for dirpath, _dirs, files in sorted(os.walk(root)):
        if base in files:
            return os.path.join(dirpath, base)
    return None


def index_videos(root: str, exts: Iterable[str] = VIDEO_EXTS) -> Dict[str, str]:
    """Map file stem -> path for every video below root (first by sorted walk wins)."""
    exts = tuple(e.lower() for e in exts)
    out: Dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for fn in sorted(files):
            stem, ext = os.path.splitext(fn)
            if ext.lower() in exts and stem not in out:
                out[stem] = os.path.join(dirpath, fn)
    return out


# ----------------------------------------------------------------------------------------------
# writing

def write_split(path: str, rows: Sequence[Row]) -> None:
    """Write one split file (docs/data.md, "Split files"): ``datasets.split_file.write_split_file``,
    the reader's own counterpart. Paths may contain spaces but no line breaks."""
    write_split_file(path, rows)


def fold_dir(out: str, fold: str) -> str:
    return os.path.join(out, f"split{int(fold):02d}" if str(fold).isdigit() else str(fold))


def apply_missing_policy(rows: List[Row], args, what: str = "") -> List[Row]:
    """Warn about paths that do not exist; drop them with --drop_missing."""
    missing = [p for p, _ in rows if not os.path.exists(p)]
    if missing:
        msg = (f"WARNING: {len(missing)} of {len(rows)} {what + ' ' if what else ''}paths do not exist "
               f"(first: {missing[0]})")
        if getattr(args, "drop_missing", False):
            miss = set(missing)
            rows = [r for r in rows if r[0] not in miss]
            msg += "; dropped (--drop_missing)"
        else:
            msg += "; kept (use --drop_missing to leave them out)"
        print(msg)
    return rows


def write_folds(out: str, folds: "OrderedDict[str, Dict[str, List[Row]]]",
                label_names: Sequence[str] = (), *, regression: bool = False,
                dataset: str = "", val_is_test: bool = False, expected: str = ""
                ) -> Dict[str, Dict[str, int]]:
    """Write ``folds[fold][split] -> rows`` to ``<out>/<fold dir>/<split>.csv``, print counts.

    With ``val_is_test`` and no 'val' split given, val.csv is written as a copy of test.csv (with a
    printed note). Returns ``{fold: {split: count}}``.
    """
    counts: Dict[str, Dict[str, int]] = OrderedDict()
    noted = False
    for fold, splits in folds.items():
        d = fold_dir(out, fold)
        splits = dict(splits)
        if val_is_test and "val" not in splits and "test" in splits:
            splits["val"] = splits["test"]
            if not noted:
                print(VAL_IS_TEST_NOTE.format(name=dataset or "this dataset"))
                noted = True
        counts[fold] = OrderedDict()
        for split in SPLIT_NAMES:
            if split not in splits:
                continue
            write_split(os.path.join(d, f"{split}.csv"), splits[split])
            counts[fold][split] = len(splits[split])
    if label_names:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "label_names.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(label_names) + "\n")
    print_fold_counts(counts, out)
    if expected:
        print(f"expected for the full official distribution (DATASETS.md): {expected}")
    return counts


def print_fold_counts(counts: Dict[str, Dict[str, int]], out: str = "") -> None:
    print(f"split files written to {out}" if out else "split files:")
    for fold, c in counts.items():
        print(f"  {os.path.basename(fold_dir('', fold))}: "
              + ", ".join(f"{k} {v}" for k, v in c.items()))
    sys.stdout.flush()


def finish_actor_folds(args, items, fold_table, info, dataset: str, expected: str):
    """Actor-grouped classification sets (CREMA-D, RAVDESS): the missing-file policy per actor,
    the actors' folds of ``fold_table``, then :func:`finish_classification`."""
    items = apply_missing_policy_grouped(items, args)
    print(f"{len(items)} clips of {len({a for a, _ in items})} actors")
    folds = group_folds(items, fold_table)
    return finish_classification(args, folds, info, [r for _, r in items], dataset, expected)


def finish_classification(args, folds, info, rows: Sequence[Row], dataset: str, expected: str,
                          totals_title: str = "class totals"):
    """The last step of every classification converter: write the folds (with the counts the
    official distribution should give, for comparison), print the class totals, return the folds."""
    write_folds(args.out, folds, info.label_names, dataset=dataset, val_is_test=True, expected=expected)
    print_class_totals(rows, info.label_names, totals_title)
    return folds


def print_class_totals(rows: Sequence[Row], label_names: Sequence[str], title: str = "class totals"
                       ) -> Dict[str, int]:
    """Print how many samples each class has (classification) -- compare with DATASETS.md."""
    c = Counter(int(l) for _, l in rows)
    totals = OrderedDict((n, c.get(i, 0)) for i, n in enumerate(label_names))
    print(f"{title} ({len(rows)} samples): " + ", ".join(f"{n} {v}" for n, v in totals.items()))
    return totals


def print_regression_summary(rows: Sequence[Row], names: Sequence[str], title: str = "targets") -> None:
    import numpy as np
    if not rows:
        print(f"{title}: no samples")
        return
    a = np.asarray([list(l) for _, l in rows], dtype=np.float64)
    print(f"{title} ({len(rows)} samples): " + ", ".join(
        f"{n} mean {a[:, i].mean():.4f} std {a[:, i].std():.4f} [{a[:, i].min():.4g}, {a[:, i].max():.4g}]"
        for i, n in enumerate(names)))


def group_folds(items: Sequence[Tuple[int, Row]], ranges: Sequence[Tuple[int, int]]
                ) -> "OrderedDict[str, Dict[str, List[Row]]]":
    """Cross-validation by group id (subject, actor, session): fold k tests the ids in ranges[k-1]
    (inclusive) and trains on everything else. Ids outside every range raise an error."""
    folds: "OrderedDict[str, Dict[str, List[Row]]]" = OrderedDict()
    for gid, _ in items:
        if not any(lo <= gid <= hi for lo, hi in ranges):
            raise ValueError(f"group id {gid} is in no fold range {list(ranges)}")
    for k, (lo, hi) in enumerate(ranges, 1):
        test = [r for g, r in items if lo <= g <= hi]
        train = [r for g, r in items if not lo <= g <= hi]
        folds[str(k)] = {"train": train, "test": test}
    return folds


def apply_missing_policy_grouped(items: List[Tuple[int, Row]], args, what: str = ""
                                 ) -> List[Tuple[int, Row]]:
    """apply_missing_policy for ``(group id, row)`` pairs."""
    kept = {r[0] for r in apply_missing_policy([r for _, r in items], args, what)}
    return [(g, r) for g, r in items if r[0] in kept]

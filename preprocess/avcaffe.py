"""AVCAffe -> arousal and valence split files (5 classes each) for the official participant split.

Expects ``<root>/videos/shorter_segments/aiimNNN/task_N/*.avi`` (the ~6 s clips),
``<root>/ground_truths/{arousal,valence}.txt`` (lines ``aiimNNN_task_N, <label>``; one label per
participant x task, shared by all its clips) and ``<root>/info/{train,val}.txt`` (the participants of
the 86/20 split). With ``--frames_root DIR`` the paths become ``DIR/aiimNNN/task_N/<clip stem>``.
Labels in the registry order: arousal Excited, Wide-awake, Neutral, Dull, Calm -> 0..4; valence
Pleasant, Pleased, Neutral, Unsatisfied, Unpleasant -> 0..4.

Writes ``<out>/{arousal,valence}/official/{train,val,test}.csv`` (val = test = the 20 official test
participants) and beside them ``video_groups.txt``: ``<path> aiimNNN_task_N`` for every clip, the key
that groups clips into videos for the video-level weighted F1.

    python -m preprocess.avcaffe --root /data/AVCAffe --out data/splits/avcaffe
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict

from datasets.registry import get_dataset_info
from preprocess import common

ATTRIBUTES = ("arousal", "valence")
PARTICIPANT = re.compile(r"aiim\d+", re.IGNORECASE)
KEY = re.compile(r"^(aiim\d+)_task_?(\d+)$", re.IGNORECASE)
GROUPS_FILE = "video_groups.txt"


def norm_key(s: str) -> str:
    m = KEY.match(s.strip())
    if not m:
        raise ValueError(f"not a participant_task key: {s!r}")
    return f"{m.group(1).lower()}_task_{int(m.group(2))}"


def read_ground_truth(path: str, label_names):
    labels = {}
    for ln in common.read_lines(path):
        if "," in ln:
            key, value = (t.strip() for t in ln.split(",", 1))
        else:
            key, value = common.split_last_field(ln)
        try:
            k = norm_key(key)
        except ValueError:
            if not labels:  # a header line
                continue
            raise
        labels[k] = common.label_index(value, label_names, where=path)
    return labels


def read_participants(path: str):
    out = []
    for ln in common.read_lines(path):
        out += [m.lower() for m in PARTICIPANT.findall(ln)]
    return list(OrderedDict.fromkeys(out))


def main(argv=None):
    p = common.base_parser(__doc__.split("\n")[0], dataset="avcaffe")
    p.add_argument("--video_dir", default=os.path.join("videos", "shorter_segments"),
                   help="folder of the clips, relative to --root")
    args = p.parse_args(argv)
    vdir = os.path.join(args.root, args.video_dir)
    split_of = {}
    for split, fn in (("train", "train.txt"), ("test", "val.txt")):
        f = os.path.join(args.root, "info", fn)
        if not os.path.exists(f):
            raise FileNotFoundError(f"missing official participant list {f}")
        for pid in read_participants(f):
            split_of[pid] = split
    print(f"participants: {sum(v == 'train' for v in split_of.values())} train, "
          f"{sum(v == 'test' for v in split_of.values())} test")

    clips = []  # (key, path)
    unsplit = set()
    for dirpath, dirs, files in os.walk(vdir):
        dirs.sort(key=common.natural_key)
        rel = os.path.relpath(dirpath, vdir).split(os.sep)
        if len(rel) < 2 or not PARTICIPANT.fullmatch(rel[0]) or not re.fullmatch(r"task_?\d+", rel[1], re.I):
            continue
        key = norm_key(f"{rel[0]}_{rel[1]}")
        for fn in sorted(files, key=common.natural_key):
            if os.path.splitext(fn)[1].lower() not in common.VIDEO_EXTS:
                continue
            if rel[0].lower() not in split_of:
                unsplit.add(rel[0].lower())
                continue
            path = common.redirect_path(os.path.join(dirpath, fn), vdir, args)
            clips.append((key, common.finalize_path(path, args)))
    if unsplit:
        print(f"WARNING: clips of {len(unsplit)} participants in neither info/train.txt nor "
              f"info/val.txt skipped: {', '.join(sorted(unsplit))}")
    if not clips:
        raise FileNotFoundError(f"no aiimNNN/task_N/* clips below {vdir}")
    kept = {r[0] for r in common.apply_missing_policy([(pth, 0) for _, pth in clips], args)}
    clips = [(k, pth) for k, pth in clips if pth in kept]

    results = {}
    for attr in ATTRIBUTES:
        info = get_dataset_info(f"avcaffe-{attr}")
        gt = os.path.join(args.root, "ground_truths", f"{attr}.txt")
        if not os.path.exists(gt):
            raise FileNotFoundError(f"missing ground truth {gt}")
        labels = read_ground_truth(gt, info.label_names)
        fold = {"train": [], "test": []}
        groups, unlabeled = [], set()
        for key, pth in clips:
            if key not in labels:
                unlabeled.add(key)
                continue
            fold[split_of[key.split("_")[0]]].append((pth, labels[key]))
            groups.append((pth, key))
        print(f"--- {attr} ({gt}: {len(labels)} participant x task labels)")
        if unlabeled:
            print(f"WARNING: {len(unlabeled)} participant x task folders without a {attr} label "
                  f"skipped (first: {sorted(unlabeled)[0]})")
        out = os.path.join(args.out, attr)
        folds = OrderedDict([("official", fold)])
        common.write_folds(out, folds, info.label_names, dataset=f"AVCAffe {attr}", val_is_test=True,
                           expected="86 train / 20 test participants (58112 clips in all)")
        with open(os.path.join(common.fold_dir(out, "official"), GROUPS_FILE), "w", encoding="utf-8") as f:
            for pth, key in groups:
                f.write(f"{pth} {key}\n")
        for split in ("train", "test"):
            common.print_class_totals(fold[split], info.label_names, f"{attr} {split} class totals")
        print(f"videos (participant x task): train {len({k for (pth, k) in groups if split_of[k.split('_')[0]] == 'train'})}, "
              f"test {len({k for (pth, k) in groups if split_of[k.split('_')[0]] == 'test'})}")
        results[attr] = folds
    return results


if __name__ == "__main__":
    main()

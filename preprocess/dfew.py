"""DFEW -> split files for the 5 official folds.

Expects ``<root>/EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv`` (header
``video_name,label``, unpadded integer names, labels 1..7) and the frame folders
``<root>/Clip/clip_224x224/<5-digit name>/`` (or the authors' renamed ``Clip/jpg_256``; override with
``--frames_root``). Labels are shifted to 0..6 (Happy, Sad, Neutral, Angry, Surprise, Disgust, Fear).
DFEW has no validation split: val.csv is a copy of test.csv (a warning is printed).

    python -m preprocess.dfew --root /data/DFEW --out data/splits/dfew
"""
from __future__ import annotations

import csv
import os
from collections import OrderedDict

from datasets.registry import get_dataset_info
from preprocess import common

NAME = "dfew"
FRAME_DIRS = ("Clip/clip_224x224", "Clip/jpg_256")


def read_set(path: str):
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader)]
        try:
            i_name, i_label = header.index("video_name"), header.index("label")
        except ValueError:
            raise ValueError(f"{path}: expected header 'video_name,label', got {header}")
        for rec in reader:
            if not rec or not "".join(rec).strip():
                continue
            name, label = int(rec[i_name].strip()), int(float(rec[i_label]))
            if not 1 <= label <= 7:
                raise ValueError(f"{path}: label {label} of clip {name} is not in 1..7")
            rows.append((name, label - 1))
    return rows


def main(argv=None):
    p = common.base_parser(__doc__.split("\n")[0], dataset=NAME)
    p.set_defaults(video_ext=".mp4")
    args = p.parse_args(argv)
    info = get_dataset_info(NAME)
    split_dir = os.path.join(args.root, "EmoLabel_DataSplit")
    if args.frames_root:
        frames = args.frames_root
    else:
        frames = next((os.path.join(args.root, d) for d in FRAME_DIRS
                       if os.path.isdir(os.path.join(args.root, d))),
                      os.path.join(args.root, FRAME_DIRS[0]))

    def path_of(n: int) -> str:
        name = f"{n:05d}"
        if args.video_root and not args.frames_root:
            ext = args.video_ext if args.video_ext.startswith(".") else "." + args.video_ext
            return common.finalize_path(os.path.join(args.video_root, name + ext), args)
        return common.finalize_path(os.path.join(frames, name), args)

    folds = OrderedDict()
    all_rows = {}
    for k in range(1, 6):
        fold = {}
        for split, sub in (("train", "train(single-labeled)"), ("test", "test(single-labeled)")):
            f = os.path.join(split_dir, sub, f"set_{k}.csv")
            if not os.path.exists(f):
                raise FileNotFoundError(f"missing official split file {f}")
            rows = [(path_of(n), y) for n, y in read_set(f)]
            rows = common.apply_missing_policy(rows, args, f"fold {k} {split}")
            fold[split] = rows
            if split == "test":
                all_rows.update(dict(rows))
        folds[str(k)] = fold
    return common.finish_classification(args, folds, info, list(all_rows.items()), "DFEW",
                                        "train/test 9356/2341, 9356/2341, 9357/2340, 9358/2339, 9361/2336; class totals happy 2445, sad 1894, neutral 2669, angry 2173, surprise 1469, disgust 145, fear 902", "class totals over the 5 test sets (= all clips)")


if __name__ == "__main__":
    main()

"""FERV39k -> split files for the official All-scenes train/test split.

Expects ``<root>/4_setups/All_scenes/{train_All,test_All}.csv`` (no header, lines like
``Action/Happy/0267 Happy``) and the frame folders ``<root>/2_ClipsforFaceCrop/<Scene>/<Emotion>/<NNNN>/``
(override the frame base with ``--frames_root``). Labels Happy, Sad, Neutral, Angry, Surprise,
Disgust, Fear -> 0..6. No validation split: val.csv is a copy of test.csv.

    python -m preprocess.ferv39k --root /data/FERV39k --out data/splits/ferv39k
"""
from __future__ import annotations

import os
from collections import OrderedDict

from datasets.registry import get_dataset_info
from preprocess import common

NAME = "ferv39k"


def read_setup(path, frames, label_names, args):
    rows = []
    for ln in common.read_lines(path):
        rel, label = common.split_last_field(ln)
        y = common.label_index(label, label_names, where=f"{path}")
        rows.append((common.finalize_path(os.path.join(frames, rel.strip("/")), args), y))
    return rows


def main(argv=None):
    p = common.base_parser(__doc__.split("\n")[0], dataset=NAME)
    args = p.parse_args(argv)
    info = get_dataset_info(NAME)
    frames = args.frames_root or os.path.join(args.root, "2_ClipsforFaceCrop")
    setup = os.path.join(args.root, "4_setups", "All_scenes")
    fold = {}
    for split, fn in (("train", "train_All.csv"), ("test", "test_All.csv")):
        f = os.path.join(setup, fn)
        if not os.path.exists(f):
            raise FileNotFoundError(f"missing official split file {f}")
        rows = read_setup(f, frames, info.label_names, args)
        fold[split] = common.apply_missing_policy(rows, args, split)
    folds = OrderedDict([("official", fold)])
    return common.finish_classification(args, folds, info, fold["train"] + fold["test"], "FERV39k",
                                        "train 31088, test 7847; class totals happy 7327, sad 6916, neutral 9748, angry 7393, surprise 3140, disgust 2300, fear 2111", "class totals (train + test)")


if __name__ == "__main__":
    main()

"""MAFW -> split files for the 5 official single-label folds (11 classes).

Expects ``<root>/Train & Test Set/single/no_caption/set_{1..5}/{train,test}.txt`` (lines like
``00025.mp4 anger``) and the clips ``<root>/data/clips/<NNNNN>.mp4``. With ``--frames_root DIR`` the
paths become ``DIR/<NNNNN>`` (frame folders, e.g. the distributed frames or preprocess.face_crop output).
Labels in the SVFAP order: anger, disgust, fear, happiness, neutral, sadness, surprise, contempt,
anxiety, helplessness, disappointment -> 0..10. val.csv is a copy of test.csv.

    python -m preprocess.mafw --root /data/MAFW --out data/splits/mafw
"""
from __future__ import annotations

import os
from collections import OrderedDict

from datasets.registry import get_dataset_info
from preprocess import common

NAME = "mafw"
SPLIT_DIR = os.path.join("Train & Test Set", "single", "no_caption")


def main(argv=None):
    p = common.base_parser(__doc__.split("\n")[0], dataset=NAME)
    p.add_argument("--clips_dir", default=os.path.join("data", "clips"),
                   help="folder of the clips, relative to --root")
    args = p.parse_args(argv)
    info = get_dataset_info(NAME)
    clips = os.path.join(args.root, args.clips_dir)
    folds = OrderedDict()
    every = {}
    for k in range(1, 6):
        fold = {}
        for split in ("train", "test"):
            f = os.path.join(args.root, SPLIT_DIR, f"set_{k}", f"{split}.txt")
            if not os.path.exists(f):
                raise FileNotFoundError(f"missing official split file {f}")
            rows = []
            for ln in common.read_lines(f):
                name, label = common.split_last_field(ln)
                if not os.path.splitext(name)[1]:
                    name += ".mp4"
                y = common.label_index(label, info.label_names, where=f)
                path = common.redirect_path(os.path.join(clips, name), clips, args)
                rows.append((common.finalize_path(path, args), y))
            fold[split] = common.apply_missing_policy(rows, args, f"fold {k} {split}")
            if split == "test":
                every.update(dict(fold[split]))
        folds[str(k)] = fold
    return common.finish_classification(args, folds, info, list(every.items()), "MAFW",
                                        "train/test 7333/1839, 7335/1837, 7339/1833, 7340/1832, 7341/1831 (9172 clips)", "class totals over the 5 test sets (= all clips)")


if __name__ == "__main__":
    main()

"""RAVDESS (speech, video-only) -> split files for 6 subject-independent folds, 8 classes.

Expects ``<root>/Actor_XX/02-01-EE-II-SS-RR-AA.mp4`` (the Video_Speech_Actor_XX zips unpacked). Only
the video-only speech files (modality 02, vocal channel 01) are used -- the 01- files are the same takes
with audio and are ignored. Label = emotion code - 1 (neutral, calm, happy, sad, angry, fearful,
disgust, surprised). Fold k tests actors 4k-3 .. 4k; val.csv is a copy of test.csv.

    python -m preprocess.ravdess --root /data/RAVDESS --out data/splits/ravdess
"""
from __future__ import annotations

import os
import re

from datasets.registry import get_dataset_info
from preprocess import common

NAME = "ravdess"
ACTOR_FOLDS = tuple((4 * k - 3, 4 * k) for k in range(1, 7))
PATTERN = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def main(argv=None):
    p = common.base_parser(__doc__.split("\n")[0], dataset=NAME)
    args = p.parse_args(argv)
    info = get_dataset_info(NAME)
    items, other = [], 0
    for dirpath, dirs, files in os.walk(args.root):
        dirs.sort()
        for fn in sorted(files):
            stem, ext = os.path.splitext(fn)
            m = PATTERN.match(stem)
            if ext.lower() not in common.VIDEO_EXTS or not m:
                continue
            modality, channel, emotion, _, _, _, actor = (int(g) for g in m.groups())
            if modality != 2 or channel != 1:
                other += 1
                continue
            folder = re.search(r"Actor_(\d+)", dirpath)
            if folder and int(folder.group(1)) != actor:
                print(f"WARNING: {fn} lies in {dirpath}; using the actor of the file name ({actor})")
            if not 1 <= emotion <= 8:
                raise ValueError(f"{fn}: emotion code {emotion} not in 01..08")
            path = common.redirect_path(os.path.join(dirpath, fn), args.root, args)
            items.append((actor, (common.finalize_path(path, args), emotion - 1)))
    if other:
        print(f"ignored {other} files that are not video-only speech (02-01-*)")
    if not items:
        raise FileNotFoundError(f"no 02-01-*.mp4 files below {args.root}")
    return common.finish_actor_folds(args, items, ACTOR_FOLDS, info, "RAVDESS",
                                     "1440 clips; 1200 train / 240 test per fold; neutral 96, every other class 192")


if __name__ == "__main__":
    main()

"""eNTERFACE'05 -> split files for 5 subject-independent folds, 6 classes.

Expects ``<root>/subject N/<anger|disgust|fear|happiness|sadness|surprise>/sentence K/*.avi`` (folder
names with spaces; extra levels are tolerated). The subject is read from the ``subject N`` folder,
never from the file name (subject 11's files are named s12_*, others s_3_*); files whose name ends in
``avi`` without the dot (``s16_su_3avi``) are included. Labels 0..5 in the alphabetical order above.
Fold k tests subjects 1-10, 11-19, 20-28, 29-37, 38-44; val.csv is a copy of test.csv. Paths keep
their spaces; the split-file readers parse the label from the right.

    python -m preprocess.enterface05 --root "/data/enterface database" --out data/splits/enterface05
"""
from __future__ import annotations

import os
import re
from collections import Counter

from datasets.registry import get_dataset_info
from preprocess import common

NAME = "enterface05"
SUBJECT_FOLDS = ((1, 10), (11, 19), (20, 28), (29, 37), (38, 44))
SUBJECT_DIR = re.compile(r"^subject\s*_?(\d+)$", re.IGNORECASE)


def is_video(fn: str) -> bool:
    return fn.lower().endswith("avi") and not fn.startswith(".")


def main(argv=None):
    p = common.base_parser(__doc__.split("\n")[0], dataset=NAME)
    args = p.parse_args(argv)
    info = get_dataset_info(NAME)
    emotions = {n.lower(): i for i, n in enumerate(info.label_names)}
    items, unplaced, odd = [], [], []
    for dirpath, dirs, files in os.walk(args.root):
        dirs.sort(key=common.natural_key)
        for fn in sorted(files, key=common.natural_key):
            if not is_video(fn):
                continue
            full = os.path.join(dirpath, fn)
            parts = os.path.relpath(dirpath, args.root).split(os.sep)
            subj = [int(m.group(1)) for m in (SUBJECT_DIR.match(c.strip()) for c in parts) if m]
            emo = [emotions[c.strip().lower()] for c in parts if c.strip().lower() in emotions]
            if len(subj) != 1 or len(emo) != 1:
                unplaced.append(full)
                continue
            if not fn.lower().endswith(".avi"):
                odd.append(fn)
            path = common.redirect_path(full, args.root, args)
            items.append((subj[0], (common.finalize_path(path, args), emo[0])))
    if unplaced:
        print(f"WARNING: {len(unplaced)} videos outside a 'subject N/<emotion>' folder skipped "
              f"(first: {unplaced[0]})")
    if odd:
        print(f"note: included {len(odd)} files without the '.avi' dot: {', '.join(odd)}")
    if not items:
        raise FileNotFoundError(f"no 'subject N/<emotion>/.../*.avi' files below {args.root}")
    items = common.apply_missing_policy_grouped(items, args)
    odd_space = [r[0] for _, r in items if "  " in r[0] or "\t" in r[0]]
    if odd_space:
        print(f"WARNING: {len(odd_space)} paths hold runs of spaces or tabs, which split-file readers "
              f"collapse (first: {odd_space[0]!r}); rename those folders")
    per_subject = Counter(s for s, _ in items)
    print(f"{len(items)} clips of {len(per_subject)} subjects "
          f"({', '.join(str(s) for s in sorted(per_subject))})")
    folds = common.group_folds(items, SUBJECT_FOLDS)
    return common.finish_classification(args, folds, info, [r for _, r in items], "eNTERFACE'05",
                                        "about 1287-1293 clips of 43-44 subject folders; test about 270/270/267/270/210")


if __name__ == "__main__":
    main()

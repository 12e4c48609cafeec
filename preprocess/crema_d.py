"""CREMA-D -> split files for 5 subject-independent (actor) folds, 6 classes.

Expects ``<root>/VideoFlash/<Actor>_<Sentence>_<Emotion>_<Level>.flv`` (e.g. ``1001_DFA_ANG_XX.flv``;
any video extension is accepted). Emotion codes ANG, DIS, FEA, HAP, NEU, SAD -> 0..5. Fold k tests the
actors 1001-1018, 1019-1036, 1037-1054, 1055-1072, 1073-1091 and trains on the others; val.csv is a copy
of test.csv. ``--drop_broken`` leaves out the clips known to be unreadable
(1076_MTI_NEU_XX, 1076_MTI_SAD_XX, 1064_TIE_SAD_XX, 1064_IEO_DIS_MD).

    python -m preprocess.crema_d --root /data/CREMA-D --out data/splits/crema-d [--drop_broken]
"""
from __future__ import annotations

import os
import re

from datasets.registry import get_dataset_info
from preprocess import common

NAME = "crema-d"
EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
ACTOR_FOLDS = ((1001, 1018), (1019, 1036), (1037, 1054), (1055, 1072), (1073, 1091))
KNOWN_BROKEN = ("1076_MTI_NEU_XX", "1076_MTI_SAD_XX", "1064_TIE_SAD_XX", "1064_IEO_DIS_MD")
PATTERN = re.compile(r"^(\d{4})_([A-Za-z]{3})_([A-Za-z]{3})_([A-Za-z]{2})$")


def main(argv=None):
    p = common.base_parser(__doc__.split("\n")[0], dataset=NAME)
    p.add_argument("--video_dir", default="VideoFlash", help="folder of the clips, relative to --root")
    p.add_argument("--drop_broken", action="store_true",
                   help="leave out the known-broken clips " + ", ".join(KNOWN_BROKEN))
    p.add_argument("--exclude", default=None, help="text file of further clip names to leave out")
    args = p.parse_args(argv)
    info = get_dataset_info(NAME)
    vdir = os.path.join(args.root, args.video_dir)
    if not os.path.isdir(vdir):
        raise FileNotFoundError(f"no clip folder {vdir}")
    exclude = set(KNOWN_BROKEN) if args.drop_broken else set()
    if args.exclude:
        exclude |= {os.path.splitext(os.path.basename(l.strip()))[0] for l in common.read_lines(args.exclude)}
    items, skipped, dropped = [], [], []
    seen = set()
    for fn in sorted(os.listdir(vdir)):
        stem, ext = os.path.splitext(fn)
        if ext.lower() not in common.VIDEO_EXTS:
            continue
        m = PATTERN.match(stem)
        if not m or m.group(3).upper() not in EMOTIONS:
            skipped.append(fn)
            continue
        if stem in seen:  # the same clip in two formats: keep the first
            continue
        seen.add(stem)
        if stem in exclude:
            dropped.append(stem)
            continue
        actor, y = int(m.group(1)), EMOTIONS.index(m.group(3).upper())
        path = common.finalize_path(common.redirect_path(os.path.join(vdir, fn), vdir, args), args)
        items.append((actor, (path, y)))
    if skipped:
        print(f"WARNING: {len(skipped)} files with unexpected names skipped (first: {skipped[0]})")
    if dropped:
        print(f"left out {len(dropped)} excluded clips: {', '.join(dropped)}")
    return common.finish_actor_folds(args, items, ACTOR_FOLDS, info, "CREMA-D",
                                     "7442 clips; test 1463/1470/1476/1476/1557; 1271 clips per class, neutral 1087")


if __name__ == "__main__":
    main()

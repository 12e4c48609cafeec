"""Werewolf-XL (speaker clips) -> regression split files for 5 session-independent folds.

Targets, in this order (the registry's): arousal, valence (pleasure), dominance -- the averaged
external-annotator columns of an annotation CSV. The third-party layout is unconfirmed, so everything
is configurable; the ASSUMED layout is:

* clips ``<root>/.../SS_PP_NNN.<video ext>`` anywhere below ``--root`` (session SS 01-30, seat PP,
  utterance NNN), or frame folders ``<frames_root>/SS_PP_NNN/`` with ``--frames_root``;
* one CSV (``--annotations``, default: the only/first ``*.csv`` below root) with a clip-name column
  (``--name_col``; auto-detected: the first column whose values look like ``SS_PP_NNN``) and the
  columns ``Mean_A_1_2``, ``Mean_P_1_2``, ``Mean_D_1_2`` (``--arousal_col`` / ``--valence_col`` /
  ``--dominance_col``). The session is parsed from the clip name (or ``--session_col``).

Only annotated clips become samples (the paper's speaker subset = the annotated rows). Fold k tests
sessions 6k-5 .. 6k; val.csv is a copy of test.csv.

    python -m preprocess.werewolf_xl --root /data/Werewolf-XL --annotations /data/Werewolf-XL/speaker.csv \
        --out data/splits/werewolf-xl
"""
from __future__ import annotations

import glob
import os
import re

from datasets.registry import get_dataset_info
from preprocess import common

NAME = "werewolf-xl"
SESSION_FOLDS = tuple((6 * k - 5, 6 * k) for k in range(1, 6))
CLIP_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)$")


def clip_key(v) -> str:
    s = os.path.basename(str(v).strip())
    stem, ext = os.path.splitext(s)
    return stem if ext.lower() in common.VIDEO_EXTS else s


def detect_name_col(df) -> str:
    for c in df.columns:
        vals = df[c].dropna().astype(str).map(clip_key)
        if len(vals) and vals.str.match(CLIP_NAME).mean() > 0.5:
            return c
    raise ValueError("could not find a clip-name column (values like 01_02_003); pass --name_col. "
                     f"columns: {list(df.columns)}")


def _read_annotations(args):
    """The annotation CSV (``--annotations``, else the first below the root), checked: ``(table,
    clip-name column, [arousal, valence, dominance] columns)``, each a column of numbers."""
    import pandas as pd
    ann = args.annotations
    if ann is None:
        cands = sorted(glob.glob(os.path.join(args.root, "**", "*.csv"), recursive=True))
        if not cands:
            raise FileNotFoundError(f"no annotation CSV below {args.root}; pass --annotations")
        ann = cands[0]
        if len(cands) > 1:
            print(f"WARNING: several CSVs below root, using {ann} (pass --annotations to choose)")
    df = pd.read_csv(ann, sep=args.sep)
    df.columns = [str(c).strip() for c in df.columns]
    name_col = args.name_col or detect_name_col(df)
    cols = [args.arousal_col, args.valence_col, args.dominance_col]
    missing = [c for c in cols + [name_col] + ([args.session_col] if args.session_col else [])
               if c not in df.columns]
    if missing:
        raise ValueError(f"{ann}: columns {missing} not found; columns are {list(df.columns)}; name "
                         f"the averaged arousal / pleasure (valence) / dominance columns with "
                         f"--arousal_col / --valence_col / --dominance_col")
    if len(set(cols)) != 3:
        raise ValueError(f"{ann}: arousal, valence and dominance must be three different columns, "
                         f"got {cols}")
    for c in cols:  # a column of words or codes is not a target: stop, do not map it
        num = pd.to_numeric(df[c], errors="coerce")
        bad_rows = [i + 2 for i in range(len(df)) if pd.isna(num.iloc[i]) and not pd.isna(df[c].iloc[i])]
        if bad_rows:
            shown = ", ".join(f"line {r}: {df[c].iloc[r - 2]!r}" for r in bad_rows[:5])
            raise ValueError(f"{ann}: column {c!r} holds values that are not numbers ({shown}"
                             f"{' ...' if len(bad_rows) > 5 else ''}); is it the right column?")
    print(f"annotations {ann}: name column {name_col!r}; arousal, valence, dominance = {cols}")
    return df, name_col, cols


def main(argv=None):
    p = common.base_parser(__doc__.split("\n")[0], dataset=NAME)
    p.add_argument("--annotations", default=None, help="annotation CSV (default: first *.csv below root)")
    p.add_argument("--name_col", default=None, help="clip-name column (default: auto-detect)")
    p.add_argument("--arousal_col", default="Mean_A_1_2")
    p.add_argument("--valence_col", default="Mean_P_1_2", help="pleasure = valence")
    p.add_argument("--dominance_col", default="Mean_D_1_2")
    p.add_argument("--session_col", default=None, help="session column (default: from the clip name)")
    p.add_argument("--sep", default=",", help="CSV field separator")
    args = p.parse_args(argv)
    import pandas as pd

    info = get_dataset_info(NAME)
    df, name_col, cols = _read_annotations(args)

    videos = {} if args.frames_root else common.index_videos(args.root)
    items, nofile, bad = [], [], 0
    for rec in df.itertuples(index=False):
        rec = dict(zip(df.columns, rec))
        key = clip_key(rec[name_col])
        vals = [rec[c] for c in cols]
        if any(pd.isna(v) for v in vals):
            bad += 1
            continue
        if args.session_col:
            session = int(rec[args.session_col])
        else:
            m = CLIP_NAME.match(key)
            if not m:
                bad += 1
                continue
            session = int(m.group(1))
        if args.frames_root:
            path = os.path.join(args.frames_root, key)
        elif key in videos:
            path = videos[key]
            if args.video_root:
                path = common.redirect_path(path, args.root, args)
        else:
            nofile.append(key)
            continue
        items.append((session, (common.finalize_path(path, args), [float(v) for v in vals])))
    if bad:
        print(f"WARNING: {bad} annotation rows without a parseable name or with empty values skipped")
    if nofile:
        print(f"WARNING: {len(nofile)} annotated clips have no video below root, skipped "
              f"(first: {nofile[0]})")
    if not items:
        raise FileNotFoundError("no annotated clip found on disk")
    items = common.apply_missing_policy_grouped(items, args)
    print(f"{len(items)} clips of {len({s for s, _ in items})} sessions")
    folds = common.group_folds(items, SESSION_FOLDS)
    common.write_folds(args.out, folds, info.label_names, regression=True, dataset="Werewolf-XL",
                       val_is_test=True,
                       expected="14632 speaker clips over 30 sessions")
    common.print_regression_summary([r for _, r in items], info.label_names)
    return folds


if __name__ == "__main__":
    main()

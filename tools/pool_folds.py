"""Pool the per-video test predictions of all folds of a dataset and report the paper's metrics.

The paper's protocol for cross-validated datasets: concatenate the test predictions of every fold,
then compute each metric once over the pooled set. The authors' README reports "Total" for its
released checkpoints as the mean of the per-fold numbers instead; both are printed, labelled.

Usage (from the repository root)::

    python -m tools.pool_folds --data_set dfew --pred_files out/dfew/split01/test_predictions.csv ...
    python -m tools.pool_folds --data_set dfew --glob 'out/dfew/split*/test_predictions.csv'
    python -m tools.pool_folds --data_set dfew --pred_files out/dfew/split0*      # fold folders
    python -m tools.pool_folds --data_set avcaffe-arousal --pred_files out/avc/official

Prediction CSV format (``<output_dir>/test_predictions.csv``, written by the engine's test pass,
``engine.evaluation.write_prediction_csvs``; header row, one row per test video, or per clip for
AVCAffe; ``<name>`` = the registry's label / target names, in registry order):

- classification: ``video_index,path,label,[pred,num_views,]prob_<name_0>,...,prob_<name_C-1>``
  (``label`` = 0-based true class; ``prob_*`` = view-averaged softmax scores)
- regression: ``video_index,path,label_<name_0>,...,[num_views,]pred_<name_0>,...``
  (``target_<name>`` is accepted for the true values too)
- AVCAffe adds a ``participant_task`` column (e.g. ``aiim001_task_3``); clips with the same key are
  averaged into one video-level score before weighted F1. Without the column, the key is read from
  ``--groups_file`` (preprocess.avcaffe's ``video_groups.txt``) or from the path (``aiimNNN``
  followed by ``task_N``).

The reader is tolerant: columns are found by prefix (``prob_``, also ``score_`` / ``logit_``;
``target_`` / ``label_`` and ``pred_``), other columns are ignored, and a missing column is an error
naming the file.
"""
from __future__ import annotations

import argparse
import glob as globlib
import json
import os
import sys
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from datasets.registry import get_dataset_info
from datasets.video_reader import natural_key
from engine import metrics as M
from engine.evaluation import group_key, read_groups_file

SCORE_PREFIXES = ("prob_", "score_", "logit_")
TARGET_PREFIXES = ("target_", "label_")
PRED_PREFIXES = ("pred_",)
LABEL_COLUMNS = ("label", "target", "y_true")


class PredictionFileError(ValueError):
    pass


@dataclass
class FoldPredictions:
    """One prediction file, after grouping clips into videos where the dataset asks for it."""
    file: str
    fold: str
    paths: List[str]
    targets: np.ndarray                # (N,) int classification | (N, D) float regression
    outputs: np.ndarray                # (N, C) scores | (N, D) predictions
    names: List[str]                   # class or target names, in column order
    num_rows: int = 0                  # rows in the file (clips, for AVCAffe)
    notes: List[str] = field(default_factory=list)


def _columns_with_prefix(columns: Sequence[str], prefixes: Sequence[str]):
    for p in prefixes:
        cols = [c for c in columns if c.startswith(p)]
        if cols:
            return p, cols
    return None, []


def _order_by_names(prefix: str, cols: List[str], names: Sequence[str]) -> List[str]:
    """Reorder columns to the registry order when every registry name has a column."""
    by_name = {c[len(prefix):].lower(): c for c in cols}
    if names and len(cols) == len(names) and all(n.lower() in by_name for n in names):
        return [by_name[n.lower()] for n in names]
    return cols


def _fold_name(path: str, index: int, all_paths: Sequence[str]) -> str:
    parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
    parents = [os.path.basename(os.path.dirname(os.path.abspath(p))) for p in all_paths]
    if parent and parents.count(parent) == 1:
        return parent
    return f"file{index + 1}"


def load_groups_file(path: str) -> Dict[str, str]:
    """``--groups_file`` through ``engine.evaluation.read_groups_file``, its errors as
    :class:`PredictionFileError`."""
    try:
        return read_groups_file(path)
    except (OSError, ValueError) as e:
        raise PredictionFileError(str(e)) from None


def read_prediction_csv(path: str, info, fold: str = "",
                        groups: Optional[Dict[str, str]] = None) -> FoldPredictions:
    """Read one per-video prediction CSV for dataset ``info`` (a registry DatasetInfo).

    For datasets with a ``video_level_key`` (AVCAffe) the clip rows are grouped by the key column,
    else by ``groups`` (clip path -> key, from ``--groups_file``), else by the key found in the path,
    and the scores of each group are averaged.
    """
    import pandas as pd
    try:
        df = pd.read_csv(path, dtype={"path": str})
    except FileNotFoundError:
        raise PredictionFileError(f"{path}: prediction file not found") from None
    except Exception as e:  # empty file, parse error
        raise PredictionFileError(f"{path}: cannot read as CSV: {e}") from None
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise PredictionFileError(f"{path}: no prediction rows")
    paths = (df["path"].astype(str).tolist() if "path" in df.columns
             else [f"{path}#{i}" for i in range(len(df))])
    if "path" not in df.columns:
        warnings.warn(f"{path}: no 'path' column; duplicate checks across folds are disabled")
    if info.is_classification:
        return _classification_predictions(path, fold, df, paths, info, groups)
    if info.is_regression:
        return _regression_predictions(path, fold, df, paths, info)
    raise PredictionFileError(f"dataset {info.name!r} ({info.task}) has no evaluation metrics")


def _classification_predictions(path: str, fold: str, df, paths: List[str], info,
                                groups: Optional[Dict[str, str]]) -> FoldPredictions:
    """Labels and class scores, averaged per video where clips are grouped (AVCAffe)."""
    cols, names, notes = list(df.columns), list(info.label_names), []
    label_col = next((c for c in LABEL_COLUMNS if c in df.columns), None)
    prefix, score_cols = _columns_with_prefix(cols, SCORE_PREFIXES)
    missing = []
    if label_col is None:
        missing.append("'label' (true class)")
    if not score_cols:
        missing.append("'prob_<class>' score columns")
    if missing:
        raise PredictionFileError(f"{path}: missing column(s) {', '.join(missing)}; found "
                                  f"{cols}. Expected video_index,path,label,prob_<name>...")
    score_cols = _order_by_names(prefix, score_cols, names)
    if names and len(score_cols) != len(names):
        raise PredictionFileError(f"{path}: {len(score_cols)} score columns but {info.name} has "
                                  f"{len(names)} classes ({', '.join(names)})")
    y = df[label_col].to_numpy()
    if not np.all(np.isfinite(y.astype(np.float64))) or np.any(y != np.round(y)):
        raise PredictionFileError(f"{path}: column {label_col!r} must hold integer class labels")
    y = y.astype(np.int64)
    scores = df[score_cols].to_numpy(dtype=np.float64)
    col_names = [c[len(prefix):] for c in score_cols]
    if y.min() < 0 or y.max() >= scores.shape[1]:
        raise PredictionFileError(f"{path}: labels outside [0, {scores.shape[1]})")
    num_rows = len(df)
    if info.video_level_key:
        key_col = info.video_level_key
        if key_col in df.columns:
            keys = df[key_col].astype(str).tolist()
        else:
            keys = [group_key(p, groups) for p in paths]
            if any(k is None for k in keys):
                bad = paths[[k is None for k in keys].index(True)]
                raise PredictionFileError(
                    f"{path}: clip {bad!r} is not in the groups file and has no aiimNNN/task_N "
                    "key in its path" if groups else
                    f"{path}: no {key_col!r} column and no aiimNNN/task_N key in path {bad!r}")
        paths, y, scores, n_conf = _group_mean(keys, y, scores)
        notes.append(f"{num_rows} clips -> {len(paths)} videos by {key_col}")
        if n_conf:
            warnings.warn(f"{path}: {n_conf} {key_col} groups have clips with different labels; "
                          "using the most frequent label")
    return FoldPredictions(path, fold, paths, y, scores, col_names, num_rows, notes)


def _regression_predictions(path: str, fold: str, df, paths: List[str], info) -> FoldPredictions:
    """Targets and predictions, column for column."""
    cols, names = list(df.columns), list(info.label_names)
    tprefix, tcols = _columns_with_prefix(cols, TARGET_PREFIXES)
    pprefix, pcols = _columns_with_prefix(cols, PRED_PREFIXES)
    missing = []
    if not tcols:
        missing.append("'target_<name>' columns")
    if not pcols:
        missing.append("'pred_<name>' columns")
    if missing:
        raise PredictionFileError(f"{path}: missing column(s) {', '.join(missing)}; found "
                                  f"{cols}. Expected video_index,path,target_<name>...,"
                                  f"pred_<name>...")
    tcols = _order_by_names(tprefix, tcols, names)
    pcols = _order_by_names(pprefix, pcols, names)
    tn = [c[len(tprefix):] for c in tcols]
    pn = [c[len(pprefix):] for c in pcols]
    if tn != pn:
        raise PredictionFileError(f"{path}: target columns {tcols} do not match prediction "
                                  f"columns {pcols}")
    if names and len(tn) != len(names):
        raise PredictionFileError(f"{path}: {len(tn)} target columns but {info.name} has "
                                  f"{len(names)} targets ({', '.join(names)})")
    t = df[tcols].to_numpy(dtype=np.float64)
    p = df[pcols].to_numpy(dtype=np.float64)
    return FoldPredictions(path, fold, paths, t, p, tn, len(df), [])


def _group_mean(keys, y, scores):
    order: "OrderedDict[str, List[int]]" = OrderedDict()
    for i, k in enumerate(keys):
        order.setdefault(k, []).append(i)
    gy, gs, n_conflict = [], [], 0
    for k, idx in order.items():
        labels = y[idx]
        vals, counts = np.unique(labels, return_counts=True)
        if len(vals) > 1:
            n_conflict += 1
        gy.append(vals[np.argmax(counts)])
        gs.append(scores[idx].mean(axis=0))
    return list(order.keys()), np.asarray(gy, dtype=np.int64), np.vstack(gs), n_conflict


def check_duplicates(folds: Sequence[FoldPredictions]) -> List[str]:
    """Warn about a video in two folds' test sets, and about repeated rows within one file."""
    msgs = []
    seen: Dict[str, str] = {}
    for f in folds:
        counts: Dict[str, int] = {}
        for p in f.paths:
            counts[p] = counts.get(p, 0) + 1
        rep = [p for p, c in counts.items() if c > 1]
        if rep:
            msgs.append(f"{f.file}: {len(rep)} videos appear more than once (e.g. {rep[0]!r}); "
                        "padding duplicates of a distributed sampler should have been removed")
        cross = [p for p in counts if p in seen]
        if cross:
            msgs.append(f"{f.file}: {len(cross)} videos also in the test set of fold "
                        f"{seen[cross[0]]!r} (e.g. {cross[0]!r}); folds overlap")
        for p in counts:
            seen.setdefault(p, f.fold)
    for m in msgs:
        warnings.warn(m)
    return msgs


def fold_metrics(info, fp: FoldPredictions) -> "OrderedDict[str, float]":
    return M.compute_metrics(info, fp.outputs, fp.targets, fp.names)


def mean_of_folds(per_fold: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """The unweighted mean of per-fold metrics (the authors' README "Total")."""
    return {k: float(np.mean([m[k] for m in per_fold])) for k in per_fold[0]} if per_fold else {}


def pool(info, folds: Sequence[FoldPredictions]):
    """-> (pooled metrics, per-fold metrics list, pooled targets, pooled outputs)."""
    if not folds:
        raise PredictionFileError("no prediction files")
    names = folds[0].names
    for f in folds[1:]:
        if f.outputs.shape[1] != folds[0].outputs.shape[1]:
            raise PredictionFileError(f"{f.file}: {f.outputs.shape[1]} columns, but "
                                      f"{folds[0].file} has {folds[0].outputs.shape[1]}")
    targets = np.concatenate([f.targets for f in folds], axis=0)
    outputs = np.concatenate([f.outputs for f in folds], axis=0)
    pooled = M.compute_metrics(info, outputs, targets, names)
    per_fold = [fold_metrics(info, f) for f in folds]
    return pooled, per_fold, targets, outputs


DEFAULT_NAMES = ("test_predictions.csv", "pred_video.csv")


def _resolve_one(path: str) -> str:
    """A folder (a fold's output_dir) stands for its per-video test prediction file."""
    if os.path.isdir(path):
        for n in DEFAULT_NAMES:
            if os.path.isfile(os.path.join(path, n)):
                return os.path.join(path, n)
        raise PredictionFileError(f"{path}: folder without {' or '.join(DEFAULT_NAMES)}")
    return path


def resolve_files(pred_files: Optional[Sequence[str]], pattern: Optional[str]) -> List[str]:
    files = [_resolve_one(p) for p in (pred_files or [])]
    if pattern:
        matched = sorted(globlib.glob(pattern), key=natural_key)
        if not matched:
            raise PredictionFileError(f"--glob {pattern!r} matched no file")
        files += [_resolve_one(p) for p in matched]
    if not files:
        raise PredictionFileError("give --pred_files or --glob")
    return files


def _fmt(v: Optional[float], pct: bool) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if pct else f"{v:.4f}"


def completeness(info, folds, expected: Optional[int] = None) -> Dict:
    """Which folds were pooled, how many the protocol has, and whether that is all of them."""
    n = len(info.folds) if expected is None else int(expected)
    return {"folds_used": [f.fold for f in folds], "expected_folds": n, "complete": len(folds) == n}


def format_report(info, files, folds, pooled, per_fold, targets, outputs, expected: Optional[int] = None) -> str:
    pct = info.is_classification
    state = completeness(info, folds, expected)
    lines = [f"dataset {info.name}: {info.protocol}",
             f"{len(files)} prediction file(s); registry folds: {len(info.folds)}",
             f"folds used: {', '.join(state['folds_used'])} of {state['expected_folds']}; "
             f"complete: {str(state['complete']).lower()}"]
    if not state["complete"]:
        lines.append(f"WARNING: partial pooling: {info.name} has {state['expected_folds']} folds in the "
                     f"protocol, {len(files)} file(s) given: the result is not comparable with the paper")
    lines.append("")
    lines.append("per fold" + (" (percent)" if pct else ""))
    keys = list(pooled.keys())
    head = ["fold", "videos"] + keys
    rows = [[f.fold, str(len(f.targets))] + [_fmt(m[k], pct) for k in keys]
            for f, m in zip(folds, per_fold)]
    if len(folds) > 1:
        mean = mean_of_folds(per_fold)
        rows.append(["mean of folds*", str(sum(len(f.targets) for f in folds))]
                    + [_fmt(mean[k], pct) for k in keys])
    lines += format_table(head, rows)
    if len(folds) > 1:
        lines.append("* the mean of the per-fold numbers: what the authors' README reports as "
                     "\"Total\" for their released checkpoints; the paper pools all folds' "
                     "predictions (below). Compare like with like.")
    lines.append("")
    lines.append(f"pooled over {len(folds)} fold(s), {len(targets)} videos")
    rows = []
    for k in keys:
        paper = info.paper_results.get(k)
        diff = None if paper is None else pooled[k] - paper
        rows.append([k, _fmt(pooled[k], pct), _fmt(paper, pct),
                     "-" if diff is None else (f"{diff:+.2f}" if pct else f"{diff:+.4f}")])
    for k, v in info.paper_results.items():
        if k not in pooled:
            rows.append([k, "-", _fmt(v, pct), "-"])
    lines += format_table(["metric", "ours", "paper (SVFAP-B)", "ours - paper"], rows)
    if info.is_classification:
        cm = M.confusion_matrix(targets, outputs, num_classes=outputs.shape[1])
        lines.append("")
        lines.append("confusion matrix (pooled; rows = true, columns = predicted)")
        lines.append(M.format_confusion_matrix(cm, folds[0].names))
    return "\n".join(lines)


def format_table(head, rows) -> List[str]:
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    out = ["  ".join(str(h).ljust(w) if i == 0 else str(h).rjust(w)
                     for i, (h, w) in enumerate(zip(head, widths)))]
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))))
    return out


def run(data_set: str, files: Sequence[str], groups_file: Optional[str] = None):
    info = get_dataset_info(data_set)
    groups = load_groups_file(groups_file) if groups_file else None
    folds = [read_prediction_csv(p, info, _fold_name(p, i, files), groups)
             for i, p in enumerate(files)]
    check_duplicates(folds)
    pooled, per_fold, targets, outputs = pool(info, folds)
    return info, folds, pooled, per_fold, targets, outputs


def get_args_parser():
    p = argparse.ArgumentParser(
        "python -m tools.pool_folds",
        description="Pool per-video test predictions of all folds and print the paper's metrics.")
    p.add_argument("--data_set", required=True, help="registry name, e.g. dfew, werewolf-xl")
    p.add_argument("--pred_files", nargs="+", default=None,
                   help="per-fold prediction CSV files (a fold's output folder stands for its "
                        "test_predictions.csv)")
    p.add_argument("--glob", default=None, help="glob pattern of prediction CSV files (quote it)")
    p.add_argument("--groups_file", default=None,
                   help="AVCAffe: '<clip path> <participant_task>' lines (preprocess.avcaffe's "
                        "video_groups.txt), used when the CSV has no participant_task column")
    p.add_argument("--json", default=None, help="also write the pooled and per-fold numbers here")
    p.add_argument("--expected_folds", type=int, default=None,
                   help="folds of a complete run (default: the registry's protocol)")
    return p


OPTIMISTIC_NAME = "test_optimistic_best_predictions.csv"


def optimistic_files(files: Sequence[str]) -> Optional[List[str]]:
    """Each fold's ``--test_every_epoch`` predictions (its best epoch chosen on the test split) beside
    its test predictions; None unless every fold has one."""
    found = [os.path.join(os.path.dirname(os.path.abspath(f)), OPTIMISTIC_NAME) for f in files]
    return found if found and all(os.path.isfile(f) for f in found) else None


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        files = resolve_files(args.pred_files, args.glob)
        info, folds, pooled, per_fold, targets, outputs = run(args.data_set, files, args.groups_file)
        opt_files = optimistic_files(files)
        optimistic = run(args.data_set, opt_files, args.groups_file)[2] if opt_files else None
    except (PredictionFileError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_report(info, files, folds, pooled, per_fold, targets, outputs, args.expected_folds))
    if optimistic is not None:
        print("\nOPTIMISTIC, not a result: each fold's best epoch chosen on its own test split "
              "(--test_every_epoch, as the published logs report):")
        print("  " + "  ".join(f"{k} {_fmt(v, info.is_classification)}" for k, v in optimistic.items())
              + "   (the result above is the last epoch of each fold)")
    if args.json:
        d = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(d, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"data_set": info.name, "files": list(files),
                       **completeness(info, folds, args.expected_folds), "pooled": pooled,
                       "mean_of_folds": mean_of_folds(per_fold),
                       "optimistic_best_epoch_on_test": optimistic,
                       "paper": info.paper_results,
                       "per_fold": [{"fold": fp.fold, "file": fp.file, "videos": len(fp.targets),
                                     **m} for fp, m in zip(folds, per_fold)]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

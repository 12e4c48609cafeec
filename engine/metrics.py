"""Evaluation metrics of the paper, on numpy arrays (no torch import here).

Conventions
-----------
- Classification metrics (``war``, ``uar``, ``weighted_f1``, ``macro_f1``) take ``y_true`` (N,) integer
  labels and ``y_pred`` either (N,) integer predictions or (N, C) scores (probabilities or logits; the
  argmax over the last axis is taken) and return **percentages** (0-100), as the paper reports them.
- ``uar`` (unweighted average recall) is the mean per-class recall over the classes *present in
  y_true* (the scikit-learn ``balanced_accuracy_score`` convention). Pass ``num_classes`` to average over
  ``range(num_classes)`` instead; an absent class then counts with recall 0.
- ``weighted_f1`` / ``macro_f1`` average per-class F1 over the union of classes in ``y_true`` and
  ``y_pred`` (scikit-learn convention; a class with no true and no predicted sample is ignored); a class
  that is never predicted has F1 0. ``num_classes`` again widens the set to ``range(num_classes)``.
- Regression metrics (``ccc``, ``pcc``, ``acc``) take ``pred`` and ``target`` of shape (N,) or (N, D)
  and return a float for 1-D inputs, a (D,) array (one value per target dimension) for 2-D inputs.
  They are fractions, not percentages. Statistics are population statistics (ddof=0).
  ``acc`` is the ChaLearn First Impressions accuracy ``1 - mean |pred - target|``.
- ``compute_metrics`` turns a dataset's registry ``metrics`` tuple into an ordered dict of named
  scalars (e.g. ``uar``, ``war``; ``ccc_arousal``, ..., ``ccc_mean``, ``pcc_arousal``, ...).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np

__all__ = ["war", "uar", "weighted_f1", "macro_f1", "confusion_matrix", "ccc", "pcc", "acc",
           "per_class_recall", "compute_metrics", "format_confusion_matrix",
           "to_labels", "CLASSIFICATION_METRICS", "REGRESSION_METRICS"]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def to_labels(y_pred) -> np.ndarray:
    """(N,) integer labels, or (N, C) scores -> argmax labels (N,)."""
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 2:
        return np.argmax(y_pred, axis=1).astype(np.int64)
    if y_pred.ndim != 1:
        raise ValueError(f"predictions must be (N,) labels or (N, C) scores, got shape {y_pred.shape}")
    if y_pred.dtype.kind == "f":
        if not np.all(np.isfinite(y_pred)) or not np.all(y_pred == np.round(y_pred)):
            raise ValueError("1-D float predictions must be integer-valued class labels")
    return y_pred.astype(np.int64)


def _check_cls(y_true, y_pred):
    y_true = np.asarray(y_true)
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be (N,) integer labels, got shape {y_true.shape}")
    y_true = y_true.astype(np.int64)
    y_pred = to_labels(y_pred)
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(f"y_true has {y_true.shape[0]} samples, y_pred {y_pred.shape[0]}")
    if y_true.shape[0] == 0:
        raise ValueError("no samples")
    return y_true, y_pred


def _class_set(y_true, y_pred, num_classes: Optional[int], union: bool) -> np.ndarray:
    if num_classes is not None:
        return np.arange(int(num_classes))
    if union:
        return np.union1d(np.unique(y_true), np.unique(y_pred))
    return np.unique(y_true)


# ----------------------------------------------------------------------------------------------
# classification
# ----------------------------------------------------------------------------------------------
def war(y_true, y_pred) -> float:
    """Weighted average recall = overall accuracy, in percent."""
    y_true, y_pred = _check_cls(y_true, y_pred)
    return float(np.mean(y_true == y_pred) * 100.0)


def per_class_recall(y_true, y_pred, num_classes: Optional[int] = None) -> Dict[int, float]:
    """Recall (percent) of every class in y_true (or in range(num_classes); absent classes -> 0)."""
    y_true, y_pred = _check_cls(y_true, y_pred)
    out = {}
    for c in _class_set(y_true, y_pred, num_classes, union=False):
        m = y_true == c
        out[int(c)] = float(np.mean(y_pred[m] == c) * 100.0) if m.any() else 0.0
    return out


def uar(y_true, y_pred, num_classes: Optional[int] = None) -> float:
    """Unweighted average recall: mean per-class recall, in percent.

    Averaged over the classes present in ``y_true`` (like scikit-learn's balanced accuracy), or over
    ``range(num_classes)`` when given (classes without any true sample then count as recall 0).
    """
    rec = per_class_recall(y_true, y_pred, num_classes)
    return float(np.mean(list(rec.values())))


def confusion_matrix(y_true, y_pred, num_classes: Optional[int] = None) -> np.ndarray:
    """(C, C) int64 counts, rows = true class, columns = predicted class.

    C = ``num_classes`` if given, else max label + 1 over y_true and y_pred (for 2-D scores, at least
    the number of score columns).
    """
    y_true_a, y_pred_l = _check_cls(y_true, y_pred)
    if num_classes is None:
        num_classes = int(max(y_true_a.max(), y_pred_l.max())) + 1
        y_pred_arr = np.asarray(y_pred)
        if y_pred_arr.ndim == 2:
            num_classes = max(num_classes, y_pred_arr.shape[1])
    if y_true_a.min() < 0 or y_pred_l.min() < 0 or max(y_true_a.max(), y_pred_l.max()) >= num_classes:
        raise ValueError(f"labels outside [0, {num_classes})")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true_a, y_pred_l), 1)
    return cm


def _f1_per_class(y_true, y_pred, classes):
    f1 = np.zeros(len(classes), dtype=np.float64)
    support = np.zeros(len(classes), dtype=np.float64)
    for i, c in enumerate(classes):
        tp = np.sum((y_true == c) & (y_pred == c))
        fp = np.sum((y_true != c) & (y_pred == c))
        fn = np.sum((y_true == c) & (y_pred != c))
        denom = 2 * tp + fp + fn
        f1[i] = 2.0 * tp / denom if denom > 0 else 0.0
        support[i] = np.sum(y_true == c)
    return f1, support


def weighted_f1(y_true, y_pred, num_classes: Optional[int] = None) -> float:
    """Support-weighted mean of per-class F1, in percent (scikit-learn ``average='weighted'``)."""
    y_true, y_pred = _check_cls(y_true, y_pred)
    classes = _class_set(y_true, y_pred, num_classes, union=True)
    f1, support = _f1_per_class(y_true, y_pred, classes)
    if support.sum() == 0:
        return 0.0
    return float(np.sum(f1 * support) / support.sum() * 100.0)


def macro_f1(y_true, y_pred, num_classes: Optional[int] = None) -> float:
    """Unweighted mean of per-class F1, in percent (scikit-learn ``average='macro'``)."""
    y_true, y_pred = _check_cls(y_true, y_pred)
    classes = _class_set(y_true, y_pred, num_classes, union=True)
    f1, _ = _f1_per_class(y_true, y_pred, classes)
    return float(np.mean(f1) * 100.0)


# ----------------------------------------------------------------------------------------------
# regression
# ----------------------------------------------------------------------------------------------
def _check_reg(pred, target):
    p = np.asarray(pred, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if p.shape != y.shape:
        raise ValueError(f"pred shape {p.shape} != target shape {y.shape}")
    if p.ndim not in (1, 2):
        raise ValueError(f"expected (N,) or (N, D) arrays, got shape {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("no samples")
    return p, y


def _ret(v: np.ndarray, ndim: int):
    return float(v) if ndim == 1 else np.asarray(v, dtype=np.float64)


def ccc(pred, target):
    """Concordance correlation coefficient per dimension (population statistics).

    CCC = 2 cov(p, y) / (var p + var y + (mean p - mean y)^2). 0 when the denominator is 0.
    """
    p, y = _check_reg(pred, target)
    mp, my = p.mean(axis=0), y.mean(axis=0)
    vp, vy = p.var(axis=0), y.var(axis=0)
    cov = ((p - mp) * (y - my)).mean(axis=0)
    denom = vp + vy + (mp - my) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(denom > 0, 2.0 * cov / np.where(denom > 0, denom, 1.0), 0.0)
    return _ret(v, p.ndim)


def pcc(pred, target):
    """Pearson correlation coefficient per dimension (0 when either side is constant)."""
    p, y = _check_reg(pred, target)
    pc, yc = p - p.mean(axis=0), y - y.mean(axis=0)
    denom = np.sqrt((pc ** 2).sum(axis=0) * (yc ** 2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(denom > 0, (pc * yc).sum(axis=0) / np.where(denom > 0, denom, 1.0), 0.0)
    return _ret(v, p.ndim)


def acc(pred, target):
    """ChaLearn First Impressions accuracy: 1 - mean absolute error, per dimension."""
    p, y = _check_reg(pred, target)
    return _ret(1.0 - np.abs(p - y).mean(axis=0), p.ndim)


CLASSIFICATION_METRICS = {"war": war, "uar": uar, "weighted_f1": weighted_f1, "macro_f1": macro_f1}
REGRESSION_METRICS = {"ccc": ccc, "pcc": pcc, "acc": acc}


# ----------------------------------------------------------------------------------------------
# registry-driven evaluation
# ----------------------------------------------------------------------------------------------
def _resolve_info(dataset_info_or_name):
    if isinstance(dataset_info_or_name, str):
        from datasets.registry import get_dataset_info  # pure python, no torch
        return get_dataset_info(dataset_info_or_name)
    return dataset_info_or_name


def compute_metrics(dataset_info_or_name, preds, targets,
                    label_names: Optional[Sequence[str]] = None) -> "OrderedDict[str, float]":
    """Named scalar metrics of a dataset, in the order of its registry ``metrics`` tuple.

    Classification: ``preds`` (N,) labels or (N, C) scores, ``targets`` (N,) ints ->
    e.g. ``{'uar': 62.8, 'war': 74.3}`` (percent). ``uar`` and F1 scores use ``num_classes`` =
    number of label names only for the confusion matrix; averaging follows the conventions above.
    Regression: ``preds``/``targets`` (N, D) -> for each metric ``m``: ``m_<name>`` per dimension
    followed by ``m_mean`` (mean over dimensions), e.g. ``ccc_arousal, ccc_valence, ccc_dominance,
    ccc_mean, pcc_arousal, ...``. ``label_names`` defaults to the registry's.
    """
    info = _resolve_info(dataset_info_or_name)
    names = tuple(label_names) if label_names is not None else tuple(info.label_names)
    out: "OrderedDict[str, float]" = OrderedDict()
    if info.task == "classification":
        for m in info.metrics:
            if m not in CLASSIFICATION_METRICS:
                raise KeyError(f"unknown classification metric {m!r} for {info.name}")
            out[m] = CLASSIFICATION_METRICS[m](targets, preds)
        return out
    if info.task == "regression":
        p = np.asarray(preds, dtype=np.float64)
        y = np.asarray(targets, dtype=np.float64)
        if p.ndim == 1:
            p, y = p[:, None], y[:, None]
        if names and len(names) != p.shape[1]:
            raise ValueError(f"{info.name}: {len(names)} target names but predictions have "
                             f"{p.shape[1]} dimensions")
        if not names:
            names = tuple(f"dim{i}" for i in range(p.shape[1]))
        for m in info.metrics:
            if m not in REGRESSION_METRICS:
                raise KeyError(f"unknown regression metric {m!r} for {info.name}")
            vals = np.atleast_1d(REGRESSION_METRICS[m](p, y))
            for n, v in zip(names, vals):
                out[f"{m}_{n}"] = float(v)
            out[f"{m}_mean"] = float(np.mean(vals))
        return out
    raise ValueError(f"dataset {info.name!r} has task {info.task!r}: no evaluation metrics")


def format_confusion_matrix(cm, label_names: Optional[Sequence[str]] = None,
                            normalize: bool = False) -> str:
    """A plain-text table: rows = true class, columns = predicted class, plus per-row recall.

    With ``normalize=True`` the cells are row percentages instead of counts.
    """
    cm = np.asarray(cm)
    n = cm.shape[0]
    names = list(label_names) if label_names is not None else [str(i) for i in range(n)]
    if len(names) < n:
        names += [str(i) for i in range(len(names), n)]
    names = names[:n]
    rows_sum = cm.sum(axis=1)
    if normalize:
        with np.errstate(divide="ignore", invalid="ignore"):
            cells = np.where(rows_sum[:, None] > 0, cm / np.maximum(rows_sum[:, None], 1) * 100, 0.0)
        cell_str = [[f"{v:.1f}" for v in row] for row in cells]
    else:
        cell_str = [[str(int(v)) for v in row] for row in cm]
    recall = [f"{(cm[i, i] / rows_sum[i] * 100):.1f}" if rows_sum[i] > 0 else "-" for i in range(n)]
    head_w = max([len("true \\ pred")] + [len(s) for s in names])
    col_w = max([len(s) for s in names] + [len(c) for row in cell_str for c in row] + [4])
    lines = ["true \\ pred".ljust(head_w) + " | " + " ".join(s.rjust(col_w) for s in names)
             + " | " + "n".rjust(6) + " " + "recall".rjust(6)]
    lines.append("-" * len(lines[0]))
    for i in range(n):
        lines.append(names[i].ljust(head_w) + " | " + " ".join(c.rjust(col_w) for c in cell_str[i])
                     + " | " + str(int(rows_sum[i])).rjust(6) + " " + recall[i].rjust(6))
    return "\n".join(lines)

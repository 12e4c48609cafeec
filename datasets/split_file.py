"""Split files: reading, validating and writing them (docs/data.md, "Split files").

A split file is plain text, space separated, no header, one sample a line::

    <path> <label>              classification, 0-based integer label
    <path> <v1> <v2> ... <vK>   regression, K = number of target values
    <path> [<dummy label>]      pre-training (the label, if any, is ignored)

``<path>`` is a video file or a folder of frames. Paths may contain spaces (eNTERFACE'05 folders are
named ``subject 1/anger/sentence 1``): a line is parsed from the right, the last K fields are the
label(s) and everything before them, joined by single spaces, is the path. (Runs of several spaces
inside a path are therefore not supported; tabs are treated like spaces.) A pre-training line whose
last word is a number is read as ``<path> <dummy label>`` unless the whole line names an existing
path: ``subject 1/anger/sentence 1`` is a path, ``subject 1/anger/sentence 1 0`` that path with a
dummy label. The project's writers always add the dummy label, so their files never depend on it.

Relative paths are resolved against ``data_root`` when one is given (the ``--data_root`` flag), else
used as given (relative to the working directory).

Errors are reported so that a user can fix the file in one go:

* every malformed line (too few fields, a label that is not a number, a classification label out
  of ``[0, num_classes)``, the wrong number of values, an extra numeric column) is named as
  ``file:line``; all of them are collected and raised together as one :class:`SplitFileError`,
  which also lists the missing paths of the other lines, so one round of fixes covers both;
* without malformed lines, every missing path is collected and raised together, at start-up, as one
  :class:`MissingPathsError` (with the count and the first 20), never one at a time in an epoch.
* A UTF-8 byte-order mark at the start of the file is ignored.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from .atomic_file import atomic_write_text

MAX_LISTED = 20

Label = Union[int, Tuple[float, ...], None]


class SplitFileError(ValueError):
    """A split file has malformed lines. ``errors`` holds ``(line_number, message)`` pairs;
    ``missing`` the ``(line_number, path)`` of the well-formed lines whose path does not exist, so
    that one round of fixes covers both."""

    def __init__(self, path: str, errors: Sequence[Tuple[int, str]],
                 missing: Sequence[Tuple[int, str]] = ()):
        self.path = path
        self.errors = list(errors)
        self.missing = list(missing)
        shown = "\n".join(f"  {path}:{ln}: {msg}" for ln, msg in self.errors[:MAX_LISTED])
        more = len(self.errors) - MAX_LISTED
        tail = f"\n  ... and {more} more" if more > 0 else ""
        text = f"split file {path}: {len(self.errors)} malformed line(s):\n{shown}{tail}"
        if self.missing:
            text += f"\nand {len(self.missing)} path(s) that do not exist:\n" + "\n".join(
                f"  {path}:{ln}: {p}" for ln, p in self.missing[:MAX_LISTED])
            if len(self.missing) > MAX_LISTED:
                text += f"\n  ... and {len(self.missing) - MAX_LISTED} more"
        super().__init__(text)


class MissingPathsError(FileNotFoundError):
    """Paths named in a split file do not exist. ``missing`` holds ``(line_number, path)`` pairs."""

    def __init__(self, path: str, missing: Sequence[Tuple[int, str]], data_root: Optional[str]):
        self.path = path
        self.missing = list(missing)
        shown = "\n".join(f"  {path}:{ln}: {p}" for ln, p in self.missing[:MAX_LISTED])
        more = len(self.missing) - MAX_LISTED
        tail = f"\n  ... and {more} more" if more > 0 else ""
        root = f" (data root: {data_root})" if data_root else " (no --data_root given)"
        super().__init__(
            f"split file {path}: {len(self.missing)} path(s) do not exist{root}:\n{shown}{tail}")


@dataclass(frozen=True)
class SplitEntry:
    path: str        # resolved path (joined with data_root when relative)
    label: Label     # int (classification), tuple of floats (regression) or None (pre-training)
    line: int        # 1-based line number in the split file
    raw_path: str    # the path as written in the file


def _is_int(tok: str) -> bool:
    try:
        int(tok)
        return True
    except ValueError:
        return False


def _is_number(tok: str) -> bool:
    try:
        return math.isfinite(float(tok))
    except ValueError:
        return False


def resolve_path(raw: str, data_root: Optional[str]) -> str:
    raw = os.path.expanduser(raw)
    if data_root and not os.path.isabs(raw):
        return os.path.join(data_root, raw)
    return raw


class _BadLine(ValueError):
    """What is wrong with one split-file line."""


def _parse_line(line: str, task: str, n_labels: int, num_classes: Optional[int],
                data_root: Optional[str], check_paths: bool) -> Tuple[str, Label]:
    """``(path as written, label)`` of one non-empty line; :class:`_BadLine` says what is wrong."""
    toks = line.split()
    if task == "pretrain":
        # '<path>' or '<path> <dummy label>': the whole line is the path when it exists
        # (eNTERFACE's '.../sentence 1'), else a trailing number is the dummy label
        raw = " ".join(toks)
        if len(toks) >= 2 and _is_number(toks[-1]) and not os.path.exists(resolve_path(raw, data_root)):
            raw = " ".join(toks[:-1])
        return raw, None
    trailing = 0
    while trailing < len(toks) - 1 and _is_number(toks[len(toks) - 1 - trailing]):
        trailing += 1
    if len(toks) < n_labels + 1 or trailing < n_labels:
        what = "an integer label" if task == "classification" else f"{n_labels} numeric values"
        raise _BadLine(f"expected '<path> {_label_spec(task, n_labels)}' ({what} after the path), "
                       f"found {trailing} numeric value(s) after the path: {line!r}")
    raw = " ".join(toks[:-n_labels])
    if trailing > n_labels and check_paths and not os.path.exists(resolve_path(raw, data_root)):
        # 'clip.mp4 0 3': an extra column, unless the path really ends in a number
        raise _BadLine(f"expected {n_labels} numeric value(s) after the path, found {trailing} (and "
                       f"{raw!r} does not exist): an extra column? {line!r}")
    lab_toks = toks[-n_labels:]
    if task != "classification":
        return raw, tuple(float(t) for t in lab_toks)
    if not _is_int(lab_toks[0]):
        raise _BadLine(f"label {lab_toks[0]!r} is not an integer")
    label = int(lab_toks[0])
    if label < 0 or (num_classes is not None and label >= num_classes):
        rng = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        raise _BadLine(f"label {label} out of range ({rng})")
    return raw, label


def read_split_file(split_file: str, task: str = "classification", num_outputs: int = 1,
                    num_classes: Optional[int] = None, data_root: Optional[str] = None,
                    check_paths: bool = True) -> List[SplitEntry]:
    """Read and validate ``split_file``.

    Args:
        task: 'classification' (one integer label), 'regression' (``num_outputs`` numbers) or
            'pretrain' (optional dummy label, ignored).
        num_classes: valid classification labels are ``0 .. num_classes-1`` (None: no upper
            bound check).
        data_root: relative paths are joined to it.
        check_paths: verify that every path exists (all missing ones reported together).

    Raises:
        FileNotFoundError: the split file itself is missing.
        SplitFileError: malformed lines, each named as ``file:line``.
        MissingPathsError: paths that do not exist, all of them in one error.
    """
    if task not in ("classification", "regression", "pretrain"):
        raise ValueError(f"unknown task {task!r}")
    if not os.path.isfile(split_file):
        raise FileNotFoundError(f"split file not found: {split_file}")
    n_labels = 1 if task == "classification" else (num_outputs if task == "regression" else 0)
    if task == "regression" and n_labels < 1:
        raise ValueError("regression split files need num_outputs >= 1")

    entries: List[SplitEntry] = []
    errors: List[Tuple[int, str]] = []
    with open(split_file, "r", encoding="utf-8-sig") as f:  # -sig: a leading BOM is not part of a path
        for ln, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                raw, label = _parse_line(line, task, n_labels, num_classes, data_root, check_paths)
            except _BadLine as e:
                errors.append((ln, str(e)))
                continue
            entries.append(SplitEntry(resolve_path(raw, data_root), label, ln, raw))
    missing = [(e.line, e.path) for e in entries if not os.path.exists(e.path)] if check_paths else []
    if errors:
        raise SplitFileError(split_file, errors, missing)
    if not entries:
        raise SplitFileError(split_file, [(0, "the split file has no samples")])
    if missing:
        raise MissingPathsError(split_file, missing, data_root)
    return entries


def _label_spec(task: str, n: int) -> str:
    if task == "classification":
        return "<label>"
    return " ".join(f"<v{i + 1}>" for i in range(n))


def _format_label(label) -> List[str]:
    if label is None:
        return []
    if isinstance(label, (list, tuple)) or (hasattr(label, "ndim") and getattr(label, "ndim") > 0):
        return [_format_value(v) for v in label]
    return [_format_value(label)]


def _format_value(v) -> str:
    if isinstance(v, bool):
        raise TypeError("boolean labels are not allowed")
    if isinstance(v, int) or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iu"):
        return str(int(v))
    fv = float(v)
    if not math.isfinite(fv):
        raise ValueError(f"non-finite label value {v!r}")
    return repr(fv)  # shortest round-trip representation: deterministic and lossless


def write_split_file(path: str, rows: Iterable[Tuple[str, object]]) -> int:
    """Write ``rows`` of ``(path, label)`` to ``path`` as a split file; returns the row count.

    ``label`` is an int (classification), a sequence of numbers (regression) or None (path only).
    Output is deterministic: rows in the given order, '\\n' line endings, integers as integers,
    floats in Python's shortest round-trip form. The file is written atomically (temp + rename).
    """
    lines = []
    for p, label in rows:
        p = str(p)
        if not p or "\n" in p or "\r" in p or p != p.strip():
            raise ValueError(f"unsupported path for a split file: {p!r}")
        lines.append(" ".join([p] + _format_label(label)))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)

"""ChaLearn First Impressions V2 -> Big-Five regression split files (official train/val/test).

Expects ``annotation_training.pkl``, ``annotation_validation.pkl`` and ``annotation_test.pkl`` in
``--root`` (or anywhere below it) and the clips ``<YouTubeID>.<NNN>.mp4`` anywhere below ``--root``
(or frame folders ``<frames_root>/<YouTubeID>.<NNN>/`` with ``--frames_root``). Targets in the order
openness, conscientiousness, extraversion, agreeableness, neuroticism (O, C, E, A, N); the
``interview`` entry is not used.

The annotation pickles were written by Python 2 and are untrusted input: they are read with a
restricted unpickler that refuses every global but numpy's scalars and arrays (dicts, strings,
numbers and numpy values load) and ``encoding='latin1'``.

    python -m preprocess.chalearn --root /data/ChaLearnFI --out data/splits/chalearn-fi
"""
from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict

from datasets.registry import get_dataset_info
from preprocess import common

NAME = "chalearn-fi"
PICKLES = (("train", "annotation_training.pkl"), ("val", "annotation_validation.pkl"),
           ("test", "annotation_test.pkl"))


def _numpy_globals():
    import numpy as np
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    allowed = {("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1 and 2 write either
        allowed[(mod, "scalar")] = multiarray.scalar
        allowed[(mod, "_reconstruct")] = multiarray._reconstruct
    import _codecs
    allowed[("_codecs", "encode")] = _codecs.encode  # how protocol 2 stores an array's bytes
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Loads built-in containers and scalars, and numpy scalars and arrays (which annotation
    pickles commonly hold); every other global (class, function) is refused."""

    _allowed = None

    def find_class(self, module, name):
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _numpy_globals()
        obj = self._allowed.get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: annotation pickles may only hold plain "
                "dicts, strings, numbers and numpy arrays")
        return obj


def restricted_load(path: str):
    with open(path, "rb") as f:
        data = f.read()
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(f"{path}: {e}") from None
    except (EOFError, ValueError, TypeError, KeyError, IndexError) as e:
        raise pickle.UnpicklingError(f"{path}: not a readable annotation pickle "
                                     f"({type(e).__name__}: {e})") from None


def _text(k) -> str:
    return k.decode("latin1") if isinstance(k, bytes) else str(k)


def read_annotations(path: str, traits):
    """-> OrderedDict filename -> [trait values in ``traits`` order]."""
    obj = restricted_load(path)
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict trait -> {{video: score}}, got {type(obj).__name__}")
    obj = {_text(k).strip().lower(): v for k, v in obj.items()}
    missing = [t for t in traits if t not in obj]
    if missing:
        raise ValueError(f"{path}: traits {missing} missing; found {sorted(obj)}")
    per_trait = [{_text(k): float(v) for k, v in obj[t].items()} for t in traits]
    names = sorted(per_trait[0], key=common.natural_key)
    out = OrderedDict()
    for n in names:
        if not all(n in d for d in per_trait):
            raise ValueError(f"{path}: video {n} lacks some trait scores")
        out[n] = [d[n] for d in per_trait]
    return out


def main(argv=None):
    p = common.base_parser(__doc__.split("\n")[0], dataset=NAME)
    args = p.parse_args(argv)
    info = get_dataset_info(NAME)
    traits = info.label_names
    videos = {} if args.frames_root else common.index_videos(args.root)
    fold = {}
    for split, fn in PICKLES:
        pk = common.find_file(args.root, fn)
        if pk is None:
            raise FileNotFoundError(f"{fn} not found below {args.root}")
        ann = read_annotations(pk, traits)
        rows, nofile = [], []
        for name, vals in ann.items():
            stem = name[:-4] if name.lower().endswith(".mp4") else name
            if args.frames_root:
                path = os.path.join(args.frames_root, stem)
            elif stem in videos:
                path = videos[stem]
                if args.video_root:
                    path = common.redirect_path(path, os.path.dirname(path), args)
            else:
                nofile.append(name)
                continue
            rows.append((common.finalize_path(path, args), vals))
        print(f"{split}: {pk}: {len(ann)} annotated videos")
        if nofile:
            print(f"WARNING: {len(nofile)} {split} videos not found below root, skipped "
                  f"(first: {nofile[0]})")
        fold[split] = common.apply_missing_policy(rows, args, split)
    folds = OrderedDict([("official", fold)])
    common.write_folds(args.out, folds, traits, regression=True, dataset="ChaLearn FI",
                       expected="train 6000, val 2000, test 2000")
    for split in ("train", "val", "test"):
        common.print_regression_summary(fold[split], traits, split)
    return folds


if __name__ == "__main__":
    main()

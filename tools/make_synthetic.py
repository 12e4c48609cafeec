"""Render the embedded synthetic facial-expression dataset and its split files.

    python -m tools.make_synthetic --out data/synthetic --num_labeled 350 --num_unlabeled 210 \
        --num_frames 64 --size 128 --folds 5 --seed 0 [--format frames] [--workers 2]

Prints the per-split counts of every fold and the class totals.  See docs/synthetic.md.
"""
from __future__ import annotations

import argparse
import json
import os


from datasets.synthetic import (DEFAULTS, LABEL_NAMES, RenderStyle, generate_synthetic_dataset,
                                preview_grid)
from engine.logger import make_progress


def get_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num_labeled", type=int, default=DEFAULTS["num_labeled"])
    p.add_argument("--num_unlabeled", type=int, default=DEFAULTS["num_unlabeled"])
    p.add_argument("--num_frames", type=int, default=DEFAULTS["num_frames"])
    p.add_argument("--size", type=int, default=DEFAULTS["size"])
    p.add_argument("--folds", type=int, default=DEFAULTS["num_folds"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--format", choices=("mp4", "frames"), default="mp4")
    p.add_argument("--label_noise", type=float, default=DEFAULTS["label_noise"])
    p.add_argument("--val_fraction", type=float, default=DEFAULTS["val_fraction"])
    p.add_argument("--fps", type=int, default=DEFAULTS["fps"])
    p.add_argument("--class_distribution", choices=("uniform", "dfew"), default="uniform")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="processes (the output does not depend on it)")
    p.add_argument("--reuse", action="store_true",
                   help="keep an existing dataset in --out generated with the same parameters")
    p.add_argument("--overwrite", action="store_true",
                   help="replace whatever --out holds (without it, a non-empty --out is refused)")
    p.add_argument("--preview", default="", help="also write a PNG grid of every class here")
    p.add_argument("--style", nargs="+", default=[], metavar="KEY=VALUE",
                   help="render-style knobs of datasets.synthetic.RenderStyle, e.g. "
                        "face_scale=0.62 au_gain=1.6 sensor_noise=0 (default: the original look)")
    return p.parse_args(argv)


def parse_style(items, base=None) -> dict:
    """``['face_scale=0.6', ...]`` merged onto ``base`` (a dict of RenderStyle knobs), checked
    against RenderStyle; a bad item is a one-line SystemExit that names it."""
    style = dict(base or {})
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--style {item!r}: expected KEY=VALUE")
        try:
            style[key] = float(value)
        except ValueError:
            raise SystemExit(f"--style {item!r}: {value!r} is not a number") from None
    try:
        RenderStyle.from_dict(style)
    except ValueError as e:
        raise SystemExit(f"--style: {e}") from None
    return style


def main(argv=None):
    args = get_args(argv)
    if os.path.isdir(args.out) and os.listdir(args.out) and not (args.reuse or args.overwrite):
        raise SystemExit(f"error: --out {args.out} is not empty; pass --overwrite to replace it, or "
                         f"--reuse to keep a set made with the same parameters")
    bar = make_progress(args.num_labeled + args.num_unlabeled, 'rendering', 'clips')
    try:
        res = generate_synthetic_dataset(
            args.out, num_labeled=args.num_labeled, num_unlabeled=args.num_unlabeled,
            num_frames=args.num_frames, size=args.size, num_folds=args.folds, seed=args.seed,
            fmt=args.format, label_noise=args.label_noise, workers=args.workers,
            val_fraction=args.val_fraction, fps=args.fps, class_distribution=args.class_distribution,
            reuse=args.reuse, style=parse_style(args.style), progress=bar)
    except ValueError as e:                       # bad sizes or counts: one line, not a traceback
        raise SystemExit(f"error: {e}") from None
    finally:
        bar.close()
    with open(res["meta"]) as f:
        meta = json.load(f)
    counts = meta["counts"]
    n = args.num_labeled + args.num_unlabeled
    how = "reused existing" if res.get("reused") else f"{res['seconds']:.1f}s"
    print(f"synthetic dataset in {res['out_dir']} ({how}; {n} clips of {args.num_frames} frames "
          f"{args.size}x{args.size}, {args.format})")
    if res.get("seconds") and n:
        print(f"  {res['seconds'] / n * 100:.2f}s per 100 clips with {args.workers} worker(s)")
    names = list(LABEL_NAMES)
    head = "  {:<12}" + " {:>8}" * (len(names) + 1)
    print(head.format("split", *[c[:8] for c in names], "total"))
    for fold, splits in counts["folds"].items():
        for split in ("train", "val", "test"):
            c = splits[split]
            print(head.format(f"fold_{fold}/{split}", *[c[k] for k in names], c["total"]))
    tot = counts["per_class"]
    print(head.format("all labeled", *[tot[k] for k in names], counts["labeled_total"]))
    print(f"  label noise: {counts['noisy_labels']} of {counts['labeled_total']} labels randomised")
    print(f"  pretrain (unlabeled talking faces): {counts['unlabeled_total']} -> {res['pretrain']}")
    if args.preview:
        preview_grid(args.preview, seed=args.seed, size=args.size)
        print(f"  preview grid -> {args.preview}")
    return res


if __name__ == "__main__":
    main()

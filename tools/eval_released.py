"""Evaluate released fine-tuned checkpoints on every fold and compare with the published values.

The authors released one fine-tuned SVFAP-B checkpoint per fold for DFEW and MAFW, and one for
FERV39k, with the per-fold UAR / WAR of each in their README (``datasets.registry``:
``released_results``). This tool tests each checkpoint on its fold with this codebase's test
pipeline (``run_finetune.py --eval --finetune CKPT``: the published test views by default) and
prints one table: fold | ours | authors' value | difference, then the mean of the folds (what the
README calls "Total (Reproduced)") and the pooled predictions (the paper's protocol, Sec. 4.1)
against the paper's number.

    python -m tools.eval_released --data_set dfew --checkpoints ckpts/dfew \\
        --data_path data/splits/dfew --output_dir output/released/dfew [run_finetune.py flags]

``--checkpoints``: one file per fold, in the registry's fold order, or one folder holding exactly
one ``.pth`` / ``.pt`` / ``.bin`` file per fold (taken in natural name order; the mapping is
printed). Fold folders under ``--data_path`` follow the preprocess scripts: ``split01`` ...,
``fold_1`` ... (the synthetic set) or ``official``. The recipe is
``configs/finetune/<data_set>_base.yaml`` unless ``--config`` says otherwise; any other flag goes to
``run_finetune.py``. ``--published FILE.json`` (``{"1": {"uar": 63.6, ...}, ...}``) compares with
other values than the registry's. Per fold, ``<output_dir>/<fold dir>/test_predictions.csv``;
overall, ``<output_dir>/released_comparison.json``. Launchers: ``scripts/eval_released/<data_set>.sh``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

from datasets.registry import get_dataset_info
from datasets.video_reader import natural_key
from tools import pool_folds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHECKPOINT_EXTS = ('.pth', '.pt', '.bin')


def get_args_parser():
    p = argparse.ArgumentParser('python -m tools.eval_released', description=__doc__.split('\n\n')[0])
    p.add_argument('--data_set', required=True, help='registry name: dfew, ferv39k, mafw, ...')
    p.add_argument('--checkpoints', nargs='+', required=True,
                   help='one checkpoint per fold (fold order), or a folder holding them')
    p.add_argument('--data_path', required=True, help='folder of the fold folders (split01, ...)')
    p.add_argument('--output_dir', required=True, help='one sub-folder per fold')
    p.add_argument('--config', default=None, help='default configs/finetune/<data_set>_base.yaml')
    p.add_argument('--published', default=None,
                   help='JSON {fold: {metric: value}} to compare with (default: the registry\'s)')
    return p


class ReleasedEvalError(ValueError):
    pass


def fold_dir(data_path: str, fold: str) -> str:
    """'1' -> split01 (preprocess) or fold_1 (synthetic set); other names as they are."""
    if fold.isdigit():
        for name in (f'split{int(fold):02d}', f'fold_{int(fold)}'):
            if os.path.isdir(os.path.join(data_path, name)):
                return name
        raise ReleasedEvalError(f'{data_path}: no split{int(fold):02d} or fold_{int(fold)} folder '
                                f'for fold {fold}')
    if not os.path.isdir(os.path.join(data_path, fold)):
        raise ReleasedEvalError(f'{data_path}: no {fold} folder')
    return fold


def resolve_checkpoints(given: Sequence[str], folds: Sequence[str]) -> List[str]:
    if len(given) == 1 and not os.path.exists(given[0]):
        raise ReleasedEvalError(f'checkpoint folder or file {given[0]} not found (download the '
                                f'released checkpoints there, or give --checkpoints)')
    if len(given) == 1 and os.path.isdir(given[0]):
        files = sorted((n for n in os.listdir(given[0]) if n.lower().endswith(CHECKPOINT_EXTS)),
                       key=natural_key)
        given = [os.path.join(given[0], n) for n in files]
    if len(given) != len(folds):
        raise ReleasedEvalError(f'{len(folds)} fold(s) ({", ".join(folds)}) need {len(folds)} '
                                f'checkpoint(s), got {len(given)}: {", ".join(given) or "none"}')
    for f in given:
        if not os.path.isfile(f):
            raise ReleasedEvalError(f'checkpoint {f} not found')
    return list(given)


def _fmt(v: Optional[float], pct: bool) -> str:
    return '-' if v is None else (f'{v:.2f}' if pct else f'{v:.4f}')


def _diff(a: Optional[float], b: Optional[float], pct: bool) -> str:
    return '-' if a is None or b is None else (f'{a - b:+.2f}' if pct else f'{a - b:+.4f}')


def comparison_table(info, rows: Dict[str, Dict[str, float]], published: Dict[str, Dict[str, float]],
                     pooled: Optional[Dict[str, float]]) -> str:
    """fold | per metric: ours, authors', difference; the mean of folds; the pooled result."""
    pct = info.is_classification
    metrics = [m for m in next(iter(rows.values())) if any(m in p for p in published.values())] \
        or list(next(iter(rows.values())))
    head = ['fold'] + [h for m in metrics for h in (f'{m} ours', f'{m} authors', 'diff')]
    table = [[fold] + [c for m in metrics for c in (_fmt(r[m], pct), _fmt(published.get(fold, {}).get(m), pct),
                                                    _diff(r[m], published.get(fold, {}).get(m), pct))]
             for fold, r in rows.items()]
    if len(rows) > 1:
        mean = pool_folds.mean_of_folds(list(rows.values()))
        pub = [published[f] for f in rows if f in published]
        pub_mean = pool_folds.mean_of_folds(pub) if len(pub) == len(rows) else {}
        table.append(['mean of folds*'] + [c for m in metrics for c in (
            _fmt(mean[m], pct), _fmt(pub_mean.get(m), pct), _diff(mean[m], pub_mean.get(m), pct))])
    lines = pool_folds.format_table(head, table)
    if len(rows) > 1:
        lines.append("* the authors' README \"Total (Reproduced)\" is this mean of the per-fold numbers")
    if pooled is not None:
        paper = info.paper_results
        lines.append('')
        lines.append(f'pooled over {len(rows)} fold(s) (the paper\'s protocol): '
                     + ', '.join(f'{m} {_fmt(pooled.get(m), pct)} (paper {_fmt(paper.get(m), pct)}, '
                                 f'{_diff(pooled.get(m), paper.get(m), pct)})' for m in metrics))
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args, extra = get_args_parser().parse_known_args(argv)
    info = get_dataset_info(args.data_set)
    if args.published:
        with open(args.published) as f:
            published = {str(k): v for k, v in json.load(f).items()}
    else:
        published = {k: dict(v) for k, v in info.released_results.items()}
    folds = list(info.folds)
    ckpts = resolve_checkpoints(args.checkpoints, folds)
    dirs = [fold_dir(args.data_path, fold) for fold in folds]
    config = args.config or os.path.join(ROOT, 'configs', 'finetune',
                                         f'{info.name.replace("-", "_")}_base.yaml')
    import run_finetune
    rows, pred_files = {}, []
    for fold, d, ckpt in zip(folds, dirs, ckpts):
        out = os.path.join(args.output_dir, d)
        print(f'==> fold {fold}: {ckpt} on {os.path.join(args.data_path, d)} -> {out}', flush=True)
        res = run_finetune.main(['--config', config, '--data_set', info.name, '--eval',
                                 '--finetune', ckpt, '--no_auto_resume',
                                 '--data_path', os.path.join(args.data_path, d), '--output_dir', out]
                                + list(extra))
        rows[fold] = dict(res['test'])
        pred_files.append(os.path.join(out, 'test_predictions.csv'))
    pooled = None
    if len(folds) > 1 and info.pool_folds and all(os.path.isfile(p) for p in pred_files):
        pooled = pool_folds.run(info.name, pred_files)[2]
    report = comparison_table(info, rows, published, pooled)
    print(f'\n{info.name}: released checkpoints tested here against the published values')
    print(report)
    summary = {'data_set': info.name, 'checkpoints': dict(zip(folds, ckpts)), 'ours': rows,
               'published': published, 'mean_of_folds': pool_folds.mean_of_folds(list(rows.values())),
               'pooled': pooled, 'paper': info.paper_results}
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, 'released_comparison.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    return summary


if __name__ == '__main__':
    try:
        main()
    except ReleasedEvalError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)

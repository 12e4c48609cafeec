"""The paper's central claim and its few-shot figure, in miniature, on the synthetic set.

Fine-tunes the tiny TPSBT from a masked-autoencoder checkpoint and from scratch, on all and on a
fraction (default 10%) of the labelled training clips, for several seeds, with the same budget in
optimizer steps for every arm (fewer clips -> proportionally more epochs), then writes a markdown
table and a PNG plot:

    python -m tools.pretrain_vs_scratch --out output/pretrain_vs_scratch \
        --report docs/experiments/pretrain_vs_scratch.md

Uses the quickstart recipes (configs/quickstart/). Validation is switched off (no model selection):
every arm is tested once, at the end, on the fold's test split with 2 clips x 2 crops per video.
The unlabeled clips are rendered with `--pretrain_style` merged onto the labelled clips' style
(default: placement and pose jitter halved, as in face-tracked VoxCeleb2 crops); the labelled
clips have the quickstart's render style, twice as many of them (`--num_labeled`).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from tools.quickstart import PRESETS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(ROOT, 'configs', 'quickstart')
# the quickstart's synthetic set (clip length, size, render style)
QUICKSTART_DATA = PRESETS['default']['data']
# about 15,000 steps of the quickstart's pre-training recipe (about 2x the quickstart's 75 epochs):
# 12-47 minutes on 2 CPU cores as fast as the host is; the whole tool took 34.7 minutes on a
# medium day and 65.8 on a slow one (docs/experiments/pretrain_vs_scratch.md)
PRETRAIN_EPOCHS = 160
# The unlabeled clips stand for VoxCeleb2, which is distributed as face-tracked crops: there the
# face sits steadier in the frame than in the labelled clips (placement and pose jitter halved).
# The clips are the same talking clips either way (a style changes no random draw).
PRETRAIN_STYLE = ['placement=0.5', 'pose=0.5']
# Twice the quickstart's labelled clips: 1008 training clips in fold 1, so 10 % of the labels is
# 14-15 clips per class. With the quickstart's 700 (7 per class at 10 %) the subset's draw decides
# more than the initialisation: pre-training gained only +3.9 UAR at 10 %, inside the seed
# spread; with 1400 +18.1 (docs/experiments/learning_diagnostics.md).
NUM_LABELED = 2 * QUICKSTART_DATA['num_labeled']
# 7 epochs x 63 steps on the 1008 clips (10 %: 70 epochs x 6): about 420-440 optimizer steps per
# arm, the budget the tool had with 700 clips and 15 epochs
FINETUNE_EPOCHS = 7


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out', default=os.path.join(ROOT, 'output', 'pretrain_vs_scratch'))
    p.add_argument('--report', default=None, help='markdown file (default: OUT/report.md); '
                   'the plot is written beside it with the same stem')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--fractions', type=float, nargs='+', default=[0.1, 1.0])
    p.add_argument('--fold', default='1')
    p.add_argument('--pretrain_epochs', type=int, default=PRETRAIN_EPOCHS,
                   help='masked-autoencoder epochs on the unlabeled clips (the quickstart runs 75; '
                        'on style v7 the gain at 10%% of the labels grew with it: '
                        'docs/experiments/learning_diagnostics.md)')
    p.add_argument('--finetune_epochs', type=int, default=FINETUNE_EPOCHS,
                   help='epochs on the full training split; a fraction f gets epochs/f')
    p.add_argument('--pretrained', default=None,
                   help='an existing pre-training checkpoint (skips pre-training)')
    p.add_argument('--num_labeled', type=int, default=NUM_LABELED,
                   help='labelled clips rendered (all folds); the quickstart renders %d'
                        % QUICKSTART_DATA['num_labeled'])
    p.add_argument('--num_unlabeled', type=int, default=QUICKSTART_DATA['num_unlabeled'])
    p.add_argument('--pretrain_style', nargs='*', default=PRETRAIN_STYLE, metavar='KEY=VALUE',
                   help='render-style knobs of the unlabeled clips, merged onto the labelled clips\' '
                        '(datasets.synthetic.RenderStyle); none: the same style for both')
    p.add_argument('--device', default='cuda')
    p.add_argument('--extra', nargs=argparse.REMAINDER, default=[],
                   help='further flags for both entry points (e.g. --input_size 32)')
    return p


def _train_test_only(fold_dir: str, dest: str) -> str:
    """A data folder with the fold's train.csv and test.csv but no val.csv (no selection)."""
    os.makedirs(dest, exist_ok=True)
    for name in ('train.csv', 'test.csv'):
        shutil.copyfile(os.path.join(fold_dir, name), os.path.join(dest, name))
    return dest


def _arms(seeds, fractions):
    for fraction in fractions:
        for init in ('pretrained', 'scratch'):
            for seed in seeds:
                yield fraction, init, seed


def summarise(rows: List[Dict]) -> List[Dict]:
    """Mean and sample std over seeds of UAR and WAR for each (fraction, init)."""
    out = []
    keys = sorted({(r['fraction'], r['init']) for r in rows}, key=lambda k: (-k[0], k[1]))
    for fraction, init in keys:
        sel = [r for r in rows if r['fraction'] == fraction and r['init'] == init]
        entry = {'fraction': fraction, 'init': init, 'n': len(sel)}
        for m in ('uar', 'war'):
            v = np.array([r[m] for r in sel], dtype=float)
            entry[m] = float(v.mean())
            entry[m + '_std'] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        out.append(entry)
    return out


def advantage_line(summary: List[Dict]) -> str:
    """``pre-training advantage: +X.X UAR at 10% labels, +Y.Y UAR at 100% labels`` (mean UAR of the
    pre-trained arm minus the scratch arm's, over seeds), smallest fraction first."""
    by = {(s['fraction'], s['init']): s for s in summary}
    parts = []
    for fraction in sorted({s['fraction'] for s in summary}):
        if (fraction, 'pretrained') in by and (fraction, 'scratch') in by:
            d = by[(fraction, 'pretrained')]['uar'] - by[(fraction, 'scratch')]['uar']
            parts.append(f'{d:+.1f} UAR at {fraction * 100:.0f}% labels')
    return 'pre-training advantage: ' + ', '.join(parts)


def write_report(path: str, rows: List[Dict], summary: List[Dict], command: str,
                 meta: Dict) -> str:
    plot = os.path.splitext(path)[0] + '.png'
    lines = ['# Pre-trained vs from scratch, all vs 10% of the labels (synthetic set, in miniature)',
             '', f'Command: `{command}`', '',
             f'Device: {meta["device"]}; torch {meta["torch"]}; {meta["minutes"]:.1f} min in all.',
             f'Data: synthetic fold {meta["fold"]} ({meta["train"]} training / {meta["test"]} test '
             f'clips, 7 classes, chance 14.3%). Model: `svfap_tiny_patch16_160` '
             f'({meta["input"]}). Pre-training: {meta["pretrain"]}. Every arm runs '
             f'{meta["steps"]} optimizer steps; test = 2 clips x 2 crops per video.', '',
             '| labels | init | seeds | UAR (%) | WAR (%) |', '|---|---|---|---|---|']
    for s in summary:
        lines.append(f'| {s["fraction"] * 100:.0f}% | {s["init"]} | {s["n"]} | '
                     f'{s["uar"]:.1f} ± {s["uar_std"]:.1f} | {s["war"]:.1f} ± {s["war_std"]:.1f} |')
    lines += ['', 'Per run:', '', '| labels | init | seed | UAR | WAR |', '|---|---|---|---|---|']
    for r in rows:
        lines.append(f'| {r["fraction"] * 100:.0f}% | {r["init"]} | {r["seed"]} | '
                     f'{r["uar"]:.1f} | {r["war"]:.1f} |')
    lines += ['', f'![plot]({os.path.basename(plot)})', '', advantage_line(summary), '']
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    _plot(plot, summary)
    return plot


def _plot(path: str, summary: List[Dict]) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, metric in zip(axes, ('uar', 'war')):
        for init, colour in (('pretrained', 'tab:blue'), ('scratch', 'tab:orange')):
            sel = sorted((s for s in summary if s['init'] == init), key=lambda s: s['fraction'])
            x = [s['fraction'] * 100 for s in sel]
            ax.errorbar(x, [s[metric] for s in sel], yerr=[s[metric + '_std'] for s in sel],
                        marker='o', capsize=3, color=colour, label=init)
        ax.axhline(100 / 7, color='grey', linestyle=':', label='chance')
        ax.set_xscale('log')
        ax.set_xlabel('labelled training clips (%)')
        ax.set_ylabel(metric.upper() + ' (%)')
        ax.legend(fontsize=8)
    fig.suptitle('Tiny TPSBT on the synthetic set: pre-trained vs from scratch (mean ± std)',
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _finished_runs(results_path: str) -> Dict[tuple, Dict]:
    """The rows of ``runs.jsonl`` by ``(fraction, init, seed)``."""
    done = {}
    if os.path.isfile(results_path):
        with open(results_path) as f:
            for line in f:
                r = json.loads(line)
                done[(r['fraction'], r['init'], r['seed'])] = r
    return done


def _finetune_arm(args, fraction: float, init: str, seed: int, data_dir: str, out: str,
                  pretrained: str) -> Dict:
    """One fine-tuning run of the sweep (epochs scaled by 1 / fraction: the same steps per arm);
    its row: steps, test UAR and WAR."""
    import run_finetune
    epochs = max(1, int(round(args.finetune_epochs / fraction)))
    run_dir = os.path.join(out, f'frac{fraction:g}_{init}_seed{seed}')
    run_argv = ['--config', os.path.join(QUICKSTART, 'finetune_tiny.yaml'),
                '--data_path', data_dir, '--output_dir', run_dir, '--seed', str(seed),
                '--train_fraction', str(fraction), '--epochs', str(epochs),
                '--device', args.device, '--save_ckpt_freq', '1000', '--log_every', '1000']
    if init == 'pretrained':
        run_argv += ['--finetune', pretrained]
    print(f'\n==> {fraction:.0%} of the labels, {init}, seed {seed}: {epochs} epochs', flush=True)
    res = run_finetune.main(run_argv + args.extra)
    steps = int(sum(h.get('train_steps', 0) for h in res.get('train_history', [])))
    return {'fraction': fraction, 'init': init, 'seed': seed, 'epochs': epochs, 'steps': steps,
            'uar': float(res['test']['uar']), 'war': float(res['test']['war'])}


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    command = 'python -m tools.pretrain_vs_scratch ' + ' '.join(
        sys.argv[1:] if argv is None else list(argv))
    args = get_parser().parse_args(argv)
    t0 = time.time()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    import torch
    import run_pretrain
    from datasets.synthetic import generate_synthetic_dataset

    def render(sub: str, **kw) -> Dict:
        return generate_synthetic_dataset(os.path.join(out, sub), **dict(QUICKSTART_DATA, **kw),
                                          seed=0, workers=min(4, os.cpu_count() or 1), reuse=True)

    data = render('data', num_labeled=args.num_labeled, num_unlabeled=0, num_folds=5)
    fold_dir = os.path.dirname(data['folds'][args.fold]['test'])
    data_dir = _train_test_only(fold_dir, os.path.join(out, 'fold_train_test'))

    pretrained = args.pretrained
    if pretrained is None:
        from tools.make_synthetic import parse_style
        unlabeled = render('data_unlabeled', num_labeled=0, num_unlabeled=args.num_unlabeled,
                           style=parse_style(args.pretrain_style, base=QUICKSTART_DATA['style']))
        pre_dir = os.path.join(out, 'pretrain')
        run_pretrain.main(['--config', os.path.join(QUICKSTART, 'pretrain_tiny.yaml'),
                           '--data_path', unlabeled['pretrain'], '--output_dir', pre_dir,
                           '--device', args.device]
                          + ([] if args.pretrain_epochs is None
                             else ['--epochs', str(args.pretrain_epochs)]) + args.extra)
        pretrained = os.path.join(pre_dir, 'checkpoint-last.pth')
        pretrain_desc = (f'{args.pretrain_epochs or "recipe"} epochs on {args.num_unlabeled} '
                         f'unlabeled clips' + (f' rendered with {" ".join(args.pretrain_style)}'
                                              if args.pretrain_style else ''))
    else:
        pretrain_desc = f'given checkpoint `{os.path.relpath(pretrained, ROOT)}`'

    with open(os.path.join(fold_dir, 'train.csv')) as f:
        n_train = sum(1 for line in f if line.strip())
    with open(os.path.join(fold_dir, 'test.csv')) as f:
        n_test = sum(1 for line in f if line.strip())
    rows = []
    results_path = os.path.join(out, 'runs.jsonl')
    done = _finished_runs(results_path)          # resume an interrupted sweep
    for fraction, init, seed in _arms(args.seeds, args.fractions):
        if (fraction, init, seed) in done:
            rows.append(done[(fraction, init, seed)])
            continue
        row = _finetune_arm(args, fraction, init, seed, data_dir, out, pretrained)
        rows.append(row)
        with open(results_path, 'a') as f:
            f.write(json.dumps(row) + '\n')
    summary = summarise(rows)
    steps = sorted({r['steps'] for r in rows})
    meta = {'device': 'cuda' if (args.device.startswith('cuda') and torch.cuda.is_available())
            else f'CPU ({os.cpu_count()} cores)', 'torch': torch.__version__,
            'minutes': (time.time() - t0) / 60, 'fold': args.fold, 'train': n_train,
            'test': n_test, 'pretrain': pretrain_desc,
            'steps': '/'.join(str(s) for s in steps),
            'input': 'recipe of configs/quickstart/' + (f', with {" ".join(args.extra)}'
                                                        if args.extra else '')}
    report = args.report or os.path.join(out, 'report.md')
    os.makedirs(os.path.dirname(os.path.abspath(report)), exist_ok=True)
    plot = write_report(report, rows, summary, command, meta)
    print(open(report).read())
    print(f'report: {report}\nplot:   {plot}')
    print(advantage_line(summary))  # the last line
    return {'rows': rows, 'summary': summary, 'report': report, 'plot': plot}


if __name__ == '__main__':
    main()

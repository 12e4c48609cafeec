"""The quickstart: the whole SVFAP pipeline on the embedded synthetic facial-video set.

    python -m tools.quickstart [--out output/quickstart] [--preset default|tiny] [--style KEY=VALUE ...]

1. render the synthetic set (unlabeled talking faces + 7 labelled expressions, 5 folds);
2. pre-train a tiny three-stage TPSBT by masked autoencoding on the unlabeled clips;
3. fine-tune it on fold 1 and test it with the paper's protocol (2 clips x 2 crops per video);
4. print UAR, WAR and the confusion matrix; write a reconstruction picture.

Both recipes live in configs/quickstart/; the presets only change sizes. `scripts/quickstart.sh`
sets up the environment and runs this. Uses a GPU when there is one.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The look of the quickstart's synthetic set (datasets.synthetic.RenderStyle): the face fills the
# frame and is roughly aligned, as in the face crops real datasets ship (what makes the tiny model
# learn in CPU minutes); expressions exaggerated; no sensor noise (it turns flat patches into
# unpredictable reconstruction targets); the face's place and size jitter per clip as a face
# detector's crops do, and the head turns further (placement and pose 1.0, the renderer's
# defaults), which no per-pixel template averages away: linear baselines on raw pixels and on
# frame differences stay below the fine-tuned model (docs/experiments/learning_diagnostics.md:
# style v8 = v7 with placement and pose 1.0).
QUICKSTART_STYLE = dict(face_scale=0.62, au_gain=1.6, max_sensor_noise=2.0, sensor_noise=0.0,
                        background_noise_blur=2.0, pose=1.0, placement=1.0)

# The synthetic set of each preset, and the flags it changes in the two quickstart recipes.
# `default` is the quickstart proper (11-40 minutes on 2 CPU cores as fast as the host is, most of
# it training); `tiny` is the end-to-end test's (well under a minute).
PRESETS: Dict[str, Dict] = {
    'default': dict(data=dict(num_labeled=700, num_unlabeled=1500, num_frames=32, size=64,
                              style=QUICKSTART_STYLE),
                    overrides=[]),
    'tiny': dict(data=dict(num_labeled=35, num_unlabeled=16, num_frames=16, size=64,
                           style=QUICKSTART_STYLE),
                 overrides=['--num_frames', '8', '--sampling_rate', '2', '--input_size', '32',
                            '--batch_size', '4', '--num_workers', '0', '--epochs', '1',
                            '--warmup_epochs', '0'],
                 finetune_overrides=['--short_side_size', '32']),
}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out', default=os.path.join(ROOT, 'output', 'quickstart'),
                   help='everything goes under this folder')
    p.add_argument('--preset', default='default', choices=sorted(PRESETS))
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='cuda', help='cuda falls back to the CPU when absent')
    p.add_argument('--fold', default='1', help='synthetic fold to fine-tune and test on')
    p.add_argument('--pretrain_epochs', type=int, default=None, help='default: the recipe\'s')
    p.add_argument('--finetune_epochs', type=int, default=None, help='default: the recipe\'s')
    p.add_argument('--style', nargs='+', default=[], metavar='KEY=VALUE',
                   help='render-style knobs merged onto the preset\'s (datasets.synthetic.RenderStyle),'
                        ' e.g. placement=2.0; for style studies, the default is the measured one')
    return p


def _run_step(title: str, fn, argv: List[str]):
    print(f'\n==> {title}\n    {" ".join(argv)}', flush=True)
    t0 = time.time()
    out = fn(argv)
    print(f'==> {title}: done in {time.time() - t0:.0f} s', flush=True)
    return out


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = get_parser().parse_args(argv)
    preset = PRESETS[args.preset]
    from tools.make_synthetic import parse_style
    data_args = dict(preset['data'], style=parse_style(args.style, base=preset['data']['style']))
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    t_start = time.time()

    from datasets.synthetic import generate_synthetic_dataset
    print(f'==> synthetic facial videos -> {out}/data', flush=True)
    from engine.logger import make_progress
    bar = make_progress(data_args['num_labeled'] + data_args['num_unlabeled'], 'rendering', 'clips')
    try:
        data = generate_synthetic_dataset(
            os.path.join(out, 'data'), num_folds=5, seed=args.seed,
            workers=min(4, os.cpu_count() or 1), reuse=True, progress=bar, **data_args)
    finally:
        bar.close()
    print(f'    {data["num_labeled"]} labelled + {data["num_unlabeled"]} unlabeled clips'
          f'{" (reused)" if data.get("reused") else ""}', flush=True)

    common = ['--seed', str(args.seed), '--device', args.device] + preset['overrides']
    pretrain_dir = os.path.join(out, 'pretrain')
    import run_pretrain
    _run_step('masked-autoencoder pre-training', run_pretrain.main, [
        '--config', os.path.join(ROOT, 'configs', 'quickstart', 'pretrain_tiny.yaml'),
        '--data_path', data['pretrain'], '--output_dir', pretrain_dir]
        + common + _epochs(args.pretrain_epochs))
    pretrained = os.path.join(pretrain_dir, 'checkpoint-last.pth')

    finetune_dir = os.path.join(out, 'finetune')
    import run_finetune
    result = _run_step('fine-tuning and test', run_finetune.main, [
        '--config', os.path.join(ROOT, 'configs', 'quickstart', 'finetune_tiny.yaml'),
        '--data_path', os.path.dirname(data['folds'][args.fold]['test']),
        '--finetune', pretrained, '--output_dir', finetune_dir]
        + common + preset.get('finetune_overrides', []) + _epochs(args.finetune_epochs))

    picture = os.path.join(out, 'reconstruction.png')
    first_unlabeled = _first_path(data['pretrain'])
    from tools import visualize_reconstruction
    _run_step('reconstruction picture', visualize_reconstruction.main, [
        '--video', first_unlabeled, '--checkpoint', pretrained, '--output', picture,
        '--device', args.device, '--seed', str(args.seed)])

    from tools import pool_folds
    print('\n==> test of fold {} (2 clips x 2 crops per video, softmax scores averaged)'
          .format(args.fold), flush=True)
    pool_folds.main(['--data_set', 'synthetic', '--expected_folds', '1',   # the quickstart tests one fold
                     '--pred_files', os.path.join(finetune_dir, 'test_predictions.csv')])
    metrics = result.get('test', {})
    print(f'\nUAR {metrics.get("uar", float("nan")):.2f}  WAR {metrics.get("war", float("nan")):.2f}'
          f'  (chance: 14.3)')
    print(f'TensorBoard:     tensorboard --logdir {out}')
    print(f'reconstruction:  {picture}')
    print(f'predictions:     {finetune_dir}/test_predictions.csv')
    print(f'total time:      {time.time() - t_start:.0f} s')
    return {'test': metrics, 'picture': picture, 'pretrain_dir': pretrain_dir,
            'finetune_dir': finetune_dir}


def _epochs(n: Optional[int]) -> List[str]:
    return [] if n is None else ['--epochs', str(n)]


def _first_path(split_file: str) -> str:
    with open(split_file) as f:
        return f.readline().rsplit(' ', 1)[0]


if __name__ == '__main__':
    main()

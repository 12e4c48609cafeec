"""Linear classifiers on a fold: the synthetic set's two baselines and the frozen-encoder probe.

    python -m tools.linear_probe --data_path DATA/fold_1 [--checkpoint PRETRAIN.pth]

Features, one vector per video (its centred clip of ``--num_frames`` frames at
``--sampling_rate``, read through ``datasets.video_reader`` and resized to ``--input_size``):

* ``pixels``: the raw frames, downsampled to ``--pixel_size``;
* ``frame_diff``: absolute differences of consecutive frames, same size (motion only);
* ``encoder`` (with ``--checkpoint``): the frozen TPSBT encoder of a pre-training checkpoint,
  every stage's tokens mean-pooled and concatenated (the fine-tuning head's view, all stages);
* ``random_encoder`` (with ``--checkpoint``): the same encoder, randomly initialised.

Each is standardised on the training split and fed to an L2 logistic regression (the inverse
strength ``C`` picked by 3-fold cross-validation on the training split). Prints one line per
feature, ``<name>  UAR <x>  WAR <y>``, and writes ``--output`` (JSON) when given.

``--train_sizes 500 1000`` gives a learning curve instead: each feature is fitted on nested,
class-balanced subsets of the training split of those sizes (the same test split), one line per
feature and size, ``<name> n=<size>  UAR <x>  WAR <y>``.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Dict, Optional, Sequence

import numpy as np
import timm
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


from datasets.sampling import eval_clip_indices
from datasets.split_file import read_split_file
from datasets.transforms import resize_frames, to_normalized_tensor
from datasets.video_reader import DEFAULT_READER, READERS, open_video
from engine.metrics import uar, war
import models  # noqa: F401  (registers the SVFAP models with timm)
from models.checkpoint import load_checkpoint

CANDIDATE_C = (0.001, 0.01, 0.1, 1.0)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--data_path', required=True, help='folder with train.csv and test.csv')
    p.add_argument('--checkpoint', default=None,
                   help='pre-training checkpoint: adds the encoder and random_encoder probes')
    p.add_argument('--model', default='pretrain_svfap_tiny_patch16_160',
                   help='timm name of the pre-training model the checkpoint belongs to')
    p.add_argument('--num_classes', type=int, default=7)
    p.add_argument('--num_frames', type=int, default=16)
    p.add_argument('--sampling_rate', type=int, default=4)
    p.add_argument('--input_size', type=int, default=64, help='frames are resized to this side')
    p.add_argument('--pixel_size', type=int, default=32, help='side of the pixel features')
    p.add_argument('--reader', default=DEFAULT_READER, choices=READERS)
    p.add_argument('--seed', type=int, default=0, help='seed of the random encoder')
    p.add_argument('--output', default=None, help='JSON file for the results')
    p.add_argument('--train_sizes', type=int, nargs='+', default=None, metavar='N',
                   help='learning curve: fit on nested class-balanced subsets of N training videos')
    return p


def nested_subsets(labels: np.ndarray, sizes: Sequence[int], seed: int = 0) -> Dict[int, np.ndarray]:
    """Indices of nested, class-balanced subsets: each class shuffled, then dealt round-robin,
    so the first n of the order hold every class about equally and grow by inclusion."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    order = np.array([idx[r] for r in range(max(map(len, per_class)))
                      for idx in per_class if r < len(idx)])
    too_big = [n for n in sizes if n > len(order) or n < 1]
    if too_big:
        raise SystemExit(f'--train_sizes {too_big}: the training split has {len(order)} videos')
    return {n: np.sort(order[:n]) for n in sizes}


def read_clips(split_file: str, num_classes: int, num_frames: int, sampling_rate: int,
               size: int, reader: str):
    """uint8 (V, T, size, size, 3) centred clips of every video of ``split_file``, labels (V,)."""
    entries = read_split_file(split_file, num_classes=num_classes)
    clips = []
    for e in entries:
        v = open_video(e.path, reader)
        try:
            frames = v.get(eval_clip_indices(v.num_frames, 0, num_frames, sampling_rate, 1))
        finally:
            v.close()
        clips.append(resize_frames(frames, size, size))
    return np.stack(clips), np.array([e.label for e in entries])


def downsample(clips: np.ndarray, size: int) -> np.ndarray:
    """(V, T, H, W, 3) uint8 -> float32 (V, T, size, size, 3) in [0, 1]."""
    return np.stack([resize_frames(c, size, size) for c in clips]).astype(np.float32) / 255.0


def pixel_features(small: np.ndarray) -> np.ndarray:
    """Downsampled clips (V, T, h, w, 3) -> (V, T * h * w * 3)."""
    return small.reshape(len(small), -1)


def frame_diff_features(small: np.ndarray) -> np.ndarray:
    """Downsampled clips (V, T, h, w, 3) -> (V, (T-1) * h * w * 3): |frame t+1 - frame t|."""
    return np.abs(np.diff(small, axis=1)).reshape(len(small), -1)


@torch.no_grad()
def encoder_features(encoder, clips: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Frozen TPSBT: every stage's tokens mean-pooled, concatenated -> (V, num_stages * C)."""
    encoder.eval()
    out = []
    for i in range(0, len(clips), batch_size):
        x = torch.stack([to_normalized_tensor(c) for c in clips[i:i + batch_size]])
        stages = encoder.forward_stages(x)
        out.append(torch.cat([s.mean(dim=(1, 2)) for s in stages], dim=1).numpy())
    return np.concatenate(out)


def fit_linear(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
               test_y: np.ndarray, num_classes: int, seed: int = 0) -> Dict[str, float]:
    """Standardise on train, pick C by 3-fold CV on train, fit, score the test split."""
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    folds = min(3, int(np.bincount(train_y).min()))
    if folds >= 2:
        search = GridSearchCV(pipe, {'logisticregression__C': list(CANDIDATE_C)},
                              cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                              scoring='balanced_accuracy')
        search.fit(train_x, train_y)
        model, c = search.best_estimator_, search.best_params_['logisticregression__C']
    else:
        c = 0.01
        model = pipe.set_params(logisticregression__C=c).fit(train_x, train_y)
    pred = model.predict(test_x)
    return {'uar': uar(test_y, pred, num_classes), 'war': war(test_y, pred), 'C': float(c),
            'dim': int(train_x.shape[1])}


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    args = get_parser().parse_args(argv)
    read = dict(num_classes=args.num_classes, num_frames=args.num_frames,
                sampling_rate=args.sampling_rate, size=args.input_size, reader=args.reader)
    clips, labels = {}, {}
    for split in ('train', 'test'):
        clips[split], labels[split] = read_clips(os.path.join(args.data_path, f'{split}.csv'),
                                                 **read)
    small = {split: downsample(c, args.pixel_size) for split, c in clips.items()}
    features = {  # split name -> feature matrix
        'pixels': lambda split: pixel_features(small[split]),
        'frame_diff': lambda split: frame_diff_features(small[split]),
    }
    if args.checkpoint:
        kw = dict(img_size=args.input_size, all_frames=args.num_frames)
        trained = timm.create_model(args.model, **kw)
        load_checkpoint(trained, args.checkpoint, verbose=False)
        torch.manual_seed(args.seed)
        random = timm.create_model(args.model, **kw)
        features['encoder'] = lambda split: encoder_features(trained.encoder, clips[split])
        features['random_encoder'] = lambda split: encoder_features(random.encoder, clips[split])
    train_y, test_y = labels['train'], labels['test']
    subsets = (nested_subsets(train_y, args.train_sizes, args.seed) if args.train_sizes
               else {None: np.arange(len(train_y))})
    results = {}
    for name, fn in features.items():
        train_x, test_x = fn('train'), fn('test')
        for n, idx in subsets.items():
            key, label = (name, name) if n is None else (f'{name}@{n}', f'{name} n={n}')
            results[key] = r = fit_linear(train_x[idx], train_y[idx], test_x, test_y,
                                          args.num_classes, args.seed)
            r['train'] = int(len(idx))
            print(f'{label:<15} UAR {r["uar"]:.2f}  WAR {r["war"]:.2f}  (C={r["C"]:g}, '
                  f'{r["dim"]} dims)', flush=True)
    summary = {'data_path': os.path.abspath(args.data_path), 'train': int(len(train_y)),
               'test': int(len(test_y)), 'results': results}
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, 'w') as f:
            json.dump(summary, f, indent=1)
    return results


if __name__ == '__main__':
    main()

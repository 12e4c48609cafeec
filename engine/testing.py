"""Small helpers for the engine's tests and smoke runs: a tiny synthetic data set and tiny flags."""
from __future__ import annotations

import os
import socket
from typing import Dict, List

__all__ = ['make_tiny_dataset', 'tiny_finetune_argv', 'tiny_pretrain_argv', 'free_port']


def make_tiny_dataset(out_dir: str, num_labeled: int = 15, num_unlabeled: int = 6, num_frames: int = 16,
                      size: int = 40, num_folds: int = 3, seed: int = 0) -> Dict:
    """Synthetic facial videos (mp4) with ``fold_i/{train,val,test}.csv`` and ``pretrain.csv``
    (``datasets.synthetic``); reused when already there."""
    from datasets.synthetic import generate_synthetic_dataset
    return generate_synthetic_dataset(out_dir, num_labeled=num_labeled, num_unlabeled=num_unlabeled,
                                      num_frames=num_frames, size=size, num_folds=num_folds,
                                      seed=seed, reuse=True)


def _common(output_dir: str, size: int, extra: List[str]) -> List[str]:
    return ['--num_frames', '8', '--sampling_rate', '2', '--input_size', str(size),
            '--batch_size', '2', '--device', 'cpu', '--num_workers', '0', '--output_dir', output_dir,
            '--log_every', '1', '--warmup_epochs', '1', '--amp', 'none', '--seed', '0'] + list(extra)


def tiny_finetune_argv(data_path: str, output_dir: str, size: int = 32, extra=()) -> List[str]:
    return ['--model', 'svfap_tiny_patch16_160', '--data_set', 'synthetic', '--data_path', data_path,
            '--short_side_size', str(size), '--test_num_segment', '1', '--test_num_crop', '1',
            '--aa', 'none', '--reprob', '0', '--drop_path', '0.1', '--lr', '1e-3',
            '--min_lr', '1e-5', '--warmup_lr', '1e-5'] + _common(output_dir, size, list(extra))


def tiny_pretrain_argv(data_path: str, output_dir: str, size: int = 32, extra=()) -> List[str]:
    return ['--model', 'pretrain_svfap_tiny_patch16_160', '--data_set', 'synthetic-pretrain',
            '--data_path', data_path, '--mask_ratio', '0.75', '--lr', '1e-3', '--min_lr', '1e-5',
            '--warmup_lr', '1e-5', '--vis_every', '1'] + _common(output_dir, size, list(extra))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

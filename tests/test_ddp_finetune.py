"""Two-process gloo DDP (torchrun on 127.0.0.1): training with gradient accumulation runs, and the
distributed evaluation (odd number of test views, so the sampler pads with duplicates) gives the
same per-video predictions and metrics as one process on the same weights."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import run_finetune
from tests.helpers import free_port, make_tiny_dataset, repo_root, tiny_finetune_argv


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_ddp_two_processes_match_one(tmp_path):
    data = make_tiny_dataset(str(tmp_path / 'syn'))
    fold = os.path.dirname(data['folds']['2']['train'])
    n_test = len(open(data['folds']['2']['test']).read().split('\n')) - 1
    assert n_test % 2 == 1  # 5 videos x 3 views = 15 views over 2 processes: one padded view
    ddp_dir = str(tmp_path / 'ddp')
    # 9 training videos: 5 per process, batch 2 x update_freq 2 -> one synchronised update
    extra = ['--epochs', '1', '--max_steps_per_epoch', '2', '--update_freq', '2', '--mixup', '0.8',
             '--cutmix', '1.0', '--test_num_crop', '3', '--dist_eval', '--clip_grad', '5']
    argv = tiny_finetune_argv(fold, ddp_dir, extra=extra)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_addr',
           '127.0.0.1', '--master_port', str(free_port()), 'run_finetune.py'] + argv
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    proc = subprocess.run(cmd, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=540)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert 'distributed init (rank 0/2' in out and 'backend gloo' in out
    log = [json.loads(l) for l in open(os.path.join(ddp_dir, 'log.jsonl'))]
    assert log[0]['train_steps'] == 1 and np.isfinite(log[0]['train_loss'])
    ddp_final = log[-1]
    assert ddp_final['test_num_videos'] == n_test

    # one process, same weights, evaluation only
    one_dir = str(tmp_path / 'one')
    argv1 = tiny_finetune_argv(fold, one_dir, extra=extra + [
        '--eval', '--resume', os.path.join(ddp_dir, 'checkpoint-last.pth'), '--batch_size', '3'])
    r1 = run_finetune.main(argv1)
    for k, v in r1['test'].items():
        assert ddp_final[f'test_{k}'] == pytest.approx(v, abs=1e-9), k

    a = _rows(os.path.join(ddp_dir, 'test_predictions.csv'))
    b = _rows(os.path.join(one_dir, 'test_predictions.csv'))
    assert len(a) == len(b) == n_test
    for ra, rb in zip(a, b):
        assert ra['video_index'] == rb['video_index'] and ra['path'] == rb['path']
        assert ra['label'] == rb['label'] and ra['num_views'] == rb['num_views'] == '3'
        probs_a = [float(v) for k, v in ra.items() if k.startswith('prob_')]
        probs_b = [float(v) for k, v in rb.items() if k.startswith('prob_')]
        np.testing.assert_allclose(probs_a, probs_b, atol=1e-5)
    va = _rows(os.path.join(ddp_dir, 'test_predictions_views.csv'))
    assert len(va) == 3 * n_test  # padding duplicates removed
    assert len({(r['video_index'], r['view_index']) for r in va}) == 3 * n_test

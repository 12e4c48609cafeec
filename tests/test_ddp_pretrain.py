"""Two-process gloo DDP pre-training (torchrun on 127.0.0.1) with gradient accumulation runs, logs,
checkpoints, and auto-resumes into a second epoch."""
import json
import os
import subprocess
import sys

import numpy as np
import torch

from tests.helpers import free_port, make_tiny_dataset, repo_root, tiny_pretrain_argv


def _torchrun(argv):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_addr',
           '127.0.0.1', '--master_port', str(free_port()), 'run_pretrain.py'] + argv
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    proc = subprocess.run(cmd, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=540)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


def test_ddp_pretrain_runs_and_resumes(tmp_path):
    data = make_tiny_dataset(str(tmp_path / 'syn'), num_labeled=0, num_unlabeled=8)
    out_dir = str(tmp_path / 'pt')
    base = ['--max_steps_per_epoch', '1', '--update_freq', '2', '--batch_size', '2']
    log1 = _torchrun(tiny_pretrain_argv(data['pretrain'], out_dir, extra=base + ['--epochs', '1']))
    assert 'backend gloo' in log1
    ck = torch.load(os.path.join(out_dir, 'checkpoint-last.pth'), weights_only=True)
    assert ck['epoch'] == 0 and ck['global_step'] == 1 and ck['args']['world_size'] == 2
    # a longer run in the same folder resumes after epoch 0
    log2 = _torchrun(tiny_pretrain_argv(data['pretrain'], out_dir, extra=base + ['--epochs', '2']))
    assert 'resumed model from' in log2 and 'Epoch: [1]' in log2 and 'Epoch: [0]' not in log2
    lines = [json.loads(l) for l in open(os.path.join(out_dir, 'log.jsonl'))]
    assert [l['epoch'] for l in lines] == [0, 1]
    assert all(np.isfinite(l['train_loss']) and l['train_steps'] == 1 for l in lines)

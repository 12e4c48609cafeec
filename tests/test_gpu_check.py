"""benchmarks/gpu_check without a GPU: it says so, runs its CPU dry-run steps and writes its
report; a one-process torchrun launch gets a process group (gloo here, NCCL on CUDA)."""
import json
import os

import pytest
import torch

from benchmarks import entry_points_check, gpu_check
from tests.helpers import make_tiny_dataset


@pytest.mark.skipif(torch.cuda.is_available(), reason='the dry run is what runs without CUDA')
def test_dry_run_writes_report_and_exits_zero(tmp_path, capsys):
    out = tmp_path / 'check'
    rc = gpu_check.main(['--out', str(out), '--skip', 'cuda_tests', 'entry_points', 'train_step_finetune'])
    assert rc == 0
    printed = capsys.readouterr().out
    assert 'no CUDA device' in printed
    report = json.loads((out / 'gpu_check.json').read_text())
    assert report['mode'] == 'cpu dry run'
    assert [s['step'] for s in report['steps']] == ['train_step_pretrain']
    assert report['steps'][0]['ok'], report['steps'][0]['tail']
    rows = report['train_step']['train_step_pretrain']
    assert rows and rows[0]['model'] == 'pretrain_svfap_tiny_patch16_160' and rows[0]['status'] == 'ok'
    assert rows[0]['clips_per_s'] > 0
    summary = (out / 'summary.txt').read_text()
    assert 'cpu dry run' in summary and 'all steps ok' in summary
    assert 'target' not in summary          # MFU targets are judged on CUDA only


def test_one_process_torchrun_gets_a_process_group(tmp_path):
    data = make_tiny_dataset(str(tmp_path / 'syn'))
    fold = os.path.dirname(data['folds']['1']['train'])
    logs = tmp_path / 'logs'
    logs.mkdir()
    rec = entry_points_check.torchrun_one_process(fold, str(tmp_path / 'run'), str(logs), 'cpu', 240)
    assert rec['ok'], rec
    assert rec['process_group']

"""scripts/finetune/synthetic.sh end to end at a tiny size: MODEL=tiny on the synthetic set's
fold_k folders through torchrun, no pooling while folds are missing, then partial pooling marked
as such (folds used, complete: false)."""
import json
import os
import subprocess
import sys

from tests.helpers import free_port, repo_root
from datasets.synthetic import generate_synthetic_dataset

ROOT = repo_root()
TINY = ['--epochs', '1', '--num_frames', '8', '--sampling_rate', '2', '--input_size', '32',
        '--short_side_size', '32', '--batch_size', '4', '--num_workers', '0', '--test_num_segment', '1',
        '--test_num_crop', '1', '--device', 'cpu', '--warmup_epochs', '0', '--log_every', '1']


def _launch(env_extra, tmp_path):
    env = dict(os.environ, MODEL='tiny', NGPUS='1', PRETRAINED='none', SPLITS=str(tmp_path / 'data'),
               OUT=str(tmp_path / 'out'), MASTER_PORT=str(free_port()), PYTHON=sys.executable,
               TORCHRUN=os.path.join(os.path.dirname(sys.executable), 'torchrun'), **env_extra)
    return subprocess.run(['bash', 'scripts/finetune/synthetic.sh'] + TINY, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_synthetic_launcher_tiny_two_folds_then_partial_pool(tmp_path):
    generate_synthetic_dataset(str(tmp_path / 'data'), num_labeled=21, num_unlabeled=0, num_frames=16,
                               size=40, num_folds=5, seed=0)
    r = _launch({'RUN_FOLDS': '1 2'}, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'model=svfap_tiny_patch16_160 (MODEL=tiny)' in r.stdout
    assert '1 process(es) x batch 4' in r.stdout
    out = tmp_path / 'out'
    for k in (1, 2):
        assert (out / f'fold_{k}' / 'test_predictions.csv').is_file()
    assert not (out / 'fold_3').exists()
    assert '3 of 5 fold(s) have not finished' in r.stderr and 'not pooling' in r.stderr
    assert not (out / 'pooled_metrics.json').exists()

    r = _launch({'RUN_FOLDS': '1 2', 'POOL_PARTIAL': '1'}, tmp_path)   # folds done: skipped, then pooled
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count('exists, skipping') == 2
    pooled = json.loads((out / 'pooled_metrics.json').read_text())
    assert pooled['complete'] is False and pooled['expected_folds'] == 5
    assert len(pooled['folds_used']) == 2
    text = (out / 'pooled_metrics.txt').read_text()
    assert 'complete: false' in text and 'partial pooling' in text


def test_refuses_a_model_without_recipe(tmp_path):
    env = dict(os.environ, MODEL='huge', SPLITS=str(tmp_path))
    r = subprocess.run(['bash', 'scripts/finetune/dfew.sh'], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and 'MODEL must be base, small or tiny' in r.stderr
    env = dict(os.environ, MODEL='tiny', SPLITS=str(tmp_path), PRETRAINED='none')
    r = subprocess.run(['bash', 'scripts/finetune/dfew.sh'], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and 'configs/finetune/dfew_tiny.yaml not found' in r.stderr

"""User errors end an entry point with one clear message and exit code 1 (2 for a bad flag), not a
traceback; --debug shows the traceback."""
import os
import subprocess
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, cwd):
    r = subprocess.run([sys.executable, os.path.join(ROOT, 'run_finetune.py'), '--model',
                        'svfap_tiny_patch16_160', '--data_set', 'synthetic', '--device', 'cpu'] + args,
                       cwd=cwd, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    return r.returncode, r.stderr


def test_user_errors_are_one_message(tmp_path):
    data = tmp_path / 'splits'
    data.mkdir()
    for name in ('train', 'val', 'test'):
        (data / f'{name}.csv').write_text('clip_a.mp4 x\n')
    good = str(tmp_path / 'ok.pth')
    torch.save({'model': {'w': torch.zeros(4000)}}, good)
    raw = open(good, 'rb').read()
    trunc = str(tmp_path / 'trunc.pth')
    open(trunc, 'wb').write(raw[:len(raw) // 2])
    common = ['--data_path', str(data), '--output_dir', str(tmp_path / 'out')]

    rc, err = _run(common, tmp_path)                                   # a bad split line
    assert rc == 1 and 'Traceback' not in err
    assert err.startswith('ERROR (rank 0): split file ') and ('.csv:1: expected' in err)

    rc, err = _run(common + ['--resume', trunc], tmp_path)             # a truncated --resume
    assert rc == 1 and 'Traceback' not in err
    assert err.strip().splitlines()[-1] == (f"ERROR (rank 0): --resume {trunc}: truncated ({len(raw) // 2} "
                                            f"bytes; its zip archive has no central directory)")

    rc, err = _run(common + ['--model', 'svfap_huge'], tmp_path)       # a bad flag value
    assert rc == 2 and err.strip().splitlines()[-1].endswith(
        'error: --model svfap_huge: unknown model (SVFAP models: svfap_base_patch16_160, '
        'svfap_small_patch16_160, svfap_tiny_patch16_160)')

    rc, err = _run(common + ['--resume', trunc, '--debug'], tmp_path)  # --debug: the traceback
    assert rc == 1 and 'Traceback (most recent call last)' in err and 'CheckpointError' in err


def test_bad_recipes_are_one_line_naming_file_and_key(tmp_path):
    """Invalid YAML, an unknown key and values of the wrong type or count: exit 2, one line on
    stderr naming the file (the including one for a key set there) and the key."""
    base = tmp_path / 'base.yaml'
    base.write_text('opt_betas: 0.9\n')
    cases = {'invalid.yaml': ('epochs: [1\n', None),
             'unknown.yaml': ('epochs: 2\nbatch_sise: 8\n', "'batch_sise'"),
             'betas.yaml': ('_base_: base.yaml\n', "'opt_betas': expected a list"),
             'batch.yaml': ('batch_size: 16.5\n', "'batch_size': expected an integer"),
             'epochs.yaml': ('epochs: ten\n', "'epochs': expected an integer"),
             'choice.yaml': ('resize_mode: stretch\n', "'resize_mode': expected one of")}
    for name, (text, needle) in cases.items():
        cfg = tmp_path / name
        cfg.write_text(text)
        rc, err = _run(['--config', str(cfg)], str(tmp_path))
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1 and 'Traceback' not in err, (name, err)
        where = base if name == 'betas.yaml' else cfg
        assert str(where) in lines[0] and (needle is None or needle in lines[0]), (name, lines[0])

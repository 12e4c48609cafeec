"""Both entry points for real on one device: a few epochs each on a tiny synthetic set, killed with
SIGKILL after their first epoch checkpoint and resumed with ``--auto_resume``; then a one-process
torchrun launch (NCCL on CUDA, gloo on the CPU).

    python -m benchmarks.entry_points_check --device cuda --out output/gpu_check/entry_points

Writes ``entry_points.json`` (one record per check: ok, what was seen, the log file) and the
stdout/stderr of every run beside it. Exit status 1 when a check fails. Part of
``benchmarks/gpu_check.sh``.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EPOCHS = 6


# ----------------------------------------------------------------------------------------------
# the tiny runs (the test suite runs the same ones)

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


def _launch(cmd: List[str], log: str) -> subprocess.Popen:
    f = open(log, 'w')
    return subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, text=True)


def _run_to_end(cmd: List[str], log: str, timeout: float):
    """(rc, the log's text), or (None, why) when it did not end in time."""
    proc = _launch(cmd, log)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return None, f'did not end within {timeout:.0f} s'
    return rc, _read(log)


def _read(path: str) -> str:
    with open(path, errors='replace') as f:
        return f.read()


def _log_records(out_dir: str) -> List[Dict]:
    path = os.path.join(out_dir, 'log.jsonl')
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in _read(path).splitlines() if line.strip()]


def kill_and_resume(name: str, script: str, argv: List[str], out_dir: str, logs: str,
                    timeout: float) -> Dict:
    """Run, SIGKILL once ``checkpoint-0.pth`` exists, rerun (auto-resume), check it finished."""
    cmd = [sys.executable, os.path.join(ROOT, script)] + argv
    first_log, second_log = os.path.join(logs, f'{name}_killed.log'), os.path.join(logs, f'{name}_resumed.log')
    rec: Dict = dict(check=f'{name}: SIGKILL after epoch 0, then --auto_resume', ok=False,
                     logs=[first_log, second_log])
    proc = _launch(cmd, first_log)
    watch = os.path.join(out_dir, 'checkpoint-0.pth')
    t0 = time.time()
    while proc.poll() is None and not os.path.exists(watch) and time.time() - t0 < timeout:
        time.sleep(0.02)
    if proc.poll() is not None:
        rec['seen'] = f'the first run ended (rc {proc.returncode}) before it could be killed'
        return rec
    if not os.path.exists(watch):
        proc.kill()
        rec['seen'] = f'no {watch} within {timeout:.0f} s'
        return rec
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = [r.get('epoch') for r in _log_records(out_dir)]
    rc, text = _run_to_end(cmd, second_log, timeout)
    if rc is None:
        rec['seen'] = f'the resumed run {text}'
        return rec
    after = [r.get('epoch') for r in _log_records(out_dir)]
    resumed = '| resumed model from' in text
    finished = (EPOCHS - 1) in after
    rec.update(ok=rc == 0 and resumed and finished, rc=rc, resumed=resumed,
               epochs_logged_before_kill=before, epochs_logged_after_resume=after,
               seconds=round(time.time() - t0, 1))
    if not rec['ok']:
        rec['seen'] = text.strip().splitlines()[-5:]
    return rec


def torchrun_one_process(fold: str, out_dir: str, logs: str, device: str, timeout: float) -> Dict:
    log = os.path.join(logs, 'torchrun.log')
    backend = 'nccl' if device.startswith('cuda') else 'gloo'
    argv = tiny_finetune_argv(fold, out_dir, extra=['--device', device, '--epochs', '1'])
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '1',
           '--master_port', str(free_port()), os.path.join(ROOT, 'run_finetune.py')] + argv
    rec: Dict = dict(check=f'torchrun --nproc_per_node 1 run_finetune.py ({backend})', ok=False, logs=[log])
    rc, text = _run_to_end(cmd, log, timeout)
    if rc is None:
        rec['seen'] = text
        return rec
    init = f'backend {backend}' in text
    rec.update(ok=rc == 0 and init, rc=rc, process_group=init)
    if not rec['ok']:
        rec['seen'] = text.strip().splitlines()[-5:]
    return rec


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default='cuda', help='cuda | cpu')
    p.add_argument('--out', default=os.path.join(ROOT, 'output', 'entry_points_check'),
                   help='working folder; entry_points.json and the run logs go here')
    p.add_argument('--amp', default=None, help='none | bf16 | fp16 (default: bf16 on CUDA, none on CPU)')
    p.add_argument('--timeout', type=float, default=240, help='seconds per run')
    args = p.parse_args(argv)
    out = os.path.abspath(args.out)
    logs = os.path.join(out, 'logs')
    os.makedirs(logs, exist_ok=True)
    amp = args.amp or ('bf16' if args.device.startswith('cuda') else 'none')
    data = make_tiny_dataset(os.path.join(out, 'data'))
    fold = os.path.dirname(data['folds']['1']['train'])
    common = ['--device', args.device, '--amp', amp, '--epochs', str(EPOCHS), '--save_ckpt_freq', '1',
              '--num_workers', '2']
    results = []
    ft_dir, pt_dir = os.path.join(out, 'finetune'), os.path.join(out, 'pretrain')
    results.append(kill_and_resume('run_finetune', 'run_finetune.py',
                                   tiny_finetune_argv(fold, ft_dir, extra=common), ft_dir, logs, args.timeout))
    results.append(kill_and_resume('run_pretrain', 'run_pretrain.py',
                                   tiny_pretrain_argv(data['pretrain'],
                                                      pt_dir, extra=common), pt_dir, logs, args.timeout))
    results.append(torchrun_one_process(fold, os.path.join(out, 'torchrun'), logs, args.device, args.timeout))
    with open(os.path.join(out, 'entry_points.json'), 'w') as f:
        json.dump(dict(device=args.device, amp=amp, results=results), f, indent=1)
    for r in results:
        print(f'{"ok  " if r["ok"] else "FAIL"} {r["check"]}' + ('' if r['ok'] else f': {r.get("seen")}'))
    return 0 if all(r['ok'] for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())

"""The one prepared device check: every CUDA path of the project, run for real, in one command.

    bash benchmarks/gpu_check.sh [OUT]          # OUT default: output/gpu_check
    python -m benchmarks.gpu_check --out OUT [--budget_s 480]

Steps (each in its own process, with its own time limit, log in OUT/logs/; on CUDA the limits add up
to 480 s):

1. ``env``: torch, CUDA, cuDNN, NCCL versions, the GPU, nvidia-smi.
2. ``cuda_tests``: ``pytest -m cuda tests/test_cuda.py`` (fp32 vs CPU, bf16 vs fp32, masked-pixel
   invariance, one bf16 / fp16 + GradScaler optimizer step, torch.compile vs eager, every SDPA
   backend), junit XML in OUT/.
3. ``entry_points``: ``benchmarks.entry_points_check`` (both entry points, SIGKILL + --auto_resume,
   a one-process torchrun NCCL launch).
4. ``train_step_finetune`` / ``train_step_pretrain``: ``benchmarks.train_step`` for TPSBT-B
   fine-tuning and SVFAP-B pre-training steps, bf16, eager and compiled, SDPA only, at batch sizes
   that fill an 80-140 GB Hopper GPU (``--ft_batch``, ``--pt_batch``); clips/s, peak memory, MFU
   against the bf16 matmul peak of the same run; the targets (fine-tuning >= 40%, pre-training
   >= 30%) are checked in the summary.

Without CUDA it says so and runs the CPU dry run instead: the same tests on the tiny models
(``SVFAP_CUDA_DRY_RUN=1``, compile left out), the entry-point check on the CPU and a one-step
train_step of the tiny models; it then exits 0. Results: OUT/gpu_check.json and OUT/summary.txt.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TARGET_MFU = {'train_step_finetune': 0.40, 'train_step_pretrain': 0.30}


def environment() -> Dict:
    import torch
    env = dict(python=platform.python_version(), torch=torch.__version__,
               cuda_available=torch.cuda.is_available(), cuda=torch.version.cuda,
               cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
               date=time.strftime('%Y-%m-%d %H:%M:%S %Z'), host=platform.node())
    try:
        import timm
        env['timm'] = timm.__version__
    except ImportError:
        pass
    if env['cuda_available']:
        env['gpus'] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        env['capability'] = '.'.join(map(str, torch.cuda.get_device_capability(0)))
        try:
            env['nccl'] = '.'.join(map(str, torch.cuda.nccl.version()))
        except Exception as e:  # noqa: BLE001  (reported, not fatal)
            env['nccl'] = f'unavailable: {e}'
        try:
            env['nvidia_smi'] = subprocess.run(
                ['nvidia-smi', '--query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit',
                 '--format=csv,noheader'], capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError) as e:
            env['nvidia_smi'] = f'unavailable: {e}'
    return env


def run_step(name: str, cmd: List[str], timeout: float, logs: str, env: Optional[Dict] = None) -> Dict:
    log = os.path.join(logs, f'{name}.log')
    t0 = time.time()
    print(f'==> {name}: {" ".join(cmd)}  (limit {timeout:.0f} s)', flush=True)
    with open(log, 'w') as f:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, timeout=timeout,
                                env=dict(os.environ, **(env or {}))).returncode
        except subprocess.TimeoutExpired:
            rc = 'timeout'
    rec = dict(step=name, command=' '.join(cmd), rc=rc, ok=rc == 0, seconds=round(time.time() - t0, 1),
               log=log)
    with open(log, errors='replace') as f:
        rec['tail'] = f.read().strip().splitlines()[-3:]
    print(f'==> {name}: {"ok" if rec["ok"] else "FAILED (" + str(rc) + ")"} in {rec["seconds"]:.0f} s; '
          f'log {log}', flush=True)
    return rec


def _train_step_rows(path: str) -> List[Dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        data = json.load(f)
    keep = ('model', 'phase', 'dtype', 'compile', 'batch_size', 'status', 'clips_per_s', 'mfu',
            'achieved_tflops', 'peak_tflops', 'peak_mem_mb', 'error')
    return [{k: r.get(k) for k in keep} for r in data.get('results', [])]


def summary_lines(report: Dict) -> List[str]:
    env = report['env']
    lines = [f'gpu_check {env["date"]}: torch {env["torch"]}, CUDA {env.get("cuda")}, '
             f'device {", ".join(env.get("gpus", [])) or "none (CPU dry run)"}',
             f'mode: {report["mode"]}; {report["seconds"]:.0f} s in all']
    for s in report['steps']:
        lines.append(f'{"ok  " if s["ok"] else "FAIL"} {s["step"]:<22s} {s["seconds"]:6.0f} s  rc {s["rc"]}')
    for name, rows in report.get('train_step', {}).items():
        for r in rows:
            mfu = r.get('mfu')
            target = TARGET_MFU.get(name) if report['mode'] == 'cuda' else None
            verdict = '' if target is None or mfu is None else (
                f'  target {100 * target:.0f}%: {"met" if mfu >= target else "MISSED"}')
            lines.append(f'     {r["model"]:<34s} {r["phase"]} {r["dtype"]} compile={r["compile"]} '
                         f'bs {r["batch_size"]}: {r.get("clips_per_s") or 0:.2f} clips/s, MFU '
                         f'{"-" if mfu is None else f"{100 * mfu:.1f}%"}, peak '
                         f'{r.get("peak_mem_mb") or 0:.0f} MB {r["status"]}{verdict}')
    lines.append('all steps ok' if all(s['ok'] for s in report['steps']) else 'SOME STEPS FAILED')
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out', default=os.path.join(ROOT, 'output', 'gpu_check'), help='results folder')
    p.add_argument('--ft_batch', type=int, default=96, help='TPSBT-B fine-tuning batch (train_step)')
    p.add_argument('--pt_batch', type=int, default=192, help='SVFAP-B pre-training batch (train_step)')
    p.add_argument('--skip', nargs='*', default=[], help='step names to leave out')
    args = p.parse_args(argv)
    out = os.path.abspath(args.out)
    logs = os.path.join(out, 'logs')
    os.makedirs(logs, exist_ok=True)
    t0 = time.time()
    env = environment()
    cuda = env['cuda_available']
    py = sys.executable
    if cuda:
        print(f'==> CUDA: {", ".join(env["gpus"])}; torch {env["torch"]}', flush=True)
        steps = [
            ('cuda_tests', [py, '-m', 'pytest', '-m', 'cuda', '-q', '-rs', '-s', 'tests/test_cuda.py',
                            '--junitxml', os.path.join(out, 'cuda_tests.xml')], 180, None),
            ('entry_points', [py, '-m', 'benchmarks.entry_points_check', '--device', 'cuda',
                              '--out', os.path.join(out, 'entry_points')], 90, None),
            ('train_step_finetune', [py, '-m', 'benchmarks.train_step', '--device', 'cuda', '--models', 'B',
                                     '--phases', 'train', '--dtypes', 'bf16', '--compile', 'both',
                                     '--backends', 'sdpa', '--batch_size', str(args.ft_batch),
                                     '--steps', '10', '--warmup', '3', '--rounds', '1',
                                     '--json', os.path.join(out, 'train_step_finetune.json')], 105, None),
            ('train_step_pretrain', [py, '-m', 'benchmarks.train_step', '--device', 'cuda', '--models', 'PB',
                                     '--phases', 'train', '--dtypes', 'bf16', '--compile', 'both',
                                     '--backends', 'sdpa', '--batch_size', str(args.pt_batch),
                                     '--steps', '10', '--warmup', '3', '--rounds', '1',
                                     '--json', os.path.join(out, 'train_step_pretrain.json')], 105, None),
        ]
    else:
        print('==> no CUDA device visible to torch: running the CPU dry run only '
              '(tiny models; no number here says anything about a GPU)', flush=True)
        steps = [
            ('cuda_tests', [py, '-m', 'pytest', '-m', 'cuda', '-q', '-rs', '-s', 'tests/test_cuda.py',
                            '-k', 'not compile', '--junitxml', os.path.join(out, 'cuda_tests.xml')], 400,
             {'SVFAP_CUDA_DRY_RUN': '1'}),
            ('entry_points', [py, '-m', 'benchmarks.entry_points_check', '--device', 'cpu',
                              '--out', os.path.join(out, 'entry_points')], 300, None),
            ('train_step_finetune', [py, '-m', 'benchmarks.train_step', '--device', 'cpu', '--models', 'T',
                                     '--phases', 'train', '--dtypes', 'fp32', '--backends', 'sdpa',
                                     '--batch_size', '2', '--num_frames', '8', '--input_size', '64',
                                     '--steps', '2', '--warmup', '1', '--rounds', '1',
                                     '--json', os.path.join(out, 'train_step_finetune.json')], 120, None),
            ('train_step_pretrain', [py, '-m', 'benchmarks.train_step', '--device', 'cpu', '--models', 'PT',
                                     '--phases', 'train', '--dtypes', 'fp32', '--backends', 'sdpa',
                                     '--batch_size', '2', '--num_frames', '8', '--input_size', '64',
                                     '--mask_ratio', '0.75', '--steps', '2', '--warmup', '1', '--rounds', '1',
                                     '--json', os.path.join(out, 'train_step_pretrain.json')], 120, None),
        ]
    results = [run_step(name, cmd, limit, logs, extra) for name, cmd, limit, extra in steps
               if name not in args.skip]
    report = dict(mode='cuda' if cuda else 'cpu dry run', env=env, steps=results,
                  train_step={name: _train_step_rows(os.path.join(out, f'{name}.json'))
                              for name in ('train_step_finetune', 'train_step_pretrain')},
                  seconds=round(time.time() - t0, 1))
    ep = os.path.join(out, 'entry_points', 'entry_points.json')
    if os.path.exists(ep):
        with open(ep) as f:
            report['entry_points'] = json.load(f)['results']
    with open(os.path.join(out, 'gpu_check.json'), 'w') as f:
        json.dump(report, f, indent=1)
    lines = summary_lines(report)
    with open(os.path.join(out, 'summary.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines), flush=True)
    if not cuda:
        print('no CUDA: CPU dry run done; run this again on a GPU machine for the real check')
        return 0
    return 0 if all(s['ok'] for s in results) else 1


if __name__ == '__main__':
    sys.exit(main())

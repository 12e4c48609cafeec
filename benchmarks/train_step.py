"""Training-step and inference throughput, peak memory, TFLOP/s and MFU of the SVFAP models.

For every (model, phase, dtype, compile) configuration a fresh subprocess builds the model and times,
side by side and interleaved (round-robin, alternating order), the fast attention path (SDPA,
``torch.nn.functional.scaled_dot_product_attention``) and the naive path (explicit softmax(QK^T)V via
``models.layers.set_attention_backend('naive')``):

* ``train``: the engine's own optimisation step - the loss closure of ``engine.finetune`` /
  ``engine.pretrain`` under ``engine.step.autocast_context``, then ``engine.step.Stepper.backward``
  (backward, grad-norm, AdamW from ``engine.optim.build_optimizer`` - fused on CUDA - , zero_grad;
  fp16 uses a GradScaler). Fine-tuning models get a 7-class cross-entropy (label smoothing 0.1),
  pre-training models a tube mask at ``--mask_ratio`` (0.9) and the masked-tube MSE.
* ``infer``: ``model.eval()`` forward under ``torch.inference_mode()`` and autocast.

Numbers reported per configuration: clips/s of each attention path, the SDPA speed-up, peak memory
(CUDA: ``torch.cuda.max_memory_allocated``; CPU: the process's ``VmHWM`` from ``/proc/self/status``,
reset through ``/proc/self/clear_refs`` right before the measured step, so it is the peak of one step
with the model, optimizer state and allocator caches already resident), achieved TFLOP/s and MFU.

FLOPs: ``tools.flops`` (fvcore, one multiply-add = one FLOP, the paper's convention) per clip:
``finetune_cost`` for fine-tuning models (7-class head), ``pretrain_flops`` for pre-training models.
Achieved FLOP/s = 2 x fvcore count x (3 for a training step: forward + backward) x clips/s, i.e. real
floating-point operations, the convention of the matmul peak. MFU = achieved / peak, the peak being
a large ``torch.matmul`` timed in the same run on the same device: on CPU the fp32 peak for every row
(low-precision CPU matmuls are listed too), on CUDA the peak of the row's dtype (fp32 rows: the fp32
peak with the run's TF32 setting, which is torch's default unless ``--tf32``).

    python -m benchmarks.train_step --device cpu --quick                      # ~10 min on 2 cores
    python -m benchmarks.train_step --device cuda --batch_size 32 --dtypes fp32 bf16 fp16 --json perf.json
    python -m benchmarks.train_step --device cuda --batch_size 32 --dtypes bf16 --compile both

Never run by the test suite except for the tiny smoke test in tests/test_benchmarks.py.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

__all__ = ['MODEL_ALIASES', 'model_flops', 'matmul_peak', 'run_config', 'main']

MODEL_ALIASES = {
    'B': 'svfap_base_patch16_160', 'S': 'svfap_small_patch16_160', 'T': 'svfap_tiny_patch16_160',
    'PB': 'pretrain_svfap_base_patch16_160', 'PS': 'pretrain_svfap_small_patch16_160',
    'PT': 'pretrain_svfap_tiny_patch16_160',
}
DEFAULT_MODELS = ['B', 'S', 'PB', 'PS']
BACKENDS = ('sdpa', 'naive')
RESULT_TAG = '@@BENCH_RESULT@@'


def _is_pretrain(name: str) -> bool:
    return name.startswith('pretrain_')


def _dtype(name: str):
    import torch
    return {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}[name]


# ----------------------------------------------------------------------------------------------
# device helpers

def _sync(device) -> None:
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _proc_status_kb(key: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak(device) -> bool:
    """Reset the peak-memory counter; False if it cannot be reset (the peak is then the process's)."""
    import torch
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # Linux >= 4.0: reset VmHWM to the current RSS
        return True
    except OSError:
        return False


def _current_mb(device) -> Optional[float]:
    import torch
    if device.type == 'cuda':
        return torch.cuda.memory_allocated(device) / 2 ** 20
    kb = _proc_status_kb('VmRSS')
    return None if kb is None else kb / 1024


def _peak_mb(device) -> Optional[float]:
    import torch
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    kb = _proc_status_kb('VmHWM')
    return None if kb is None else kb / 1024


def device_name(device: str) -> str:
    import torch
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(torch.device(device))
    name = platform.processor() or platform.machine()
    try:
        out = subprocess.run(['lscpu'], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith('Model name:'):
                name = line.split(':', 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return f'{name} ({os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}, ' \
           f'ISA {torch.backends.cpu.get_cpu_capability()})'


# ----------------------------------------------------------------------------------------------
# FLOPs (tools.flops: the one fvcore counter of the project)

def model_flops(name: str, frames: int = 16, size: int = 160, mask_ratio: float = 0.9) -> int:
    """fvcore FLOPs (multiply-adds) of one clip's forward pass, exactly as ``tools.flops`` counts them."""
    from tools.flops import finetune_cost, pretrain_flops
    if _is_pretrain(name):
        return int(pretrain_flops(name, {}, mask_ratio, frames, size))
    return int(finetune_cost(name, {}, frames, size)[1])


# ----------------------------------------------------------------------------------------------
# matmul peak

def matmul_peak(device: str, dtypes: Sequence[str], n: Optional[int] = None, reps: int = 5) -> Dict[str, float]:
    """Achieved TFLOP/s (2 n^3 / s) of a square torch.matmul per dtype, best of ``reps``."""
    import torch
    dev = torch.device(device)
    out = {}
    for dt in dtypes:
        size = n or (8192 if dev.type == 'cuda' else (2048 if dt == 'fp32' else 512))
        a = torch.randn(size, size, device=dev, dtype=_dtype(dt))
        b = torch.randn(size, size, device=dev, dtype=_dtype(dt))
        for _ in range(2 if dev.type == 'cpu' else 5):
            a @ b
        _sync(dev)
        inner = 1 if dev.type == 'cpu' else 10
        best = float('inf')
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(inner):
                a @ b
            _sync(dev)
            best = min(best, (time.perf_counter() - t0) / inner)
        out[dt] = 2 * size ** 3 / best / 1e12
    return out


# ----------------------------------------------------------------------------------------------
# one configuration (runs in its own process)

def _build(cfg: Dict):
    import numpy as np
    import timm
    import torch
    import torch.nn as nn

    import models  # noqa: F401  (registers the models)
    from datasets.masking import tube_mask

    device = torch.device(cfg['device'])
    name = cfg['model']
    pretrain = _is_pretrain(name)
    kwargs = dict(img_size=cfg['input_size'], all_frames=cfg['num_frames'])
    if pretrain:
        kwargs['mask_ratio'] = cfg['mask_ratio']
    else:
        kwargs.update(num_classes=7, drop_path_rate=cfg['drop_path'])
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, **kwargs).to(device)
    B = cfg['batch_size']
    clip = torch.randn(B, 3, cfg['num_frames'], cfg['input_size'], cfg['input_size'], device=device)
    if pretrain:
        grid = model.token_grid(cfg['num_frames'], cfg['input_size'], cfg['input_size'])
        mask = torch.from_numpy(np.stack([tube_mask(grid, cfg['mask_ratio'], i) for i in range(B)])).to(device)
        batch = (clip, mask)
    else:
        batch = (clip, torch.randint(0, 7, (B,), device=device))
    return model, batch, pretrain, device, nn


def _train_step_fn(model, batch, pretrain: bool, device, cfg: Dict):
    """The engine's training step: loss closure + Stepper (backward, grad norm, AdamW, zero_grad)."""
    import torch
    from engine.optim import build_optimizer
    from engine.step import Stepper, make_scaler

    amp = 'none' if cfg['dtype'] == 'fp32' else cfg['dtype']
    # the entry point's flags, finalized, as run_pretrain / run_finetune make them
    from cli.args import finalize_args, finetune_parser, parse_args, pretrain_parser
    from engine.config import TrainConfig
    from engine.distributed import DistEnv
    parser = pretrain_parser() if pretrain else finetune_parser()
    opt_cfg = TrainConfig.from_args(finalize_args(parse_args(parser, ['--lr', '1e-4', '--device', 'cpu']),
                                                  DistEnv()))
    optimizer = build_optimizer(opt_cfg, model, layer_decay=None if pretrain else 0.75)
    run_model = torch.compile(model) if cfg['compile'] else model
    stepper = Stepper(run_model, model, optimizer, device, amp=amp,
                      scaler=make_scaler(device, amp) if device.type == 'cuda' else None)
    if pretrain:
        from engine.pretrain import make_pretrain_loss
        compute_loss = make_pretrain_loss(run_model, device)
    else:
        from timm.loss import LabelSmoothingCrossEntropy
        from engine.finetune import make_finetune_loss
        compute_loss = make_finetune_loss(run_model, LabelSmoothingCrossEntropy(smoothing=0.1), None, device)
    model.train()
    info = {'fused_adamw': bool(optimizer.defaults.get('fused')), 'optimizer': type(optimizer).__name__,
            'grad_scaler': stepper.scaler is not None}
    counter = [0]

    def step():
        with stepper.autocast():
            loss, _ = compute_loss(batch)
        stepper.backward(loss.float(), 0, counter[0])
        counter[0] += 1

    return step, info


def _infer_step_fn(model, batch, pretrain: bool, device, cfg: Dict):
    import torch
    from engine.step import autocast_context

    amp = 'none' if cfg['dtype'] == 'fp32' else cfg['dtype']
    model.eval()
    run_model = torch.compile(model) if cfg['compile'] else model
    # pre-training: the masked-token count once, outside the timed step (no per-step host sync)
    args = (*batch, int(batch[1][0].sum())) if pretrain else batch[:1]

    def step():
        with torch.inference_mode(), autocast_context(device, amp):
            run_model(*args)

    return step, {}


def run_config(cfg: Dict) -> Dict:
    """Time one configuration in this process; returns the result dict (``status`` 'ok' or 'error')."""
    import torch
    from models.layers import get_attention_backend, set_attention_backend

    if cfg.get('threads'):
        torch.set_num_threads(int(cfg['threads']))
    if cfg.get('flush_denormal'):
        torch.set_flush_denormal(True)  # CPU: subnormal AdamW moments are very slow on x86
    if cfg.get('tf32') and cfg['device'].startswith('cuda'):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    res = dict(cfg)
    backends = list(cfg.get('backends') or BACKENDS)
    t_start = time.perf_counter()
    try:
        model, batch, pretrain, device, _ = _build(cfg)
        make = _train_step_fn if cfg['phase'] == 'train' else _infer_step_fn
        step, info = make(model, batch, pretrain, device, cfg)
        res.update(info)
        before = get_attention_backend()
        per_backend = {b: {'step_times_s': []} for b in backends}
        # warm-up (compiles with --compile); the last warm-up step of each backend is the memory step
        for b in backends:
            set_attention_backend(b)
            t0 = time.perf_counter()
            for i in range(max(cfg['warmup'], 1)):
                if i == max(cfg['warmup'], 1) - 1:
                    _sync(device)
                    base = _current_mb(device)
                    per_backend[b]['peak_reset'] = _reset_peak(device)
                step()
            _sync(device)
            per_backend[b]['warmup_s'] = time.perf_counter() - t0
            per_backend[b]['peak_mem_mb'] = _peak_mb(device)
            per_backend[b]['mem_before_step_mb'] = base
        # timed rounds, interleaved, alternating the order of the backends
        rounds = max(1, min(cfg['steps'], cfg.get('rounds') or (cfg['steps'] if device.type == 'cpu' else 5)))
        per_round = max(1, cfg['steps'] // rounds)
        for r in range(rounds):
            order = backends if r % 2 == 0 else backends[::-1]
            for b in order:
                set_attention_backend(b)
                _sync(device)
                t0 = time.perf_counter()
                for _ in range(per_round):
                    step()
                _sync(device)
                per_backend[b]['step_times_s'].append((time.perf_counter() - t0) / per_round)
        set_attention_backend(before)
        for b, d in per_backend.items():
            times = d['step_times_s']
            d['step_time_s'] = statistics.median(times)
            d['step_time_mean_s'] = statistics.fmean(times)
            d['clips_per_s'] = cfg['batch_size'] / d['step_time_s']
            d['timed_steps'] = rounds * per_round
        res['backends'] = per_backend
        res['status'] = 'ok'
    except Exception as e:  # reported, not fatal: e.g. a dtype a CPU cannot run
        res['status'] = 'error'
        res['error'] = f'{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ""}'
    res['worker_wall_s'] = time.perf_counter() - t_start
    return res


# ----------------------------------------------------------------------------------------------
# driver

def _spawn(cfg: Dict, timeout: float) -> Dict:
    cmd = [sys.executable, '-m', 'benchmarks.train_step', '--_worker', json.dumps(cfg)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(cfg, status='timeout', error=f'no result within {timeout:.0f} s (--config_timeout)',
                    worker_wall_s=time.perf_counter() - t0)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return dict(cfg, status='error', error=f'worker exited {proc.returncode}: {" | ".join(tail)[:500]}',
                worker_wall_s=time.perf_counter() - t0)


def _derive(res: Dict, flops_per_clip: int, peaks: Dict[str, float], device_type: str) -> Dict:
    """Add FLOPs, achieved TFLOP/s, MFU and the SDPA speed-up to a worker result."""
    factor = 3 if res['phase'] == 'train' else 1
    res['fvcore_flops_per_clip'] = flops_per_clip
    res['flops_factor'] = factor
    res['flops_per_step'] = 2 * flops_per_clip * factor * res['batch_size']  # real FLOPs (2 per MAC)
    ref = 'fp32' if device_type == 'cpu' else res['dtype']
    res['mfu_reference'] = f'{ref} torch.matmul'
    res['peak_tflops'] = peaks.get(ref)
    if res.get('status') != 'ok':
        return res
    for b, d in res['backends'].items():
        d['achieved_tflops'] = res['flops_per_step'] / d['step_time_s'] / 1e12
        d['mfu'] = d['achieved_tflops'] / res['peak_tflops'] if res['peak_tflops'] else None
    if 'sdpa' in res['backends'] and 'naive' in res['backends']:
        res['sdpa_speedup'] = res['backends']['naive']['step_time_s'] / res['backends']['sdpa']['step_time_s']
    fast = res['backends'].get('sdpa') or next(iter(res['backends'].values()))
    res.update(clips_per_s=fast['clips_per_s'], achieved_tflops=fast['achieved_tflops'], mfu=fast['mfu'],
               peak_mem_mb=fast['peak_mem_mb'])
    return res


def _fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else '-'


def print_table(results: List[Dict], out=None, header: bool = True) -> None:
    out = out or sys.stdout
    hdr = (f'{"model":<34s} {"phase":<5s} {"dtype":<5s} {"comp":<4s} {"bs":>3s} {"clips/s":>9s} '
           f'{"naive":>9s} {"sdpa x":>7s} {"TFLOP/s":>8s} {"MFU":>6s} {"peak MB":>8s}  status')
    if header:
        print(hdr, file=out)
        print('-' * len(hdr), file=out)
    for r in results:
        naive = r.get('backends', {}).get('naive', {}).get('clips_per_s')
        mfu = r.get('mfu')
        print(f'{r["model"]:<34s} {r["phase"]:<5s} {r["dtype"]:<5s} {"yes" if r["compile"] else "no":<4s} '
              f'{r["batch_size"]:>3d} {_fmt(r.get("clips_per_s"), "9.3f")} {_fmt(naive, "9.3f")} '
              f'{_fmt(r.get("sdpa_speedup"), "7.3f")} {_fmt(r.get("achieved_tflops"), "8.4f")} '
              f'{_fmt(None if mfu is None else 100 * mfu, "5.1f")}% {_fmt(r.get("peak_mem_mb"), "8.0f")}  '
              f'{r["status"]}{": " + r["error"] if r.get("error") else ""}', file=out, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default=None, help='cpu | cuda | cuda:N (default: cuda if available)')
    p.add_argument('--models', nargs='+', default=None,
                   help=f'model names or aliases {MODEL_ALIASES} (default: B S PB PS)')
    p.add_argument('--phases', nargs='+', default=['train', 'infer'], choices=['train', 'infer'])
    p.add_argument('--dtypes', nargs='+', default=None, choices=['fp32', 'bf16', 'fp16'],
                   help='default: fp32 bf16 fp16 on CUDA, fp32 on CPU (see docs/performance.md)')
    p.add_argument('--compile', nargs='?', const='yes', default='no', choices=['no', 'yes', 'both'],
                   help='torch.compile the model: no (default), yes, or both (each config twice)')
    p.add_argument('--backends', nargs='+', default=list(BACKENDS), choices=list(BACKENDS),
                   help='attention paths timed side by side (default: sdpa naive)')
    p.add_argument('--batch_size', type=int, default=None, help='default: 32 on CUDA, 1 on CPU')
    p.add_argument('--steps', type=int, default=None, help='timed steps per backend (default: 20 CUDA, 5 CPU)')
    p.add_argument('--warmup', type=int, default=None, help='warm-up steps per backend (default: 5 CUDA, 2 CPU)')
    p.add_argument('--rounds', type=int, default=None,
                   help='interleaving rounds (default: one step per round on CPU, 5 on CUDA)')
    p.add_argument('--num_frames', type=int, default=16)
    p.add_argument('--input_size', type=int, default=160)
    p.add_argument('--mask_ratio', type=float, default=0.9)
    p.add_argument('--drop_path', type=float, default=0.1, help='fine-tuning models (the recipe value)')
    p.add_argument('--tf32', action='store_true', help='allow TF32 matmuls on CUDA (fp32 rows)')
    p.add_argument('--flush_denormal', action='store_true',
                   help='torch.set_flush_denormal(True) in the workers (CPU: see docs/performance.md)')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads in the workers')
    p.add_argument('--quick', action='store_true',
                   help='fewer configs: base models only, fp32, no compile, warmup 1, steps 3')
    p.add_argument('--config_timeout', type=float, default=1800, help='seconds per configuration')
    p.add_argument('--in_process', action='store_true',
                   help='run every configuration in this process (tests; peak memory is then not per configuration)')
    p.add_argument('--peak_size', type=int, default=None,
                   help='matmul size of the peak measurement (default 8192 CUDA, 2048 CPU fp32, 512 CPU bf16/fp16)')
    p.add_argument('--json', default=None, metavar='OUT', help='write all results to this JSON file')
    p.add_argument('--_worker', default=None, help=argparse.SUPPRESS)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args._worker is not None:
        res = run_config(json.loads(args._worker))
        print(RESULT_TAG + json.dumps(res), flush=True)
        return 0

    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    dtype = torch.device(device).type
    cuda = dtype == 'cuda'
    if cuda and not torch.cuda.is_available():
        raise SystemExit('--device cuda but torch.cuda.is_available() is False')
    if args.quick:
        args.models = args.models or ['B', 'PB']
        args.dtypes = args.dtypes or ['fp32']
        args.warmup = 1 if args.warmup is None else args.warmup
        args.steps = 3 if args.steps is None else args.steps
    names = [MODEL_ALIASES.get(m, m) for m in (args.models or DEFAULT_MODELS)]
    dtypes = args.dtypes or (['fp32', 'bf16', 'fp16'] if cuda else ['fp32'])
    compiles = {'no': [False], 'yes': [True], 'both': [False, True]}[args.compile]
    bs = args.batch_size or (32 if cuda else 1)
    steps = args.steps or (20 if cuda else 5)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 2)

    meta = dict(device=device, device_name=device_name(device), torch=torch.__version__,
                python=platform.python_version(), command='python -m benchmarks.train_step ' + ' '.join(
                    sys.argv[1:] if argv is None else list(argv)),
                date=time.strftime('%Y-%m-%d %H:%M:%S'), batch_size=bs, steps=steps, warmup=warmup,
                num_frames=args.num_frames, input_size=args.input_size, mask_ratio=args.mask_ratio,
                tf32=bool(args.tf32), flush_denormal=bool(args.flush_denormal),
                in_process=bool(args.in_process))
    try:
        import timm
        meta['timm'] = timm.__version__
    except ImportError:
        pass
    print(f'# device: {meta["device_name"]}; torch {meta["torch"]}', flush=True)
    peak_cfg = sorted(set(dtypes) | ({'fp32'} if not cuda else set()))
    if cuda and args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
    peaks = matmul_peak(device, peak_cfg, n=args.peak_size)
    meta['matmul_peak_tflops'] = peaks
    print('# matmul peak (TFLOP/s): ' + ', '.join(f'{k} {v:.4f}' for k, v in peaks.items()), flush=True)

    results = []
    flops_cache = {}
    for name in names:
        if name not in flops_cache:
            flops_cache[name] = model_flops(name, args.num_frames, args.input_size, args.mask_ratio)
            print(f'# {name}: {flops_cache[name] / 1e9:.2f} GFLOPs (fvcore) per clip', flush=True)
        for phase in args.phases:
            for dt in dtypes:
                for comp in compiles:
                    cfg = dict(model=name, phase=phase, dtype=dt, compile=comp, device=device, batch_size=bs,
                               steps=steps, warmup=warmup, rounds=args.rounds, num_frames=args.num_frames,
                               input_size=args.input_size, mask_ratio=args.mask_ratio,
                               drop_path=args.drop_path, backends=args.backends, tf32=args.tf32, flush_denormal=args.flush_denormal,
                               threads=args.threads)
                    raw = run_config(cfg) if args.in_process else _spawn(cfg, args.config_timeout)
                    res = _derive(raw, flops_cache[name], peaks, dtype)
                    results.append(res)
                    print_table([res], header=len(results) == 1)
    print()
    print_table(results)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(meta=meta, results=results), f, indent=1)
        print(f'# wrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

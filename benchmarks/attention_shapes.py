"""SDPA vs the naive softmax(QK^T)V on the attention shapes of TPSBT-B (batch B, 8 heads, head dim 64),
forward and forward + backward, best of interleaved repetitions. Operator-level view of the
whole-model comparison in benchmarks/train_step.py.

    python -m benchmarks.attention_shapes [--device cpu] [--batch_size 1] [--dtype fp32]
"""
import argparse
import sys
import time


import torch
import torch.nn.functional as F

# (name, query tokens, key tokens, heads) at 16x160x160; SBT stages: T_s*K bottleneck tokens vs T_s*N tokens
SHAPES = [('stage 1 self-attention', 800, 800, 8), ('stage 2 SBT z self-attention', 32, 32, 8),
          ('stage 2 SBT cross z->x', 32, 400, 8), ('stage 2 reverse x->z', 400, 32, 8),
          ('stage 3 SBT cross z->x', 16, 200, 8), ('stage 3 reverse x->z', 200, 16, 8),
          ('pre-train stage 1 (10 % visible)', 80, 80, 8), ('pre-train decoder (6 heads)', 800, 800, 6)]


def naive(q, k, v):
    return ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(-1) @ v


def _time(fn, q, k, v, backward, device):
    qq, kk, vv = (x.detach().requires_grad_(backward) for x in (q, k, v))
    t0 = time.perf_counter()
    out = fn(qq, kk, vv)
    if backward:
        out.sum().backward()
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch_size', type=int, default=1)
    p.add_argument('--dtype', default='fp32', choices=['fp32', 'bf16', 'fp16'])
    p.add_argument('--reps', type=int, default=5)
    args = p.parse_args(argv)
    dev = torch.device(args.device)
    dt = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}[args.dtype]
    print(f'{"shape":<34s} {"pass":<8s} {"sdpa ms":>9s} {"naive ms":>9s} {"naive/sdpa":>10s}')
    for name, nq, nk, heads in SHAPES:
        # the layout _split_heads produces: (B, N, H, d) memory viewed as (B, H, N, d)
        q, k, v = (torch.randn(args.batch_size, n, heads, 64, device=dev, dtype=dt).transpose(1, 2)
                   for n in (nq, nk, nk))
        for backward in (False, True):
            best = {'sdpa': float('inf'), 'naive': float('inf')}
            for r in range(args.reps + 1):
                for b in (('sdpa', 'naive') if r % 2 == 0 else ('naive', 'sdpa')):
                    t = _time(F.scaled_dot_product_attention if b == 'sdpa' else naive, q, k, v, backward, dev)
                    if r:  # first round is warm-up
                        best[b] = min(best[b], t)
            print(f'{name:<34s} {"fwd+bwd" if backward else "fwd":<8s} {best["sdpa"] * 1e3:9.2f} '
                  f'{best["naive"] * 1e3:9.2f} {best["naive"] / best["sdpa"]:10.2f}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Does torch.compile work on the SVFAP models? Graph breaks (torch._dynamo.explain) and a compiled
forward + backward checked against eager, for a fine-tuning and a pre-training model.

    python -m benchmarks.compile_check                       # tiny models, CPU (~2-4 min on 2 cores)
    python -m benchmarks.compile_check --device cuda --models svfap_base_patch16_160 pretrain_svfap_base_patch16_160

The pre-training model gathers the visible tokens by index (``models.masking.tube_mask_indices``; under
torch.compile the count comes from ``mask_ratio``); this reports whether anything breaks the graph.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Dict, Optional, Sequence


import numpy as np
import torch


def _inputs(model, name: str, device, batch: int, frames: int, size: int):
    from datasets.masking import tube_mask
    clip = torch.randn(batch, 3, frames, size, size, device=device)
    if name.startswith('pretrain_'):
        grid = model.token_grid(frames, size, size)
        mask = torch.from_numpy(np.stack([tube_mask(grid, 0.9, i) for i in range(batch)])).to(device)
        return (clip, mask)
    return (clip,)


def check(name: str, device: str = 'cpu', batch: int = 2, frames: int = 16, size: int = 160) -> Dict:
    import timm
    import torch._dynamo

    import models  # noqa: F401
    dev = torch.device(device)
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, img_size=size, all_frames=frames).to(dev).train()
    inputs = _inputs(model, name, dev, batch, frames, size)
    out: Dict = dict(model=name, device=device)

    torch._dynamo.reset()
    t0 = time.perf_counter()
    exp = torch._dynamo.explain(model)(*inputs)
    out['explain_s'] = time.perf_counter() - t0
    out['graph_count'] = exp.graph_count
    out['graph_break_count'] = exp.graph_break_count
    out['break_reasons'] = sorted({f'{r.reason.strip().splitlines()[0][:200]} @ '
                                   f'{r.user_stack[-1].filename.split("/")[-1] + ":" + str(r.user_stack[-1].lineno) if r.user_stack else "?"}'
                                   for r in exp.break_reasons})
    out['ops_per_graph'] = [len(ops) for ops in exp.ops_per_graph]

    # compiled forward + backward against eager
    torch._dynamo.reset()
    ref_model = model
    compiled = torch.compile(model)
    for p in model.parameters():
        p.grad = None
    ref = ref_model(*inputs)
    ref.float().square().mean().backward()
    ref_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    for p in model.parameters():
        p.grad = None
    t0 = time.perf_counter()
    try:
        got = compiled(*inputs)
        got.float().square().mean().backward()
        out['compile_fwd_bwd_s'] = time.perf_counter() - t0
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        out['max_abs_diff_out'] = float((got - ref).detach().abs().max())
        out['max_rel_diff_grad'] = max(float((g - r).norm() / (r.norm() + 1e-12)) for g, r in zip(grads, ref_grads))
        out['compiled_ok'] = len(grads) == len(ref_grads) and out['max_rel_diff_grad'] < 1e-2
        # recompilation on a second call with a different mask (same count) must not happen
        if len(inputs) == 2:
            from torch._dynamo.utils import counters
            before = dict(counters['stats'])
            inputs2 = (inputs[0], inputs[1].roll(1, dims=1))
            compiled(*inputs2)
            out['recompiled_on_new_mask'] = counters['stats'].get('unique_graphs', 0) > before.get('unique_graphs', 0)
    except Exception as e:  # reported
        out['compiled_ok'] = False
        out['error'] = f'{type(e).__name__}: {str(e).splitlines()[0][:300]}'
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cpu')
    p.add_argument('--models', nargs='+', default=['svfap_tiny_patch16_160', 'pretrain_svfap_tiny_patch16_160'])
    p.add_argument('--batch_size', type=int, default=2)
    p.add_argument('--json', default=None)
    args = p.parse_args(argv)
    results = []
    for name in args.models:
        r = check(name, args.device, args.batch_size)
        results.append(r)
        print(json.dumps(r, indent=1), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 0 if all(r.get('compiled_ok') for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())

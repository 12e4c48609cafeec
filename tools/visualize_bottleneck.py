"""Spatial-attention maps of the bottleneck tokens of TPSBT, overlaid on the frames.

    python -m tools.visualize_bottleneck --checkpoint output/dfew/checkpoint-best.pth \
        --video clip.mp4 --output attn.png            # attn_stage2.png, attn_stage3.png, attn_maps.npz

In every later stage s the spatial attention of TPSBT summarises each temporal slice into K
bottleneck tokens: token k of slice t is ``sum_n softmax_n(logits[t, n, k]) x[t, n]``, the softmax
taken over the h x w positions of that slice, so each map sums to 1. For one clip (centred, or
from ``--start``; test resize + centre crop) this draws, per later stage, a grid with one row per
token and one column per temporal slice: the map (upsampled bilinearly to the frame, jet colours
on one scale shared by every cell of the stage, its range printed in the caption, as a value and as
a multiple of the uniform map) over the middle frame of the frames that slice covers.

Works with fine-tuned checkpoints and with pre-training checkpoints (their encoder, fed the whole
clip with no mask). ``--stage S`` draws one stage only (then the file is exactly ``--output``).
The raw maps are saved next to the pictures as ``<output stem>_maps.npz`` (``stage<S>``: float
(T_s, h, w, K)).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List

import numpy as np
import torch


from tools.drawing import auto_scale, denormalise_clip, make_grid, save_png, to_uint8
from tools.inputs import load_input_clip, run_single_input
from tools.loading import CheckpointError, load_model, one_video_parser, resolve_device


def get_parser() -> argparse.ArgumentParser:
    p, g = one_video_parser(__doc__.splitlines()[0])
    g.add_argument('--stage', type=int, default=None, help='only this stage (2 = first later stage)')
    g.add_argument('--alpha', type=float, default=0.5, help='opacity of the heat map')
    g.add_argument('--scale', type=int, default=0, help='enlarge cells this many times (0: auto)')
    g.add_argument('--output', required=True, help='PNG file (per stage: <stem>_stage<S>.png)')
    return p


@torch.no_grad()
def bottleneck_attention(encoder, clip: torch.Tensor) -> Dict[int, np.ndarray]:
    """clip (1, 3, T, H, W) -> {stage number (2, 3, ...): float (T_s, h, w, K)} spatial attention maps
    (each (T_s, :, :, k) map sums to 1 over h x w)."""
    if not getattr(encoder, 'spatial_bottleneck', False) or encoder.num_stages < 2:
        raise CheckpointError('this model has no spatial bottleneck (spatial_bottleneck=False or one stage)')
    encoder.eval()
    device = next(encoder.parameters()).device
    clip = clip.to(device).float()
    _, weights = encoder.forward_stages(clip, return_spatial_attention=True)
    _, h, w = encoder.token_grid(*clip.shape[2:])
    out = {}
    for i, a in enumerate(weights):
        Ts, N, K = a.shape[1:]
        out[i + 2] = a[0].float().reshape(Ts, h, w, K).cpu().numpy()
    return out


def overlay(frame: np.ndarray, amap: np.ndarray, alpha: float = 0.5, lo: float = None,
            hi: float = None) -> np.ndarray:
    """frame float (H, W, 3) in [0, 1], map (h, w) -> uint8 RGB overlay; the map's colours run from
    ``lo`` (blue) to ``hi`` (red), by default the map's own minimum and maximum."""
    import cv2
    H, W = frame.shape[:2]
    m = cv2.resize(amap.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
    lo = float(amap.min()) if lo is None else lo
    hi = float(amap.max()) if hi is None else hi
    m = np.clip((m - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    heat = cv2.applyColorMap(to_uint8(m[..., None].repeat(3, axis=2))[..., 0], cv2.COLORMAP_JET)[..., ::-1]
    return to_uint8((1 - alpha) * frame + alpha * heat.astype(np.float32) / 255.0)


def slice_frames(T: int, Ts: int) -> List[range]:
    """Frames of the clip (0..T-1) that temporal slice t of a stage with Ts slices covers."""
    per = T // Ts
    return [range(t * per, (t + 1) * per) for t in range(Ts)]


def stage_path(output: str, stage: int, single: bool) -> str:
    if single:
        return output
    stem, ext = os.path.splitext(output)
    return f'{stem}_stage{stage}{ext or ".png"}'


def run(args) -> Dict:
    device = resolve_device(args.device)
    lm = load_model(args, 'encoder', device)
    clip, idx, info = load_input_clip(lm, args.video, args.reader, args.start)
    maps = bottleneck_attention(lm.encoder, clip)
    if args.stage is not None:
        if args.stage not in maps:
            raise CheckpointError(f'--stage {args.stage}: the model\'s later stages are {sorted(maps)}')
        maps = {args.stage: maps[args.stage]}
    frames = denormalise_clip(clip[0])  # (T, H, W, 3)
    T, H, W = frames.shape[:3]
    scale = args.scale or auto_scale(max(H, W), 96)
    written = {}
    for s, a in maps.items():
        Ts, h, w, K = a.shape
        spans = slice_frames(T, Ts)
        mids = [r[len(r) // 2] for r in spans]
        lo, hi = float(a.min()), float(a.max())  # one colour scale for every cell of the stage
        cells = [[overlay(frames[mids[t]], a[t, :, :, k], args.alpha, lo, hi) for t in range(Ts)]
                 for k in range(K)]
        cols = [f'frames {int(idx[r[0]])}-{int(idx[r[-1]])}' for r in spans]
        uniform = 1.0 / (h * w)
        caption = (f'{os.path.basename(args.video)}, {lm.model_name}, stage {s}: spatial attention of the {K} '
                   f'bottleneck tokens (rows) per temporal slice (columns; shown on the slice\'s middle frame). '
                   f'Softmax over the {h}x{w} positions of a slice (each map sums to 1; uniform = '
                   f'{uniform:.4f}); upsampled bilinearly, jet colours on one scale for all cells: blue '
                   f'{lo:.4f} ({lo / uniform:.2f} x uniform) to red {hi:.4f} ({hi / uniform:.2f} x uniform).')
        img, layout = make_grid(cells, [f'token {k}' for k in range(K)], cols, caption, scale)
        path = stage_path(args.output, s, args.stage is not None)
        save_png(path, img)
        written[s] = dict(path=path, layout=layout, image=img)
        print(f'wrote {path} ({K} tokens x {Ts} slices)')
    stem = os.path.splitext(args.output)[0]
    np.savez(stem + '_maps.npz', frame_indices=np.asarray(idx), **{f'stage{s}': a for s, a in maps.items()})
    print(f'wrote {stem}_maps.npz')
    return dict(maps=maps, written=written)


def main(argv=None) -> int:
    return run_single_input(run, get_parser().parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())

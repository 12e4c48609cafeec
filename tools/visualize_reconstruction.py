"""Masked-autoencoder reconstruction of a video (the paper's Fig. 6) from a pre-training checkpoint.

    python -m tools.visualize_reconstruction --checkpoint output/pretrain/checkpoint-last.pth \
        --video clip.mp4 --mask_ratio 0.9 --seed 0 --output recon.png [--mp4 recon.mp4]

One clip (centred in the video, or from ``--start``; ``num_frames`` frames at ``sampling_rate``)
is resized / centre-cropped like the test transform; a tube mask of ``--mask_ratio`` is drawn with
``--seed``; the model predicts the masked tubes. The picture has three rows - original, masked
(masked tubes grey), reconstruction (visible tubes are the original pixels, masked tubes the
prediction) - and one column per frame (``--max_frames`` evenly spaced ones when asked).

The model predicts *per-patch normalised* pixels (each tube's channels normalised by their own
mean and std, Eq. (11)), so to draw them the normalisation is undone with each masked
patch's own mean and std **taken from the original clip** (as in the paper's figure): the
reconstruction's brightness and contrast per patch come from the original, only the structure
inside a patch is predicted. The picture's caption says so.

Patch cutting / pasting is shared with the engine's TensorBoard reconstruction image
(``engine.pretrain``).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict

import numpy as np
import torch


from tools.drawing import auto_scale, make_grid, save_png, to_uint8
from tools.inputs import load_input_clip, run_single_input
from tools.loading import load_model, one_video_parser, resolve_device
from engine.pretrain import reconstruct as reconstruct_clip
from datasets.masking import tube_mask
from datasets.video_writer import write_mp4

MASK_GREY = 0.5


def get_parser() -> argparse.ArgumentParser:
    p, g = one_video_parser(__doc__.splitlines()[0])
    g.add_argument('--mask_ratio', type=float, default=None, help='default: the checkpoint\'s, else 0.9')
    g.add_argument('--seed', type=int, default=0, help='seed of the tube mask')
    g.add_argument('--max_frames', type=int, default=0, help='columns: at most this many frames (0: all)')
    g.add_argument('--scale', type=int, default=0, help='enlarge cells this many times (0: auto, >= 128 px)')
    g.add_argument('--output', required=True, help='PNG file')
    g.add_argument('--mp4', default=None, help='also write an mp4 (original | masked | reconstruction)')
    g.add_argument('--fps', type=float, default=4.0, help='frame rate of the mp4')
    return p


def reconstruct(model, clip: torch.Tensor, mask: torch.Tensor, tubelet: int = 2, patch: int = 16) -> Dict:
    """clip (1, 3, T, H, W) normalised, mask (1, N) bool -> float (T, H, W, 3) frames in [0, 1]:
    ``original``, ``masked`` (masked tubes grey), ``reconstruction`` (``engine.pretrain.reconstruct``)."""
    out = reconstruct_clip(model, clip, mask, tubelet=tubelet, patch=patch, grey=MASK_GREY)
    frames = {k: out[k].permute(1, 2, 3, 0).cpu().numpy() for k in ('original', 'masked', 'reconstruction')}
    return dict(frames, mask=out['mask'].cpu().numpy())


def run(args) -> Dict:
    device = resolve_device(args.device)
    lm = load_model(args, 'pretrain', device)
    ratio = lm.mask_ratio if args.mask_ratio is None else float(args.mask_ratio)
    clip, idx, info = load_input_clip(lm, args.video, args.reader, args.start)
    T, H, W = clip.shape[2:]
    grid = lm.model.token_grid(T, H, W)
    mask = torch.from_numpy(tube_mask(grid, ratio, args.seed)).unsqueeze(0)
    out = reconstruct(lm.model, clip, mask, lm.tubelet_size, lm.model.patch_size)
    cols = np.arange(T)
    if args.max_frames and args.max_frames < T:
        cols = np.unique(np.linspace(0, T - 1, args.max_frames).round().astype(int))
    rows = ['original', 'masked', 'reconstruction']
    cells = [[to_uint8(out[r][f]) for f in cols] for r in rows]
    hw = grid[1] * grid[2]
    n_masked = int(out['mask'][:hw].sum())
    caption = (f'{os.path.basename(args.video)}: frames {int(idx[0])}..{int(idx[-1])} (stride {lm.sampling_rate}), '
               f'tube mask {ratio:.0%} ({n_masked} of {hw} positions per slice, seed {args.seed}), '
               f'{lm.model_name}. Reconstruction: visible patches are the original pixels; masked patches are the '
               f'prediction with the per-patch normalisation undone using each patch\'s own mean and std '
               f'from the original clip.')
    scale = args.scale or auto_scale(max(H, W))
    img, layout = make_grid(cells, rows, [f'frame {int(idx[f])}' for f in cols], caption, scale)
    save_png(args.output, img)
    print(f'wrote {args.output} ({img.shape[1]}x{img.shape[0]}, 3 rows x {len(cols)} frames)')
    if args.mp4:
        frames = []
        for f in range(T):
            row = [np.repeat(np.repeat(to_uint8(out[r][f]), scale, 0), scale, 1) for r in rows]
            sep = np.full((row[0].shape[0], 4, 3), 255, np.uint8)
            frames.append(np.concatenate([row[0], sep, row[1], sep, row[2]], axis=1))
        write_mp4(args.mp4, frames, args.fps)
        print(f'wrote {args.mp4} ({T} frames: original | masked | reconstruction)')
    out.update(layout=layout, columns=cols, scale=scale, image=img, frame_indices=idx)
    return out


def main(argv=None) -> int:
    return run_single_input(run, get_parser().parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())

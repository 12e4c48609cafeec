"""Which resize gives PIL's bilinear pixels (the published pipeline's), and how fast.

For 16-frame clips of textured frames (256x256 DFEW-like face frames, 224x224 VoxCeleb2-like
frames, 640x360 raw video) squashed to 160x160, and a 140x140 multi-scale crop enlarged to 160, each
candidate is compared with ``PIL.Image.resize((160, 160), BILINEAR)`` frame by frame (mean and
maximum absolute difference in grey levels) and timed on one core (median of rounds, ms per clip):

* ``torch uint8 antialias``: ``F.interpolate(uint8, mode='bilinear', antialias=True)`` (the
  project's ``--resize_filter pil``);
* ``torch float antialias``: the same on float32, rounded;
* ``torchvision resize``: ``torchvision.transforms.v2.functional.resize`` on the uint8 tensor;
* ``opencv linear`` / ``opencv area``: ``cv2.resize`` per frame (``--resize_filter opencv``);
* ``PIL``: the reference itself.

    python -m benchmarks.resize_filters [--rounds 7]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


import cv2
import torch
import torch.nn.functional as F
from PIL import Image

S = 160


def textured(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 2, w // 2 + n, 3)).astype(np.float32)
    base = np.repeat(np.repeat(base, 2, 0), 2, 1)
    return np.stack([(0.5 * base[:, i:i + w] + 0.5 * base[:, i + 1:i + 1 + w]).astype(np.uint8)
                     for i in range(n)])


def candidates():
    def pil(x):
        return np.stack([np.asarray(Image.fromarray(f).resize((S, S), Image.BILINEAR)) for f in x])

    def torch_u8(x):
        t = torch.from_numpy(x).permute(0, 3, 1, 2)
        return F.interpolate(t, size=(S, S), mode="bilinear", antialias=True).permute(0, 2, 3, 1).numpy()

    def torch_f32(x):
        t = torch.from_numpy(x).permute(0, 3, 1, 2).float()
        y = F.interpolate(t, size=(S, S), mode="bilinear", antialias=True)
        return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def opencv(interp):
        return lambda x: np.stack([cv2.resize(f, (S, S), interpolation=interp) for f in x])

    out = {"PIL": pil, "torch uint8 antialias": torch_u8, "torch float antialias": torch_f32}
    try:
        from torchvision.transforms.v2 import functional as TF

        def tv(x):
            t = torch.from_numpy(x).permute(0, 3, 1, 2)
            return TF.resize(t, [S, S], antialias=True).permute(0, 2, 3, 1).numpy()
        out["torchvision resize"] = tv
    except ImportError:  # pragma: no cover
        pass
    out["opencv linear"] = opencv(cv2.INTER_LINEAR)
    out["opencv area"] = opencv(cv2.INTER_AREA)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    clips = {"256x256 -> 160": textured(16, 256, 256), "224x224 -> 160": textured(16, 224, 224, 1),
             "640x360 -> 160": textured(16, 360, 640, 2), "140x140 -> 160": textured(16, 140, 140, 3)}
    cands = candidates()
    lines = ["| clip | resize | mean abs diff vs PIL (grey levels) | max | ms per 16-frame clip |",
             "|---|---|---|---|---|"]
    for name, clip in clips.items():
        ref = cands["PIL"](clip).astype(np.int16)
        times = {k: [] for k in cands}
        for _ in range(args.rounds):
            for k, fn in cands.items():
                t0 = time.perf_counter()
                fn(clip)
                times[k].append(time.perf_counter() - t0)
        for k, fn in cands.items():
            d = np.abs(fn(clip).astype(np.int16) - ref)
            lines.append(f"| {name} | {k} | {d.mean():.3f} | {d.max()} | {1000 * np.median(times[k]):.2f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

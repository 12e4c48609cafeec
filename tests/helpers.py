"""Helpers of the test suite (and of the benchmarks that build throw-away inputs): real test
videos and frame folders, a tiny synthetic data set, tiny entry-point flags.

* ``write_mp4``, ``write_frame_folder`` - from ``datasets.video_writer``.
* ``pattern_frames(n, h, w)`` - frames whose content encodes the frame index (a bright bar whose
  position and a colour channel depend on the index), so tests can recover which frame was read.
* ``faststart_mp4(data)`` - move the ``moov`` atom before ``mdat`` (as streaming encoders do), so
  that cutting the file keeps its header: the realistic "truncated download" case.
* ``make_tiny_dataset``, ``tiny_finetune_argv``, ``tiny_pretrain_argv``, ``free_port``, ``repo_root``.
"""
from __future__ import annotations

import os
import struct
from typing import Dict, Iterator, Tuple

import numpy as np

from benchmarks.entry_points_check import (free_port, make_tiny_dataset, tiny_finetune_argv,  # noqa: F401
                                           tiny_pretrain_argv)  # (re-exported: the tiny runs the tests share)
from datasets.video_writer import write_frame_folder, write_mp4  # noqa: F401  (re-exported)



def pattern_frames(n: int, h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 (n, h, w, 3) RGB; frame i has red level 6*i+3 (for i < 41) and a white bar that moves
    with i, over blocky noise. :func:`pattern_index` recovers i after lossy coding."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 60, size=(h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
    base = np.kron(base, np.ones((8, 8, 1), np.uint8))[:h, :w]
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        f = base.copy()
        f[..., 0] = (6 * i + 3) % 246
        x = (i * 3) % max(w - 4, 1)
        f[:, x:x + 4] = 255
        out[i] = f
    return out


def pattern_index(frames: np.ndarray) -> np.ndarray:
    """Frame indices encoded by :func:`pattern_frames` (median red level // 6), per frame."""
    red = np.asarray(frames)[..., 0].reshape(len(frames), -1)
    return (np.median(red, axis=1) // 6).astype(np.int64)


def _atoms(buf, start: int, end: int) -> Iterator[Tuple[str, int, int, int]]:
    i = start
    while i + 8 <= end:
        size, typ = struct.unpack(">I4s", bytes(buf[i:i + 8]))
        hdr = 8
        if size == 1:
            size = struct.unpack(">Q", bytes(buf[i + 8:i + 16]))[0]
            hdr = 16
        elif size == 0:
            size = end - i
        yield typ.decode("latin1"), i, size, hdr
        i += size


def faststart_mp4(data: bytes) -> bytes:
    """Rewrite an mp4 so that ``moov`` precedes ``mdat`` (chunk offsets patched)."""
    top = list(_atoms(data, 0, len(data)))
    names = [t[0] for t in top]
    if "moov" not in names or "mdat" not in names:
        raise ValueError("not an mp4 with moov and mdat atoms")
    if names.index("moov") < names.index("mdat"):
        return bytes(data)
    _, mi, msize, _ = top[names.index("moov")]
    moov = bytearray(data[mi:mi + msize])

    def patch(s, e):
        for typ, i, size, hdr in _atoms(moov, s, e):
            if typ in ("trak", "mdia", "minf", "stbl"):
                patch(i + hdr, i + size)
            elif typ in ("stco", "co64"):
                n = struct.unpack(">I", bytes(moov[i + 12:i + 16]))[0]
                fmt, width = (">I", 4) if typ == "stco" else (">Q", 8)
                for k in range(n):
                    o = i + 16 + width * k
                    moov[o:o + width] = struct.pack(fmt, struct.unpack(fmt, bytes(
                        moov[o:o + width]))[0] + msize)

    patch(8, len(moov))
    out = bytearray()
    for typ, i, size, _ in top:
        if typ == "moov":
            continue
        out += data[i:i + size]
        if typ == "ftyp":
            out += moov
    return bytes(out)


def write_truncated_mp4(path: str, frames: np.ndarray, keep: float = 0.5,
                        faststart: bool = True) -> str:
    """An mp4 cut to ``keep`` of its size. ``faststart=True``: the header survives (the file opens
    and promises all frames, but decoding stops early); False: the header is lost (cannot open)."""
    tmp = path + ".full.mp4"
    write_mp4(tmp, frames)
    with open(tmp, "rb") as f:
        data = f.read()
    os.unlink(tmp)
    if faststart:
        data = faststart_mp4(data)
    with open(path, "wb") as f:
        f.write(data[:int(len(data) * keep)])
    return path


def write_random_bytes(path: str, n: int = 4096, seed: int = 0) -> str:
    with open(path, "wb") as f:
        f.write(np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes())
    return path


def repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_checkpoints(d: str, NF: int = 8, RATE: int = 2, SIZE: int = 32) -> Dict[str, str]:
    """Tiny checkpoints in ``d`` (svfap_tiny, DFEW's 7 classes, ``NF`` frames at stride ``RATE``,
    ``SIZE`` px): ours fine-tuned (``ft``), the authors' layout (``authors``), ours pre-trained
    (``pt``). The head's weights are drawn large, so predictions are not all ~1/7."""
    import argparse
    import timm
    import torch
    import models  # noqa: F401
    torch.manual_seed(0)
    ft = timm.create_model('svfap_tiny_patch16_160', img_size=SIZE, all_frames=NF, num_classes=7)
    with torch.no_grad():  # a head that actually discriminates, so predictions are not all ~1/7
        ft.head.weight.normal_(0, 1.0)
    args = dict(model='svfap_tiny_patch16_160', data_set='dfew', nb_classes=7, input_size=SIZE,
                num_frames=NF, sampling_rate=RATE)
    paths = dict(ft=os.path.join(d, 'ft.pth'), authors=os.path.join(d, 'authors_ft.pth'),
                 pt=os.path.join(d, 'pt.pth'))
    torch.save({'model': ft.state_dict(), 'args': args, 'epoch': 1}, paths['ft'])
    # authors' layout: the fine-tuning model's keys under 'model', argparse Namespace args naming
    # another model (their args use e.g. 'vit_base_patch16_160'), data_set in their spelling
    ns = argparse.Namespace(model='vit_base_patch16_160', nb_classes=7, data_set='DFEW', input_size=SIZE,
                            num_frames=NF, sampling_rate=RATE)
    torch.save({'model': ft.state_dict(), 'optimizer': {}, 'epoch': 99, 'scaler': {}, 'args': ns},
               paths['authors'])
    pt = timm.create_model('pretrain_svfap_tiny_patch16_160', img_size=SIZE, all_frames=NF)
    torch.save({'model': pt.state_dict(), 'args': dict(model='pretrain_svfap_tiny_patch16_160', input_size=SIZE,
                                                       num_frames=NF, sampling_rate=RATE, mask_ratio=0.75)},
               paths['pt'])
    return paths


def train_config(argv=(), entry: str = 'finetune', **overrides):
    """The engine.config.TrainConfig an entry point makes from ``argv`` (one process, on the CPU
    unless ``argv`` says otherwise), with ``overrides`` replacing fields."""
    import dataclasses

    from cli.args import finalize_args, finetune_parser, parse_args, pretrain_parser
    from engine.config import TrainConfig
    from engine.distributed import DistEnv
    parser = finetune_parser() if entry == 'finetune' else pretrain_parser()
    args = finalize_args(parse_args(parser, ['--device', 'cpu', '--blr', '1e-3'] + list(argv)), DistEnv())
    return dataclasses.replace(TrainConfig.from_args(args), **overrides)

"""Writing videos and frame folders (the synthetic set, the visualisers, the tests' fixtures).

* :func:`write_mp4` - OpenCV's ``mp4v`` fourcc (MPEG-4 part 2, no B-frames).
* :func:`write_video` - PyAV (FFmpeg) with a chosen codec, GOP and B-frames, in any container: the
  files real datasets ship (H.264 with B-frames in MP4, DivX-style AVI, FLV, MKV, WebM).
"""
from __future__ import annotations

import os
from typing import Optional

import cv2
import numpy as np

__all__ = ['write_mp4', 'write_video', 'write_frame_folder']


def write_mp4(path: str, frames, fps: float = 25.0, bgr: bool = False) -> str:
    """uint8 frames (N, H, W, 3), RGB (or BGR with ``bgr``) -> ``path`` (mp4v). Odd sizes are padded
    to even with white (the codec needs even sizes); the folder is created. Returns ``path``."""
    h, w = frames[0].shape[:2]
    H, W = h + h % 2, w + w % 2
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), float(fps), (W, H))
    if not vw.isOpened():
        raise OSError(f'cv2.VideoWriter cannot write {path} (fourcc mp4v)')
    try:
        for f in frames:
            img = f if bgr else f[:, :, ::-1]
            if (H, W) != (h, w):
                out = np.full((H, W, 3), 255, np.uint8)
                out[:h, :w] = img
                img = out
            vw.write(np.ascontiguousarray(img))
    finally:
        vw.release()
    return path


def write_video(path: str, frames, codec: str = 'libx264', fps: int = 25, gop_size: int = 48,
                max_b_frames: int = 2, pix_fmt: Optional[str] = None, options: Optional[dict] = None,
                container_options: Optional[dict] = None) -> str:
    """uint8 RGB frames (N, H, W, 3), or any iterable of (H, W, 3) frames of one size (written as
    they come) -> ``path`` with PyAV. The container follows the extension; ``max_b_frames`` is
    ignored by codecs without B-frames (mjpeg, flv, vp8). Even sizes only. ``options``: codec
    options; ``container_options``: muxer options (``{'movflags': 'faststart'}``)."""
    import itertools
    import av
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError(f'no frames to write to {path}')
    frames = itertools.chain([first], it)
    h, w = first.shape[:2]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with av.open(path, 'w', options=container_options or {}) as c:
        s = c.add_stream(codec, rate=fps, options=options or {})
        s.width, s.height = w, h
        s.pix_fmt = pix_fmt or ('yuvj420p' if codec == 'mjpeg' else 'yuv420p')
        s.codec_context.gop_size = gop_size
        if codec not in ('mjpeg', 'flv', 'libvpx', 'libvpx-vp9'):
            s.codec_context.max_b_frames = max_b_frames
        for f in frames:
            for packet in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format='rgb24')):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def write_frame_folder(folder: str, frames, ext: str = 'jpg', quality: int = 95, bgr: bool = False) -> str:
    """uint8 frames (RGB, or BGR with ``bgr``; or grey (H, W)) -> ``folder/00001.<ext> .. N.<ext>``
    (zero-padded, so sorted and natural order agree, as in DFEW's frame folders)."""
    os.makedirs(folder, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in ('jpg', 'jpeg') else []
    for i, f in enumerate(frames, start=1):
        img = f if f.ndim == 2 or bgr else f[:, :, ::-1]
        if not cv2.imwrite(os.path.join(folder, f'{i:05d}.{ext}'), np.ascontiguousarray(img), params):
            raise OSError(f'cannot write frame {i} to {folder}')
    return folder

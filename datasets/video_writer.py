"""Writing videos and frame folders (the synthetic set, the visualisers, the tests' fixtures).

OpenCV's ``mp4v`` fourcc (MPEG-4 part 2, no B-frames): readable by every reader of
``datasets.video_reader``.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

__all__ = ['write_mp4', 'write_frame_folder']


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


def write_frame_folder(folder: str, frames, ext: str = 'jpg', quality: int = 95, bgr: bool = False) -> str:
    """uint8 frames (RGB, or BGR with ``bgr``; or grey (H, W)) -> ``folder/1.<ext> .. N.<ext>``."""
    os.makedirs(folder, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in ('jpg', 'jpeg') else []
    for i, f in enumerate(frames, start=1):
        img = f if f.ndim == 2 or bgr else f[:, :, ::-1]
        if not cv2.imwrite(os.path.join(folder, f'{i}.{ext}'), np.ascontiguousarray(img), params):
            raise OSError(f'cannot write frame {i} to {folder}')
    return folder

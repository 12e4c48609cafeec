"""The picture grid the two visualisations draw, and image helpers."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import cv2
import numpy as np
import torch


from datasets.transforms import denormalize

def to_uint8(img: np.ndarray) -> np.ndarray:
    """float [0, 1] (H, W, 3) -> uint8."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def denormalise_clip(clip: torch.Tensor) -> np.ndarray:
    """Normalised (3, T, H, W) -> float (T, H, W, 3) in [0, 1]."""
    return denormalize(clip.cpu()).clamp(0, 1).permute(1, 2, 3, 0).numpy()


@dataclass
class GridLayout:
    """Pixel layout of :func:`make_grid`: cell (r, c) is ``img[top(r):top(r)+cell_h, left(c):left(c)+cell_w]``."""
    rows: int
    cols: int
    cell_h: int
    cell_w: int
    header_h: int
    label_w: int
    col_label_h: int
    gap: int = 2

    def top(self, r: int) -> int:
        return self.header_h + self.col_label_h + r * (self.cell_h + self.gap)

    def left(self, c: int) -> int:
        return self.label_w + c * (self.cell_w + self.gap)

    @property
    def shape(self) -> Tuple[int, int, int]:
        return (self.top(self.rows), self.left(self.cols), 3)


def _wrap(text: str, width_px: int, scale: float) -> List[str]:
    lines = []
    for para in text.split('\n'):
        words, cur = para.split(' '), ''
        for w in words:
            trial = (cur + ' ' + w).strip()
            if cur and cv2.getTextSize(trial, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > width_px:
                lines.append(cur)
                cur = w
            else:
                cur = trial
        lines.append(cur)
    return lines


def make_grid(cells: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str] = (),
              col_labels: Sequence[str] = (), caption: str = '', scale: int = 1) -> Tuple[np.ndarray, GridLayout]:
    """Compose uint8 RGB cells (all the same size) into one picture with a caption on top, row labels
    on the left and column labels above. Cells are enlarged ``scale`` x by pixel repetition (so pixel
    values are kept exactly). Returns ``(image uint8 (H, W, 3) RGB, layout)``."""
    rows, cols = len(cells), max(len(r) for r in cells)
    ch, cw = cells[0][0].shape[0] * scale, cells[0][0].shape[1] * scale
    font, fs = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    line_h = 14
    label_w = (max(cv2.getTextSize(s, font, fs, 1)[0][0] for s in row_labels) + 8) if row_labels else 0
    col_label_h = line_h + 4 if col_labels else 0
    gap = 2
    total_w = label_w + cols * (cw + gap)
    lines = _wrap(caption, max(total_w - 8, 100), fs) if caption else []
    header_h = len(lines) * line_h + (6 if lines else 0)
    lay = GridLayout(rows, cols, ch, cw, header_h, label_w, col_label_h, gap)
    img = np.full(lay.shape, 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(img, line, (4, 4 + (i + 1) * line_h - 3), font, fs, (0, 0, 0), 1, cv2.LINE_AA)
    for c, s in enumerate(col_labels):
        cv2.putText(img, s, (lay.left(c) + 2, header_h + line_h), font, fs, (0, 0, 0), 1, cv2.LINE_AA)
    for r, row in enumerate(cells):
        if r < len(row_labels):
            cv2.putText(img, row_labels[r], (3, lay.top(r) + ch // 2 + 4), font, fs, (0, 0, 0), 1, cv2.LINE_AA)
        for c, cell in enumerate(row):
            big = np.repeat(np.repeat(cell, scale, axis=0), scale, axis=1) if scale > 1 else cell
            img[lay.top(r):lay.top(r) + ch, lay.left(c):lay.left(c) + cw] = big
    return img, lay


def auto_scale(cell_side: int, target: int = 128) -> int:
    """Integer enlargement so that a cell is at least about ``target`` pixels."""
    return max(1, int(np.ceil(target / max(cell_side, 1))))


def save_png(path: str, img_rgb: np.ndarray) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    if not cv2.imwrite(path, np.ascontiguousarray(img_rgb[:, :, ::-1])):
        raise OSError(f'cannot write {path}')



"""Pictures of a prediction over time (``tools.predict --render / --plot``).

* :func:`render_video` - the input video with the followed face's crop box, a live bar of the class
  probabilities (interpolated between the centres of the windows with a face; "no face" where no
  such window covers the frame) and a strip of the top class over the whole video with a cursor.
* :func:`plot_timeline` - the probabilities of every class over time, one point per window with a
  face, spans without the face shaded.

Both take the rows ``tools.predict`` makes (one video row, its window rows) and the video's face
track (or None without ``--face_crop``).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from datasets.video_reader import iter_frames
from datasets.video_writer import write_video

HEIGHT, PANEL, STRIP = 360, 300, 36
FONT = cv2.FONT_HERSHEY_SIMPLEX
# class colours (RGB), the tab10 palette, then greys
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (90, 90, 90), (170, 170, 170)]
NO_FACE = (60, 60, 60)


def _colour(k: int):
    return PALETTE[k % len(PALETTE)]


def frame_scores(windows: Sequence[Dict], num_frames: int, num_outputs: int) -> np.ndarray:
    """(num_frames, num_outputs): the scores at every frame, linearly interpolated between the
    centres of the windows with scores (held beyond the first and last); NaN on frames that no
    window with scores covers."""
    out = np.full((num_frames, num_outputs), np.nan)
    scored = [w for w in windows if w['scores'] is not None]
    if not scored:
        return out
    centres = np.asarray([(w['start_frame'] + w['end_frame']) / 2 for w in scored])
    values = np.stack([w['scores'] for w in scored])
    order = np.argsort(centres)
    frames = np.arange(num_frames)
    covered = np.zeros(num_frames, bool)
    for w in scored:
        covered[w['start_frame']:w['end_frame'] + 1] = True
    for c in range(num_outputs):
        out[:, c] = np.interp(frames, centres[order], values[order, c])
    out[~covered] = np.nan
    return out


def _even(x: int) -> int:
    return x + x % 2


def _strip(scores: np.ndarray, width: int) -> np.ndarray:
    """The top class of every frame as colours along ``width`` pixels (grey: no face)."""
    strip = np.empty((STRIP, width, 3), np.uint8)
    n = len(scores)
    for x in range(width):
        s = scores[min(n - 1, int(x * n / width))]
        strip[:, x] = NO_FACE if np.isnan(s).any() else _colour(int(np.argmax(s)))
    return strip


def _panel(scores: Optional[np.ndarray], names: Sequence[str], t: Optional[float], title: str,
           lo: float, hi: float) -> np.ndarray:
    panel = np.full((HEIGHT, PANEL, 3), 250, np.uint8)
    cv2.putText(panel, title[:28], (10, 24), FONT, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    if t is not None:
        cv2.putText(panel, f"t = {t:6.2f} s", (10, 46), FONT, 0.5, (80, 80, 80), 1, cv2.LINE_AA)
    top = 62
    if scores is None:
        cv2.putText(panel, "no face", (10, top + 40), FONT, 0.9, NO_FACE, 2, cv2.LINE_AA)
        return panel
    row = max(18, min(40, (HEIGHT - top - 8) // max(len(names), 1)))
    best = int(np.argmax(scores))
    for k, (name, v) in enumerate(zip(names, scores)):
        y = top + k * row
        frac = float(np.clip((v - lo) / max(hi - lo, 1e-9), 0, 1))
        colour = _colour(k) if k == best else tuple(int(0.45 * c + 0.55 * 255) for c in _colour(k))
        cv2.rectangle(panel, (100, y + 3), (100 + int(frac * 150), y + row - 5), colour, -1)
        cv2.putText(panel, name[:12], (10, y + row - 8), FONT, 0.45, (20, 20, 20), 2 if k == best else 1,
                    cv2.LINE_AA)
        cv2.putText(panel, f"{v:.2f}", (254, y + row - 8), FONT, 0.42, (40, 40, 40), 1, cv2.LINE_AA)
    return panel


def render_video(path: str, video: Dict, windows: List[Dict], names: Sequence[str], track, out: str,
                 reader: str = 'pyav', margin: float = 0.25, **_) -> str:
    """``path`` re-drawn at 360 px high with the face box, the live bar panel on the right and the
    top-class strip below; H.264 MP4 at the video's frame rate."""
    n = video['num_frames']
    scores = frame_scores(windows, n, len(names))
    valid = scores[~np.isnan(scores).any(axis=1)]
    lo, hi = (0.0, 1.0) if not len(valid) else (min(0.0, float(valid.min())), max(1.0, float(valid.max())))
    fps = video.get('fps') or 25.0
    times = video.get('times')
    title = os.path.basename(os.path.normpath(path))

    def frames():
        strip = None
        for i, frame in enumerate(iter_frames(path, reader)):
            if i >= n:
                break
            h, w = frame.shape[:2]
            scale = HEIGHT / h
            width = _even(int(round(w * scale)))
            view = cv2.resize(frame, (width, HEIGHT), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            if track is not None:
                box = track.crop_box(i, margin) if i < track.num_frames else None
                if box is not None:
                    x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
                    cv2.rectangle(view, (x0, y0), (x1 - 1, y1 - 1), (60, 220, 60), 2)
                else:
                    cv2.putText(view, "no face", (12, 30), FONT, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
            s = None if np.isnan(scores[i]).any() else scores[i]
            t = float(times[i]) if times is not None else i / fps
            top = np.concatenate([view, _panel(s, names, t, title, lo, hi)], axis=1)
            if strip is None:
                strip = _strip(scores, top.shape[1])
            bar = strip.copy()
            x = int(i * top.shape[1] / max(n, 1))
            cv2.line(bar, (x, 0), (x, STRIP - 1), (255, 255, 255), 2)
            yield np.concatenate([top, bar], axis=0)

    return write_video(out, frames(), codec='libx264', fps=int(round(fps)), max_b_frames=0,
                       container_options={'movflags': 'faststart'})


def plot_timeline(path: str, video: Dict, windows: List[Dict], names: Sequence[str], track, out: str,
                  task: str = 'classification', **_) -> str:
    """The scores of every class over time (one point per window with a face, at its centre),
    spans without the face shaded, the video's summary in the title; PNG at 150 dpi."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    times = video.get('times')      # (num_frames + 1,) seconds, or None: frames on the axis
    unit = (lambda f: float(times[int(f)])) if times is not None else (lambda f: f)
    fig, ax = plt.subplots(figsize=(10, 3.6))
    xs = [(unit(w['start_frame']) + unit(w['end_frame'] + 1)) / 2 for w in windows]
    for k, name in enumerate(names):
        ys = [np.nan if w['scores'] is None else w['scores'][k] for w in windows]
        ax.plot(xs, ys, marker='o', ms=3, lw=1.6, color=np.asarray(_colour(k)) / 255, label=name)
    spans = ([(s, e) for s, e, face in track.spans() if not face] if track is not None and track.num_detected
             else [(w['start_frame'], w['end_frame'] + 1) for w in windows if w['scores'] is None])
    for k, (s, e) in enumerate(spans):
        ax.axvspan(unit(s), unit(e), color='0.85', zorder=0, label='no face' if k == 0 else None)
    end = unit(video['num_frames'])
    ax.set_xlim(0, end)
    if all(0 <= v <= 1 for w in windows if w['scores'] is not None for v in w['scores']):
        ax.set_ylim(0, 1)
    ax.set_xlabel('time (s)' if times is not None else 'frame')
    ax.set_ylabel('probability' if task == 'classification' else 'output')
    title = os.path.basename(os.path.normpath(path))
    if video.get('scores') is not None:
        best = int(np.argmax(video['scores']))
        title += (f': {names[best]} {video["scores"][best]:.2f} (mean over '
                  f'{sum(w["scores"] is not None for w in windows)} windows with a face)')
    else:
        title += ': no window with a face'
    ax.set_title(title, fontsize=10)
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=150, bbox_inches='tight')
    plt.close(fig)
    return out

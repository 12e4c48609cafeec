"""Reading frames from video files and frame folders.

``open_video(path, reader)`` returns an object with ``num_frames`` and ``get(indices) -> uint8
(len(indices), H, W, 3) RGB``. Three kinds:

* :class:`DecordVideo` - decord (``reader='decord'``, the default): random access by frame index.
* :class:`OpenCVVideo` - OpenCV (``reader='opencv'``), and the automatic fallback when decord is not
  installed or cannot open / decode a file. Frames are decoded sequentially with ``grab``/
  ``retrieve`` (seeking with ``CAP_PROP_POS_FRAMES`` is not frame accurate for every codec), so
  the frame at index ``i`` is the i-th decoded frame - the same one decord returns. ``num_frames``
  is the container's frame count; if decoding stops early (a truncated file) reading a later index
  raises.
* :class:`FrameFolder` - a folder of ``jpg/jpeg/png/bmp`` images, in natural order (``2.jpg`` before
  ``10.jpg``), read with OpenCV whatever ``reader`` says.

Grayscale frames (and images with alpha) are returned with 3 channels. Every failure is a
:class:`VideoReadError` carrying ``path`` and ``reason``.
"""
from __future__ import annotations

import logging
import os
import re
from typing import List, Optional, Sequence

import numpy as np

try:  # OpenCV is a hard dependency; decord is optional (no wheels on some platforms)
    import cv2
    cv2.setNumThreads(1)
except ImportError:  # pragma: no cover
    cv2 = None

try:
    import decord
    HAS_DECORD = True
except Exception:  # pragma: no cover - decord missing or broken
    decord = None
    HAS_DECORD = False

logger = logging.getLogger("svfap.data")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
READERS = ("decord", "opencv")


class VideoReadError(RuntimeError):
    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"cannot read video {path}: {reason}")


def probe_fps(path: str) -> Optional[float]:
    """The container's frame rate (OpenCV), or None for a frame folder or an implausible value."""
    if os.path.isdir(path) or cv2 is None:
        return None
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return float(fps) if fps and np.isfinite(fps) and 1 <= fps <= 1000 else None


def natural_key(name: str):
    """Sort key that orders embedded numbers numerically: 'f2.jpg' < 'f10.jpg'."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower())
            for t in re.split(r"(\d+)", name) if t != ""]


def _to_rgb3(img: np.ndarray, bgr: bool) -> np.ndarray:
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    if img.shape[2] == 4:
        img = img[:, :, :3]
    if bgr:
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img)


def _check_indices(path: str, indices: Sequence[int], n: int) -> np.ndarray:
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise ValueError("no frame indices requested")
    if idx.min() < 0 or idx.max() >= n:
        raise VideoReadError(path, f"frame index out of range: requested {idx.min()}..{idx.max()}, "
                                   f"video has {n} frames")
    return idx


class FrameFolder:
    kind = "frames"

    def __init__(self, path: str):
        self.path = path
        try:
            names = [n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS)
                     and not n.startswith(".")]
        except OSError as e:
            raise VideoReadError(path, f"cannot list folder: {e}") from e
        if not names:
            raise VideoReadError(path, "folder holds no jpg/png frames")
        self.files: List[str] = [os.path.join(path, n) for n in sorted(names, key=natural_key)]
        self.num_frames = len(self.files)

    def get(self, indices: Sequence[int]) -> np.ndarray:
        idx = _check_indices(self.path, indices, self.num_frames)
        cache = {}
        out = []
        for i in idx.tolist():
            if i not in cache:
                img = cv2.imread(self.files[i], cv2.IMREAD_UNCHANGED)
                if img is None:
                    raise VideoReadError(self.path, f"cannot decode frame {self.files[i]}")
                if img.dtype != np.uint8:  # 16-bit png
                    img = (img // 257).astype(np.uint8) if img.dtype == np.uint16 else \
                        np.clip(img, 0, 255).astype(np.uint8)
                cache[i] = _to_rgb3(img, bgr=True)
            out.append(cache[i])
        shapes = {f.shape for f in out}
        if len(shapes) != 1:
            raise VideoReadError(self.path, f"frames have different sizes: {sorted(shapes)}")
        return np.stack(out)

    def close(self):
        pass


class DecordVideo:
    kind = "decord"

    def __init__(self, path: str):
        if not HAS_DECORD:
            raise VideoReadError(path, "decord is not installed")
        self.path = path
        try:
            self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            self.num_frames = len(self._vr)
        except Exception as e:
            raise VideoReadError(path, f"decord cannot open it: {_short(e)}") from e
        if self.num_frames <= 0:
            raise VideoReadError(path, "decord reports 0 frames")

    def get(self, indices: Sequence[int]) -> np.ndarray:
        idx = _check_indices(self.path, indices, self.num_frames)
        try:
            frames = self._vr.get_batch(idx.tolist()).asnumpy()
        except Exception as e:
            raise VideoReadError(self.path, f"decord cannot decode frames: {_short(e)}") from e
        if frames.ndim == 3:
            frames = frames[..., None]
        if frames.shape[-1] != 3:
            frames = np.stack([_to_rgb3(f, bgr=False) for f in frames])
        return frames

    def close(self):
        self._vr = None


class OpenCVVideo:
    kind = "opencv"

    def __init__(self, path: str):
        if cv2 is None:  # pragma: no cover
            raise VideoReadError(path, "OpenCV is not installed")
        self.path = path
        cap = cv2.VideoCapture(path)
        if not cap.isOpened():
            cap.release()
            raise VideoReadError(path, "OpenCV cannot open it")
        n = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        cap.release()
        if n <= 0:
            n = self._count_by_decoding()
            if n <= 0:
                raise VideoReadError(path, "OpenCV decodes no frames")
        self.num_frames = n

    def _count_by_decoding(self) -> int:
        cap = cv2.VideoCapture(self.path)
        n = 0
        try:
            while cap.grab():
                n += 1
        finally:
            cap.release()
        return n

    def get(self, indices: Sequence[int]) -> np.ndarray:
        idx = _check_indices(self.path, indices, self.num_frames)
        wanted = set(idx.tolist())
        last = int(idx.max())
        got = {}
        cap = cv2.VideoCapture(self.path)
        try:
            if not cap.isOpened():
                raise VideoReadError(self.path, "OpenCV cannot open it")
            for i in range(last + 1):
                if not cap.grab():
                    raise VideoReadError(
                        self.path, f"truncated or corrupt: decoding stopped after {i} of "
                                   f"{self.num_frames} frames (needed frame {last})")
                if i in wanted:
                    ok, frame = cap.retrieve()
                    if not ok or frame is None:
                        raise VideoReadError(self.path, f"OpenCV cannot decode frame {i}")
                    got[i] = _to_rgb3(frame, bgr=True)
        finally:
            cap.release()
        return np.stack([got[i] for i in idx.tolist()])

    def close(self):
        pass


class _FallbackVideo:
    """decord first; OpenCV if decord fails to decode the requested frames."""

    def __init__(self, primary, path: str):
        self._v = primary
        self.path = path
        self.num_frames = primary.num_frames
        self.kind = primary.kind

    def get(self, indices):
        try:
            return self._v.get(indices)
        except VideoReadError as e:
            if self._v.kind != "decord":
                raise
            logger.debug("decord failed on %s (%s); trying OpenCV", self.path, e.reason)
            try:
                alt = OpenCVVideo(self.path)
                frames = alt.get(indices)
            except VideoReadError as e2:
                raise VideoReadError(self.path, f"{e.reason}; OpenCV fallback: {e2.reason}") from e2
            self._v = alt
            self.num_frames, self.kind = alt.num_frames, alt.kind
            return frames

    def close(self):
        self._v.close()


def _short(e: Exception, n: int = 200) -> str:
    s = str(e).strip().splitlines()
    s = s[-1] if s else type(e).__name__
    return s[:n]


def open_video(path: str, reader: str = "decord"):
    """Open a video file or frame folder. ``reader``: 'decord' (falls back to OpenCV) | 'opencv'."""
    if reader not in READERS:
        raise ValueError(f"reader must be one of {READERS}, got {reader!r}")
    if os.path.isdir(path):
        return FrameFolder(path)
    if not os.path.exists(path):
        raise VideoReadError(path, "no such file or folder")
    if reader == "decord" and HAS_DECORD:
        try:
            return _FallbackVideo(DecordVideo(path), path)
        except VideoReadError as e:
            try:
                v = OpenCVVideo(path)
            except VideoReadError as e2:
                raise VideoReadError(path, f"{e.reason}; OpenCV fallback: {e2.reason}") from e2
            logger.debug("decord cannot open %s (%s); using OpenCV", path, e.reason)
            return v
    return OpenCVVideo(path)


def read_frames(path: str, indices: Sequence[int], reader: str = "decord") -> np.ndarray:
    """Convenience: open ``path`` and return the frames at ``indices`` (uint8, (T, H, W, 3) RGB)."""
    v = open_video(path, reader)
    try:
        return v.get(indices)
    finally:
        v.close()


def probe_video(path: str, reader: str = "decord") -> int:
    """Check that a video is readable; returns its frame count, raises VideoReadError if not.

    Opens it and decodes its first and last frame (for OpenCV this decodes the whole file, which
    catches truncated files whose header promises more frames than they hold).
    """
    v = open_video(path, reader)
    try:
        n = v.num_frames
        v.get([0, n - 1])
        return v.num_frames
    finally:
        v.close()

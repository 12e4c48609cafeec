"""Face detection and cropping for raw videos (OpenCV's bundled Haar cascade).

One box per clip: the face is detected on every k-th frame, the detections are reduced to one smoothed
box (median centre and size), enlarged by a margin, made square and clamped to the frame; every frame
is then cropped with that box and resized to ``size`` x ``size``. The output is a folder of jpg frames
(``00001.jpg``, ...) or a video (``.mp4``/``.avi`` output path, fourcc 'mp4v'). When no face is found
a :class:`NoFaceError` with a clear message is raised, unless ``fallback='center'`` asks for a centred
square crop instead.

Library use (the predict command imports this)::

    from preprocess.face_crop import crop_face_video
    info = crop_face_video("clip.mp4", "clip_face.mp4", size=224, fallback="center")

Command line, over one video or a folder of videos (the output mirrors the input layout; a frame
folder is ``<output>/<relative path without extension>``, the layout ``--frames_root`` of the dataset
scripts expects)::

    python -m preprocess.face_crop --input /data/CREMA-D/VideoFlash --output /data/CREMA-D/faces \
        --format frames --size 224 --fallback center --workers 4
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from datasets.video_reader import probe_fps
from engine.logger import progress_iter

Box = Tuple[int, int, int, int]          # x0, y0, x1, y1 (exclusive), pixel coordinates
Detection = Tuple[float, float, float, float]  # x, y, w, h

CASCADE_FILE = "haarcascade_frontalface_default.xml"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_OUT_EXTS = (".mp4", ".avi", ".mov", ".mkv")
_CASCADE = None


class NoFaceError(RuntimeError):
    """No face was detected in a clip (and no fallback was asked for)."""


class VideoReadError(RuntimeError):
    """The input could not be read."""


# ----------------------------------------------------------------------------------------------
# detection

def load_cascade() -> "cv2.CascadeClassifier":
    global _CASCADE
    if _CASCADE is None:
        path = os.path.join(cv2.data.haarcascades, CASCADE_FILE)
        c = cv2.CascadeClassifier(path)
        if c.empty():
            raise RuntimeError(f"could not load the Haar cascade {path}")
        _CASCADE = c
    return _CASCADE


def detect_faces(frame: np.ndarray, min_face: float = 0.1, scale_factor: float = 1.1,
                 min_neighbors: int = 5) -> List[Detection]:
    """Haar-cascade face detections ``(x, y, w, h)`` in a BGR (or gray) frame, largest first."""
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    gray = cv2.equalizeHist(gray)
    m = max(16, int(min(gray.shape[:2]) * min_face))
    found = load_cascade().detectMultiScale(gray, scaleFactor=scale_factor,
                                            minNeighbors=min_neighbors, minSize=(m, m))
    dets = [tuple(float(v) for v in d) for d in (found if len(found) else [])]
    return sorted(dets, key=lambda d: -d[2] * d[3])


def smooth_box(detections: Sequence[Optional[Detection]], frame_w: int, frame_h: int,
               margin: float = 0.25) -> Optional[Box]:
    """One square box for a clip from per-frame detections (None entries = no face on that frame).

    Median centre and median size of the detections; the side is ``max(w, h) * (1 + 2 * margin)``
    (``margin`` of the face size added on every side), capped at the shorter frame side; the box is
    then shifted to lie inside the frame. Returns None when there is no detection.
    """
    dets = np.asarray([d for d in detections if d is not None], dtype=np.float64).reshape(-1, 4)
    if len(dets) == 0:
        return None
    cx = float(np.median(dets[:, 0] + dets[:, 2] / 2))
    cy = float(np.median(dets[:, 1] + dets[:, 3] / 2))
    side = float(max(np.median(dets[:, 2]), np.median(dets[:, 3]))) * (1 + 2 * margin)
    return square_box(cx, cy, side, frame_w, frame_h)


def square_box(cx: float, cy: float, side: float, frame_w: int, frame_h: int) -> Box:
    """The square of ``side`` centred at (cx, cy), shrunk to fit and shifted inside the frame."""
    side = int(round(min(max(side, 1.0), frame_w, frame_h)))
    x0 = int(round(cx - side / 2))
    y0 = int(round(cy - side / 2))
    x0 = min(max(x0, 0), frame_w - side)
    y0 = min(max(y0, 0), frame_h - side)
    return x0, y0, x0 + side, y0 + side


def center_box(frame_w: int, frame_h: int, fraction: float = 1.0) -> Box:
    """The centred square of side ``fraction`` x the shorter frame side."""
    return square_box(frame_w / 2, frame_h / 2, min(frame_w, frame_h) * fraction, frame_w, frame_h)


def crop_resize(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    crop = frame[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)


# ----------------------------------------------------------------------------------------------
# reading / writing

def iter_frames(path: str) -> Iterator[np.ndarray]:
    """BGR frames of a video file or of a folder of images (natural order)."""
    if os.path.isdir(path):
        from preprocess.common import natural_key
        names = sorted((n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTS)), key=natural_key)
        for n in names:
            img = cv2.imread(os.path.join(path, n), cv2.IMREAD_COLOR)
            if img is None:
                raise VideoReadError(f"cannot read image {os.path.join(path, n)}")
            yield img
        return
    if not os.path.exists(path):
        raise VideoReadError(f"no such file: {path}")
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise VideoReadError(f"cannot open video {path}")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield frame
    finally:
        cap.release()


def video_fps(path: str, default: float = 25.0) -> float:
    return probe_fps(path) or default


def is_video_output(out_path: str, out_format: Optional[str] = None) -> bool:
    if out_format:
        if out_format not in ("frames", "mp4", "video"):
            raise ValueError(f"out_format must be 'frames' or 'mp4', not {out_format!r}")
        return out_format != "frames"
    return os.path.splitext(out_path)[1].lower() in VIDEO_OUT_EXTS


# ----------------------------------------------------------------------------------------------
# the library function

def crop_face_video(in_path: str, out_path: str, size: int = 224, detect_every: int = 5,
                    margin: float = 0.25, fallback: Optional[str] = None, out_format: Optional[str] = None,
                    min_face: float = 0.1, center_fraction: float = 1.0, fps: Optional[float] = None,
                    jpg_quality: int = 95,
                    detector: Optional[Callable[[np.ndarray], Sequence[Detection]]] = None) -> Dict:
    """Crop the face of one clip (video file or frame folder) to ``size`` x ``size`` frames.

    ``out_path`` ending in .mp4/.avi (or ``out_format='mp4'``) writes a video (fourcc 'mp4v'),
    otherwise a folder of ``00001.jpg``, ``00002.jpg``, .... Faces are detected on frames 0, k, 2k, ...
    (``detect_every`` = k) with ``detector`` (default: the Haar cascade; it returns ``(x, y, w, h)``
    boxes, the largest is used) and reduced to one box by :func:`smooth_box`.

    No face: ``fallback='center'`` crops the centred square (``center_fraction`` of the shorter
    side); otherwise :class:`NoFaceError` is raised and nothing is written.

    Returns a dict: in_path, out_path, status ('face' | 'center_fallback'), box (x0, y0, x1, y1),
    frame_size (w, h), num_frames, num_checked, num_detected, fps, message.
    """
    if fallback not in (None, "none", "center", "centre"):
        raise ValueError(f"fallback must be None or 'center', not {fallback!r}")
    detect_every = max(1, int(detect_every))
    detector = detector or (lambda f: detect_faces(f, min_face=min_face))
    # pass 1: detect on every k-th frame
    dets: List[Optional[Detection]] = []
    n = 0
    w = h = 0
    for i, frame in enumerate(iter_frames(in_path)):
        h, w = frame.shape[:2]
        n += 1
        if i % detect_every == 0:
            found = list(detector(frame))
            if found:
                found = sorted(found, key=lambda d: -d[2] * d[3])
            dets.append(tuple(found[0]) if found else None)
    if n == 0:
        raise VideoReadError(f"no frame could be decoded from {in_path}")
    n_det = sum(d is not None for d in dets)
    box = smooth_box(dets, w, h, margin)
    if box is not None:
        status, msg = "face", f"face found on {n_det} of {len(dets)} checked frames"
    elif fallback in ("center", "centre"):
        box = center_box(w, h, center_fraction)
        status = "center_fallback"
        msg = (f"no face found in {in_path} ({len(dets)} frames checked, every {detect_every}th); "
               f"used a centre crop instead")
    else:
        raise NoFaceError(f"no face found in {in_path} ({len(dets)} of {n} frames checked, every "
                          f"{detect_every}th, {w}x{h}); try a smaller --min_face or --every 1, or "
                          f"--fallback center for a centre crop")
    # pass 2: crop every frame
    as_video = is_video_output(out_path, out_format)
    out_fps = fps or video_fps(in_path)
    written = 0
    if as_video:
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*"mp4v"), out_fps, (size, size))
        if not writer.isOpened():
            raise RuntimeError(f"cannot open a video writer for {out_path}")
        try:
            for frame in iter_frames(in_path):
                writer.write(crop_resize(frame, box, size))
                written += 1
        finally:
            writer.release()
    else:
        os.makedirs(out_path, exist_ok=True)
        params = [int(cv2.IMWRITE_JPEG_QUALITY), int(jpg_quality)]
        for frame in iter_frames(in_path):
            written += 1
            cv2.imwrite(os.path.join(out_path, f"{written:05d}.jpg"), crop_resize(frame, box, size), params)
    return {"in_path": in_path, "out_path": out_path, "status": status, "box": tuple(int(v) for v in box),
            "frame_size": (w, h), "num_frames": written, "num_checked": len(dets),
            "num_detected": n_det, "fps": out_fps, "message": msg}


# ----------------------------------------------------------------------------------------------
# command line

def list_inputs(inp: str, exts: Sequence[str]) -> List[Tuple[str, str]]:
    """(path, path relative to the input folder) of every video below ``inp`` (or ``inp`` itself)."""
    from preprocess.common import natural_key
    if os.path.isfile(inp):
        return [(inp, os.path.basename(inp))]
    out = []
    for dirpath, dirs, files in os.walk(inp):
        dirs.sort(key=natural_key)
        for fn in sorted(files, key=natural_key):
            if os.path.splitext(fn)[1].lower() in exts:
                full = os.path.join(dirpath, fn)
                out.append((full, os.path.relpath(full, inp)))
    return out


def output_path(output: str, rel: str, fmt: str) -> str:
    stem = os.path.splitext(rel)[0]
    return os.path.join(output, stem if fmt == "frames" else stem + "." + fmt)


def _job(a):
    in_path, out_path, kw = a
    try:
        return crop_face_video(in_path, out_path, **kw)
    except Exception as e:  # noqa: BLE001 - reported in the failure list
        return {"in_path": in_path, "out_path": out_path, "status": "failed",
                "message": f"{type(e).__name__}: {e}"}


def main(argv=None):
    p = argparse.ArgumentParser(description="Crop faces from videos with OpenCV's Haar cascade.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--input", required=True, help="a video, or a folder searched recursively")
    p.add_argument("--output", required=True, help="output folder (mirrors the input layout)")
    p.add_argument("--format", choices=("frames", "mp4", "avi"), default="frames")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--every", type=int, default=5, help="detect on every k-th frame")
    p.add_argument("--margin", type=float, default=0.25, help="added on each side, x face size")
    p.add_argument("--min_face", type=float, default=0.1, help="smallest face, x shorter frame side")
    p.add_argument("--fallback", choices=("none", "center"), default="none",
                   help="what to do when no face is found: fail (listed) or crop the centre")
    p.add_argument("--ext", default="mp4,avi,flv,mkv,mov,webm,mpg,m4v",
                   help="comma-separated video extensions to process")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--overwrite", action="store_true", help="redo clips whose output exists")
    args = p.parse_args(argv)
    exts = tuple("." + e.strip().lstrip(".").lower() for e in args.ext.split(",") if e.strip())
    if not os.path.exists(args.input):
        raise SystemExit(f"face_crop: --input {args.input}: no such file or folder")
    inputs = list_inputs(args.input, exts)
    if not inputs:
        raise SystemExit(f"face_crop: no videos ({', '.join(exts)}) found in {args.input}")
    kw = dict(size=args.size, detect_every=args.every, margin=args.margin, min_face=args.min_face,
              fallback=None if args.fallback == "none" else "center",
              out_format="frames" if args.format == "frames" else "mp4")
    jobs, skipped = [], 0
    for full, rel in inputs:
        out = output_path(args.output, rel, args.format)
        if not args.overwrite and os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
            skipped += 1
            continue
        jobs.append((full, out, kw))
    if skipped:
        print(f"{skipped} clips already done (use --overwrite to redo)")
    results = []
    if args.workers > 1 and len(jobs) > 1:
        import multiprocessing as mp
        with mp.Pool(args.workers) as pool:
            for r in progress_iter(pool.imap(_job, jobs), len(jobs), "face crop", "clips"):
                results.append(r)
    else:
        for j in progress_iter(jobs, len(jobs), "face crop", "clips"):
            results.append(_job(j))
    failed = [r for r in results if r["status"] == "failed"]
    fallback = [r for r in results if r["status"] == "center_fallback"]
    print(f"done: {len(results) - len(failed)} of {len(results)} clips cropped "
          f"({len(fallback)} with the centre-crop fallback), {len(failed)} failed")
    if fallback:
        print("centre-crop fallback (no face found):")
        for r in fallback:
            print(f"  {r['in_path']}")
    if failed:
        os.makedirs(args.output, exist_ok=True)
        fail_file = os.path.join(args.output, "face_crop_failures.txt")
        with open(fail_file, "w", encoding="utf-8") as f:
            for r in failed:
                f.write(f"{r['in_path']}\t{r['message']}\n")
        print(f"failures (also in {fail_file}):")
        for r in failed:
            print(f"  {r['in_path']}: {r['message']}")
    sys.stdout.flush()
    if results and len(failed) == len(results):
        raise SystemExit(f"face_crop: all {len(results)} clips failed (listed in {fail_file})")
    return results


if __name__ == "__main__":
    main()

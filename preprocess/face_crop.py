"""Face detection and cropping for raw videos: one smoothed box per shot.

A clip is first cut into shots: a frame whose colours or layout differ from the previous frame's by
more than ``shot_threshold`` (:func:`shot_distance`) starts a new shot, so a multi-shot video
(an interview cutting between cameras) gets a box for each shot instead of one box that cuts faces
off. Within a shot faces are detected on every k-th frame (the shot's first frame included). The
detections are linked across frames into tracks, and the face is the track with the highest score:
the sum over its frames of size x centrality x confidence, so a face seen on every checked frame
beats a larger detection that fires once on the shoulders. The chosen track becomes one box
(median centre and size), enlarged by a margin, made square and clamped to the frame; every frame
of the shot is cropped with it and resized to ``size`` x ``size``. A shot without a face borrows
the box of the nearest shot that has one.

Detectors (``--detector``): ``mtcnn`` (facenet-pytorch's MTCNN, whose weights ship inside the
package; ``pip install --no-deps facenet-pytorch``, as ``scripts/_venv.sh`` does), ``haar`` (OpenCV's
bundled frontal-face cascade) and ``auto`` (MTCNN when installed, else Haar). Measured detection
rates: docs/preprocess.md. The output is a folder of jpg frames (``00001.jpg``, ...) or a video
(``.mp4``/``.avi`` output path, fourcc 'mp4v'). When no face is found in any shot a
:class:`NoFaceError` with a clear message is raised, unless ``fallback='center'`` asks for a
centred square crop instead.

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


class DetectorUnavailable(RuntimeError):
    """The requested face detector is not installed."""


class HaarDetector:
    """OpenCV's frontal-face cascade: ``frame (BGR) -> [(x, y, w, h, 1.0)]``."""
    name = "haar"

    def __init__(self, min_face: float = 0.1):
        self.min_face = min_face
        load_cascade()

    def __call__(self, frame: np.ndarray):
        return [d + (1.0,) for d in detect_faces(frame, min_face=self.min_face)]


class MTCNNDetector:
    """MTCNN (facenet-pytorch, weights inside the package): ``frame (BGR) -> [(x, y, w, h, p)]``
    for detections of probability >= ``threshold``."""
    name = "mtcnn"

    def __init__(self, min_face: float = 0.1, threshold: float = 0.9, device: str = "cpu"):
        try:
            from facenet_pytorch import MTCNN
        except ImportError as e:
            raise DetectorUnavailable(
                f"the MTCNN detector needs facenet-pytorch ({e}); install it with "
                f"'pip install --no-deps facenet-pytorch requests' or use --detector haar") from None
        self.model = MTCNN(keep_all=True, device=device)
        self.min_face, self.threshold = min_face, threshold

    def __call__(self, frame: np.ndarray):
        self.model.min_face_size = max(20, int(min(frame.shape[:2]) * self.min_face))
        rgb = np.ascontiguousarray(frame[:, :, ::-1] if frame.ndim == 3 else
                                   np.repeat(frame[:, :, None], 3, axis=2))
        boxes, probs = self.model.detect(rgb)
        if boxes is None:
            return []
        return [(float(x0), float(y0), float(x1 - x0), float(y1 - y0), float(p))
                for (x0, y0, x1, y1), p in zip(boxes, probs) if p is not None and p >= self.threshold]


DETECTORS = ("auto", "mtcnn", "haar")


_DETECTOR_CACHE: Dict[Tuple[str, float], Callable] = {}


def make_detector(name: str = "auto", min_face: float = 0.1):
    """``'mtcnn'`` | ``'haar'`` | ``'auto'`` (MTCNN when facenet-pytorch is installed, else Haar).
    One instance per process and setting (the MTCNN weights load once)."""
    if name not in DETECTORS:
        raise ValueError(f"detector must be one of {DETECTORS}, not {name!r}")
    key = (name, float(min_face))
    if key not in _DETECTOR_CACHE:
        det = None
        if name in ("auto", "mtcnn"):
            try:
                det = MTCNNDetector(min_face)
            except DetectorUnavailable:
                if name == "mtcnn":
                    raise
        _DETECTOR_CACHE[key] = det or HaarDetector(min_face)
    return _DETECTOR_CACHE[key]


# ----------------------------------------------------------------------------------------------
# shots and the choice of the face

SHOT_THRESHOLD = 0.4


def frame_signature(frame: np.ndarray):
    """What shot-cut detection compares: a normalised HSV histogram (8 x 4 x 4 bins) and a 16 x 16
    grey thumbnail of a BGR frame."""
    small = cv2.resize(frame, (64, 64), interpolation=cv2.INTER_AREA)
    if small.ndim == 2:
        small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256])
    hist = cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1).astype(np.float32)
    thumb = cv2.resize(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (16, 16), interpolation=cv2.INTER_AREA)
    return hist, thumb.astype(np.float32) / 255.0


def shot_distance(a, b) -> float:
    """How different two :func:`frame_signature` s are, 0..1: the larger of the colour histograms'
    Bhattacharyya distance and 3 x the thumbnails' mean absolute difference (a cut between two
    cameras on the same scene changes the layout more than the colours)."""
    colours = float(cv2.compareHist(a[0], b[0], cv2.HISTCMP_BHATTACHARYYA))
    layout = min(1.0, 3.0 * float(np.abs(a[1] - b[1]).mean()))
    return max(colours, layout)


def choose_face_track(dets_per_frame: Sequence[Sequence[Sequence[float]]], frame_w: int,
                      frame_h: int) -> List[Detection]:
    """The detections ``(x, y, w, h)`` of the face to keep, from all detections of each checked
    frame (``(x, y, w, h[, confidence])``).

    Detections are linked into tracks (centre within half a face size of the track's last one, size
    within 1.5x); a track scores the sum over its frames of relative size x centrality x
    confidence, and the best track wins. Returns [] when nothing was detected.
    """
    short, half_diag = min(frame_w, frame_h), 0.5 * float(np.hypot(frame_w, frame_h))
    tracks: List[dict] = []
    for dets in dets_per_frame:
        free = list(range(len(tracks)))
        for d in sorted(dets, key=lambda d: -(d[2] * d[3]) * (d[4] if len(d) > 4 else 1.0)):
            x, y, w, h = (float(v) for v in d[:4])
            conf = float(d[4]) if len(d) > 4 else 1.0
            cx, cy, side = x + w / 2, y + h / 2, max(w, h)
            best, best_dist = None, None
            for t in free:
                tx, ty, ts = tracks[t]["last"]
                dist = float(np.hypot(cx - tx, cy - ty))
                if dist <= 0.5 * max(side, ts) and 1 / 1.5 <= side / ts <= 1.5 and                         (best is None or dist < best_dist):
                    best, best_dist = t, dist
            centrality = 1.0 - 0.5 * min(1.0, np.hypot(cx - frame_w / 2, cy - frame_h / 2) / half_diag)
            score = (side / short) * centrality * conf
            if best is None:
                tracks.append({"last": (cx, cy, side), "dets": [], "score": 0.0})
                best = len(tracks) - 1
            else:
                free.remove(best)
            tracks[best]["last"] = (cx, cy, side)
            tracks[best]["dets"].append((x, y, w, h))
            tracks[best]["score"] += score
    if not tracks:
        return []
    return max(tracks, key=lambda t: t["score"])["dets"]


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
                    jpg_quality: int = 95, detector="auto",
                    shot_threshold: float = SHOT_THRESHOLD) -> Dict:
    """Crop the face of one clip (video file or frame folder) to ``size`` x ``size`` frames.

    ``out_path`` ending in .mp4/.avi (or ``out_format='mp4'``) writes a video (fourcc 'mp4v'),
    otherwise a folder of ``00001.jpg``, ``00002.jpg``, .... ``detector``: a name of
    :data:`DETECTORS` or a callable ``frame (BGR) -> [(x, y, w, h[, confidence])]``. Shots are cut
    where consecutive frames' colours differ by more than ``shot_threshold`` (1 or more: one shot);
    in each, faces are detected on its frames 0, k, 2k, ... (``detect_every`` = k), the face is
    chosen by :func:`choose_face_track` and reduced to one box by :func:`smooth_box`.

    No face in any shot: ``fallback='center'`` crops the centred square (``center_fraction`` of the
    shorter side); otherwise :class:`NoFaceError` is raised and nothing is written.

    Returns a dict: in_path, out_path, status ('face' | 'center_fallback'), box (x0, y0, x1, y1; of
    the longest shot), shots (one dict per shot: start, end, box, status 'face' | 'borrowed' |
    'center_fallback', num_checked, num_detected), frame_size (w, h), num_frames, num_checked,
    num_detected, fps, detector, message.
    """
    if fallback not in (None, "none", "center", "centre"):
        raise ValueError(f"fallback must be None or 'center', not {fallback!r}")
    detect_every = max(1, int(detect_every))
    detect = make_detector(detector, min_face) if isinstance(detector, str) else detector
    # pass 1: cut into shots, detect on every k-th frame of each shot
    shots: List[dict] = []
    prev_sig = None
    n = w = h = 0
    for i, frame in enumerate(iter_frames(in_path)):
        h, w = frame.shape[:2]
        n += 1
        sig = frame_signature(frame)
        if prev_sig is None or shot_distance(sig, prev_sig) > shot_threshold:
            shots.append({"start": i, "dets": []})
        prev_sig = sig
        shot = shots[-1]
        if (i - shot["start"]) % detect_every == 0:
            shot["dets"].append(list(detect(frame)))
    if n == 0:
        raise VideoReadError(f"no frame could be decoded from {in_path}")
    for k, shot in enumerate(shots):
        shot["end"] = shots[k + 1]["start"] if k + 1 < len(shots) else n
        track = choose_face_track(shot["dets"], w, h)
        shot["num_checked"] = len(shot["dets"])
        shot["num_detected"] = sum(bool(d) for d in shot.pop("dets"))
        shot["box"] = smooth_box(track, w, h, margin)
        shot["status"] = "face" if shot["box"] is not None else None
    with_face = [k for k, sh in enumerate(shots) if sh["box"] is not None]
    n_checked = sum(sh["num_checked"] for sh in shots)
    n_det = sum(sh["num_detected"] for sh in shots)
    if with_face:
        status = "face"
        for k, shot in enumerate(shots):
            if shot["box"] is None:
                near = min(with_face, key=lambda j: abs(j - k))
                shot["box"], shot["status"] = shots[near]["box"], "borrowed"
        msg = f"face found on {n_det} of {n_checked} checked frames"
        if len(shots) > 1:
            msg += (f", {len(shots)} shots ({len(with_face)} with a face"
                    + (f", {len(shots) - len(with_face)} borrowing the nearest shot's box"
                       if len(with_face) < len(shots) else "") + ")")
    elif fallback in ("center", "centre"):
        status = "center_fallback"
        for shot in shots:
            shot["box"], shot["status"] = center_box(w, h, center_fraction), "center_fallback"
        msg = (f"no face found in {in_path} ({n_checked} frames checked, every {detect_every}th); "
               f"used a centre crop instead")
    else:
        raise NoFaceError(f"no face found in {in_path} ({n_checked} of {n} frames checked, every "
                          f"{detect_every}th, {w}x{h}); try a smaller --min_face or --every 1, or "
                          f"--fallback center for a centre crop")
    boxes = np.empty(n, dtype=object)
    for shot in shots:
        shot["box"] = tuple(int(v) for v in shot["box"])
        boxes[shot["start"]:shot["end"]] = [shot["box"]] * (shot["end"] - shot["start"])
    # pass 2: crop every frame with its shot's box
    as_video = is_video_output(out_path, out_format)
    out_fps = fps or video_fps(in_path)
    written = 0
    if as_video:
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*"mp4v"), out_fps, (size, size))
        if not writer.isOpened():
            raise RuntimeError(f"cannot open a video writer for {out_path}")
        try:
            for i, frame in enumerate(iter_frames(in_path)):
                if i >= n:
                    break
                writer.write(crop_resize(frame, boxes[i], size))
                written += 1
        finally:
            writer.release()
    else:
        os.makedirs(out_path, exist_ok=True)
        params = [int(cv2.IMWRITE_JPEG_QUALITY), int(jpg_quality)]
        for i, frame in enumerate(iter_frames(in_path)):
            if i >= n:
                break
            written += 1
            cv2.imwrite(os.path.join(out_path, f"{written:05d}.jpg"), crop_resize(frame, boxes[i], size),
                        params)
    longest = max(shots, key=lambda sh: sh["end"] - sh["start"])
    return {"in_path": in_path, "out_path": out_path, "status": status, "box": longest["box"],
            "shots": shots, "frame_size": (w, h), "num_frames": written, "num_checked": n_checked,
            "num_detected": n_det, "fps": out_fps,
            "detector": getattr(detect, "name", "custom"), "message": msg}


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
    p = argparse.ArgumentParser(description="Crop faces from videos: one smoothed box per shot.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--input", required=True, help="a video, or a folder searched recursively")
    p.add_argument("--output", required=True, help="output folder (mirrors the input layout)")
    p.add_argument("--format", choices=("frames", "mp4", "avi"), default="frames",
                   help="output per clip: a folder of 00001.jpg ... frames, or a video")
    p.add_argument("--size", type=int, default=224, help="side of the square output frames (pixels)")
    p.add_argument("--every", type=int, default=5, help="detect on every k-th frame")
    p.add_argument("--margin", type=float, default=0.25, help="added on each side, x face size")
    p.add_argument("--min_face", type=float, default=0.1, help="smallest face, x shorter frame side")
    p.add_argument("--detector", choices=DETECTORS, default="auto",
                   help="face detector: MTCNN (facenet-pytorch) when installed, else OpenCV's Haar")
    p.add_argument("--shot_threshold", type=float, default=SHOT_THRESHOLD,
                   help="colour-histogram distance between frames that starts a new shot (1: one shot)")
    p.add_argument("--fallback", choices=("none", "center"), default="none",
                   help="what to do when no face is found: fail (listed) or crop the centre")
    p.add_argument("--ext", default="mp4,avi,flv,mkv,mov,webm,mpg,m4v",
                   help="comma-separated video extensions to process")
    p.add_argument("--workers", type=int, default=1, help="clips cropped in parallel (processes)")
    p.add_argument("--overwrite", action="store_true", help="redo clips whose output exists")
    args = p.parse_args(argv)
    exts = tuple("." + e.strip().lstrip(".").lower() for e in args.ext.split(",") if e.strip())
    if not os.path.exists(args.input):
        raise SystemExit(f"face_crop: --input {args.input}: no such file or folder")
    inputs = list_inputs(args.input, exts)
    if not inputs:
        raise SystemExit(f"face_crop: no videos ({', '.join(exts)}) found in {args.input}")
    try:
        make_detector(args.detector, args.min_face)  # a missing detector: one line, before any clip
    except DetectorUnavailable as e:
        raise SystemExit(f"face_crop: {e}")
    kw = dict(size=args.size, detect_every=args.every, margin=args.margin, min_face=args.min_face,
              detector=args.detector, shot_threshold=args.shot_threshold,
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

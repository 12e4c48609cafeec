"""One face track per video: which person to follow, where the face is on every frame, and where
there is no face. ``preprocess.face_crop``, ``tools.predict`` and ``tools.extract_features`` all
crop with it.

:func:`track_faces` decodes the video once (``datasets.video_reader.iter_frames``: the displayed
frames, the ones training and prediction read) and:

1. cuts it into **shots** where consecutive frames' colours or layout jump (:func:`shot_distance`);
   a flat frame (a black or white transition) has no face;
2. **detects** faces on each shot's first and last frame and on every ``detect_every``-th frame
   between (the detections are *checks*);
3. **links** the detections of a shot into tracklets (centre within half a face size of the
   tracklet's last detection, size within 1.5x); where a tracklet starts or ends between two checks,
   the frames in between are searched by bisection, so a face span starts and ends on the right
   frame (the checks' frames are held, ``detect_every`` at most);
4. **groups** tracklets into people: within a shot, a tracklet that resumes where another of no
   overlapping time ended; across shots, by the colour histogram of the head and shoulders
   (Bhattacharyya distance below ``same_person``); never two tracklets of one person on one frame;
5. **chooses** the person with the largest sum, over its detections, of face size x centrality x
   detector confidence: size, centrality and time on screen all count; :attr:`FaceTrack.choice`
   says why, in words;
6. gives that person's face box on every frame of its tracklets (interpolated between checks,
   then smoothed over time within each span, Gaussian of ``smooth_s`` seconds) and ``None``
   elsewhere.

The track is saved next to a crop as a small JSON sidecar (:meth:`FaceTrack.save`) that a later
run reuses (:func:`load_track`) instead of detecting again.

Detectors (``detector=``): ``mtcnn`` (facenet-pytorch's MTCNN, whose weights ship inside the
package; ``pip install --no-deps facenet-pytorch``, as ``scripts/_venv.sh`` does), ``haar``
(OpenCV's bundled frontal-face cascade), ``auto`` (MTCNN when installed, else Haar), or a callable
``frame (RGB) -> [(x, y, w, h[, confidence])]``.
"""
from __future__ import annotations

import bisect
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from datasets.atomic_file import atomic_write_text
from datasets.video_reader import VideoReadError, iter_frames, probe_fps

Box = Tuple[int, int, int, int]              # x0, y0, x1, y1 (exclusive), pixel coordinates
Face = Tuple[float, float, float]            # centre x, centre y, side (the larger of w and h)
Detection = Tuple[float, float, float, float, float]   # x, y, w, h, confidence

SIDECAR_VERSION = 1
SHOT_THRESHOLD = 0.4
CASCADE_FILE = "haarcascade_frontalface_default.xml"
DETECTORS = ("auto", "mtcnn", "haar")


@dataclass(frozen=True)
class TrackSettings:
    """How a track is made (saved in the sidecar: a track is reused only with the same settings).

    ``detect_every``: frames between checks; ``min_face``: smallest face, x the shorter frame side;
    ``shot_threshold``: :func:`shot_distance` that starts a new shot (1: one shot); ``smooth_s``:
    sigma of the boxes' smoothing over time, seconds; ``max_gap_s``: longest gap between two
    tracklets of the person in one shot that is bridged (a detector's miss), seconds;
    ``same_person``: largest head-and-shoulders colour distance of one person across shots."""
    detect_every: int = 5
    min_face: float = 0.1
    shot_threshold: float = SHOT_THRESHOLD
    smooth_s: float = 0.3
    max_gap_s: float = 0.5
    same_person: float = 0.35


# ----------------------------------------------------------------------------------------------
# detectors

class DetectorUnavailable(RuntimeError):
    """The requested face detector is not installed."""


class HaarDetector:
    """OpenCV's frontal-face cascade: ``frame (RGB) -> [(x, y, w, h, 1.0)]``, largest first."""
    name = "haar"

    def __init__(self, min_face: float = 0.1, scale_factor: float = 1.1, min_neighbors: int = 5):
        path = os.path.join(cv2.data.haarcascades, CASCADE_FILE)
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise DetectorUnavailable(f"could not load the Haar cascade {path}")
        self.min_face, self.scale_factor, self.min_neighbors = min_face, scale_factor, min_neighbors

    def __call__(self, frame: np.ndarray) -> List[Detection]:
        grey = cv2.equalizeHist(frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
        m = max(16, int(min(grey.shape[:2]) * self.min_face))
        found = self.cascade.detectMultiScale(grey, scaleFactor=self.scale_factor,
                                              minNeighbors=self.min_neighbors, minSize=(m, m))
        dets = [tuple(float(v) for v in d) + (1.0,) for d in (found if len(found) else [])]
        return sorted(dets, key=lambda d: -d[2] * d[3])


class MTCNNDetector:
    """MTCNN (facenet-pytorch, weights inside the package): ``frame (RGB) -> [(x, y, w, h, p)]``
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

    def __call__(self, frame: np.ndarray) -> List[Detection]:
        self.model.min_face_size = max(20, int(min(frame.shape[:2]) * self.min_face))
        rgb = frame if frame.ndim == 3 else np.repeat(frame[:, :, None], 3, axis=2)
        boxes, probs = self.model.detect(np.ascontiguousarray(rgb))
        if boxes is None:
            return []
        return [(float(x0), float(y0), float(x1 - x0), float(y1 - y0), float(p))
                for (x0, y0, x1, y1), p in zip(boxes, probs) if p is not None and p >= self.threshold]


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


def _as_detections(found) -> List[Detection]:
    return [tuple(float(v) for v in d[:4]) + (float(d[4]) if len(d) > 4 else 1.0,) for d in found]


# ----------------------------------------------------------------------------------------------
# shots, blank frames, appearance

def frame_signature(frame: np.ndarray):
    """What shot-cut detection compares: a normalised HSV histogram (8 x 4 x 4 bins) and a 16 x 16
    grey thumbnail (values 0..1) of an RGB frame."""
    small = cv2.resize(frame, (64, 64), interpolation=cv2.INTER_AREA)
    if small.ndim == 2:
        small = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256])
    hist = cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1).astype(np.float32)
    thumb = cv2.resize(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (16, 16), interpolation=cv2.INTER_AREA)
    return hist, thumb.astype(np.float32) / 255.0


def shot_distance(a, b) -> float:
    """How different two :func:`frame_signature` s are, 0..1: the larger of the colour histograms'
    Bhattacharyya distance and 3 x the thumbnails' mean absolute difference (a cut between two
    cameras on the same scene changes the layout more than the colours)."""
    colours = float(cv2.compareHist(a[0], b[0], cv2.HISTCMP_BHATTACHARYYA))
    layout = min(1.0, 3.0 * float(np.abs(a[1] - b[1]).mean()))
    return max(colours, layout)


def is_blank(signature, flat: float = 0.02) -> bool:
    """A frame of one colour (black or white transitions): its thumbnail's spread is below ``flat``."""
    return float(signature[1].std()) < flat


def appearance(frame: np.ndarray, face: Face) -> np.ndarray:
    """A colour description of a person: the hue-saturation histogram (16 x 8, normalised) of the
    head and shoulders, a square of 2 face sides around the face, moved down by half a side."""
    h, w = frame.shape[:2]
    cx, cy, side = face
    x0, x1 = int(max(0, cx - side)), int(min(w, cx + side))
    y0, y1 = int(max(0, cy - side / 2)), int(min(h, cy + 1.5 * side))
    patch = frame[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    hsv = cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
    return cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1).astype(np.float32)


def face_of(d: Sequence[float]) -> Face:
    x, y, w, h = (float(v) for v in d[:4])
    return x + w / 2, y + h / 2, max(w, h)


def face_score(face: Face, conf: float, frame_w: int, frame_h: int) -> float:
    """One detection's weight in choosing the person: face side (x the shorter frame side) x
    centrality (1 at the centre, 0.5 at a corner) x detector confidence."""
    cx, cy, side = face
    half_diag = 0.5 * float(np.hypot(frame_w, frame_h))
    centrality = 1.0 - 0.5 * min(1.0, float(np.hypot(cx - frame_w / 2, cy - frame_h / 2)) / half_diag)
    return side / min(frame_w, frame_h) * centrality * conf


def same_face(a: Face, b: Face) -> bool:
    """Two boxes of one face on nearby frames: centres within half a face size, sizes within 1.5x."""
    dist = float(np.hypot(a[0] - b[0], a[1] - b[1]))
    return dist <= 0.5 * max(a[2], b[2]) and 1 / 1.5 <= a[2] / max(b[2], 1e-6) <= 1.5


# ----------------------------------------------------------------------------------------------
# boxes

def square_box(cx: float, cy: float, side: float, frame_w: int, frame_h: int) -> Box:
    """The square of ``side`` centred at (cx, cy), shrunk to fit and shifted inside the frame."""
    side = int(round(min(max(side, 1.0), frame_w, frame_h)))
    x0 = min(max(int(round(cx - side / 2)), 0), frame_w - side)
    y0 = min(max(int(round(cy - side / 2)), 0), frame_h - side)
    return x0, y0, x0 + side, y0 + side


def center_box(frame_w: int, frame_h: int, fraction: float = 1.0) -> Box:
    """The centred square of side ``fraction`` x the shorter frame side."""
    return square_box(frame_w / 2, frame_h / 2, min(frame_w, frame_h) * fraction, frame_w, frame_h)


def crop_resize(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    """``frame[box]`` resized to ``size`` x ``size`` (area averaging when shrinking)."""
    x0, y0, x1, y1 = box
    crop = frame[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)


# ----------------------------------------------------------------------------------------------
# the track

@dataclass
class FaceTrack:
    """The followed face of one video: ``faces[i]`` = (centre x, centre y, side) on frame ``i``, or
    None where that person's face is not there."""
    num_frames: int
    frame_size: Tuple[int, int]                 # (width, height)
    fps: Optional[float]
    faces: List[Optional[Face]]
    shots: List[Tuple[int, int]]                # [start, end) of each shot
    detector: str
    detect_every: int
    people: int                                 # distinct people seen
    choice: str                                 # which person is followed, and why
    num_checked: int
    num_detected: int                           # checks that found the followed person
    settings: Dict = field(default_factory=dict)
    source: Dict = field(default_factory=dict)  # the video it describes (for reuse)
    _with_face: Optional[List[int]] = field(default=None, init=False, repr=False, compare=False)

    def spans(self) -> List[Tuple[int, int, bool]]:
        """``[(start, end, face present)]``: maximal runs of frames with and without the face,
        also split at shot cuts."""
        cuts = {s for s, _ in self.shots} | {self.num_frames}
        out, start = [], 0
        for i in range(1, self.num_frames + 1):
            if i in cuts or (self.faces[i] is not None) != (self.faces[start] is not None):
                out.append((start, i, self.faces[start] is not None))
                start = i
        return out

    @property
    def face_fraction(self) -> float:
        return sum(f is not None for f in self.faces) / max(self.num_frames, 1)

    def crop_box(self, i: int, margin: float = 0.25) -> Optional[Box]:
        """The square crop of frame ``i``: the face side plus ``margin`` of it on every side,
        inside the frame; None without a face."""
        f = self.faces[i]
        if f is None:
            return None
        w, h = self.frame_size
        return square_box(f[0], f[1], f[2] * (1 + 2 * margin), w, h)

    def nearest_face(self, i: int) -> Optional[int]:
        """The frame nearest to ``i`` that has the face (``i`` itself when it has; the earlier of
        two at the same distance), or None."""
        if self._with_face is None:
            self._with_face = [j for j, f in enumerate(self.faces) if f is not None]
        k = bisect.bisect_left(self._with_face, i)
        near = self._with_face[max(k - 1, 0):k + 1]
        return min(near, key=lambda j: (abs(j - i), j)) if near else None

    def save(self, path: str) -> str:
        """The sidecar: per-frame boxes (``null`` = no face), spans, shots, the detector and the
        choice, as JSON. Written atomically."""
        doc = asdict(self)
        doc.pop("_with_face")
        doc["version"] = SIDECAR_VERSION
        doc["faces"] = [None if f is None else [round(v, 2) for v in f] for f in self.faces]
        doc["spans"] = [{"start": s, "end": e, "face": bool(p)} for s, e, p in self.spans()]
        atomic_write_text(path, json.dumps(doc, indent=None, separators=(",", ":")))
        return path


def source_signature(path: str) -> Dict:
    """What identifies the video a sidecar describes: its name and size in bytes (a folder: the
    number of its files)."""
    if os.path.isdir(path):
        return {"name": os.path.basename(os.path.normpath(path)), "files": len(os.listdir(path))}
    return {"name": os.path.basename(path), "bytes": os.path.getsize(path)}


def load_track(sidecar: str, video: Optional[str] = None, settings: Optional[Dict] = None) -> Optional[FaceTrack]:
    """The track saved in ``sidecar``, or None when there is none, it cannot be read, or it was
    made from another video (``video``'s :func:`source_signature`) or with other detection
    ``settings``."""
    try:
        with open(sidecar, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    if doc.get("version") != SIDECAR_VERSION:
        return None
    if video is not None and doc.get("source") != source_signature(video):
        return None
    if settings is not None and doc.get("settings") != settings:
        return None
    doc.pop("version")
    doc.pop("spans", None)
    doc["faces"] = [None if f is None else tuple(f) for f in doc["faces"]]
    doc["frame_size"] = tuple(doc["frame_size"])
    doc["shots"] = [tuple(s) for s in doc["shots"]]
    return FaceTrack(**doc)


# ----------------------------------------------------------------------------------------------
# building the track

class _Tracklet:
    """Detections of one face within one shot: ``checks`` {frame: (face, confidence)}, the exact
    first and last frame it is on, and its appearance (mean histogram)."""

    def __init__(self, shot: int, frame: int, face: Face, conf: float, look: np.ndarray):
        self.shot, self.first, self.last = shot, frame, frame
        self.checks: Dict[int, Tuple[Face, float]] = {frame: (face, conf)}
        self.looks = [look]
        self.ended = False

    @property
    def last_face(self) -> Face:
        return self.checks[max(self.checks)][0]

    @property
    def first_face(self) -> Face:
        return self.checks[min(self.checks)][0]

    def add(self, frame: int, face: Face, conf: float, look: Optional[np.ndarray] = None):
        self.checks[frame] = (face, conf)
        self.first, self.last = min(self.first, frame), max(self.last, frame)
        if look is not None:
            self.looks.append(look)

    def look(self) -> np.ndarray:
        return np.mean(self.looks, axis=0).astype(np.float32)

    def score(self, frame_w: int, frame_h: int) -> float:
        """Sum of :func:`face_score` over its detections."""
        return sum(face_score(face, conf, frame_w, frame_h) for face, conf in self.checks.values())


class _Tracker:
    """Pass over the frames: shots, checks, tracklets with exact ends (see the module docstring)."""

    def __init__(self, detect, detect_every: int, shot_threshold: float):
        self.detect, self.k, self.shot_threshold = detect, max(1, int(detect_every)), shot_threshold
        self.shots: List[List[int]] = []        # [start, end]
        self.tracklets: List[_Tracklet] = []
        self.active: List[_Tracklet] = []       # seen at the shot's last check
        self.held: Dict[int, np.ndarray] = {}   # frames since the last check
        self.last_check: Optional[int] = None
        self.blank: set = set()
        self.num_checked = 0
        self.prev_sig = None
        self.n = 0

    def _detect(self, frame: np.ndarray) -> List[Tuple[Face, float]]:
        return [(face_of(d), d[4]) for d in _as_detections(self.detect(frame))]

    def feed(self, frame: np.ndarray) -> None:
        i = self.n
        self.n += 1
        sig = frame_signature(frame)
        if self.prev_sig is None or shot_distance(sig, self.prev_sig) > self.shot_threshold:
            self._end_shot()
            self.shots.append([i, i + 1])
        self.prev_sig = sig
        self.shots[-1][1] = i + 1
        if is_blank(sig):
            self.blank.add(i)
        self.held[i] = frame
        if (i - self.shots[-1][0]) % self.k == 0:
            self._check(i)

    def finish(self) -> None:
        self._end_shot()

    def _end_shot(self) -> None:
        if self.shots and self.last_check != self.shots[-1][1] - 1:
            self._check(self.shots[-1][1] - 1)          # every shot's last frame is checked
        for t in self.active:
            t.ended = True
        self.active, self.held, self.last_check = [], {}, None

    def _check(self, i: int) -> None:
        frame = self.held[i]
        self.num_checked += 1
        found = [] if i in self.blank else self._detect(frame)
        prev, shot = self.last_check, len(self.shots) - 1
        free = list(self.active)
        matched: List[_Tracklet] = []
        for face, conf in sorted(found, key=lambda fc: -fc[0][2] * fc[1]):
            best = min((t for t in free if same_face(face, t.last_face)),
                       key=lambda t: np.hypot(face[0] - t.last_face[0], face[1] - t.last_face[1]),
                       default=None)
            look = appearance(frame, face)
            if best is None:
                best = _Tracklet(shot, i, face, conf, look)
                self.tracklets.append(best)
                if prev is not None:              # appeared between the last check and this one
                    best.first = self._bisect(prev, i, face, present_at_low=False)
            else:
                free.remove(best)
                best.add(i, face, conf, look)
            matched.append(best)
        for t in free:                            # gone between the last check and this one
            t.last = self._bisect(prev, i, t.last_face, present_at_low=True) - 1
            t.ended = True
        self.active, self.last_check = matched, i
        self.held = {i: frame}

    def _bisect(self, lo: int, hi: int, face: Face, present_at_low: bool) -> int:
        """The first frame in (lo, hi] whose face state equals ``hi``'s, by detecting on the held
        frames in between (the face is present at ``lo`` xor at ``hi``)."""
        while hi - lo > 1:
            mid = (lo + hi) // 2
            here = mid not in self.blank and any(same_face(f, face) for f, _ in self._detect(self.held[mid]))
            self.num_checked += 1
            if here == present_at_low:
                lo = mid
            else:
                hi = mid
        return hi


def _people(tracklets: List[_Tracklet], same_person: float) -> List[List[_Tracklet]]:
    """Tracklets grouped into people, strongest first: each joins the most similar person (head and
    shoulders colours; within one shot, resuming where the person's last tracklet ended) it does
    not overlap in time, else starts a new one."""
    people: List[List[_Tracklet]] = []
    for t in sorted(tracklets, key=lambda t: -len(t.checks)):
        best, best_d = None, same_person
        for p in people:
            if any(not (t.last < q.first or q.last < t.first) for q in p):
                continue
            resumes = any(q.shot == t.shot and (same_face(q.last_face, t.first_face)
                                                or same_face(t.last_face, q.first_face)) for q in p)
            d = 0.0 if resumes else float(cv2.compareHist(np.mean([q.look() for q in p], axis=0),
                                                          t.look(), cv2.HISTCMP_BHATTACHARYYA))
            if d < best_d:
                best, best_d = p, d
        if best is None:
            people.append([t])
        else:
            best.append(t)
    return people


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0; the ends are extended by point reflection, so a face moving
    steadily is not pulled back at the start and end of its span."""
    r = min(int(3 * sigma + 0.5), len(values) - 1)
    if sigma <= 0 or r < 1:
        return values
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.concatenate([2 * values[:1] - values[r:0:-1], values, 2 * values[-1:] - values[-2:-r - 2:-1]])
    return np.stack([np.convolve(padded[:, c], k, mode="valid") for c in range(values.shape[1])], axis=1)


def _faces_of(person: List[_Tracklet], n: int, sigma: float, max_gap: int, shots: List[Tuple[int, int]],
              blank: set) -> List[Optional[Face]]:
    """Per-frame faces of one person: interpolated between its checks, constant to its tracklets'
    first and last frames, across gaps of at most ``max_gap`` frames between two of its tracklets
    in one shot (a detector's miss), never on a flat frame; then smoothed within each run of
    frames of one shot."""
    faces = np.full((n, 3), np.nan)
    checks: Dict[int, Face] = {}
    for t in person:
        frames = sorted(t.checks)
        vals = np.asarray([t.checks[f][0] for f in frames])
        span = np.arange(t.first, t.last + 1)
        for c in range(3):
            faces[span, c] = np.interp(span, frames, vals[:, c])
        checks.update({f: t.checks[f][0] for f in frames})
    by_time = sorted(person, key=lambda t: t.first)
    for a, b in zip(by_time, by_time[1:]):
        gap = range(a.last + 1, b.first)
        if a.shot == b.shot and 0 < len(gap) <= max_gap and not blank.intersection(gap):
            fa, fb = checks[max(a.checks)], checks[min(b.checks)]
            for c in range(3):
                faces[a.last + 1:b.first, c] = np.interp(list(gap), [a.last, b.first], [fa[c], fb[c]])
    faces[sorted(blank)] = np.nan
    present = ~np.isnan(faces[:, 0])
    cuts = {s for s, _ in shots}
    i = 0
    while i < n:
        if not present[i]:
            i += 1
            continue
        j = i + 1
        while j < n and present[j] and j not in cuts:
            j += 1
        faces[i:j] = _smooth(faces[i:j], sigma)
        i = j
    return [None if not present[i] else tuple(float(v) for v in faces[i]) for i in range(n)]


def _describe_choice(people: List[List[_Tracklet]], scores: List[float], n: int, w: int, h: int) -> str:
    if not people:
        return "no face detected"
    order = np.argsort(scores)[::-1]
    best = people[order[0]]
    on = sum(t.last - t.first + 1 for t in best)
    side = np.median([c[0][2] for t in best for c in t.checks.values()]) / min(w, h)
    text = (f"followed the face on screen in {100 * on / n:.0f}% of the frames, "
            f"{100 * side:.0f}% of the frame's shorter side")
    if len(people) > 1:
        text = (f"{len(people)} people seen; " + text
                + f" (score {scores[order[0]]:.2f}: size x centrality x time on screen; next "
                  f"{scores[order[1]]:.2f})")
    return text


def track_faces(path: str, detector="auto", settings: TrackSettings = TrackSettings(),
                keep_frames: int = 0) -> Tuple[FaceTrack, Optional[List[np.ndarray]]]:
    """The :class:`FaceTrack` of a video file or frame folder (module docstring), and its frames
    when they fit in ``keep_frames`` bytes (else None: decode again to use them). Raises
    :class:`VideoReadError` when nothing decodes."""
    detect = make_detector(detector, settings.min_face) if isinstance(detector, str) else detector
    tracker = _Tracker(detect, settings.detect_every, settings.shot_threshold)
    kept: Optional[List[np.ndarray]] = [] if keep_frames > 0 else None
    size = 0
    w = h = 0
    for frame in iter_frames(path):
        h, w = frame.shape[:2]
        tracker.feed(frame)
        if kept is not None:
            size += frame.nbytes
            if size <= keep_frames:
                kept.append(frame)
            else:
                kept = None
    if tracker.n == 0:
        raise VideoReadError(path, "no frame decodes")
    tracker.finish()
    n = tracker.n
    fps = probe_fps(path)
    people = _people(tracker.tracklets, settings.same_person)
    scores = [sum(t.score(w, h) for t in p) for p in people]
    if people:
        chosen = people[int(np.argmax(scores))]
        rate = fps or 25.0
        faces = _faces_of(chosen, n, settings.smooth_s * rate, int(round(settings.max_gap_s * rate)),
                          [tuple(s) for s in tracker.shots], tracker.blank)
        detected = sum(len(t.checks) for t in chosen)
    else:
        faces, detected = [None] * n, 0
    name = getattr(detect, "name", "custom")
    track = FaceTrack(num_frames=n, frame_size=(w, h), fps=fps, faces=faces,
                      shots=[tuple(s) for s in tracker.shots], detector=name, detect_every=tracker.k,
                      people=len(people), choice=_describe_choice(people, scores, n, w, h),
                      num_checked=tracker.num_checked, num_detected=detected,
                      settings=asdict(settings), source=source_signature(path))
    return track, kept


def track_for(path: str, sidecar: Optional[str] = None, detector="auto",
              settings: TrackSettings = TrackSettings(), keep_frames: int = 0,
              reuse: bool = True) -> Tuple[FaceTrack, Optional[List[np.ndarray]], bool]:
    """``(track, frames or None, reused)``: the track saved in ``sidecar`` when it was made from this
    video by this detector with these settings, else a new one (then saved to ``sidecar``)."""
    if isinstance(detector, str):
        detector = make_detector(detector, settings.min_face)
    name = getattr(detector, "name", None)
    if reuse and sidecar and name:
        track = load_track(sidecar, path, asdict(settings))
        if track is not None and track.detector == name:
            return track, None, True
    track, kept = track_faces(path, detector, settings, keep_frames)
    if sidecar:
        track.save(sidecar)
    return track, kept, False

"""Procedurally drawn facial-expression videos: the embedded default dataset.

Every clip shows one randomly generated person (face shape, skin tone, hair, eyes, lips, clothes)
in front of a random background under random lighting, with small head motion, blinks and gaze
shifts.  The face is animated by FACS-like action units (AUs), each a geometric deformation of the
drawn features, switched on and off with an onset -> apex -> offset time course.  The seven DFEW
classes differ only by which AUs fire and by their dynamics (see ``CLASS_AUS`` / ``CLASS_TIMING``);
everything else (identity, motion, lighting, background, noise) is nuisance variation.

``generate_synthetic_dataset`` writes labeled clips (with k-fold split files) and unlabeled
"talking face" clips (random AUs, speech-like mouth motion) for masked-autoencoder pre-training.
Rendering is deterministic for a seed: each clip draws from its own ``SeedSequence([seed, kind,
index])``, so the output does not depend on the number of worker processes.

Only numpy and OpenCV are used.  See docs/synthetic.md.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .video_writer import write_frame_folder, write_mp4

LABEL_NAMES: Tuple[str, ...] = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")

# Action units the renderer implements (FACS numbering).
AU_NAMES: Dict[int, str] = {
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 12: "lip corner puller",
    15: "lip corner depressor", 16: "lower lip depressor", 20: "lip stretcher",
    23: "lip tightener", 26: "jaw drop",
}
AUS: Tuple[int, ...] = tuple(sorted(AU_NAMES))

# AU configuration per class: {au: relative intensity}.
CLASS_AUS: Dict[str, Dict[int, float]] = {
    "happy": {6: 0.9, 12: 1.0},
    "sad": {1: 1.0, 4: 0.7, 15: 1.0},
    "neutral": {},
    "angry": {4: 1.0, 5: 0.6, 7: 0.9, 23: 1.0},
    "surprise": {1: 1.0, 2: 1.0, 5: 1.0, 26: 1.0},
    "disgust": {9: 1.0, 15: 0.8, 16: 0.9},
    "fear": {1: 0.9, 2: 0.7, 4: 0.6, 5: 1.0, 20: 1.0, 26: 0.5},
}

# Dynamics per class, as fractions of the clip length: (onset range, apex range, offset range).
# Surprise and fear are fast, sadness is slow, the others in between.
CLASS_TIMING: Dict[str, Tuple[Tuple[float, float], Tuple[float, float], Tuple[float, float]]] = {
    "happy": ((0.10, 0.25), (0.25, 0.55), (0.10, 0.30)),
    "sad": ((0.25, 0.45), (0.25, 0.50), (0.15, 0.35)),
    "neutral": ((0.10, 0.25), (0.25, 0.50), (0.10, 0.30)),
    "angry": ((0.10, 0.25), (0.25, 0.55), (0.10, 0.30)),
    "surprise": ((0.04, 0.10), (0.15, 0.35), (0.10, 0.25)),
    "disgust": ((0.10, 0.25), (0.20, 0.45), (0.10, 0.30)),
    "fear": ((0.06, 0.14), (0.25, 0.50), (0.10, 0.30)),
}

DEFAULTS = dict(num_labeled=350, num_unlabeled=210, num_frames=64, size=128, num_folds=5, seed=0,
                fmt="mp4", label_noise=0.03, val_fraction=0.1, fps=25)

_KIND_LABELED, _KIND_UNLABELED = 0, 1


@dataclass(frozen=True)
class RenderStyle:
    """How the renderer scales signal and nuisance (the defaults draw the original set).

    The knobs of the learnability study (docs/experiments/learning_diagnostics.md): every one
    multiplies or bounds a quantity that is drawn anyway, or (the last two) acts on a draw of its
    own stream, so the random draws of a clip are the same whatever the style.
    """
    face_scale: float = 0.40          # face unit in frame sides (0.40: head and shoulders)
    au_gain: float = 1.0              # multiplies every AU intensity before the geometry
    max_sensor_noise: float = 5.0     # per-clip sensor-noise std is uniform in [0.5, this]
    sensor_noise: float = 1.0         # multiplies the per-pixel sensor noise (0: none)
    background_noise_blur: float = 0.0  # std (px) of a blur of the background texture (0: none)
    pose: float = 1.0                 # multiplies roll, yaw and pitch (offset and motion)
    placement: float = 1.0            # multiplies the per-clip offset and size jitter of the face
    motion: float = 1.0               # multiplies the head's translation and size motion in a clip
    feature_polarity: float = 0.0     # fraction of identities with white brows and pale lips
    apex_hold: float = 0.0            # fraction of labelled clips held at the expression's apex

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "RenderStyle":
        if d is None:
            return cls()
        if isinstance(d, cls):
            return d
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown render style key(s) {sorted(unknown)}; known: "
                             f"{sorted(cls.__dataclass_fields__)}")
        return cls(**{k: float(v) for k, v in d.items()})


# ----------------------------------------------------------------------------------------------
# clip specification (all random choices of one clip)
# ----------------------------------------------------------------------------------------------
@dataclass
class ClipSpec:
    num_frames: int
    size: int
    label: int                      # true expression class (-1 for talking clips)
    identity: dict
    scene: dict
    motion: dict
    au: Dict[int, np.ndarray]       # AU -> (T,) intensity in [0, 1]
    blink: np.ndarray               # (T,) eye closure in [0, 1]
    gaze: np.ndarray                # (T, 2) iris offset in face units
    speech: np.ndarray              # (T,) extra mouth opening from speech
    rounding: np.ndarray            # (T,) mouth width factor from speech
    noise_seed: int = 0
    extra: dict = field(default_factory=dict)
    style: RenderStyle = field(default_factory=RenderStyle)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def au_profile(T: int, start: float, onset: float, apex: float, offset: float,
               intensity: float) -> np.ndarray:
    """Onset -> apex -> offset time course (frames as floats), smooth ramps, peak `intensity`."""
    t = np.arange(T, dtype=np.float64)
    up = _smoothstep((t - start) / max(onset, 1e-6))
    down = 1.0 - _smoothstep((t - (start + onset + apex)) / max(offset, 1e-6))
    return intensity * up * down


def _lerp(a, b, t):
    return tuple(float(x + (y - x) * t) for x, y in zip(a, b))


_SKIN = [(200, 215, 245), (170, 195, 235), (130, 165, 215), (95, 130, 185), (70, 100, 150),
         (50, 70, 110)]
_HAIR = [(20, 20, 25), (30, 45, 70), (40, 70, 110), (70, 120, 170), (40, 60, 150), (150, 150, 155),
         (110, 140, 185)]
_IRIS = [(30, 50, 80), (20, 35, 55), (140, 110, 60), (80, 120, 70), (60, 80, 110)]


def _sample_identity(rng: np.random.Generator) -> dict:
    t = rng.uniform(0, len(_SKIN) - 1)
    i = min(int(t), len(_SKIN) - 2)
    skin = np.array(_lerp(_SKIN[i], _SKIN[i + 1], t - i)) * rng.uniform(0.93, 1.07) * rng.uniform(0.98, 1.02, 3)
    skin = np.clip(skin, 20, 250)
    hair = np.clip(np.array(_HAIR[rng.integers(len(_HAIR))]) * rng.uniform(0.75, 1.25), 5, 240)
    lip = np.clip(skin * np.array([0.55, 0.55, 0.85]) + np.array([10, 0, 20]) * rng.uniform(0, 1),
                  10, 250)
    return dict(
        skin=skin, hair=hair, lip=lip,
        iris=np.array(_IRIS[rng.integers(len(_IRIS))]) * rng.uniform(0.8, 1.2),
        clothes=rng.uniform(20, 230, 3),
        face_rx=rng.uniform(0.74, 0.86), face_ry=rng.uniform(1.0, 1.12),
        chin_taper=rng.uniform(0.0, 0.28),
        hair_style=int(rng.choice([0, 1, 1, 2, 2, 3])),   # 0 bald, 1 short, 2 long, 3 fringe
        hairline=rng.uniform(-0.78, -0.55), hair_part=rng.uniform(-0.3, 0.3),
        eye_y=rng.uniform(-0.18, -0.08), eye_dx=rng.uniform(0.29, 0.36),
        eye_w=rng.uniform(0.14, 0.175), eye_hu=rng.uniform(0.07, 0.095),
        eye_hl=rng.uniform(0.035, 0.055), iris_r=rng.uniform(0.06, 0.075),
        brow_gap=rng.uniform(0.14, 0.22), brow_thick=rng.uniform(0.045, 0.075),
        brow_arch=rng.uniform(0.01, 0.06), brow_len=rng.uniform(0.36, 0.46),
        brow_dark=rng.uniform(0.75, 1.0),
        nose_y=rng.uniform(0.22, 0.32), nose_w=rng.uniform(0.09, 0.14),
        mouth_y=rng.uniform(0.52, 0.62), mouth_w=rng.uniform(0.24, 0.3),
        lip_u=rng.uniform(0.035, 0.06), lip_l=rng.uniform(0.05, 0.075),
        mouth_curve=rng.uniform(-0.015, 0.02),
        ear=bool(rng.random() < 0.85), glasses=bool(rng.random() < 0.12),
        beard=bool(rng.random() < 0.15),
    )


def _sample_scene(rng: np.random.Generator, size: int, style: RenderStyle) -> dict:
    return dict(
        bg_kind=int(rng.integers(4)), bg_c1=rng.uniform(10, 245, 3), bg_c2=rng.uniform(10, 245, 3),
        bg_seed=int(rng.integers(2 ** 31)), light_gain=rng.uniform(0.7, 1.2),
        light_grad=rng.uniform(0.0, 0.45), light_dir=rng.uniform(0, 2 * np.pi),
        tint=rng.uniform(0.95, 1.05, 3), noise=rng.uniform(0.5, style.max_sensor_noise),
        blur=float(rng.choice([0.0, 0.0, 0.6, 0.9])), flicker=rng.uniform(0.0, 0.04),
        flicker_f=rng.uniform(0.02, 0.12), flicker_p=rng.uniform(0, 2 * np.pi),
    )


def _smooth_motion(rng, T, amp, n=2):
    t = np.arange(T, dtype=np.float64)
    out = np.zeros(T)
    for _ in range(n):
        period = rng.uniform(25, 140)
        out += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return amp * out / n


def _sample_motion(rng: np.random.Generator, T: int, strength: float = 1.0,
                   style: RenderStyle = RenderStyle()) -> dict:
    place, pose, move = style.placement, style.pose, style.motion
    return dict(
        cx=rng.uniform(-0.04, 0.04) * place + _smooth_motion(rng, T, 0.035 * strength) * move,
        cy=rng.uniform(-0.03, 0.04) * place + _smooth_motion(rng, T, 0.025 * strength) * move,
        scale=(0.98 + (rng.uniform(0.9, 1.06) - 0.98) * place)
        * (1 + _smooth_motion(rng, T, 0.04 * strength) * move),
        roll=np.deg2rad(rng.uniform(-8, 8) + _smooth_motion(rng, T, 5 * strength)) * pose,
        yaw=(rng.uniform(-0.35, 0.35) + _smooth_motion(rng, T, 0.25 * strength)) * pose,
        pitch=(rng.uniform(-0.25, 0.25) + _smooth_motion(rng, T, 0.2 * strength)) * pose,
    )


def _sample_blinks(rng, T, fps=25) -> np.ndarray:
    out = np.zeros(T)
    t = rng.uniform(-1.0, 3.0) * fps
    rate = rng.uniform(1.5, 4.0) * fps        # mean frames between blinks
    while t < T:
        if t >= 0:
            dur = rng.uniform(3.0, 6.0)
            x = np.arange(T) - t
            out = np.maximum(out, np.clip(1 - np.abs(x - dur / 2) / (dur / 2), 0, 1) ** 0.6)
        t += rng.exponential(rate) + 4
    return out


def _sample_gaze(rng, T) -> np.ndarray:
    out = np.zeros((T, 2))
    g = rng.uniform(-1, 1, 2) * [0.05, 0.02]
    for i in range(T):
        if rng.random() < 0.04:
            g = rng.uniform(-1, 1, 2) * [0.06, 0.025]
        out[i] = g
    return out


def _sample_expression(rng, T, cls: str, intensity_range=(0.55, 1.0)) -> Dict[int, np.ndarray]:
    au = {k: np.zeros(T) for k in AUS}
    cfg = CLASS_AUS[cls]
    if not cfg:
        return au
    on_r, ap_r, off_r = CLASS_TIMING[cls]
    onset = rng.uniform(*on_r) * T
    apex = rng.uniform(*ap_r) * T
    offset = rng.uniform(*off_r) * T
    if rng.random() < 0.3:
        offset = 10.0 * T                   # held until the end of the clip
    start = rng.uniform(0.0, max(0.05, 0.95 - (onset + apex) / T) * 0.6) * T
    level = rng.uniform(*intensity_range)
    for k, w in cfg.items():
        jit = rng.uniform(-0.03, 0.03) * T
        a = float(np.clip(level * w * rng.uniform(0.8, 1.15), 0, 1))
        au[k] = np.maximum(au[k], au_profile(T, start + jit, onset * rng.uniform(0.85, 1.15),
                                             apex, offset, a))
    return au


def _add_distractor(rng, T, au, max_intensity=0.25):
    k = int(rng.choice(AUS))
    start = rng.uniform(0, 0.8) * T
    au[k] = np.maximum(au[k], au_profile(T, start, rng.uniform(0.1, 0.25) * T,
                                         rng.uniform(0.1, 0.4) * T, rng.uniform(0.1, 0.25) * T,
                                         rng.uniform(0.08, max_intensity)))


def _speech(rng, T, fps=25) -> Tuple[np.ndarray, np.ndarray]:
    """Syllable-like jaw opening at 3-6 Hz with pauses, and lip rounding per syllable."""
    opening, rounding = np.zeros(T), np.ones(T)
    t = rng.uniform(-4, 4)
    while t < T:
        if rng.random() < 0.15:                                 # pause
            t += rng.uniform(0.2, 0.7) * fps
            continue
        dur = fps / rng.uniform(3.0, 6.0)
        amp = rng.uniform(0.25, 1.0)
        x = (np.arange(T) - t) / dur
        bump = np.where((x > 0) & (x < 1), np.sin(np.pi * np.clip(x, 0, 1)) ** 1.5, 0.0)
        opening = np.maximum(opening, amp * bump)
        r = rng.uniform(0.8, 1.12)
        rounding = np.where(bump > 0.2, r, rounding)
        t += dur
    rounding = np.convolve(rounding, np.ones(3) / 3, mode="same")
    return opening, rounding


def sample_clip_spec(rng: np.random.Generator, label: int, num_frames: int, size: int,
                     talking: bool = False, fps: int = 25,
                     style: Optional[RenderStyle] = None) -> ClipSpec:
    """All random choices of one clip. `label` is a class index, or -1 with `talking=True`."""
    T = int(num_frames)
    style = RenderStyle.from_dict(style)
    identity = _sample_identity(rng)
    scene = _sample_scene(rng, size, style)
    motion = _sample_motion(rng, T, 1.4 if talking else 1.0, style)
    blink = _sample_blinks(rng, T, fps)
    gaze = _sample_gaze(rng, T)
    speech, rounding = np.zeros(T), np.ones(T)
    if talking:
        au = {k: np.zeros(T) for k in AUS}
        for _ in range(int(rng.integers(0, 3))):
            cls = LABEL_NAMES[int(rng.integers(len(LABEL_NAMES)))]
            sub = _sample_expression(rng, T, cls, (0.2, 0.8))
            for k in AUS:
                au[k] = np.maximum(au[k], sub[k])
        for _ in range(int(rng.integers(0, 3))):
            _add_distractor(rng, T, au, 0.5)
        if rng.random() < 0.9:
            speech, rounding = _speech(rng, T, fps)
            speech = speech * rng.uniform(0.4, 1.0)
    else:
        cls = LABEL_NAMES[label]
        au = _sample_expression(rng, T, cls)
        if cls == "neutral" and rng.random() < 0.35:
            _add_distractor(rng, T, au, 0.2)
        elif rng.random() < 0.15:
            _add_distractor(rng, T, au, 0.2)
        if cls == "happy" and rng.random() < 0.35:             # open-mouthed smile / laugh
            au[26] = np.maximum(au[26], au[12] * rng.uniform(0.2, 0.45))
    noise_seed = int(rng.integers(2 ** 31))
    # Draws of the two sign-changing nuisances come from their own stream, so that the clip's
    # other draws stay the same whatever the style.
    u_polarity, u_hold = np.random.default_rng([noise_seed, 1]).random(2)
    if u_polarity < style.feature_polarity:
        identity["brow_tone"] = np.array([240.0, 240.0, 240.0])
        identity["lip"] = _mix(identity["skin"], (245, 245, 245), 0.45)
    if label >= 0 and u_hold < style.apex_hold:
        au = {k: np.full(T, v.max()) for k, v in au.items()}
    return ClipSpec(T, int(size), int(label), identity, scene, motion, au, blink, gaze, speech,
                    rounding, noise_seed=noise_seed, style=style)


# ----------------------------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------------------------
_SHIFT = 4
_ONE = 1 << _SHIFT
_U16 = np.linspace(-1.0, 1.0, 13)
_ANG24 = np.linspace(0, 2 * np.pi, 24, endpoint=False)
_ANG40 = np.linspace(0, 2 * np.pi, 40, endpoint=False)


def _ellipse_pts(cx, cy, rx, ry, ang=_ANG24):
    return np.stack([cx + rx * np.cos(ang), cy + ry * np.sin(ang)], 1)


def _make_background(scene: dict, size: int, blur: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(scene["bg_seed"])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    c1, c2 = np.asarray(scene["bg_c1"], np.float32), np.asarray(scene["bg_c2"], np.float32)
    kind = scene["bg_kind"]
    if kind == 0:                                          # linear gradient
        a = rng.uniform(0, 2 * np.pi)
        t = (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)) + 0.5
        img = c1 + (c2 - c1) * np.clip(t, 0, 1)[..., None]
    elif kind == 1:                                        # smooth blotches
        low = rng.uniform(0, 1, (4, 4)).astype(np.float32)
        t = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
        img = c1 + (c2 - c1) * np.clip(t, 0, 1)[..., None]
    elif kind == 2:                                        # "room": a few flat rectangles
        img = np.empty((size, size, 3), np.float32)
        img[:] = c1
        for _ in range(int(rng.integers(2, 5))):
            x0, y0 = rng.integers(0, size, 2)
            w, h = rng.integers(size // 6, size // 2, 2)
            img[y0:y0 + h, x0:x0 + w] = rng.uniform(10, 245, 3)
    else:                                                  # flat colour
        img = np.empty((size, size, 3), np.float32)
        img[:] = c1
    texture = rng.normal(0, rng.uniform(0, 6), (size, size, 1)).astype(np.float32)
    if blur > 0:   # smooth texture: a masked background tube stays predictable from its context
        texture = cv2.GaussianBlur(texture, (0, 0), blur)[..., None] * np.float32(2 * blur)
    img = img + texture
    return np.clip(img, 0, 255).astype(np.uint8)


def _make_light(scene: dict, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1) * 2 - 1
    d = scene["light_dir"]
    g = 1.0 + scene["light_grad"] * 0.5 * (np.cos(d) * xx + np.sin(d) * yy)
    return (g[..., None] * np.asarray(scene["tint"], np.float32)[None, None]).astype(np.float32)


class _Canvas:
    """Draws face-coordinate shapes onto an image through a similarity transform."""

    def __init__(self, img, A, t):
        self.img = img
        self.AT = (A * _ONE).T.copy()
        self.t = t * _ONE
        self.px = float(np.sqrt(abs(A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0])))  # px per face unit

    def _tx(self, pts):
        p = np.asarray(pts, np.float64) @ self.AT
        p += self.t
        return np.rint(p).astype(np.int32)

    def fill(self, pts, color):
        cv2.fillPoly(self.img, [self._tx(pts)], _c(color), cv2.LINE_AA, _SHIFT)

    def fill_many(self, polys, color):
        cv2.fillPoly(self.img, [self._tx(p) for p in polys], _c(color), cv2.LINE_AA, _SHIFT)

    def line(self, pts, color, width, closed=False):
        th = max(1, int(round(width * self.px)))
        cv2.polylines(self.img, [self._tx(pts)], closed, _c(color), th, cv2.LINE_AA, _SHIFT)


def _c(color):
    return tuple(map(float, color))


def _mix(a, b, t):
    t = min(max(float(t), 0.0), 1.0)
    return np.asarray(a) * (1 - t) + np.asarray(b) * t


def _thick_curve(xs, ys, thick):
    """Polygon of a curve with per-point thickness (vertical)."""
    top = np.stack([xs, ys - thick / 2], 1)
    bot = np.stack([xs, ys + thick / 2], 1)[::-1]
    return np.concatenate([top, bot], 0)


def _render_frame(spec: ClipSpec, f: int, bg: np.ndarray) -> np.ndarray:
    idt, mo = spec.identity, spec.motion
    S = spec.size
    a = {k: float(v[f]) * spec.style.au_gain for k, v in spec.au.items()}
    img = bg.copy()

    scale = S * spec.style.face_scale * mo["scale"][f]
    c, s = math.cos(mo["roll"][f]), math.sin(mo["roll"][f])
    A = scale * np.array([[c, -s], [s, c]])
    t = np.array([S * (0.5 + mo["cx"][f]), S * (0.46 + mo["cy"][f])])
    cv = _Canvas(img, A, t)
    yaw, pitch = mo["yaw"][f], mo["pitch"][f]

    def off(depth):                   # pseudo-3D: features shift with yaw/pitch by their depth
        return np.array([yaw * 0.12 * depth, pitch * 0.08 * depth])

    skin = idt["skin"]
    dark_skin = skin * 0.7
    rx, ry = idt["face_rx"], idt["face_ry"]
    jaw = a[26] * 0.75 + spec.speech[f] * 0.35                   # jaw opening 0..~1

    # --- behind the face: long hair, clothes, neck, ears
    if idt["hair_style"] == 2:
        cv.fill(np.array([[-rx * 1.15, -0.3], [-rx * 1.25, 1.1], [-rx * 1.1, 1.3], [rx * 1.1, 1.3],
                          [rx * 1.25, 1.1], [rx * 1.15, -0.3]]), idt["hair"])
    cv.fill(_ellipse_pts(0, 2.35, 1.7, 0.85), idt["clothes"])
    cv.fill(np.array([[-0.33, 0.4], [-0.36, 1.6], [0.36, 1.6], [0.33, 0.4]]), skin * 0.8)
    if idt["ear"]:
        ey = idt["eye_y"] + 0.12
        ex = rx * 0.97 - abs(yaw) * 0.05
        cv.fill_many([_ellipse_pts(-ex - yaw * 0.03, ey, 0.1, 0.18, _ANG24[::2]),
                      _ellipse_pts(ex - yaw * 0.03, ey, 0.1, 0.18, _ANG24[::2])], skin * 0.88)

    # --- face outline: ellipse, tapered chin, lower half follows the jaw
    fx = rx * np.cos(_ANG40)
    fy = ry * np.sin(_ANG40)
    low = fy > 0
    fx = np.where(low, fx * (1 - idt["chin_taper"] * (fy / ry) ** 2), fx)
    fy = np.where(low, fy * (1 + 0.1 * jaw), fy)
    face = np.stack([fx, fy], 1)
    cv.fill(face, skin)

    # --- hair cap / fringe
    hs = idt["hair_style"]
    if hs in (1, 2, 3):
        ang = np.linspace(np.pi + 0.25, 2 * np.pi - 0.25, 16)
        cap = np.stack([rx * 1.07 * np.cos(ang), ry * 1.07 * np.sin(ang) - 0.02], 1)
        hl = min(idt["hairline"] + 0.22, -0.47) if hs == 3 else idt["hairline"]
        ex = cap[-1, 0]
        xs = np.linspace(ex, cap[0, 0], 9)
        ys = hl + 0.25 * ((xs - idt["hair_part"] * 0.5) / rx) ** 2
        ys = np.minimum(ys, cap[-1, 1] + 0.1)
        cv.fill(np.concatenate([cap, np.stack([xs, ys], 1)], 0), idt["hair"])
    if idt["beard"]:
        ang = np.linspace(0.15, np.pi - 0.15, 12)
        bx, by = rx * np.cos(ang), ry * np.sin(ang) * (1 + 0.1 * jaw)
        bx = bx * (1 - idt["chin_taper"] * (by / ry) ** 2)
        inner = np.stack([bx * 0.75, by * 0.72 + 0.12], 1)[::-1]
        cv.fill(np.concatenate([np.stack([bx, by], 1), inner], 0), _mix(idt["hair"], skin, 0.25))

    # --- cheeks (AU6 raises and rounds them; AU12 pushes them up too)
    cheek = max(a[6], 0.6 * a[12])
    o = off(0.8)
    cy_ = idt["eye_y"] + 0.3 - 0.07 * cheek
    blush = _mix(skin, skin * np.array([0.8, 0.8, 1.05]), 0.15 + 0.6 * cheek)
    cv.fill_many([_ellipse_pts(-0.38 + o[0], cy_ + o[1], 0.14 + 0.03 * cheek, 0.09 + 0.02 * cheek),
                  _ellipse_pts(0.38 + o[0], cy_ + o[1], 0.14 + 0.03 * cheek, 0.09 + 0.02 * cheek)],
                 blush)

    # --- forehead wrinkles (AU1/AU2) and glabella lines (AU4)
    o = off(0.9)
    fw = max(a[1], a[2]) if max(a[1], a[2]) > 0.15 else 0.0
    if fw > 0:
        col = _mix(skin, dark_skin, 0.2 + 0.6 * fw)
        for k in range(3):
            y = idt["eye_y"] - 0.38 - 0.08 * k - 0.05 * fw
            xs = np.linspace(-0.3, 0.3, 7)
            cv.line(np.stack([xs + o[0], y + 0.05 * (xs / 0.3) ** 2 + o[1]], 1), col, 0.012)
    if a[4] > 0.2:
        col = _mix(skin, dark_skin, 0.2 + 0.7 * a[4])
        y0 = idt["eye_y"] - 0.22
        for sx in (-1, 1):
            cv.line(np.array([[sx * 0.045, y0], [sx * 0.035, y0 - 0.1 * a[4]]]) + o, col, 0.014)

    # --- brows
    o = off(0.9)
    by0 = idt["eye_y"] - 0.19
    bt = idt["brow_thick"] * (1 + 0.15 * a[4])
    brow_tone = idt.get("brow_tone", np.minimum(idt["hair"] * 0.75, skin * 0.45))
    brow_col = _mix(skin, brow_tone, idt["brow_dark"])
    for sx in (-1, 1):
        inner_x = idt["brow_gap"] - 0.07 * a[4]
        xs = np.linspace(0, 1, 9)
        # vertical displacement profile along the brow (0 = inner end, 1 = outer end)
        dy = (-0.14 * a[1] * (1 - xs) ** 1.5 - 0.05 * a[1]
              - 0.13 * a[2] * xs ** 1.2 - 0.03 * a[2]
              + 0.05 * a[4] + 0.09 * a[4] * (1 - xs) ** 2 - 0.015 * a[5])
        ys = by0 - idt["brow_arch"] * np.sin(np.pi * xs) * (1 + 0.6 * a[2]) + dy
        px = inner_x + idt["brow_len"] * xs
        thick = bt * (1.1 - 0.5 * xs)
        poly = _thick_curve(sx * px + o[0], ys + o[1], thick)
        cv.fill(poly, brow_col)

    # --- eyes
    o = off(0.8)
    hu0, hl0, ew = idt["eye_hu"], idt["eye_hl"], idt["eye_w"]
    hu = hu0 * (1 + 0.9 * a[5]) * (1 - 0.3 * a[7]) * (1 - 0.3 * a[6]) * (1 - 0.25 * a[4])
    hl = hl0 * max(0.1, 1 - 0.6 * a[7]) * max(0.1, 1 - 0.55 * a[6])
    b = spec.blink[f]
    hu = hu * (1 - b) - hl * 0.9 * b
    gz = spec.gaze[f]
    u = _U16
    prof = (1 - u ** 2) ** 0.8
    for sx in (-1, 1):
        cx, cy = sx * idt["eye_dx"] + o[0], idt["eye_y"] + o[1] - 0.02 * a[6]
        xs = cx + ew * u
        upper = cy - hu * prof - 0.01 * u * sx * a[7]
        lower = cy + hl * prof
        # eyelid crease and lower-lid bag
        cv.line(np.stack([xs, cy - (hu0 + 0.045 + 0.03 * a[5]) * prof - 0.01], 1),
                _mix(skin, dark_skin, 0.45), 0.012)
        cv.line(np.stack([xs[2:-2], (cy + (hl + 0.04) * prof)[2:-2]], 1),
                _mix(skin, dark_skin, 0.15 + 0.5 * max(a[6], a[7])), 0.01)
        opening = np.concatenate([np.stack([xs, upper], 1), np.stack([xs, lower], 1)[::-1]], 0)
        cv.fill(opening, (235, 240, 240))
        # iris and pupil clipped to the opening
        icx, icy = cx + gz[0] + 0.25 * yaw * 0.05, cy + gz[1] + 0.01
        for r, col in ((idt["iris_r"], idt["iris"]), (idt["iris_r"] * 0.45, (15, 15, 15))):
            ip = _ellipse_pts(icx, icy, r, r, _ANG24)
            px_ = np.clip(ip[:, 0], cx - ew, cx + ew)
            uu = (px_ - cx) / ew
            pr = (1 - np.clip(uu, -1, 1) ** 2) ** 0.8
            lo = cy - hu * pr - 0.01 * uu * sx * a[7]
            hi = cy + hl * pr
            py_ = np.clip(ip[:, 1], np.minimum(lo, hi), np.maximum(lo, hi))
            cv.fill(np.stack([px_, py_], 1), col)
        cv.line(np.stack([xs, upper], 1), (25, 25, 30), 0.022)
        cv.line(np.stack([xs, lower], 1), _mix(skin, (40, 40, 50), 0.5 + 0.3 * a[7]), 0.01)
    if idt["glasses"]:
        for sx in (-1, 1):
            cv.line(_ellipse_pts(sx * idt["eye_dx"] + o[0], idt["eye_y"] + o[1], ew + 0.06, 0.11),
                    (30, 30, 30), 0.018, closed=True)
        cv.line(np.array([[-idt["eye_dx"] + ew + 0.06, idt["eye_y"]],
                          [idt["eye_dx"] - ew - 0.06, idt["eye_y"]]]) + o, (30, 30, 30), 0.018)

    # --- nose (AU9 raises and widens the wings, wrinkles the bridge)
    o = off(1.5)
    ny = idt["nose_y"] - 0.04 * a[9]
    nw = idt["nose_w"] * (1 + 0.25 * a[9])
    nose_col = _mix(skin, dark_skin, 0.55)
    cv.line(np.array([[-0.02, idt["eye_y"] + 0.05], [-0.04, ny - 0.1], [-nw * 0.6, ny - 0.01]])
            + o * np.array([[0.3], [0.8], [1.0]]), _mix(skin, dark_skin, 0.3), 0.012)
    xs = np.linspace(-nw, nw, 9)
    cv.line(np.stack([xs, ny + 0.025 * (1 - (xs / nw) ** 2) - 0.02 * (xs / nw) ** 4], 1) + o,
            nose_col, 0.016)
    cv.fill_many([_ellipse_pts(-0.045 + o[0], ny + 0.005 + o[1], 0.03, 0.014, _ANG24[::2]),
                  _ellipse_pts(0.045 + o[0], ny + 0.005 + o[1], 0.03, 0.014, _ANG24[::2])],
                 _mix(skin, (20, 20, 30), 0.6))
    if a[9] > 0.15:
        col = _mix(skin, dark_skin, 0.3 + 0.6 * a[9])
        for k in range(3):
            y = idt["eye_y"] + 0.06 + 0.045 * k
            cv.line(np.array([[-0.07, y + 0.01], [0, y - 0.005], [0.07, y + 0.01]]) + off(1.2),
                    col, 0.011)

    # --- mouth
    o = off(1.0)
    mw = idt["mouth_w"] * (1 + 0.28 * a[12] + 0.35 * a[20] - 0.18 * a[23] - 0.12 * a[26]
                           + 0.05 * a[15]) * spec.rounding[f]
    corner = (-0.085 * a[12] + 0.075 * a[15] + 0.025 * a[20] + idt["mouth_curve"] * 0.5)
    my = idt["mouth_y"] + 0.015 * a[15] - 0.02 * a[9] + 0.04 * jaw * 0.5
    gap_u = 0.012 * a[12] + 0.035 * a[9] + 0.02 * jaw + 0.01 * a[20]
    gap_l = 0.02 * a[12] + 0.3 * jaw * (1 - 0.5 * a[23]) + 0.075 * a[16] + 0.03 * a[20]
    gap_u *= max(0.0, 1 - 0.8 * a[23])
    gap_l *= max(0.0, 1 - 0.6 * a[23])
    # the bounds keep AU gains above 1 from inverting the lips (the default set renders unchanged)
    tu = idt["lip_u"] * max(0.15, 1 - 0.8 * a[23] - 0.3 * a[20] - 0.25 * a[12])
    tl = idt["lip_l"] * max(0.15, 1 - 0.75 * a[23] - 0.3 * a[20] - 0.2 * a[12] + 0.15 * a[16])
    u = _U16
    xs = mw * u
    base = my + corner * u ** 2 + idt["mouth_curve"] * u ** 2
    env = 1 - u ** 2
    env_o = env ** 0.6
    bow = 0.012 * np.exp(-((np.abs(u) - 0.3) / 0.15) ** 2)
    in_up = base - gap_u * env
    in_lo = base + gap_l * env ** 0.8
    out_up = in_up - tu * env_o - bow + 0.015 * env_o
    out_lo = in_lo + tl * env_o
    xs_m, o_m = xs + o[0], o[1]
    # nasolabial folds (deepen with AU12, AU9, AU6), from the nose wing to beyond the corner
    fold = max(a[12], a[9], 0.5 * a[6], 0.4 * a[20])
    if fold > 0.1:
        col = _mix(skin, dark_skin, 0.2 + 0.6 * fold)
        for sx in (-1, 1):
            p0 = np.array([sx * (nw + 0.04), ny - 0.02])
            p2 = np.array([sx * (mw + 0.06), base[0] + 0.06])
            p1 = np.array([sx * (mw + 0.1), (p0[1] + p2[1]) / 2])
            tt = np.linspace(0, 1, 7)[:, None]
            pts = (1 - tt) ** 2 * p0 + 2 * tt * (1 - tt) * p1 + tt ** 2 * p2
            cv.line(pts + o, col, 0.014)
    cv.fill(np.concatenate([np.stack([xs_m, out_up + o_m], 1),
                            np.stack([xs_m, out_lo + o_m], 1)[::-1]], 0), idt["lip"])
    if (gap_u + gap_l) > 0.008:
        cv.fill(np.concatenate([np.stack([xs_m, in_up + o_m], 1),
                                np.stack([xs_m, in_lo + o_m], 1)[::-1]], 0), (45, 30, 70))
        tooth = (230, 235, 235)
        th_u = np.minimum(in_up + 0.05 * env ** 0.5, in_lo)
        k = slice(2, -2)
        cv.fill(np.concatenate([np.stack([xs_m[k], in_up[k] + o_m], 1),
                                np.stack([xs_m[k], th_u[k] + o_m], 1)[::-1]], 0), tooth)
        low_t = 0.04 * min(1.0, a[16] * 1.5 + 0.4 * jaw)
        if low_t > 0.004:
            th_l = np.maximum(in_lo - low_t * env ** 0.5, th_u)
            cv.fill(np.concatenate([np.stack([xs_m[k], th_l[k] + o_m], 1),
                                    np.stack([xs_m[k], in_lo[k] + o_m], 1)[::-1]], 0), tooth)
    cv.line(np.stack([xs_m, in_up + o_m], 1), _mix(idt["lip"], (20, 10, 30), 0.6), 0.012)
    return img


def render_clip(spec: ClipSpec) -> np.ndarray:
    """(T, H, W, 3) uint8 BGR frames of one clip."""
    S, T = spec.size, spec.num_frames
    sc = spec.scene
    bg = _make_background(sc, S, spec.style.background_noise_blur)
    light = _make_light(sc, S) * np.float32(sc["light_gain"])
    rng = np.random.default_rng(spec.noise_seed)
    out = np.empty((T, S, S, 3), np.uint8)
    tt = np.arange(T)
    flick = 1.0 + sc["flicker"] * np.sin(2 * np.pi * sc["flicker_f"] * tt + sc["flicker_p"])
    buf = np.empty((S, S, 3), np.float32)
    for f in range(T):
        img = _render_frame(spec, f, bg)
        if sc["blur"] > 0:
            img = cv2.GaussianBlur(img, (3, 3), sc["blur"])
        np.multiply(img, light, out=buf)
        buf *= np.float32(flick[f])
        buf += rng.standard_normal((S, S, 1), dtype=np.float32) * np.float32(
            sc["noise"] * spec.style.sensor_noise)
        np.clip(buf, 0, 255, out=buf)
        out[f] = buf
    return out


def make_clip(seed: int, kind: int, index: int, label: int, num_frames: int, size: int,
              fps: int = 25, style: Optional[RenderStyle] = None) -> Tuple[np.ndarray, ClipSpec]:
    """Deterministic frames of clip `index` of `kind` (0 labeled, 1 talking) for `seed`."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(kind), int(index)]))
    spec = sample_clip_spec(rng, label, num_frames, size, talking=(kind == _KIND_UNLABELED),
                            fps=fps, style=style)
    return render_clip(spec), spec


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------
def _job(args):
    seed, kind, index, label, num_frames, size, fps, path, fmt, style = args
    cv2.setNumThreads(1)
    frames, spec = make_clip(seed, kind, index, label, num_frames, size, fps, style)
    if fmt == "mp4":
        write_mp4(path, frames, fps, bgr=True)
    else:
        write_frame_folder(path, frames, bgr=True)
    return index, kind


def _stratified_folds(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold id (0..k-1) per sample: per class, shuffled and dealt round-robin, continuing the
    deal across classes so fold sizes differ by at most one."""
    fold = np.empty(len(labels), np.int64)
    pos = 0
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        fold[idx] = (pos + np.arange(len(idx))) % k
        pos += len(idx)
    return fold


def _stratified_val(labels: np.ndarray, idx: np.ndarray, frac: float,
                    rng: np.random.Generator) -> np.ndarray:
    """A stratified `frac` of `idx` (at least one per class that has >= 3 samples)."""
    out = []
    for c in np.unique(labels[idx]):
        ic = idx[labels[idx] == c]
        n = int(round(frac * len(ic)))
        if n == 0 and frac > 0 and len(ic) >= 3:
            n = 1
        out.extend(ic[rng.permutation(len(ic))[:n]].tolist())
    return np.array(sorted(out), np.int64)


def _class_sequence(n: int, num_classes: int, distribution: str,
                    rng: np.random.Generator) -> np.ndarray:
    if distribution == "uniform":
        w = np.ones(num_classes)
    elif distribution == "dfew":       # DFEW class proportions (happy .. fear)
        w = np.array([0.23, 0.16, 0.23, 0.19, 0.12, 0.025, 0.045])
    else:
        raise ValueError(f"unknown class distribution {distribution!r}")
    w = w / w.sum()
    counts = np.floor(w * n).astype(int)
    for i in np.argsort(-(w * n - counts))[: n - counts.sum()]:
        counts[i] += 1
    labels = np.repeat(np.arange(num_classes), counts)
    return labels[rng.permutation(n)]


def _write_split(path: str, rows: Sequence[Tuple[str, int]]) -> None:
    with open(path, "w") as f:
        for p, y in rows:
            f.write(f"{p} {int(y)}\n")


def generate_synthetic_dataset(out_dir: str, num_labeled: int = DEFAULTS["num_labeled"],
                               num_unlabeled: int = DEFAULTS["num_unlabeled"],
                               num_frames: int = DEFAULTS["num_frames"],
                               size: int = DEFAULTS["size"], num_folds: int = 5, seed: int = 0,
                               fmt: str = "mp4", label_noise: float = 0.03, workers: int = 1,
                               val_fraction: float = 0.1, fps: int = 25,
                               class_distribution: str = "uniform", reuse: bool = False, progress=None,
                               verbose: bool = False,
                               style: Optional[RenderStyle] = None) -> dict:
    """Render the synthetic dataset into `out_dir` and write its split files.

    Layout: ``labeled/clip_00000.mp4`` (or ``labeled/clip_00000/{1..T}.jpg`` with
    ``fmt='frames'``), ``unlabeled/talk_00000.*``, ``fold_{i}/{train,val,test}.csv`` for
    i = 1..num_folds, ``pretrain.csv`` and ``meta.json``.  Split lines are
    ``<absolute path> <0-based label>``.  Test fold i is the i-th stratified fold; val is a
    stratified `val_fraction` of the remaining clips, removed from train (train, val and test of a
    fold are disjoint and together are the whole labeled set).

    ``progress``: anything with ``update(n)`` (e.g. ``engine.logger.make_progress``), told of every
    clip written.

    Returns ``{'out_dir', 'meta', 'pretrain', 'folds': {'1': {'train','val','test'}, ...},
    'label_names', 'num_labeled', 'num_unlabeled', 'seconds'}``.
    """
    if fmt not in ("mp4", "frames"):
        raise ValueError("fmt must be 'mp4' or 'frames'")
    if num_labeled > 0 and num_folds < 2:
        raise ValueError("num_folds must be >= 2")
    if not 0.0 <= label_noise < 1.0:
        raise ValueError("label_noise must be in [0, 1)")
    out_dir = os.path.abspath(out_dir)
    style = RenderStyle.from_dict(style)
    params = dict(num_labeled=int(num_labeled), num_unlabeled=int(num_unlabeled),
                  num_frames=int(num_frames), size=int(size), num_folds=int(num_folds),
                  seed=int(seed), fmt=fmt, label_noise=float(label_noise),
                  val_fraction=float(val_fraction), fps=int(fps),
                  class_distribution=class_distribution)
    if style != RenderStyle():
        params["style"] = asdict(style)
    meta_path = os.path.join(out_dir, "meta.json")
    result = dict(out_dir=out_dir, meta=meta_path, pretrain=os.path.join(out_dir, "pretrain.csv"),
                  folds={str(i): {s: os.path.join(out_dir, f"fold_{i}", f"{s}.csv")
                                  for s in ("train", "val", "test")}
                         for i in range(1, num_folds + 1)} if num_labeled > 0 else {},
                  label_names=list(LABEL_NAMES), num_labeled=int(num_labeled),
                  num_unlabeled=int(num_unlabeled))
    if reuse and os.path.isfile(meta_path):
        try:
            with open(meta_path) as f:
                old = json.load(f)
            if old.get("params") == params and all(
                    os.path.exists(c["path"]) for c in old.get("clips", [])):
                result["seconds"] = 0.0
                result["reused"] = True
                return result
        except (OSError, ValueError, KeyError):
            pass
    t0 = time.time()
    ext = ".mp4" if fmt == "mp4" else ""
    for sub in ("labeled", "unlabeled"):
        d = os.path.join(out_dir, sub)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
    split_rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7]))
    true = _class_sequence(num_labeled, len(LABEL_NAMES), class_distribution, split_rng)
    noisy = true.copy()
    n_noise = int(round(label_noise * num_labeled))
    flip = np.sort(split_rng.permutation(num_labeled)[:n_noise]) if n_noise else np.zeros(0, int)
    for i in flip:
        noisy[i] = (true[i] + split_rng.integers(1, len(LABEL_NAMES))) % len(LABEL_NAMES)

    lab_paths = [os.path.join(out_dir, "labeled", f"clip_{i:05d}{ext}") for i in range(num_labeled)]
    unl_paths = [os.path.join(out_dir, "unlabeled", f"talk_{i:05d}{ext}")
                 for i in range(num_unlabeled)]
    jobs = [(seed, _KIND_LABELED, i, int(true[i]), num_frames, size, fps, lab_paths[i], fmt, style)
            for i in range(num_labeled)]
    jobs += [(seed, _KIND_UNLABELED, i, -1, num_frames, size, fps, unl_paths[i], fmt, style)
             for i in range(num_unlabeled)]
    workers = max(1, int(workers))
    tick = progress.update if progress is not None else (lambda n: None)
    if workers == 1 or len(jobs) < 4:
        for j in jobs:
            _job(j)
            tick(1)
    else:
        import multiprocessing as mp
        with mp.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_job, jobs, chunksize=4):
                tick(1)

    folds_meta = {}
    if num_labeled > 0:
        fold = _stratified_folds(noisy, num_folds, split_rng)
        for i in range(num_folds):
            test = np.flatnonzero(fold == i)
            rest = np.flatnonzero(fold != i)
            val = _stratified_val(noisy, rest, val_fraction, split_rng)
            train = np.setdiff1d(rest, val)
            d = os.path.join(out_dir, f"fold_{i + 1}")
            os.makedirs(d, exist_ok=True)
            counts = {}
            for name, idx in (("train", train), ("val", val), ("test", test)):
                _write_split(os.path.join(d, f"{name}.csv"), [(lab_paths[j], noisy[j]) for j in idx])
                counts[name] = {LABEL_NAMES[c]: int((noisy[idx] == c).sum())
                                for c in range(len(LABEL_NAMES))}
                counts[name]["total"] = int(len(idx))
            folds_meta[str(i + 1)] = counts
    _write_split(result["pretrain"], [(p, 0) for p in unl_paths])
    seconds = time.time() - t0
    meta = dict(
        params=params, label_names=list(LABEL_NAMES),
        class_aus={k: {str(a): w for a, w in v.items()} for k, v in CLASS_AUS.items()},
        class_timing=CLASS_TIMING, au_names={str(k): v for k, v in AU_NAMES.items()},
        counts=dict(
            labeled_total=int(num_labeled), unlabeled_total=int(num_unlabeled),
            per_class={LABEL_NAMES[c]: int((noisy == c).sum()) for c in range(len(LABEL_NAMES))},
            per_class_true={LABEL_NAMES[c]: int((true == c).sum())
                            for c in range(len(LABEL_NAMES))},
            noisy_labels=int(n_noise), folds=folds_meta),
        clips=[dict(path=lab_paths[i], label=int(noisy[i]), true_label=int(true[i]))
               for i in range(num_labeled)] + [dict(path=p, label=-1) for p in unl_paths],
        seconds=round(seconds, 2), workers=workers,
    )
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)
    result["seconds"] = seconds
    if verbose:
        print(f"wrote {num_labeled} labeled + {num_unlabeled} unlabeled clips to {out_dir} "
              f"in {seconds:.1f}s")
    return result


def preview_grid(path: str = "", seed: int = 0, others: int = 2, num_frames: int = 64,
                 size: int = 96) -> np.ndarray:
    """A BGR grid, one row per class: four frames of one clip (start, onset, apex, end), then the
    apex frame of `others` more identities.  Written as PNG when `path` is given."""
    rows = []
    for c, name in enumerate(LABEL_NAMES):
        row = []
        for r in range(1 + others):
            rng = np.random.default_rng(np.random.SeedSequence([seed, 99, c, r]))
            spec = sample_clip_spec(rng, c, num_frames, size)
            clip = render_clip(spec)
            energy = sum(v for v in spec.au.values())
            apex = int(np.argmax(energy)) if energy.max() > 0 else num_frames // 2
            if r == 0:
                rising = np.flatnonzero(energy >= 0.5 * energy.max()) if energy.max() > 0 else []
                onset = int(rising[0]) if len(rising) else num_frames // 4
                row += [clip[0], clip[onset], clip[apex], clip[-1]]
            else:
                row.append(clip[apex])
        row = np.concatenate(row, 1)
        cv2.putText(row, name, (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1,
                    cv2.LINE_AA)
        rows.append(row)
    grid = np.concatenate(rows, 0)
    if path:
        try:                       # a 256-colour palette keeps the PNG small (docs/img)
            from PIL import Image
            Image.fromarray(grid[..., ::-1].copy()).quantize(256).save(path, optimize=True)
        except ImportError:
            cv2.imwrite(path, grid, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return grid

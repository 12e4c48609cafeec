"""The synthetic set's vocabulary and the random choices of one clip: classes and their action
units (AUs) with their dynamics, the render style, and :func:`sample_clip_spec`, which draws a
clip's identity, scene, motion, blinks, gaze, expression and speech (everything the renderer
needs; no pixels)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

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


def _mix(a, b, t):
    """Colour ``a`` moved a fraction ``t`` (clipped to [0, 1]) towards ``b``."""
    t = min(max(float(t), 0.0), 1.0)
    return np.asarray(a) * (1 - t) + np.asarray(b) * t


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

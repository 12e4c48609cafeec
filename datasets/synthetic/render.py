"""The renderer: a :class:`ClipSpec` drawn frame by frame with OpenCV primitives, back to front
(clothes, face, hair, cheeks, brows, eyes, nose, mouth), then lighting, blur and sensor noise."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import cv2
import numpy as np

from .spec import _KIND_UNLABELED, ClipSpec, RenderStyle, _mix, sample_clip_spec

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


def _thick_curve(xs, ys, thick):
    """Polygon of a curve with per-point thickness (vertical)."""
    top = np.stack([xs, ys - thick / 2], 1)
    bot = np.stack([xs, ys + thick / 2], 1)[::-1]
    return np.concatenate([top, bot], 0)


class _Frame:
    """One frame's drawing state: the canvas in face coordinates, the identity, this frame's AU
    intensities (``a``), skin tones, face radii, jaw opening and head yaw / pitch."""

    def __init__(self, spec: ClipSpec, f: int, bg: np.ndarray):
        idt, mo = spec.identity, spec.motion
        S = spec.size
        self.spec, self.f, self.idt = spec, f, idt
        self.a = {k: float(v[f]) * spec.style.au_gain for k, v in spec.au.items()}
        self.img = bg.copy()
        scale = S * spec.style.face_scale * mo["scale"][f]
        c, s = math.cos(mo["roll"][f]), math.sin(mo["roll"][f])
        A = scale * np.array([[c, -s], [s, c]])
        t = np.array([S * (0.5 + mo["cx"][f]), S * (0.46 + mo["cy"][f])])
        self.cv = _Canvas(self.img, A, t)
        self.yaw, self.pitch = mo["yaw"][f], mo["pitch"][f]
        self.skin = idt["skin"]
        self.dark_skin = self.skin * 0.7
        self.rx, self.ry = idt["face_rx"], idt["face_ry"]
        self.jaw = self.a[26] * 0.75 + spec.speech[f] * 0.35          # jaw opening 0..~1

    def off(self, depth):
        """Pseudo-3D: features shift with yaw / pitch by their depth."""
        return np.array([self.yaw * 0.12 * depth, self.pitch * 0.08 * depth])


def _draw_behind_face(fr: _Frame) -> None:
    """Long hair, clothes, neck, ears."""
    cv, idt, skin, rx, yaw = fr.cv, fr.idt, fr.skin, fr.rx, fr.yaw
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


def _draw_face_and_hair(fr: _Frame) -> None:
    """Face outline (ellipse, tapered chin, the lower half follows the jaw), hair cap / fringe, beard."""
    cv, idt, skin, rx, ry, jaw = fr.cv, fr.idt, fr.skin, fr.rx, fr.ry, fr.jaw
    fx = rx * np.cos(_ANG40)
    fy = ry * np.sin(_ANG40)
    low = fy > 0
    fx = np.where(low, fx * (1 - idt["chin_taper"] * (fy / ry) ** 2), fx)
    fy = np.where(low, fy * (1 + 0.1 * jaw), fy)
    face = np.stack([fx, fy], 1)
    cv.fill(face, skin)

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


def _draw_cheeks_and_wrinkles(fr: _Frame) -> None:
    """Cheeks (AU6 raises and rounds them; AU12 pushes them up too), forehead wrinkles (AU1/AU2)
    and glabella lines (AU4)."""
    cv, idt, a, skin, dark_skin = fr.cv, fr.idt, fr.a, fr.skin, fr.dark_skin
    cheek = max(a[6], 0.6 * a[12])
    o = fr.off(0.8)
    cy_ = idt["eye_y"] + 0.3 - 0.07 * cheek
    blush = _mix(skin, skin * np.array([0.8, 0.8, 1.05]), 0.15 + 0.6 * cheek)
    cv.fill_many([_ellipse_pts(-0.38 + o[0], cy_ + o[1], 0.14 + 0.03 * cheek, 0.09 + 0.02 * cheek),
                  _ellipse_pts(0.38 + o[0], cy_ + o[1], 0.14 + 0.03 * cheek, 0.09 + 0.02 * cheek)],
                 blush)

    o = fr.off(0.9)
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


def _draw_brows(fr: _Frame) -> None:
    """Brows: AU1 raises the inner ends, AU2 the outer ends, AU4 lowers and thickens them."""
    cv, idt, a, skin = fr.cv, fr.idt, fr.a, fr.skin
    o = fr.off(0.9)
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


def _draw_eyes(fr: _Frame) -> None:
    """Eyes (AU5 widens, AU6 / AU7 narrow, blinks close them, the iris follows the gaze) and glasses."""
    cv, idt, a, skin, dark_skin, yaw = fr.cv, fr.idt, fr.a, fr.skin, fr.dark_skin, fr.yaw
    o = fr.off(0.8)
    hu0, hl0, ew = idt["eye_hu"], idt["eye_hl"], idt["eye_w"]
    hu = hu0 * (1 + 0.9 * a[5]) * (1 - 0.3 * a[7]) * (1 - 0.3 * a[6]) * (1 - 0.25 * a[4])
    hl = hl0 * max(0.1, 1 - 0.6 * a[7]) * max(0.1, 1 - 0.55 * a[6])
    b = fr.spec.blink[fr.f]
    hu = hu * (1 - b) - hl * 0.9 * b
    gz = fr.spec.gaze[fr.f]
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


def _draw_nose(fr: _Frame) -> Tuple[float, float]:
    """Nose (AU9 raises and widens the wings, wrinkles the bridge); returns its wings' height and
    half-width, where the nasolabial folds start."""
    cv, idt, a, skin, dark_skin = fr.cv, fr.idt, fr.a, fr.skin, fr.dark_skin
    o = fr.off(1.5)
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
            cv.line(np.array([[-0.07, y + 0.01], [0, y - 0.005], [0.07, y + 0.01]]) + fr.off(1.2),
                    col, 0.011)
    return ny, nw


def _draw_mouth(fr: _Frame, ny: float, nw: float) -> None:
    """Lips, mouth opening, teeth and nasolabial folds: AU12 / AU15 pull the corners up / down,
    AU20 stretches, AU23 tightens, AU16 / AU26 and speech open the mouth."""
    cv, idt, a, skin, dark_skin, jaw = fr.cv, fr.idt, fr.a, fr.skin, fr.dark_skin, fr.jaw
    o = fr.off(1.0)
    mw = idt["mouth_w"] * (1 + 0.28 * a[12] + 0.35 * a[20] - 0.18 * a[23] - 0.12 * a[26]
                           + 0.05 * a[15]) * fr.spec.rounding[fr.f]
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


def _render_frame(spec: ClipSpec, f: int, bg: np.ndarray) -> np.ndarray:
    """Frame ``f`` of the clip drawn over ``bg``, back to front."""
    fr = _Frame(spec, f, bg)
    _draw_behind_face(fr)
    _draw_face_and_hair(fr)
    _draw_cheeks_and_wrinkles(fr)
    _draw_brows(fr)
    _draw_eyes(fr)
    ny, nw = _draw_nose(fr)
    _draw_mouth(fr, ny, nw)
    return fr.img


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

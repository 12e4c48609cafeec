"""Detection rate of the face detectors of ``preprocess.face_track`` on real photos.

Photos: matplotlib's ``grace_hopper.jpg`` (a portrait with uniform, shoulders and a flag), and
scikit-image's ``astronaut`` when scikit-image is installed. Each is placed, at a random scale
(face 8-45 % of the frame's short side), position, brightness, contrast, blur, JPEG quality,
in-plane rotation (up to 15 degrees) and mirror, on a 640x480 frame of textured background; the
face's true box moves with it. A variant counts as found when the face ``face_crop`` would choose
(the detection with the largest :func:`preprocess.face_track.face_score`) overlaps the true box with IoU >= 0.4. Also
reported: how often any detection hits the face, false detections per frame, ms per frame.
All detectors see the same variants, in turn (one run, side by side).

    python -m benchmarks.face_detectors [--variants 100]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


import cv2

from preprocess import face_track as fc


def photos():
    """[(name, RGB image, face box (x0, y0, x1, y1))]; boxes checked by eye."""
    import matplotlib.cbook
    out = [("grace_hopper", cv2.cvtColor(cv2.imread(str(matplotlib.cbook.get_sample_data(
        "grace_hopper.jpg", asfileobj=False))), cv2.COLOR_BGR2RGB), (175, 120, 355, 340))]
    try:
        import skimage.data
        out.append(("astronaut", np.ascontiguousarray(skimage.data.astronaut()), (180, 62, 268, 172)))
    except Exception:  # noqa: BLE001 - optional
        pass
    return out


def variant(img, box, rng, W=640, H=480):
    """One randomly placed and degraded copy of ``img`` and its face box."""
    fw = box[2] - box[0]
    target = rng.uniform(0.08, 0.45) * min(W, H)
    s = target / fw
    im = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    b = np.asarray(box, np.float64) * s
    if rng.random() < 0.5:
        im = im[:, ::-1]
        b = np.array([im.shape[1] - b[2], b[1], im.shape[1] - b[0], b[3]])
    ang = rng.uniform(-15, 15)
    h, w = im.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
    im = cv2.warpAffine(np.ascontiguousarray(im), M, (w, h), borderMode=cv2.BORDER_REFLECT)
    c = M @ np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, 1.0])
    half = (b[2] - b[0]) / 2
    canvas = (rng.integers(0, 255, (H // 16 + 1, W // 16 + 1, 3)).astype(np.uint8))
    canvas = cv2.resize(canvas, (W, H), interpolation=cv2.INTER_CUBIC)
    # paste so that the face lies inside the frame
    x = int(rng.uniform(-(c[0] - half), W - (c[0] + half)))
    y = int(rng.uniform(-(c[1] - half), H - (c[1] + half)))
    sx0, sy0 = max(0, -x), max(0, -y)
    dx0, dy0 = max(0, x), max(0, y)
    ww, hh = min(w - sx0, W - dx0), min(h - sy0, H - dy0)
    canvas[dy0:dy0 + hh, dx0:dx0 + ww] = im[sy0:sy0 + hh, sx0:sx0 + ww]
    out = canvas.astype(np.float32) * rng.uniform(0.5, 1.3) + rng.uniform(-30, 30)
    out = out.clip(0, 255).astype(np.uint8)
    sigma = rng.choice([0, 0, 1.0, 2.0])
    if sigma:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 95))])
    out = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    cx, cy = c[0] + x, c[1] + y
    return out, (cx - half, cy - half, cx + half, cy + half)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--variants", type=int, default=100, help="variants per photo")
    p.add_argument("--seed", type=int, default=0, help="seed of the variants")
    args = p.parse_args(argv)
    dets = {"haar": fc.HaarDetector(min_face=0.05)}
    try:
        dets["mtcnn"] = fc.MTCNNDetector(min_face=0.05)
    except fc.DetectorUnavailable as e:
        print(f"mtcnn left out: {e}")
    rng = np.random.default_rng(args.seed)
    rows = {}
    for name, img, box in photos():
        stats = {k: [0, 0, 0, 0.0] for k in dets}  # chosen hit, any hit, false detections, seconds
        for _ in range(args.variants):
            frame, gt = variant(img, box, rng)
            for k, det in dets.items():
                t0 = time.perf_counter()
                found = det(frame)
                stats[k][3] += time.perf_counter() - t0
                boxes = [(d[0], d[1], d[0] + d[2], d[1] + d[3]) for d in found]
                hits = [iou(b, gt) >= 0.4 for b in boxes]
                if found:   # the detection the track would weigh most
                    x, y, w, h, _ = max(found, key=lambda d: fc.face_score(
                        fc.face_of(d), d[4], frame.shape[1], frame.shape[0]))
                    stats[k][0] += iou((x, y, x + w, y + h), gt) >= 0.4
                stats[k][1] += any(hits)
                stats[k][2] += len(hits) - sum(hits)
        rows[name] = stats
    n = args.variants
    print(f"\n{n} variants per photo (face 8-45 % of the short side of a 640x480 frame, rotated up "
          f"to 15 degrees, blurred, JPEG, brightness and contrast changed)\n")
    print("| photo | detector | face chosen | face among detections | false detections / frame | ms / frame |")
    print("|---|---|---|---|---|---|")
    for name, stats in rows.items():
        for k, (chosen, anyhit, false, secs) in stats.items():
            print(f"| {name} | {k} | {chosen / n:.0%} | {anyhit / n:.0%} | {false / n:.2f} | "
                  f"{1000 * secs / n:.1f} |")
    return rows


if __name__ == "__main__":
    main()

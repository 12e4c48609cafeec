"""How much the published 'squash' test view differs from the short-side crops on non-square frames.

For frame shapes of raw videos (4:3, 5:4, 16:9) and one real non-square photo (matplotlib's
``grace_hopper.jpg``, 512x600), the test views of ``EvalTransform`` at 160 px with 2 crops are
compared: the share of the frame each view shows, the horizontal (or vertical) squeeze of squash,
the mean absolute difference between the squash view and each short-side crop (in [0, 1] pixel
units), and the width/height ratio of the face box that MTCNN (facenet-pytorch, when installed)
finds in each view of the photo (1.0 = the face's own proportions in the photo).

    python -m benchmarks.resize_modes
"""
from __future__ import annotations


import numpy as np


import cv2

from datasets.transforms import EvalTransform, denormalize


def views(frame_rgb, size=160):
    clip = frame_rgb[None]
    sq = EvalTransform(size, size, 2, resize_mode="squash")
    ss = EvalTransform(size, size, 2, resize_mode="short_side")
    to_img = lambda c: (denormalize(c)[:, 0].permute(1, 2, 0).clamp(0, 1).numpy())  # noqa: E731
    return to_img(sq(clip, 0)), [to_img(ss(clip, k)) for k in range(2)]


def main():
    print("| frames | squash shows | squeeze | each short-side crop shows | mean abs diff squash vs crop 0 / 1 |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for w, h in ((480, 360), (720, 576), (1280, 720)):
        frame = cv2.resize(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8), (w, h),
                           interpolation=cv2.INTER_CUBIC)
        sq, crops = views(frame)
        diffs = [float(np.abs(sq - c).mean()) for c in crops]
        print(f"| {w}x{h} | 100 % | width x {h / w:.2f} | {100 * h / w:.0f} % of the width | "
              f"{diffs[0]:.3f} / {diffs[1]:.3f} |")
    import matplotlib.cbook
    photo = cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))[:, :, ::-1]
    sq, crops = views(np.ascontiguousarray(photo))
    diffs = [float(np.abs(sq - c).mean()) for c in crops]
    print(f"| grace_hopper.jpg 512x600 | 100 % | height x {512 / 600:.2f} | {100 * 512 / 600:.0f} % of the "
          f"height | {diffs[0]:.3f} / {diffs[1]:.3f} |")
    try:
        from preprocess.face_track import MTCNNDetector
        det = MTCNNDetector(min_face=0.05)
    except Exception as e:  # noqa: BLE001
        print(f"(MTCNN not available: {e})")
        return
    def face_aspect(img):
        rgb = np.ascontiguousarray((img * 255).astype(np.uint8))
        rgb = cv2.resize(rgb, (480, 480), interpolation=cv2.INTER_LINEAR)
        found = sorted(det(rgb), key=lambda d: -d[2] * d[3])
        return found[0][2] / found[0][3] if found else float("nan")
    full = det(np.ascontiguousarray(photo))
    base = max(full, key=lambda d: d[2] * d[3])
    base_aspect = base[2] / base[3]
    print(f"\nface box width/height, relative to the photo's own ({base_aspect:.3f}): squash view "
          f"{face_aspect(sq) / base_aspect:.3f}, short-side crops "
          + " / ".join(f"{face_aspect(c) / base_aspect:.3f}" for c in crops))


if __name__ == "__main__":
    main()

"""Decode time of one clip per reader and per file format, side by side in one run.

Each format is a VoxCeleb2-like file written here with PyAV (224x224, 25 fps, 8 s, GOP 48, B-frames
where the codec has them); a clip is the pre-training clip: 16 frames 4 apart from a random start
(SPEC section 2). Readers take turns clip by clip (interleaved rounds), so machine noise hits all
alike. Every clip is also checked against a full sequential decode: "exact" is the share of clips
whose frames all match. ``decord (raw)`` is decord's own random access, which the project's
``--reader decord`` uses only where it is verified exact (datasets/video_reader.py).

    python -m benchmarks.decoding [--rounds 30] [--out benchmarks/results/decoding.md]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


from datasets import video_reader as vr
from datasets.video_writer import write_frame_folder, write_video

FORMATS = [  # (label, file name, codec, max B-frames)
    ("MP4 H.264 (B-frames)", "h264.mp4", "libx264", 2),
    ("MP4 MPEG-4 part 2 (B-frames)", "mpeg4.mp4", "mpeg4", 2),
    ("AVI MPEG-4 part 2 (B-frames)", "mpeg4_b.avi", "mpeg4", 2),
    ("AVI MPEG-4 part 2", "mpeg4.avi", "mpeg4", 0),
    ("AVI H.264 (B-frames)", "h264.avi", "libx264", 2),
    ("AVI MJPEG", "mjpeg.avi", "mjpeg", 0),
    ("FLV (Sorenson)", "flv1.flv", "flv", 0),
    ("MKV H.264 (B-frames)", "h264.mkv", "libx264", 2),
]


def synthetic_frames(n: int, size: int = 224, seed: int = 0) -> np.ndarray:
    """A moving textured scene, coded at realistic bit rates (flat frames would decode too fast)."""
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, (size * 2, size * 2, 3), dtype=np.uint8)
    tex = (tex.astype(np.float32) * 0.5 + np.kron(rng.integers(0, 128, (size // 8, size // 8, 3)),
                                                   np.ones((16, 16, 1)))).clip(0, 255).astype(np.uint8)
    return np.stack([np.roll(tex, (i, 2 * i), axis=(0, 1))[:size, :size] for i in range(n)])


class RawDecord:
    kind = "decord (raw)"

    def __init__(self, path):
        import decord
        self._vr = decord.VideoReader(path, num_threads=1)
        self.num_frames = len(self._vr)

    def get(self, idx):
        return self._vr.get_batch(list(idx)).asnumpy()

    def close(self):
        self._vr = None


def sequential(path):
    import av
    with av.open(path) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rounds", type=int, default=30, help="clips per reader and format")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each file")
    p.add_argument("--size", type=int, default=224, help="frame size (square)")
    p.add_argument("--out", default=None, help="also write the markdown table here")
    args = p.parse_args(argv)

    n = int(round(args.seconds * 25))
    frames = synthetic_frames(n, args.size)
    readers = [("pyav", lambda q: vr.open_video(q, "pyav")),
               ("opencv", lambda q: vr.open_video(q, "opencv"))]
    if vr.HAS_DECORD:
        readers[1:1] = [("decord", lambda q: vr.open_video(q, "decord")), ("decord (raw)", RawDecord)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for label, name, codec, bf in FORMATS:
            path = os.path.join(tmp, name)
            write_video(path, frames, codec=codec, gop_size=48, max_b_frames=bf)
            files.append((label, path))
        files.append(("JPEG frame folder", write_frame_folder(os.path.join(tmp, "frames"), frames)))
        rng = np.random.default_rng(0)
        for label, path in files:
            ref = sequential(path) if os.path.isfile(path) else None
            starts = rng.integers(0, n - 61, args.rounds)
            t = {r: 0.0 for r, _ in readers}
            exact = {r: 0 for r, _ in readers}
            used = {}
            for s in starts:  # interleaved: every reader reads the same clip in turn
                idx = list(range(int(s), int(s) + 64, 4))
                for r, make in readers:
                    if r == "decord (raw)" and ref is None:
                        continue  # decord reads no frame folders
                    t0 = time.perf_counter()
                    v = make(path)
                    got = v.get(idx)
                    used[r] = v.kind
                    v.close()
                    t[r] += time.perf_counter() - t0
                    exact[r] += ref is None or bool(np.array_equal(got, ref[idx]))
            rows.append((label, {r: (1000 * t[r] / args.rounds, exact[r] / args.rounds, used[r])
                                 for r, _ in readers if r in used}))
    names = [r for r, _ in readers]
    lines = [f"ms per clip (16 frames, 4 apart, random start) on {args.size}x{args.size} {args.seconds:g} s "
             f"files, {args.rounds} clips each; exact = share of clips equal to a sequential decode",
             "", "| file | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, res in rows:
        cells = []
        for r in names:
            if r not in res:
                cells.append("-")
                continue
            ms, ex, kind = res[r]
            via = f" (via {kind})" if r == "decord" and kind != "decord" else ""
            cells.append(f"{ms:.1f}{via}, exact {ex:.0%}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return rows


if __name__ == "__main__":
    main()

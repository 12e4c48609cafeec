"""preprocess.face_crop: box smoothing and cropping on injected detections, the real Haar cascade
on a drawn face, the no-face path (clear error, centre-crop fallback) and the folder CLI."""
import os

import cv2
import numpy as np
import pytest

from preprocess import face_crop as fc


def drawn_face(W=320, H=240, cx=160, cy=120, s=70, bg=(1.0, 1.0, 1.0)):
    """A shaded cartoon face the frontal Haar cascade detects (eyes, brows, nose, mouth, hair), on a
    grey ramp tinted by ``bg`` (BGR factors)."""
    img = np.empty((H, W, 3), np.uint8)
    img[:] = (np.linspace(120, 220, W)[None, :, None] * np.asarray(bg)[None, None]).clip(0, 255).astype(np.uint8)
    cv2.ellipse(img, (cx, cy), (int(s * 0.8), s), 0, 0, 360, (150, 170, 210), -1)
    img = cv2.GaussianBlur(img, (0, 0), 2)
    for dx in (-1, 1):
        cv2.ellipse(img, (cx + dx * int(s * 0.33), cy - int(s * 0.25)), (int(s * 0.18), int(s * 0.08)),
                    0, 0, 360, (40, 40, 40), -1)
        cv2.line(img, (cx + dx * int(s * 0.15), cy - int(s * 0.48)),
                 (cx + dx * int(s * 0.52), cy - int(s * 0.45)), (50, 50, 60), int(s * 0.07))
    cv2.ellipse(img, (cx, cy + int(s * 0.1)), (int(s * 0.08), int(s * 0.2)), 0, 0, 360, (120, 140, 180), -1)
    cv2.ellipse(img, (cx, cy + int(s * 0.5)), (int(s * 0.3), int(s * 0.08)), 0, 0, 360, (60, 60, 120), -1)
    cv2.ellipse(img, (cx, cy - int(s * 0.85)), (int(s * 0.85), int(s * 0.35)), 0, 0, 360, (30, 30, 40), -1)
    return cv2.GaussianBlur(img, (0, 0), 1.5)


def write_video(path, frames, fps=25):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert wr.isOpened()
    for f in frames:
        wr.write(f)
    wr.release()
    return path


def read_video(path):
    cap = cv2.VideoCapture(path)
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out


# ---------------------------------------------------------------------------- pure box logic

def test_smooth_box_median_margin_square_clamp():
    dets = [(100, 50, 40, 40), None, (104, 54, 40, 40), (102, 52, 44, 40), (0, 0, 200, 200)]
    box = fc.smooth_box(dets, 320, 240, margin=0.25)
    # median centre (122, 73); median size max(42, 40) = 42 -> side 42 * 1.5 = 63, square
    x0, y0, x1, y1 = box
    assert x1 - x0 == y1 - y0 == 63
    assert abs((x0 + x1) / 2 - 122) <= 1 and abs((y0 + y1) / 2 - 73) <= 1   # outlier ignored
    assert fc.smooth_box([None, None], 320, 240) is None
    # clamped: a face at the corner stays inside the frame, a huge one shrinks to the frame
    x0, y0, x1, y1 = fc.smooth_box([(0, 0, 60, 60)], 320, 240, margin=0.5)
    assert (x0, y0) == (0, 0) and x1 - x0 == 120 == y1 - y0
    assert fc.smooth_box([(250, 180, 100, 100)], 320, 240, margin=0.5) == (120, 40, 320, 240)
    assert fc.smooth_box([(250, 180, 100, 100)], 320, 240, margin=1.0) == (80, 0, 320, 240)
    assert fc.center_box(320, 240) == (40, 0, 280, 240)
    assert fc.center_box(320, 240, 0.5) == (100, 60, 220, 180)


def test_crop_with_injected_detector(tmp_path):
    """A white square moves by a pixel a frame; the injected detector reports it -> one box."""
    frames = []
    for i in range(12):
        f = np.zeros((120, 160, 3), np.uint8)
        f[40:80, 60 + i:100 + i] = 255
        frames.append(f)
    src = write_video(str(tmp_path / "in.mp4"), frames)
    calls = []

    def detector(frame):
        calls.append(1)
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        ys, xs = np.nonzero(gray > 128)
        return [(xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)]

    info = fc.crop_face_video(src, str(tmp_path / "out.mp4"), size=48, detect_every=4, margin=0.0,
                              detector=detector)
    assert len(calls) == 3 and info["num_checked"] == 3 and info["num_detected"] == 3
    assert info["status"] == "face" and info["num_frames"] == 12
    x0, y0, x1, y1 = info["box"]
    assert x1 - x0 == y1 - y0 and abs((x0 + x1) / 2 - 84.5) <= 2 and abs((y0 + y1) / 2 - 60) <= 2
    out = read_video(str(tmp_path / "out.mp4"))
    assert len(out) == 12 and out[0].shape == (48, 48, 3)
    assert out[6][20:28, 20:28].mean() > 200            # the square fills the middle of the crop
    # frames output (a folder of jpgs) from a frame-folder input
    fdir = tmp_path / "frames_in"
    fdir.mkdir()
    for i, f in enumerate(frames[:5]):
        cv2.imwrite(str(fdir / f"{i + 1}.png"), f)
    info = fc.crop_face_video(str(fdir), str(tmp_path / "crops"), size=32, detector=detector)
    assert sorted(os.listdir(tmp_path / "crops")) == [f"{i:05d}.jpg" for i in range(1, 6)]
    assert cv2.imread(str(tmp_path / "crops" / "00003.jpg")).shape == (32, 32, 3)


# ---------------------------------------------------------------------------- the real cascade

def test_haar_finds_drawn_face(tmp_path):
    frames = [drawn_face(cx=150 + i, cy=118) for i in range(10)]
    src = write_video(str(tmp_path / "face.mp4"), frames)
    info = fc.crop_face_video(src, str(tmp_path / "face_crop"), size=64, detect_every=3,
                              detector="haar")
    assert info["status"] == "face" and info["num_detected"] >= 2
    x0, y0, x1, y1 = info["box"]
    assert x0 < 150 < x1 and y0 < 118 < y1 and x1 - x0 == y1 - y0
    assert 100 <= x1 - x0 <= 240
    assert len(os.listdir(tmp_path / "face_crop")) == 10


def test_no_face_message_and_center_fallback(tmp_path):
    src = write_video(str(tmp_path / "blank.mp4"), [np.full((90, 160, 3), 128, np.uint8)] * 6)
    with pytest.raises(fc.NoFaceError, match="no face found.*--fallback center"):
        fc.crop_face_video(src, str(tmp_path / "nf.mp4"))
    assert not os.path.exists(tmp_path / "nf.mp4")
    info = fc.crop_face_video(src, str(tmp_path / "nf.mp4"), size=40, fallback="center")
    assert info["status"] == "center_fallback" and "centre crop" in info["message"]
    assert info["box"] == (35, 0, 125, 90)
    out = read_video(str(tmp_path / "nf.mp4"))
    assert len(out) == 6 and out[0].shape == (40, 40, 3)
    with pytest.raises(fc.VideoReadError):
        fc.crop_face_video(str(tmp_path / "missing.mp4"), str(tmp_path / "x"))


def test_cli_over_folder_lists_failures(tmp_path, capsys):
    inp = tmp_path / "videos"
    write_video(str(inp / "a" / "face.mp4"), [drawn_face()] * 4)
    write_video(str(inp / "b" / "blank.avi"), [np.zeros((96, 128, 3), np.uint8)] * 4)
    out = tmp_path / "crops"
    res = fc.main(["--input", str(inp), "--output", str(out), "--size", "48", "--every", "2",
                   "--detector", "haar"])
    log = capsys.readouterr().out
    assert {os.path.basename(r["in_path"]): r["status"] for r in res} == {"face.mp4": "face",
                                                                          "blank.avi": "failed"}
    assert len(os.listdir(out / "a" / "face")) == 4          # mirrors the layout, no extension
    assert "1 failed" in log and "blank.avi: NoFaceError" in log
    assert "blank.avi" in open(out / "face_crop_failures.txt").read()
    res = fc.main(["--input", str(inp), "--output", str(out), "--format", "mp4", "--detector", "haar",
                   "--fallback", "center", "--workers", "2"])
    assert sorted(r["status"] for r in res) == ["center_fallback", "face"]
    assert len(read_video(str(out / "b" / "blank.mp4"))) == 4
    res = fc.main(["--input", str(inp), "--output", str(out), "--format", "mp4"])
    assert res == [] and "2 clips already done" in capsys.readouterr().out


def test_cli_exits_non_zero_on_missing_input_or_when_every_clip_fails(tmp_path, capsys):
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, "-m", "preprocess.face_crop", "--output", str(tmp_path / "out")]
    r = subprocess.run(cmd + ["--input", str(tmp_path / "nope")], cwd=root, capture_output=True,
                       text=True)
    assert r.returncode == 1 and r.stderr.strip() == \
        f"face_crop: --input {tmp_path / 'nope'}: no such file or folder"
    inp = tmp_path / "blank"
    for i in range(2):
        write_video(str(inp / f"b{i}.avi"), [np.zeros((96, 128, 3), np.uint8)] * 3)
    r = subprocess.run(cmd + ["--input", str(inp)], cwd=root, capture_output=True, text=True)
    assert r.returncode == 1
    assert "done: 0 of 2 clips cropped" in r.stdout
    assert r.stderr.strip().splitlines()[-1].startswith("face_crop: all 2 clips failed (listed in ")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no videos"):
        fc.main(["--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o2")])


# ---------------------------------------------------------------------------- shots and face choice

def test_choose_face_track_prefers_a_consistent_central_face():
    face = [(140, 80, 60, 60)]
    shoulder = (20, 150, 110, 90)                  # larger, off-centre, fires on 5 of 8 frames
    dets = [face + ([shoulder] if i in (0, 1, 2, 4, 6) else []) for i in range(8)]
    track = fc.choose_face_track(dets, 320, 240)
    assert len(track) == 8 and all(d == (140, 80, 60, 60) for d in track)
    # the old rule (largest detection per frame) crops the shoulder
    assert fc.smooth_box([max(d, key=lambda b: b[2] * b[3]) for d in dets], 320, 240) != \
        fc.smooth_box(track, 320, 240)
    # two faces seen on every frame: the central one; a moving face stays one track
    dets = [[(10, 10, 50, 50), (135 + 3 * i, 95, 50, 50)] for i in range(6)]
    track = fc.choose_face_track(dets, 320, 240)
    assert [d[0] for d in track] == [135 + 3 * i for i in range(6)]
    # confidence counts: a detector's unsure detection loses to a sure one of the same size
    dets = [[(150, 100, 40, 40, 0.95), (60, 100, 40, 40, 0.3)]] * 4
    assert fc.choose_face_track(dets, 320, 240)[0][0] == 150
    assert fc.choose_face_track([[], []], 320, 240) == []


def test_multi_shot_video_gets_one_box_per_shot(tmp_path):
    shot1 = [drawn_face(cx=80 + i, cy=120, s=45) for i in range(10)]
    shot2 = [drawn_face(cx=240 - i, cy=110, s=45, bg=(1.1, 0.5, 0.3)) for i in range(10)]  # new scene
    src = write_video(str(tmp_path / "two_shots.mp4"), shot1 + shot2)
    info = fc.crop_face_video(src, str(tmp_path / "crop"), size=48, detect_every=3, detector="haar")
    assert [(s["start"], s["end"]) for s in info["shots"]] == [(0, 10), (10, 20)]
    assert all(s["status"] == "face" for s in info["shots"])
    (a0, _, a1, _), (b0, _, b1, _) = info["shots"][0]["box"], info["shots"][1]["box"]
    assert a0 < 85 < a1 and b0 < 235 < b1 and (a0 + a1) / 2 + 100 < (b0 + b1) / 2
    assert "2 shots (2 with a face)" in info["message"]
    assert len(os.listdir(tmp_path / "crop")) == 20
    # one box for the whole clip (the old behaviour) cuts one of the two faces off
    one = fc.crop_face_video(src, str(tmp_path / "crop1"), size=48, detect_every=3, detector="haar",
                             shot_threshold=1.0)
    assert len(one["shots"]) == 1
    x0, _, x1, _ = one["box"]
    assert not (x0 < 85 and 235 < x1)
    # a shot without a face borrows the nearest shot's box
    blank = [np.full((240, 320, 3), (20, 200, 20), np.uint8)] * 6
    src = write_video(str(tmp_path / "with_blank.mp4"), shot1 + blank)
    info = fc.crop_face_video(src, str(tmp_path / "crop2"), size=48, detect_every=3, detector="haar")
    assert [s["status"] for s in info["shots"]] == ["face", "borrowed"]
    assert info["shots"][1]["box"] == info["shots"][0]["box"]


def _grace_hopper():
    import matplotlib.cbook
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.imread(str(path)), (175, 120, 355, 340)   # the face, by eye (docs/preprocess.md)


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("name", ["haar", "mtcnn"])
def test_detectors_find_the_face_in_a_photo(name):
    if name == "mtcnn":
        pytest.importorskip("facenet_pytorch")
    img, face = _grace_hopper()
    det = fc.make_detector(name, min_face=0.1)
    assert det.name == name
    track = fc.choose_face_track([det(img)], img.shape[1], img.shape[0])
    x, y, w, h = track[0]
    assert _iou((x, y, x + w, y + h), face) > 0.5

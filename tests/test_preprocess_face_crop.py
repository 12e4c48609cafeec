"""preprocess.face_track / face_crop on videos the tests draw: boxes that follow the face, span ends
found to the frame, a detector's miss bridged, flat frames and cuts without a face, one person
followed among several and across shots, the sidecar reused; the real Haar cascade on a drawn face;
the no-face path (clear error, centre-crop fallback) and the folder CLI. Real footage:
tests/test_realdata.py."""
import json
import os

import cv2
import numpy as np
import pytest

from datasets.video_reader import VideoReadError, iter_frames
from datasets.video_writer import write_video
from preprocess import face_crop as fc
from preprocess import face_track as ft


def drawn_face(W=320, H=240, cx=160, cy=120, s=70, bg=(1.0, 1.0, 1.0)):
    """A shaded cartoon face the frontal Haar cascade detects (eyes, brows, nose, mouth, hair), on a
    grey ramp tinted by ``bg`` (RGB factors); RGB."""
    img = np.empty((H, W, 3), np.uint8)
    img[:] = (np.linspace(120, 220, W)[None, :, None] * np.asarray(bg)[None, None]).clip(0, 255).astype(np.uint8)
    cv2.ellipse(img, (cx, cy), (int(s * 0.8), s), 0, 0, 360, (210, 170, 150), -1)
    img = cv2.GaussianBlur(img, (0, 0), 2)
    for dx in (-1, 1):
        cv2.ellipse(img, (cx + dx * int(s * 0.33), cy - int(s * 0.25)), (int(s * 0.18), int(s * 0.08)),
                    0, 0, 360, (40, 40, 40), -1)
        cv2.line(img, (cx + dx * int(s * 0.15), cy - int(s * 0.48)),
                 (cx + dx * int(s * 0.52), cy - int(s * 0.45)), (60, 50, 50), int(s * 0.07))
    cv2.ellipse(img, (cx, cy + int(s * 0.1)), (int(s * 0.08), int(s * 0.2)), 0, 0, 360, (180, 140, 120), -1)
    cv2.ellipse(img, (cx, cy + int(s * 0.5)), (int(s * 0.3), int(s * 0.08)), 0, 0, 360, (120, 60, 60), -1)
    cv2.ellipse(img, (cx, cy - int(s * 0.85)), (int(s * 0.85), int(s * 0.35)), 0, 0, 360, (40, 30, 30), -1)
    return cv2.GaussianBlur(img, (0, 0), 1.5)


def video(path, frames, fps=25):
    """Lossless-enough H.264 (qp 0) so that the injected detectors see the drawn values."""
    return write_video(str(path), np.stack(frames), fps=fps, options={"qp": "0"})


def squares(n, *people, bg=40, size=(120, 160)):
    """Frames of ``bg`` grey with coloured squares: each person ``(frames, x(i), y, side, colour)``."""
    out = []
    for i in range(n):
        f = np.full(size + (3,), bg, np.uint8)
        for frames, x, y, side, colour in people:
            if i in frames:
                x0 = int(x(i))
                f[y:y + side, x0:x0 + side] = colour
        out.append(f)
    return out


class ColourDetector:
    """Finds the squares of the given colours (RGB), as (x, y, w, h, 1.0); counts its calls."""
    name = "colours"

    def __init__(self, *colours):
        self.colours, self.calls = colours, []

    def __call__(self, frame):
        self.calls.append(1)
        found = []
        for c in self.colours:
            ys, xs = np.nonzero(np.all(np.abs(frame.astype(int) - c) < 12, axis=2))
            if len(xs) > 20:
                found.append((float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                              float(ys.max() - ys.min() + 1), 1.0))
        return found


WHITE, RED, BLUE, GREEN = (250, 250, 250), (220, 30, 30), (30, 60, 220), (30, 200, 60)


# ---------------------------------------------------------------------------- boxes

def test_square_box_center_box_and_the_crop_margin():
    assert ft.square_box(10, 10, 60, 320, 240) == (0, 0, 60, 60)                 # shifted inside
    assert ft.square_box(300, 200, 400, 320, 240) == (80, 0, 320, 240)           # shrunk to the frame
    assert ft.center_box(320, 240) == (40, 0, 280, 240)
    assert ft.center_box(320, 240, 0.5) == (100, 60, 220, 180)
    track = ft.FaceTrack(3, (320, 240), 25.0, [(100.0, 80.0, 40.0), None, (300.0, 230.0, 40.0)],
                         [(0, 3)], "x", 1, 1, "", 2, 2)
    assert track.crop_box(0, margin=0.25) == (70, 50, 130, 110)                  # 40 + 2 x 10, centred
    assert track.crop_box(1) is None and track.crop_box(2, margin=0.5) == (240, 160, 320, 240)
    assert track.spans() == [(0, 1, True), (1, 2, False), (2, 3, True)]
    assert track.face_fraction == pytest.approx(2 / 3) and track.nearest_face(1) == 0


# ---------------------------------------------------------------------------- the track

def test_boxes_follow_a_moving_face_and_every_frame_is_cropped(tmp_path):
    frames = squares(12, (range(12), lambda i: 50 + 3 * i, 40, 30, WHITE))
    src = video(tmp_path / "in.mp4", frames)
    det = ColourDetector(WHITE)
    info = fc.crop_face_video(src, str(tmp_path / "out.mp4"), size=48, detect_every=4, margin=0.0,
                              detector=det, smooth_s=0.0)
    assert len(det.calls) == 4 == info["num_checked"]        # frames 0, 4, 8 and the shot's last, 11
    assert info["status"] == "face" and info["num_frames"] == 12 and info["spans"] == [[0, 12, True]]
    track = ft.load_track(info["sidecar"])
    for i in range(12):   # the square's centre, interpolated between the checks
        cx, cy, side = track.faces[i]
        assert abs(cx - (50 + 3 * i + 15)) <= 0.6 and abs(cy - 55) <= 0.6 and side == 30
    out = np.stack(list(iter_frames(str(tmp_path / "out.mp4"))))
    assert out.shape == (12, 48, 48, 3) and out[:, 8:40, 8:40].mean() > 200   # the square fills the crop
    # smoothed (the default): still centred on the square, which moves 3 px a frame
    info = fc.crop_face_video(src, str(tmp_path / "smooth"), size=32, detect_every=4, detector=det)
    track = ft.load_track(info["sidecar"])
    assert all(abs(track.faces[i][0] - (65 + 3 * i)) < 6 for i in range(12))
    assert sorted(os.listdir(tmp_path / "smooth")) == [f"{i:05d}.jpg" for i in range(1, 13)]


def test_span_ends_are_found_to_the_frame_and_a_miss_is_bridged(tmp_path):
    frames = squares(30, (range(13), lambda i: 60, 40, 30, WHITE), (range(19, 30), lambda i: 60, 40, 30, WHITE))
    src = video(tmp_path / "gone.mp4", frames)
    det = ColourDetector(WHITE)
    track, _ = ft.track_faces(src, det, ft.TrackSettings(detect_every=5))
    assert len(track.shots) == 1                       # the square leaving is no cut
    assert track.spans() == [(0, 13, True), (13, 19, False), (19, 30, True)]
    assert track.num_checked < 30 / 2                  # checks and a few bisection steps, not every frame

    class Misses(ColourDetector):    # the detector misses the face on its 3rd call: frame 10
        def __call__(self, frame):
            found = super().__call__(frame)
            return [] if len(self.calls) == 3 else found
    frames = squares(20, (range(20), lambda i: 60, 40, 30, WHITE))
    track, _ = ft.track_faces(video(tmp_path / "miss.mp4", frames), Misses(WHITE), ft.TrackSettings(detect_every=5))
    assert track.spans() == [(0, 20, True)]            # 1 missed frame < --max_gap 0.5 s
    track, _ = ft.track_faces(video(tmp_path / "miss2.mp4", frames), Misses(WHITE),
                              ft.TrackSettings(detect_every=5, max_gap_s=0.0))
    assert [s for s in track.spans() if not s[2]] == [(10, 11, False)]


def test_flat_frames_and_cuts_have_no_face(tmp_path):
    face = squares(8, (range(8), lambda i: 60, 40, 30, WHITE))
    black = [np.zeros((120, 160, 3), np.uint8)]
    scene = squares(9, bg=200)                        # a cut to a scene without the face
    src = video(tmp_path / "cut.mp4", face + black + face + scene)
    det = ColourDetector(WHITE)
    info = fc.crop_face_video(src, str(tmp_path / "crop"), size=32, detect_every=3, detector=det)
    assert info["spans"] == [[0, 8, True], [8, 9, False], [9, 17, True], [17, 26, False]]
    assert info["num_frames"] == 16 and len(os.listdir(tmp_path / "crop")) == 16
    assert "2 spans without it left out" in info["message"]
    side = json.load(open(info["sidecar"]))
    assert side["faces"][8] is None and side["faces"][20] is None and side["faces"][3] is not None
    assert [tuple(s) for s in side["shots"]] == [(0, 8), (8, 9), (9, 17), (17, 26)]


def test_one_person_is_followed_among_several(tmp_path):
    """Three people on screen: the large central one is followed on every frame, never the others;
    the choice is stated."""
    people = ((range(24), lambda i: 10 + (i % 3), 50, 24, RED),          # small, left
              (range(24), lambda i: 62 + (i % 2), 30, 40, WHITE),         # large, central
              (range(4, 24), lambda i: 128, 60, 26, BLUE))                # small, right, comes later
    src = video(tmp_path / "three.mp4", squares(24, *people, size=(120, 170)))
    track, _ = ft.track_faces(src, ColourDetector(RED, WHITE, BLUE), ft.TrackSettings(detect_every=4))
    assert track.people == 3 and track.spans() == [(0, 24, True)]
    assert all(60 < f[0] < 105 and 39.5 < f[2] < 41.5 for f in track.faces)
    assert track.choice.startswith("3 people seen; followed the face on screen in 100% of the frames")


def test_the_person_is_kept_across_shots_by_appearance(tmp_path):
    """Shot 1: the person (red on white); shot 2: somebody else (green on blue), larger; shot 3: the
    person again. The person has more screen time: followed in shots 1 and 3, shot 2 has no face."""
    def shot(n, colour, bg, x, side):
        return squares(n, (range(n), lambda i: x, 30, side, colour), bg=bg)
    frames = shot(20, RED, 230, 60, 36) + shot(10, GREEN, 90, 50, 44) + shot(20, RED, 230, 70, 36)
    track, _ = ft.track_faces(video(tmp_path / "shots.mp4", frames), ColourDetector(RED, GREEN),
                              ft.TrackSettings(detect_every=5))
    assert [tuple(s) for s in track.shots] == [(0, 20), (20, 30), (30, 50)]
    assert track.people == 2
    assert track.spans() == [(0, 20, True), (20, 30, False), (30, 50, True)]


def test_the_sidecar_is_reused_with_the_same_settings_only(tmp_path):
    src = video(tmp_path / "in.mp4", squares(10, (range(10), lambda i: 60, 40, 30, WHITE)))
    det = ColourDetector(WHITE)
    first = fc.crop_face_video(src, str(tmp_path / "a.mp4"), size=32, detector=det)
    n = len(det.calls)
    again = fc.crop_face_video(src, str(tmp_path / "a.mp4"), size=64, margin=0.5, detector=det)
    assert first["reused"] is False and again["reused"] is True and len(det.calls) == n
    assert again["spans"] == first["spans"]
    fc.crop_face_video(src, str(tmp_path / "a.mp4"), size=32, detect_every=2, detector=det)   # other settings
    assert len(det.calls) > n
    m = len(det.calls)
    fc.crop_face_video(src, str(tmp_path / "a.mp4"), size=32, detect_every=2, detector=det, reuse=False)
    assert len(det.calls) > m
    # another video under the same output name: its own track
    other = video(tmp_path / "other.mp4", squares(12, (range(12), lambda i: 20, 40, 30, WHITE)))
    info = fc.crop_face_video(other, str(tmp_path / "a.mp4"), size=32, detect_every=2, detector=det)
    assert info["reused"] is False and info["source_frames"] == 12
    assert ft.load_track(fc.sidecar_path(str(tmp_path / "a.mp4")), src) is None


# ---------------------------------------------------------------------------- the real cascade

def test_haar_finds_drawn_face(tmp_path):
    src = video(tmp_path / "face.mp4", [drawn_face(cx=150 + i, cy=118) for i in range(10)])
    info = fc.crop_face_video(src, str(tmp_path / "face_crop"), size=64, detect_every=3, detector="haar")
    assert info["status"] == "face" and info["num_detected"] >= 3 and info["detector"] == "haar"
    track = ft.load_track(info["sidecar"])
    x0, y0, x1, y1 = track.crop_box(5)
    assert x0 < 155 < x1 and y0 < 118 < y1 and x1 - x0 == y1 - y0 and 100 <= x1 - x0 <= 240
    assert len(os.listdir(tmp_path / "face_crop")) == 10


def test_no_face_message_and_center_fallback(tmp_path):
    src = video(tmp_path / "blank.mp4", [np.full((90, 160, 3), 128, np.uint8)] * 6)
    with pytest.raises(fc.NoFaceError, match="no face found.*--fallback center"):
        fc.crop_face_video(src, str(tmp_path / "nf.mp4"))
    assert not os.path.exists(tmp_path / "nf.mp4")
    info = fc.crop_face_video(src, str(tmp_path / "nf.mp4"), size=40, fallback="center")
    assert info["status"] == "center_fallback" and "centre crop" in info["message"]
    out = list(iter_frames(str(tmp_path / "nf.mp4")))
    assert len(out) == 6 and out[0].shape == (40, 40, 3)
    with pytest.raises(VideoReadError):
        fc.crop_face_video(str(tmp_path / "missing.mp4"), str(tmp_path / "x"))


def test_cli_over_folder_lists_failures(tmp_path, capsys):
    inp = tmp_path / "videos"
    video(inp / "a" / "face.mp4", [drawn_face()] * 4)
    video(inp / "b" / "blank.avi", [np.zeros((96, 128, 3), np.uint8)] * 4)
    out = tmp_path / "crops"
    res = fc.main(["--input", str(inp), "--output", str(out), "--size", "48", "--every", "2",
                   "--detector", "haar"])
    log = capsys.readouterr().out
    assert {os.path.basename(r["in_path"]): r["status"] for r in res} == {"face.mp4": "face",
                                                                          "blank.avi": "failed"}
    assert len(os.listdir(out / "a" / "face")) == 4          # mirrors the layout, no extension
    assert os.path.isfile(out / "a" / "face.face.json")      # the sidecar beside it
    assert "1 failed" in log and "blank.avi: NoFaceError" in log
    assert "blank.avi" in open(out / "face_crop_failures.txt").read()
    res = fc.main(["--input", str(inp), "--output", str(out), "--format", "mp4", "--detector", "haar",
                   "--fallback", "center", "--workers", "2"])
    assert sorted(r["status"] for r in res) == ["center_fallback", "face"]
    assert len(list(iter_frames(str(out / "b" / "blank.mp4")))) == 4
    res = fc.main(["--input", str(inp), "--output", str(out), "--format", "mp4"])
    assert res == [] and "2 clips already done" in capsys.readouterr().out
    assert "wmv" in fc.VIDEO_IN_EXTS.split(",")


def test_cli_exits_non_zero_on_missing_input_or_when_every_clip_fails(tmp_path):
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
        video(inp / f"b{i}.avi", [np.zeros((96, 128, 3), np.uint8)] * 3)
    r = subprocess.run(cmd + ["--input", str(inp), "--detector", "haar"], cwd=root, capture_output=True,
                       text=True)
    assert r.returncode == 1
    assert "done: 0 of 2 clips cropped" in r.stdout
    assert r.stderr.strip().splitlines()[-1].startswith("face_crop: all 2 clips failed (listed in ")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no videos"):
        fc.main(["--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o2")])


# ---------------------------------------------------------------------------- detectors on a photo

def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("name", ["haar", "mtcnn"])
def test_detectors_find_the_face_in_a_photo(name):
    if name == "mtcnn":
        pytest.importorskip("facenet_pytorch")
    import matplotlib.cbook
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    det = ft.make_detector(name, min_face=0.1)
    assert det.name == name
    found = det(img)
    x, y, w, h, _ = max(found, key=lambda d: ft.face_score(ft.face_of(d), d[4], img.shape[1], img.shape[0]))
    assert _iou((x, y, x + w, y + h), (175, 120, 355, 340)) > 0.5      # the face, by eye

"""Video readers: decord vs OpenCV on real mp4s, frame folders (sorted order), errors."""
import os

import cv2
import numpy as np
import pytest

from datasets import video_reader as vr
from tests.helpers import (pattern_frames, pattern_index, write_frame_folder, write_mp4,
                              write_random_bytes, write_truncated_mp4)
from datasets.video_reader import VideoReadError, natural_key, open_video, probe_video, read_frames

N = 30


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    frames = pattern_frames(N, 64, 80)
    paths = {
        "mp4": write_mp4(str(d / "clip one.mp4"), frames),
        "jpg": write_frame_folder(str(d / "jpg"), frames[:12], "jpg"),
        "png": write_frame_folder(str(d / "png"), frames[:12], "png"),
        "random": write_random_bytes(str(d / "random.mp4")),
        "trunc_head": write_truncated_mp4(str(d / "trunc_head.mp4"), frames, 0.5, faststart=True),
        "trunc_nohead": write_truncated_mp4(str(d / "trunc.mp4"), frames, 0.6, faststart=False),
    }
    return frames, paths


@pytest.mark.skipif(not vr.HAS_DECORD, reason="decord not installed")
def test_decord_and_opencv_give_the_same_frames(media):
    frames, p = media
    idx = [0, 4, 8, 29, 8, 3]
    a = open_video(p["mp4"], "decord")
    b = open_video(p["mp4"], "opencv")
    assert a.kind == "decord" and b.kind == "opencv"
    assert a.num_frames == b.num_frames == N
    fa, fb = a.get(idx), b.get(idx)
    assert fa.shape == fb.shape == (len(idx), 64, 80, 3) and fa.dtype == fb.dtype == np.uint8
    assert np.abs(fa.astype(int) - fb.astype(int)).mean() < 1.0
    # both return the requested frames, RGB (red channel carries the index)
    assert pattern_index(fa).tolist() == idx == pattern_index(fb).tolist()
    assert np.abs(fa.astype(int) - frames[idx]).mean() < 8


def test_frame_folders_sorted_order(media):
    frames, p = media
    for kind in ("jpg", "png"):
        v = open_video(p[kind])
        assert v.kind == "frames" and v.num_frames == 12
        assert [os.path.basename(f) for f in v.files][:3] == [f"0000{i}.{kind}" for i in (1, 2, 3)]
        assert os.path.basename(v.files[-1]) == f"00012.{kind}"
        got = v.get([1, 9, 10, 11])
        assert pattern_index(got).tolist() == [1, 9, 10, 11]
        if kind == "png":
            assert np.array_equal(got, frames[[1, 9, 10, 11]])
    assert sorted(["10.jpg", "2.jpg", "1.jpg", "img_010.png", "img_9.png"], key=natural_key) == \
        ["1.jpg", "2.jpg", "10.jpg", "img_9.png", "img_010.png"]


def test_jpeg_frames_keep_their_stored_orientation(tmp_path):
    """A JPEG frame with an EXIF orientation tag is read as stored, as PIL's open().convert('RGB')
    (the published loader) reads it; OpenCV alone would rotate it (to 60 x 40 here)."""
    from PIL import Image
    d = tmp_path / "exif"
    d.mkdir()
    frame = np.zeros((40, 60, 3), np.uint8)
    frame[:10, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6   # "rotate 90 degrees clockwise to display"
    for i in (1, 2):
        Image.fromarray(frame).save(str(d / f"{i:05d}.jpg"), exif=exif.tobytes(), quality=95)
    got = open_video(str(d)).get([0, 1])
    with Image.open(str(d / "00001.jpg")) as im:
        published = np.asarray(im.convert("RGB"))
    assert got.shape == (2, 40, 60, 3)
    assert np.array_equal(got[0], published) and np.array_equal(got[1], published)


def test_unpadded_frame_names_are_read_sorted_with_one_warning(tmp_path, monkeypatch, caplog):
    """The published reader sorts file names, so 10.png comes before 2.png: so do we, and say so."""
    monkeypatch.setattr(vr, "_warn_unpadded", True)
    d = tmp_path / "unpadded"
    d.mkdir()
    for i in range(1, 13):  # grey level 10 * i in frame i.png
        cv2.imwrite(str(d / f"{i}.png"), np.full((8, 10), 10 * i, np.uint8))
    with caplog.at_level("WARNING", logger="svfap.data"):
        v = open_video(str(d))
        open_video(str(d))  # once per process
    assert [os.path.basename(f) for f in v.files][:4] == ["1.png", "10.png", "11.png", "12.png"]
    assert v.get([0, 1, 4])[:, 0, 0, 0].tolist() == [10, 100, 20]
    warned = [r.getMessage() for r in caplog.records if "zero-pad" in r.getMessage()]
    assert len(warned) == 1 and str(d) in warned[0] and "'10.png' at position 1" in warned[0]


def test_grayscale_frames_become_rgb(tmp_path):
    d = tmp_path / "gray"
    d.mkdir()
    for i in range(1, 4):
        cv2.imwrite(str(d / f"{i}.png"), np.full((8, 10), 40 * i, np.uint8))
    x = read_frames(str(d), [0, 2])
    assert x.shape == (2, 8, 10, 3)
    assert (x[0] == 40).all() and (x[1] == 120).all()


def test_broken_files_raise_video_read_error(media):
    _, p = media
    for key in ("random", "trunc_nohead"):
        for reader in vr.READERS:
            with pytest.raises(VideoReadError) as ei:
                read_frames(p[key], [0], reader)
            assert ei.value.path == p[key] and p[key] in str(ei.value)
    # header intact, data cut: the default reader names it truncated; OpenCV counts what decodes
    with pytest.raises(VideoReadError, match=f"truncated: its header lists {N} frames"):
        open_video(p["trunc_head"])
    v = open_video(p["trunc_head"], "opencv")
    assert 2 <= v.num_frames < N
    assert pattern_index(v.get([0, 1])).tolist() == [0, 1]
    with pytest.raises(VideoReadError, match="out of range"):
        v.get([N - 1])
    with pytest.raises(VideoReadError, match="no such file"):
        open_video(p["mp4"] + ".missing")
    with pytest.raises(VideoReadError, match="out of range"):
        read_frames(p["mp4"], [N])
    with pytest.raises(ValueError):
        open_video(p["mp4"], "ffmpeg")


def test_exact_reader_when_decord_missing(media, monkeypatch):
    _, p = media
    monkeypatch.setattr(vr, "HAS_DECORD", False)
    v = open_video(p["mp4"], "decord")
    assert v.kind == "pyav" and pattern_index(v.get([5])).tolist() == [5]
    assert probe_video(p["mp4"]) == N

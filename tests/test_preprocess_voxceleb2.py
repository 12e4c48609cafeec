"""preprocess.voxceleb2 on a miniature dev/mp4/id*/<yt>/*.mp4 tree: listing and the --check decode
pass (real tiny mp4s plus a corrupt one)."""
import os

import cv2
import numpy as np

from datasets.split_file import read_split_file
from preprocess import voxceleb2


def write_mp4(path, n=6, size=32):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 25, (size, size))
    assert w.isOpened()
    for i in range(n):
        w.write(np.full((size, size, 3), 20 * i, np.uint8))
    w.release()
    return path


def make_vox(root):
    base = os.path.join(root, "dev", "mp4")
    good = [write_mp4(os.path.join(base, "id00012", "abcDEF", "00001.mp4")),
            write_mp4(os.path.join(base, "id00012", "abcDEF", "00002.mp4")),
            write_mp4(os.path.join(base, "id00015", "xyz_123", "00001.mp4"))]
    bad = os.path.join(base, "id00015", "xyz_123", "00002.mp4")
    with open(bad, "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42" + os.urandom(300))
    with open(os.path.join(base, "id00015", "xyz_123", "notes.txt"), "w") as f:
        f.write("not a clip")
    return good, bad


def test_voxceleb2_listing(tmp_path, capsys):
    good, bad = make_vox(str(tmp_path / "vox"))
    rows, failed = voxceleb2.main(["--root", str(tmp_path / "vox"), "--out", str(tmp_path / "out")])
    log = capsys.readouterr().out
    assert failed == {}
    entries = read_split_file(str(tmp_path / "out" / "pretrain.csv"), "pretrain")
    assert [e.path for e in entries] == sorted(good + [bad])
    assert all(ln.endswith(" 0") for ln in open(tmp_path / "out" / "pretrain.csv").read().splitlines())
    assert "found 4 clips of 2 speakers" in log
    # --root may also be dev/mp4 itself
    rows2, _ = voxceleb2.main(["--root", str(tmp_path / "vox" / "dev" / "mp4"),
                               "--out", str(tmp_path / "out2")])
    assert rows2 == rows


def test_voxceleb2_check(tmp_path, capsys):
    good, bad = make_vox(str(tmp_path / "vox"))
    out = tmp_path / "out"
    voxceleb2.main(["--root", str(tmp_path / "vox"), "--out", str(out), "--check", "--workers", "2"])
    log = capsys.readouterr().out
    paths = [e.path for e in read_split_file(str(out / "pretrain.csv"), "pretrain")]
    assert paths == sorted(good)
    listed = open(out / "undecodable.txt").read().splitlines()
    assert len(listed) == 1 and listed[0].split("\t")[0] == os.path.abspath(bad)
    assert "1 undecodable clips" in log and "pretrain split: 3 clips of 2 speakers" in log
    # an earlier undecodable list can be reused without decoding again
    voxceleb2.main(["--root", str(tmp_path / "vox"), "--out", str(tmp_path / "out2"),
                    "--exclude", str(out / "undecodable.txt")])
    assert [e.path for e in read_split_file(str(tmp_path / "out2" / "pretrain.csv"), "pretrain")] \
        == sorted(good)
    # the single-process and OpenCV paths agree
    assert voxceleb2.check_video(good[0], full=True) == (good[0], None)
    assert voxceleb2.check_video(bad, reader="opencv")[1] is not None
    assert voxceleb2.check_all(good + [bad], workers=1, progress=False).keys() == {bad}

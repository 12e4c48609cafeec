"""A pre-training set of 1,000 clips, 5 % of them broken (0-byte, truncated, text renamed .mp4, an
audio-only file), completes an epoch; broken_videos.txt lists each broken file once with its reason,
and log.jsonl and TensorBoard carry the counts."""
import json
import os

import numpy as np
import pytest

from datasets.split_file import write_split_file
from datasets.video_writer import write_mp4
from tests.helpers import pattern_frames, tiny_pretrain_argv, write_truncated_mp4

av = pytest.importorskip("av")

N, BROKEN_EVERY = 1000, 20   # 50 broken files


def _audio_only(path):
    with av.open(path, "w") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_pretraining_completes_on_a_set_with_broken_files(tmp_path):
    import run_pretrain
    vids = tmp_path / "videos"
    vids.mkdir()
    good = pattern_frames(8, 32, 32)
    rows, broken = [], {}
    for i in range(N):
        p = str(vids / f"clip_{i:04d}.mp4")
        kind = (i // BROKEN_EVERY) % 4 if i % BROKEN_EVERY == 7 else None
        if kind is None:
            write_mp4(p, good)
        elif kind == 0:
            open(p, "wb").close()
        elif kind == 1:
            write_truncated_mp4(p, pattern_frames(8, 32, 32), 0.4, faststart=True)
        elif kind == 2:
            open(p, "w").write("this is a text file, not a video\n")
        else:
            _audio_only(p)
        if kind is not None:
            broken[p] = kind
        rows.append((p, 0))
    split = str(tmp_path / "pretrain.csv")
    write_split_file(split, rows)
    out = str(tmp_path / "out")
    argv = tiny_pretrain_argv(split, out, extra=["--epochs", "1", "--batch_size", "25", "--num_workers", "2",
                                                 "--log_every", "20", "--vis_every", "0"])
    run_pretrain.main(argv)
    listed = [ln.split("\t") for ln in open(os.path.join(out, "broken_videos.txt")).read().splitlines()]
    assert [p for p, _ in listed] == sorted(broken)           # every broken file, once
    reasons = dict(listed)
    words = {0: "no video frames|cannot open|Invalid data", 1: "truncated|no video frames",
             2: "cannot open|Invalid data",
             3: "no video stream"}
    import re
    for p, kind in broken.items():
        assert re.search(words[kind], reasons[p]), (kind, reasons[p])
    rec = [json.loads(x) for x in open(os.path.join(out, "log.jsonl"))]
    assert rec[0]["epoch"] == 0 and rec[0]["broken_videos"] == len(broken) == 50
    assert rec[0]["train_broken_skipped"] >= 50
    assert os.path.exists(os.path.join(out, "checkpoint-last.pth"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    ea = EventAccumulator(os.path.join(out, "tb"))
    ea.Reload()
    assert [e.value for e in ea.Scalars("train_epoch/broken_videos")] == [50.0]

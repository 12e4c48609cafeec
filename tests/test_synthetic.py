"""The synthetic facial-expression dataset: files, split files, determinism and class behaviour."""
import json
import os
from dataclasses import replace

import cv2
import numpy as np
import pytest

from datasets import synthetic as syn
from datasets.synthetic import render as renderer
from datasets.registry import get_dataset_info

N_LAB, N_UNL, T, S, K = 35, 6, 12, 64, 5


def _read_split(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ")
            assert len(parts) == 2, line
            rows.append((parts[0], int(parts[1])))
    return rows


def _decode(path):
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, fr = cap.read()
        if not ok:
            break
        frames.append(fr)
    cap.release()
    return np.stack(frames) if frames else np.zeros((0,))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn")
    res = syn.generate_synthetic_dataset(str(out), num_labeled=N_LAB, num_unlabeled=N_UNL,
                                         num_frames=T, size=S, num_folds=K, seed=3)
    return res


def test_labels_match_registry():
    assert syn.LABEL_NAMES == get_dataset_info("synthetic").label_names
    assert set(syn.CLASS_AUS) == set(syn.LABEL_NAMES)
    assert syn.CLASS_AUS["neutral"] == {}
    for name, aus in syn.CLASS_AUS.items():
        assert set(aus) <= set(syn.AU_NAMES), name


def test_files_exist_and_decode(data):
    with open(data["meta"]) as f:
        meta = json.load(f)
    clips = meta["clips"]
    assert len(clips) == N_LAB + N_UNL
    for c in clips:
        assert os.path.isfile(c["path"]) and c["path"].endswith(".mp4")
    for c in clips[:3] + clips[-2:]:
        fr = _decode(c["path"])
        assert fr.shape == (T, S, S, 3), c["path"]
        assert 20 < fr.mean() < 235 and fr.std() > 10          # a real picture, not blank


def test_split_files(data):
    with open(data["meta"]) as f:
        meta = json.load(f)
    labeled = {c["path"]: c["label"] for c in meta["clips"] if c["label"] >= 0}
    assert len(data["folds"]) == K and set(data["folds"]) == {str(i) for i in range(1, K + 1)}
    tests = []
    for fold, paths in data["folds"].items():
        splits = {name: _read_split(p) for name, p in paths.items()}
        for name, rows in splits.items():
            for p, y in rows:
                assert os.path.isabs(p) and p in labeled and labeled[p] == y
                assert 0 <= y < len(syn.LABEL_NAMES)
        sets = {name: {p for p, _ in rows} for name, rows in splits.items()}
        assert all(len(sets[n]) == len(splits[n]) for n in sets)          # no duplicates
        assert not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
        assert not (sets["train"] & sets["val"]) and len(sets["val"]) > 0
        assert sets["train"] | sets["val"] | sets["test"] == set(labeled)
        tests.append(sets["test"])
        assert meta["counts"]["folds"][fold]["test"]["total"] == len(sets["test"])
    # test folds partition the labeled set and are stratified (per-class counts differ by <= 1)
    assert sum(len(t) for t in tests) == len(labeled) == len(set().union(*tests))
    for c in range(len(syn.LABEL_NAMES)):
        per_fold = [sum(labeled[p] == c for p in t) for t in tests]
        assert max(per_fold) - min(per_fold) <= 1, (c, per_fold)
    pre = _read_split(data["pretrain"])
    assert len(pre) == N_UNL and all(y == 0 and os.path.isfile(p) for p, y in pre)


def test_label_noise_and_meta(data):
    with open(data["meta"]) as f:
        meta = json.load(f)
    lab = [c for c in meta["clips"] if c["label"] >= 0]
    flipped = sum(c["label"] != c["true_label"] for c in lab)
    assert flipped == round(0.03 * N_LAB) == meta["counts"]["noisy_labels"]
    assert sum(meta["counts"]["per_class"].values()) == N_LAB
    assert max(meta["counts"]["per_class_true"].values()) - min(
        meta["counts"]["per_class_true"].values()) <= 1
    assert meta["params"]["seed"] == 3 and meta["params"]["num_frames"] == T


def test_deterministic_for_seed(data, tmp_path):
    again = syn.generate_synthetic_dataset(str(tmp_path / "b"), num_labeled=N_LAB,
                                           num_unlabeled=N_UNL, num_frames=T, size=S,
                                           num_folds=K, seed=3, workers=2)
    for fold in data["folds"]:
        for split in ("train", "val", "test"):
            a = [(os.path.basename(p), y) for p, y in _read_split(data["folds"][fold][split])]
            b = [(os.path.basename(p), y) for p, y in _read_split(again["folds"][fold][split])]
            assert a == b
    for sub, name in (("labeled", "clip_00004.mp4"), ("unlabeled", "talk_00001.mp4")):
        fa = _decode(os.path.join(data["out_dir"], sub, name))
        fb = _decode(os.path.join(again["out_dir"], sub, name))
        assert fa.shape == fb.shape and np.array_equal(fa, fb)
    a1, _ = syn.make_clip(3, 0, 4, 1, T, S)
    a2, _ = syn.make_clip(3, 0, 4, 1, T, S)
    b1, _ = syn.make_clip(4, 0, 4, 1, T, S)
    assert np.array_equal(a1, a2) and not np.array_equal(a1, b1)
    # reuse=True keeps a dataset generated with the same parameters
    r = syn.generate_synthetic_dataset(str(tmp_path / "b"), num_labeled=N_LAB,
                                       num_unlabeled=N_UNL, num_frames=T, size=S, num_folds=K,
                                       seed=3, reuse=True)
    assert r.get("reused")


def test_frames_format(tmp_path):
    res = syn.generate_synthetic_dataset(str(tmp_path), num_labeled=7, num_unlabeled=1,
                                         num_frames=11, size=48, num_folds=2, seed=1,
                                         fmt="frames", val_fraction=0.0)
    rows = _read_split(res["folds"]["1"]["test"]) + _read_split(res["pretrain"])
    for p, _ in rows:
        assert os.path.isdir(p)
        names = sorted(os.listdir(p))
        assert names == [f"{i:05d}.jpg" for i in range(1, 12)]
        img = cv2.imread(os.path.join(p, "00011.jpg"))
        assert img.shape == (48, 48, 3)
    # frame 0000i.jpg is the i-th frame of the clip (sorted order)
    clip, _ = syn.make_clip(1, 1, 0, -1, 11, 48)
    for i in (1, 6, 11):
        img = cv2.imread(os.path.join(res["out_dir"], "unlabeled", "talk_00000", f"{i:05d}.jpg"))
        assert np.abs(img.astype(int) - clip[i - 1]).mean() < 8
        others = [np.abs(img.astype(int) - clip[j]).mean() for j in range(11) if j != i - 1]
        assert np.abs(img.astype(int) - clip[i - 1]).mean() <= min(others)


def _static(spec):
    """Same clip without head motion, blinks, gaze shifts, lighting flicker or noise."""
    n = spec.num_frames
    spec.motion = {k: np.full(n, np.mean(v) if k != "scale" else 1.0) * (k == "scale")
                   for k, v in spec.motion.items()}
    spec.blink = np.zeros(n)
    spec.gaze = np.zeros((n, 2))
    spec.scene.update(noise=0.0, flicker=0.0, blur=0.0)
    return spec


def _regions(size):
    """Rows of the brow/eye band and the mouth/jaw band of a static, centred face."""
    scale, cy = size * 0.40, size * 0.46
    upper = slice(int(cy + scale * -0.62), int(cy + scale * -0.02))
    lower = slice(int(cy + scale * 0.40), int(cy + scale * 0.95))
    cols = slice(int(size * 0.5 - scale * 0.6), int(size * 0.5 + scale * 0.6))
    return upper, lower, cols


@pytest.mark.parametrize("cls, where", [("happy", "lower"), ("surprise", "both"),
                                        ("angry", "upper"), ("sad", "both"),
                                        ("disgust", "lower"), ("fear", "both")])
def test_action_units_move_the_right_regions(cls, where):
    """Each class's AUs deform the face where FACS says; with the AUs removed nothing moves."""
    size, n = 96, 24
    up, lo, cols = _regions(size)
    c = syn.LABEL_NAMES.index(cls)
    for ident in range(3):
        rng = np.random.default_rng([11, c, ident])
        spec = _static(syn.sample_clip_spec(rng, c, n, size))
        for k in spec.au:                               # the class AUs only, at full apex
            spec.au[k] = syn.au_profile(n, 2, 6, 8, 6, 1.0) * (k in syn.CLASS_AUS[cls])
        clip = syn.render_clip(spec).astype(np.float32)
        d = np.abs(clip[12] - clip[0]).mean(-1)          # apex vs. start
        assert np.abs(clip[23] - clip[0]).max() <= 2     # back to the start after the offset
        du, dl = d[up, cols].mean(), d[lo, cols].mean()
        if where in ("upper", "both"):
            assert du > 1.5, (cls, ident, du, dl)
        if where in ("lower", "both"):
            assert dl > 1.5, (cls, ident, du, dl)
        if where == "upper":
            assert du > dl
        if where == "lower":
            assert dl > du


def _mouth_change_box(cls, per=6, size=64, n=24):
    """Mean (height, width) of the region of the lower face that changes by > 30 grey levels
    between the first frame and the frame of largest change, over `per` random identities
    (random identity, lighting, background, noise, blinks; head held still)."""
    c = syn.LABEL_NAMES.index(cls)
    lo = slice(int(size * 0.55), int(size * 0.95))
    cols = slice(int(size * 0.25), int(size * 0.75))
    boxes = []
    for i in range(per):
        spec = syn.sample_clip_spec(np.random.default_rng([21, c, i]), c, n, size)
        spec.motion = {k: np.full(n, float(v[0])) for k, v in spec.motion.items()}
        g = syn.render_clip(spec).astype(np.float32).mean(-1)[:, lo, cols]
        t = int(np.argmax(np.abs(g - g[:1]).mean((1, 2))))
        ys, xs = np.nonzero(np.abs(g[t] - g[0]) > 30)
        if len(ys) < 3:
            boxes.append((0.0, 0.0))
            continue
        boxes.append((np.percentile(ys, 95) - np.percentile(ys, 5) + 1,
                      np.percentile(xs, 95) - np.percentile(xs, 5) + 1))
    return np.mean(boxes, 0)


def test_mouth_dynamics_differ_between_classes():
    """Surprise opens the mouth (tall change), happy widens it (wide change), neutral keeps it."""
    sh, sw = _mouth_change_box("surprise")
    hh, hw = _mouth_change_box("happy")
    nh, nw = _mouth_change_box("neutral")
    assert sh / sw > 1.8 * (hh / hw), (sh, sw, hh, hw)
    assert hw > sw and sh > hh
    assert nh < 1 and nw < 1


def test_neutral_moves_least():
    """With all nuisance variation (head motion included), the mouth region of neutral clips has
    less frame-difference energy than that of every expressive class, across identities."""
    size, n, per = 64, 24, 8
    lo = slice(int(size * 0.6), int(size * 0.92))
    cols = slice(int(size * 0.3), int(size * 0.7))
    energy = {}
    for c, cls in enumerate(syn.LABEL_NAMES):
        e = []
        for i in range(per):
            clip, _ = syn.make_clip(21, 0, 1000 * c + i, c, n, size)
            g = clip.astype(np.float32).mean(-1)[:, lo, cols]
            e.append(np.abs(g - g[:1]).mean((1, 2)).max())
        energy[cls] = float(np.mean(e))
    for cls, v in energy.items():
        if cls != "neutral":
            assert v > 1.1 * energy["neutral"], energy


def test_cli_prints_counts(tmp_path, capsys):
    from tools import make_synthetic
    make_synthetic.main(["--out", str(tmp_path), "--num_labeled", "14", "--num_unlabeled", "2",
                         "--num_frames", "4", "--size", "32", "--folds", "2", "--workers", "1"])
    out = capsys.readouterr().out
    for key in ("fold_1/train", "fold_2/test", "all labeled", "pretrain", "happy", "fear"):
        assert key in out
    assert os.path.isfile(tmp_path / "fold_2" / "val.csv")
    assert len(_read_split(str(tmp_path / "pretrain.csv"))) == 2


# ---------------------------------------------------------------------------------------------
# render style (the learnability study's knobs)
def test_render_style_default_is_the_original_look_and_keeps_the_random_draws():
    a, spec_a = syn.make_clip(5, 0, 3, 2, 12, 48)
    b, spec_b = syn.make_clip(5, 0, 3, 2, 12, 48, style=syn.RenderStyle())
    assert np.array_equal(a, b) and spec_b.style == syn.RenderStyle()
    # a different style changes the pixels, not the random choices of the clip
    c, spec_c = syn.make_clip(5, 0, 3, 2, 12, 48, style={"face_scale": 0.6, "au_gain": 1.5})
    assert not np.array_equal(a, c)
    assert spec_c.identity["skin"].tolist() == spec_a.identity["skin"].tolist()
    assert all(np.array_equal(spec_c.au[k], spec_a.au[k]) for k in syn.AUS)
    with pytest.raises(ValueError, match="unknown render style key"):
        syn.RenderStyle.from_dict({"face_size": 1.0})


def test_render_style_knobs_do_what_they_say():
    size, n = 64, 8
    rng = lambda: np.random.default_rng([3, 1])  # noqa: E731
    c = syn.LABEL_NAMES.index("surprise")

    def render(**style):
        spec = syn.sample_clip_spec(rng(), c, n, size, style=style)
        noise = spec.scene["noise"]
        spec = _static(spec)
        spec.scene["noise"] = noise                  # still head, sensor noise kept
        return spec, syn.render_clip(spec).astype(np.float32)

    # no sensor noise: consecutive frames of a still head are (almost) identical
    _, noisy = render()
    _, clean = render(sensor_noise=0.0)
    assert np.abs(np.diff(clean[:2], axis=0)).mean() < 0.2 * np.abs(np.diff(noisy[:2], axis=0)).mean()
    # a larger face covers more of the frame: more pixels differ from the face-free background
    spec, small = render(sensor_noise=0.0)
    _, large = render(sensor_noise=0.0, face_scale=0.6)
    bg = renderer._make_background(spec.scene, size).astype(np.float32) * renderer._make_light(spec.scene, size)
    cover = lambda clip: (np.abs(clip[0] - bg).max(-1) > 12).mean()  # noqa: E731
    assert cover(large) > 1.3 * cover(small)
    # a larger AU gain moves the face more between the start and the apex
    spec = _static(syn.sample_clip_spec(rng(), c, 24, size, style={"sensor_noise": 0.0}))
    for k in spec.au:
        spec.au[k] = syn.au_profile(24, 2, 6, 8, 6, 1.0) * (k in syn.CLASS_AUS["surprise"])
    move1 = np.abs(syn.render_clip(spec).astype(np.float32)[12] - syn.render_clip(spec)[0]).mean()
    spec = replace(spec, style=syn.RenderStyle(sensor_noise=0.0, au_gain=1.6))
    move2 = np.abs(syn.render_clip(spec).astype(np.float32)[12] - syn.render_clip(spec)[0]).mean()
    assert move2 > 1.3 * move1


def test_render_style_is_recorded_and_reuse_respects_it(tmp_path):
    kw = dict(num_labeled=7, num_unlabeled=1, num_frames=4, size=32, num_folds=2, seed=0)
    plain = syn.generate_synthetic_dataset(str(tmp_path), **kw)
    assert "style" not in json.load(open(plain["meta"]))["params"]
    styled = syn.generate_synthetic_dataset(str(tmp_path), reuse=True, style={"face_scale": 0.6},
                                            **kw)
    assert not styled.get("reused")                       # another style: rendered again
    assert json.load(open(styled["meta"]))["params"]["style"]["face_scale"] == 0.6
    again = syn.generate_synthetic_dataset(str(tmp_path), reuse=True, style={"face_scale": 0.6},
                                           **kw)
    assert again.get("reused")


def test_render_style_motion_and_placement_scale_the_head_path():
    def motion(**style):
        return syn.sample_clip_spec(np.random.default_rng([8, 2]), 0, 40, 64, style=style).motion

    base, moving, placed = motion(), motion(motion=2.0), motion(placement=0.0)
    for k in ("cx", "cy"):
        assert np.isclose(np.std(moving[k]), 2 * np.std(base[k]))           # in-clip motion x2
        assert np.allclose(moving[k] - base[k], placed[k])   # placement 0 leaves the motion alone


def test_render_style_feature_polarity_and_apex_hold():
    size, T = 64, 16
    happy = syn.LABEL_NAMES.index("happy")
    base = {"sensor_noise": 0.0, "face_scale": 0.62}

    def spec(index, label=happy, **style):
        rng = np.random.default_rng(np.random.SeedSequence([4, 0, index]))
        return syn.sample_clip_spec(rng, label, T, size, style=dict(base, **style))

    # all-or-nothing fractions: every identity / clip, or none, and the other draws unchanged
    plain, flipped, held = spec(0), spec(0, feature_polarity=1.0), spec(0, apex_hold=1.0)
    assert "brow_tone" not in plain.identity and "brow_tone" in flipped.identity
    assert flipped.identity["skin"].tolist() == plain.identity["skin"].tolist()
    assert flipped.identity["lip"].mean() > plain.identity["lip"].mean() + 30   # pale lips
    for k in syn.AUS:
        assert np.array_equal(flipped.au[k], plain.au[k])
        assert np.all(held.au[k] == plain.au[k].max())                        # apex all along
    assert plain.au[12].max() > 0 and plain.au[12][0] < plain.au[12].max()
    # white brows: the brow band is brighter than the skin, where it is darker without the knob
    a, b = syn.render_clip(plain).astype(np.float32), syn.render_clip(flipped).astype(np.float32)
    diff = np.abs(b[0] - a[0]).max(-1) > 40
    assert diff.any() and (b[0][diff].mean() > a[0][diff].mean() + 60)
    # a held apex: on a still head, the apex frame equals the first; without the knob it differs
    apex = int(np.argmax(plain.au[12]))
    for s_, moves in ((plain, True), (held, False)):
        clip = syn.render_clip(_static(s_)).astype(np.float32)
        assert (np.abs(clip[apex] - clip[0]).mean() > 1.0) == moves
    # talking clips (label -1) are never held
    talk = [syn.sample_clip_spec(np.random.default_rng(1), -1, T, size, talking=True,
                                 style={"apex_hold": hold}) for hold in (0.0, 1.0)]
    assert all(np.array_equal(talk[0].au[k], talk[1].au[k]) for k in syn.AUS)
    # a fraction of 0.5 flips about half of the identities
    share = np.mean(["brow_tone" in spec(i, feature_polarity=0.5).identity for i in range(200)])
    assert 0.35 < share < 0.65


def test_rendering_reports_progress(tmp_path):
    """generate_synthetic_dataset tells a progress object of every clip it writes."""
    class Count:
        n = 0

        def update(self, k):
            Count.n += k

    from datasets.synthetic import generate_synthetic_dataset
    generate_synthetic_dataset(str(tmp_path / 's'), num_labeled=7, num_unlabeled=2, num_frames=4, size=32,
                               num_folds=2, progress=Count())
    assert Count.n == 9


def test_cli_refuses_to_overwrite_and_reports_bad_counts_in_one_line(tmp_path):
    from tools import make_synthetic
    small = ["--num_labeled", "14", "--num_unlabeled", "0", "--num_frames", "4", "--size", "32",
             "--folds", "2", "--workers", "1"]
    make_synthetic.main(["--out", str(tmp_path)] + small)
    with pytest.raises(SystemExit, match=r"is not empty; pass --overwrite"):
        make_synthetic.main(["--out", str(tmp_path)] + small)
    make_synthetic.main(["--out", str(tmp_path), "--overwrite"] + small)
    make_synthetic.main(["--out", str(tmp_path), "--reuse"] + small)
    with pytest.raises(SystemExit, match=r"^error: num_folds must be >= 2$"):
        make_synthetic.main(["--out", str(tmp_path / "new"), "--folds", "1"] + small[:-4])

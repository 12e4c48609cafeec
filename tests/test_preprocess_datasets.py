"""Per-dataset preprocess scripts, each run on a miniature replica of its official layout
(DATASETS.md) built in tmp_path. The scripts' main(argv) is called in-process."""
import os
import pickle
import struct

import pytest

from datasets.registry import get_dataset_info
from datasets.split_file import read_split_file
from preprocess import avcaffe, chalearn, common, crema_d, dfew, enterface05, ferv39k, mafw, ravdess
from preprocess import werewolf_xl


def touch(path, data=b"\x00video"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [ln.rstrip("\n") for ln in f if ln.strip()]


def cls_rows(path, num_classes=None):
    """{path: label} through the project's own split-file reader (paths checked to exist)."""
    return {e.raw_path: e.label for e in read_split_file(str(path), "classification",
                                                         num_classes=num_classes, check_paths=False)}


def by_name(rows):
    """{basename: label}"""
    return {os.path.basename(p): y for p, y in rows.items()}


# ---------------------------------------------------------------------------------------------- DFEW

def make_dfew(root, n=15):
    train_dir = os.path.join(root, "EmoLabel_DataSplit", "train(single-labeled)")
    test_dir = os.path.join(root, "EmoLabel_DataSplit", "test(single-labeled)")
    labels = {i: (i - 1) % 7 + 1 for i in range(1, n + 1)}   # official 1..7
    for k in range(1, 6):
        test = [i for i in labels if i % 5 == k - 1]
        train = [i for i in labels if i % 5 != k - 1]
        write_text(os.path.join(train_dir, f"set_{k}.csv"),
                   "video_name,label\n" + "".join(f"{i},{labels[i]}\n" for i in train))
        write_text(os.path.join(test_dir, f"set_{k}.csv"),
                   "video_name,label\n" + "".join(f"{i},{labels[i]}\n" for i in test))
    for i in labels:
        touch(os.path.join(root, "Clip", "clip_224x224", f"{i:05d}", "00001.jpg"))
    return labels


def test_dfew(tmp_path, capsys):
    root, out = tmp_path / "DFEW", tmp_path / "out"
    labels = make_dfew(str(root))
    dfew.main(["--root", str(root), "--out", str(out)])
    log = capsys.readouterr().out
    for k in range(1, 6):
        d = out / f"split{k:02d}"
        tr, te = cls_rows(d / "train.csv", 7), cls_rows(d / "test.csv", 7)
        assert lines(d / "val.csv") == lines(d / "test.csv")      # no validation split in DFEW
        assert not set(tr) & set(te)
        assert {int(os.path.basename(p)) for p in te} == {i for i in labels if i % 5 == k - 1}
        for p, y in {**tr, **te}.items():
            name = os.path.basename(p)
            assert len(name) == 5 and name.isdigit()             # zero-padded folder names
            assert y == labels[int(name)] - 1                    # 1..7 -> 0..6
            assert os.path.isdir(p) and os.path.isabs(p)
        assert f"split{k:02d}: train 12, val 3, test 3" in log
    assert by_name(cls_rows(out / "split01" / "test.csv"))["00005"] == 4   # label 5 (Surprise) -> 4
    assert "no validation split" in log
    assert "happy 3, sad 2, neutral 2, angry 2, surprise 2, disgust 2, fear 2" in log
    assert lines(out / "label_names.txt") == list(get_dataset_info("dfew").label_names)


def test_dfew_missing_frames_and_frames_root(tmp_path, capsys):
    root, out = tmp_path / "DFEW", tmp_path / "out"
    make_dfew(str(root))
    import shutil
    shutil.rmtree(root / "Clip" / "clip_224x224" / "00003")
    dfew.main(["--root", str(root), "--out", str(out)])
    assert "do not exist" in capsys.readouterr().out
    assert any(p.endswith("00003") for p in cls_rows(out / "split04" / "test.csv"))
    dfew.main(["--root", str(root), "--out", str(out), "--drop_missing"])
    assert not any(p.endswith("00003") for p in cls_rows(out / "split04" / "test.csv"))
    dfew.main(["--root", str(root), "--out", str(out), "--frames_root", str(tmp_path / "jpg_256")])
    assert all(p.startswith(str(tmp_path / "jpg_256")) for p in cls_rows(out / "split01" / "train.csv"))


# ------------------------------------------------------------------------------------------ FERV39k

def test_ferv39k(tmp_path, capsys):
    root, out = tmp_path / "FERV39k", tmp_path / "out"
    train = ["Action/Happy/0267 Happy", "Action/Fear/0001 Fear", "Crime/Neutral/0002 Neutral",
             "Daily Life/Sad/0003 Sad"]
    test = ["Crime/Disgust/0004 Disgust", "Action/Surprise/0005 Surprise", "Action/Angry/0006 Angry"]
    write_text(str(root / "4_setups" / "All_scenes" / "train_All.csv"), "\n".join(train) + "\n")
    write_text(str(root / "4_setups" / "All_scenes" / "test_All.csv"), "\n".join(test) + "\n")
    for ln in train + test:
        touch(str(root / "2_ClipsforFaceCrop" / ln.rsplit(" ", 1)[0] / "1.jpg"))
    ferv39k.main(["--root", str(root), "--out", str(out)])
    log = capsys.readouterr().out
    d = out / "official"
    tr, te = cls_rows(d / "train.csv", 7), cls_rows(d / "test.csv", 7)
    rel = {os.path.relpath(p, root / "2_ClipsforFaceCrop"): y for p, y in tr.items()}
    assert rel == {"Action/Happy/0267": 0, "Action/Fear/0001": 6, "Crime/Neutral/0002": 2,
                   "Daily Life/Sad/0003": 1}
    assert sorted(te.values()) == [3, 4, 5]
    assert lines(d / "val.csv") == lines(d / "test.csv")
    assert "official: train 4, val 3, test 3" in log
    assert all(os.path.isdir(p) for p in {**tr, **te})


# --------------------------------------------------------------------------------------------- MAFW

def test_mafw(tmp_path, capsys):
    root, out = tmp_path / "MAFW", tmp_path / "out"
    names = get_dataset_info("mafw").label_names
    clips = {f"{i:05d}.mp4": names[i % 11] for i in range(1, 23)}      # 22 clips, 2 per class
    for k in range(1, 6):
        test = [c for i, c in enumerate(clips) if i % 5 == k - 1]
        train = [c for c in clips if c not in test]
        base = root / "Train & Test Set" / "single" / "no_caption" / f"set_{k}"
        write_text(str(base / "train.txt"), "".join(f"{c} {clips[c]}\n" for c in train))
        write_text(str(base / "test.txt"), "".join(f"{c} {clips[c]}\n" for c in test))
    for c in clips:
        touch(str(root / "data" / "clips" / c))
    mafw.main(["--root", str(root), "--out", str(out)])
    log = capsys.readouterr().out
    every = {}
    for k in range(1, 6):
        tr = cls_rows(out / f"split{k:02d}" / "train.csv", 11)
        te = cls_rows(out / f"split{k:02d}" / "test.csv", 11)
        assert not set(tr) & set(te) and len(tr) + len(te) == 22
        every.update(by_name(te))
        assert all(os.path.isfile(p) for p in {**tr, **te})
    assert every == {c: names.index(l) for c, l in clips.items()}
    assert every["00011.mp4"] == 0          # 'anger' -> 0
    assert every["00010.mp4"] == 10         # 'disappointment' -> 10
    assert every["00007.mp4"] == 7          # 'contempt' -> 7
    assert "split01: train 17, val 5, test 5" in log
    assert "anger 2, disgust 2" in log
    mafw.main(["--root", str(root), "--out", str(out), "--frames_root", str(tmp_path / "frames")])
    te = cls_rows(out / "split01" / "test.csv")
    assert sorted(by_name(te)) == sorted(os.path.splitext(c)[0] for i, c in enumerate(clips) if i % 5 == 0)
    assert all(p.startswith(str(tmp_path / "frames")) for p in te)


# ----------------------------------------------------------------------------------------- CREMA-D

def test_crema_d(tmp_path, capsys):
    root, out = tmp_path / "CREMA-D", tmp_path / "out"
    stems = ["1001_DFA_ANG_XX", "1018_IEO_SAD_HI", "1019_DFA_DIS_XX", "1037_TIE_FEA_LO",
             "1055_MTI_HAP_MD", "1072_DFA_NEU_XX", "1073_DFA_ANG_XX", "1091_WSI_SAD_XX",
             "1076_MTI_NEU_XX", "1064_IEO_DIS_MD"]
    for s in stems:
        touch(str(root / "VideoFlash" / f"{s}.flv"))
    touch(str(root / "VideoFlash" / "readme.txt"))
    crema_d.main(["--root", str(root), "--out", str(out)])
    log = capsys.readouterr().out
    actor_ranges = crema_d.ACTOR_FOLDS
    for k, (lo, hi) in enumerate(actor_ranges, 1):
        te = by_name(cls_rows(out / f"split{k:02d}" / "test.csv", 6))
        tr = by_name(cls_rows(out / f"split{k:02d}" / "train.csv", 6))
        assert {int(n[:4]) for n in te} == {int(s[:4]) for s in stems if lo <= int(s[:4]) <= hi}
        assert all(not lo <= int(n[:4]) <= hi for n in tr)       # actor-independent
        assert len(te) + len(tr) == len(stems)
    allrows = by_name(cls_rows(out / "split01" / "train.csv"))
    allrows.update(by_name(cls_rows(out / "split01" / "test.csv")))
    assert allrows["1001_DFA_ANG_XX.flv"] == 0 and allrows["1091_WSI_SAD_XX.flv"] == 5
    assert allrows["1037_TIE_FEA_LO.flv"] == 2 and allrows["1055_MTI_HAP_MD.flv"] == 3
    assert "split01: train 8, val 2, test 2" in log
    assert "split05: train 7, val 3, test 3" in log
    crema_d.main(["--root", str(root), "--out", str(out), "--drop_broken"])
    log = capsys.readouterr().out
    te5 = by_name(cls_rows(out / "split05" / "test.csv"))
    assert "1076_MTI_NEU_XX.flv" not in te5 and "1073_DFA_ANG_XX.flv" in te5
    assert "1064_IEO_DIS_MD.flv" not in by_name(cls_rows(out / "split04" / "test.csv"))
    assert "left out 2 excluded clips" in log


# ----------------------------------------------------------------------------------------- RAVDESS

def test_ravdess(tmp_path, capsys):
    root, out = tmp_path / "RAVDESS", tmp_path / "out"
    for a in range(1, 25):
        for emo in (1, 3):                      # neutral, happy
            touch(str(root / f"Actor_{a:02d}" / f"02-01-{emo:02d}-01-01-01-{a:02d}.mp4"))
        touch(str(root / f"Actor_{a:02d}" / f"01-01-03-01-01-01-{a:02d}.mp4"))   # with audio: ignored
        touch(str(root / f"Actor_{a:02d}" / f"02-02-03-01-01-01-{a:02d}.mp4"))   # song: ignored
    ravdess.main(["--root", str(root), "--out", str(out)])
    log = capsys.readouterr().out
    assert "48 clips of 24 actors" in log
    for k in range(1, 7):
        te = by_name(cls_rows(out / f"split{k:02d}" / "test.csv", 8))
        tr = by_name(cls_rows(out / f"split{k:02d}" / "train.csv", 8))
        assert {int(n[-6:-4]) for n in te} == set(range(4 * k - 3, 4 * k + 1))
        assert not {int(n[-6:-4]) for n in tr} & set(range(4 * k - 3, 4 * k + 1))
        assert all(n.startswith("02-01-") for n in {**te, **tr})
        for n, y in te.items():
            assert y == {"01": 0, "03": 2}[n[6:8]]               # emotion 03 (happy) -> 2
        assert f"split{k:02d}: train 40, val 8, test 8" in log
    assert "neutral 24, calm 0, happy 24" in log


# ------------------------------------------------------------------------------------ eNTERFACE'05

def test_enterface05(tmp_path, capsys):
    root, out = tmp_path / "enterface database", tmp_path / "out"
    files = {  # relative path -> (subject, label)
        "subject 1/anger/sentence 1/s1_an_1.avi": (1, 0),
        "subject 1/fear/sentence 2/s1_fe_2.avi": (1, 2),
        "subject 10/happiness/sentence 1/s10_ha_1.avi": (10, 3),
        "subject 11/disgust/sentence 1/s12_di_1.avi": (11, 1),     # misleading file name
        "subject 16/surprise/sentence 3/s16_su_3avi": (16, 5),     # no dot before avi
        "subject 20/sadness/sentence 5/s_3_sa_5.avi": (20, 4),     # misleading file name
        "subject 23/happiness/s23_ha_1.avi": (23, 3),              # no sentence level
        "subject 29/anger/sentence 4/s29_an_4.avi": (29, 0),
        "subject 44/surprise/sentence 2/s44_su_2.avi": (44, 5),
    }
    for rel in files:
        touch(str(root / rel))
    touch(str(root / "subject 1" / "anger" / "sentence 1" / "Thumbs.db"))
    enterface05.main(["--root", str(root), "--out", str(out)])
    log = capsys.readouterr().out
    seen = {}
    for k, (lo, hi) in enumerate(enterface05.SUBJECT_FOLDS, 1):
        te = read_split_file(str(out / f"split{k:02d}" / "test.csv"), "classification", num_classes=6)
        tr = read_split_file(str(out / f"split{k:02d}" / "train.csv"), "classification", num_classes=6)
        for e in te:                                   # paths with spaces parse and exist
            rel = os.path.relpath(e.path, root).replace(os.sep, "/")
            subj, y = files[rel]
            assert lo <= subj <= hi and e.label == y
            seen[rel] = e.label
        for e in tr:
            assert not lo <= files[os.path.relpath(e.path, root).replace(os.sep, "/")][0] <= hi
        assert len(te) + len(tr) == len(files)
    assert seen == {rel: y for rel, (_, y) in files.items()}
    te2 = {os.path.basename(e.path) for e in read_split_file(str(out / "split02" / "test.csv"))}
    assert "s12_di_1.avi" in te2                       # subject 11 -> fold 2, despite 's12'
    assert "s16_su_3avi" in te2
    assert "split01: train 6, val 3, test 3" in log
    assert "9 clips of 8 subjects" in log


# -------------------------------------------------------------------------------------- Werewolf-XL

def test_werewolf_xl(tmp_path, capsys):
    root, out = tmp_path / "Werewolf-XL", tmp_path / "out"
    sessions = [1, 6, 7, 12, 13, 19, 25, 30]
    rows = []
    for i, s in enumerate(sessions):
        name = f"{s:02d}_{i % 9 + 1:02d}_{i:03d}"
        touch(str(root / "clips" / f"{s:02d}" / f"{name}.mp4"))
        rows.append((name, 1.0 + i, 2.0 + i / 2, 3.25 + i))
    touch(str(root / "clips" / "03" / "03_01_999.mp4"))        # a listener clip: not annotated
    csv = "name,Mean_P_1_2,Mean_A_1_2,Mean_D_1_2,Rater1_A\n" + "".join(
        f"{n},{v},{a},{d},9\n" for n, a, v, d in rows) + "02_01_005,1,1,1,9\n"   # last: no file
    write_text(str(root / "annotations" / "speaker.csv"), csv)
    werewolf_xl.main(["--root", str(root), "--out", str(out)])
    log = capsys.readouterr().out
    assert "1 annotated clips have no video" in log
    truth = {n: (a, v, d) for n, a, v, d in rows}
    for k, (lo, hi) in enumerate(werewolf_xl.SESSION_FOLDS, 1):
        te = read_split_file(str(out / f"split{k:02d}" / "test.csv"), "regression", num_outputs=3)
        tr = read_split_file(str(out / f"split{k:02d}" / "train.csv"), "regression", num_outputs=3)
        assert {int(os.path.basename(e.path)[:2]) for e in te} == {s for s in sessions if lo <= s <= hi}
        assert all(not lo <= int(os.path.basename(e.path)[:2]) <= hi for e in tr)
        for e in te + tr:                               # arousal, valence, dominance order
            assert e.label == truth[os.path.basename(e.path)[:-4]]
    assert "split01: train 6, val 2, test 2" in log
    assert lines(out / "label_names.txt") == ["arousal", "valence", "dominance"]
    # configurable columns
    csv2 = "clip;A;V;D\n" + "".join(f"{n}.mp4;{a};{v};{d}\n" for n, a, v, d in rows)
    write_text(str(tmp_path / "other.csv"), csv2)
    werewolf_xl.main(["--root", str(root), "--out", str(tmp_path / "out2"), "--annotations",
                      str(tmp_path / "other.csv"), "--sep", ";", "--arousal_col", "A",
                      "--valence_col", "V", "--dominance_col", "D"])
    e = read_split_file(str(tmp_path / "out2" / "split05" / "test.csv"), "regression", num_outputs=3)
    assert sorted(x.label for x in e) == sorted(truth[n] for n in truth if int(n[:2]) >= 25)
    with pytest.raises(ValueError, match="not found"):
        werewolf_xl.main(["--root", str(root), "--out", str(out), "--annotations",
                          str(tmp_path / "other.csv"), "--sep", ";"])
    # columns that do not match never map silently: words in a target column, a column twice
    csv3 = "clip;A;V;D;Level\n" + "".join(f"{n}.mp4;{a};{v};{d};high\n" for n, a, v, d in rows)
    write_text(str(tmp_path / "words.csv"), csv3)
    base = ["--root", str(root), "--out", str(out), "--annotations", str(tmp_path / "words.csv"),
            "--sep", ";", "--arousal_col", "A", "--valence_col", "V"]
    with pytest.raises(ValueError, match=r"column 'Level' holds values that are not numbers \(line 2: 'high'"):
        werewolf_xl.main(base + ["--dominance_col", "Level"])
    with pytest.raises(ValueError, match="three different columns"):
        werewolf_xl.main(base + ["--dominance_col", "A"])


# ----------------------------------------------------------------------------------------- AVCAffe

def test_avcaffe(tmp_path, capsys):
    root, out = tmp_path / "AVCAffe", tmp_path / "out"
    vids = root / "videos" / "shorter_segments"
    layout = {"aiim001": (1, 2), "aiim003": (1,), "aiim013": (2,)}   # aiim001, aiim013: test
    for pid, tasks in layout.items():
        for t in tasks:
            for c in range(3):
                touch(str(vids / pid / f"task_{t}" / f"{pid}_task_{t}_{c}.avi"))
    touch(str(vids / "aiim099" / "task_1" / "x.avi"))                 # in no split list
    write_text(str(root / "ground_truths" / "arousal.txt"),
               "aiim001_task_1, Excited\naiim001_task_2, Calm\naiim003_task_1, Wide-awake\n"
               "aiim013_task_2, Dull\n")
    write_text(str(root / "ground_truths" / "valence.txt"),
               "aiim001_task_1, Unpleasant\naiim001_task_2, Pleased\naiim003_task_1, Neutral\n"
               "aiim013_task_2, Unsatisfied\n")
    write_text(str(root / "info" / "train.txt"), "aiim003\n")
    write_text(str(root / "info" / "val.txt"), "aiim001\naiim013\n")
    avcaffe.main(["--root", str(root), "--out", str(out)])
    log = capsys.readouterr().out
    expect = {"arousal": {"aiim001_task_1": 0, "aiim001_task_2": 4, "aiim003_task_1": 1,
                          "aiim013_task_2": 3},
              "valence": {"aiim001_task_1": 4, "aiim001_task_2": 1, "aiim003_task_1": 2,
                          "aiim013_task_2": 3}}
    for attr, exp in expect.items():
        d = out / attr / "official"
        tr, te = cls_rows(d / "train.csv", 5), cls_rows(d / "test.csv", 5)
        assert lines(d / "val.csv") == lines(d / "test.csv")
        assert len(tr) == 3 and len(te) == 9
        assert all("aiim003" in p for p in tr) and not any("aiim003" in p for p in te)
        for p, y in {**tr, **te}.items():
            key = os.path.basename(p).rsplit("_", 1)[0]
            assert y == exp[key]
        groups = dict(ln.rsplit(" ", 1) for ln in lines(d / avcaffe.GROUPS_FILE))
        assert len(groups) == 12
        assert all(os.path.basename(p).startswith(k) for p, k in groups.items())
        assert set(groups.values()) == set(exp)
    assert "participants: 1 train, 2 test" in log
    assert "aiim099" in log
    assert "official: train 3, val 9, test 9" in log


# ---------------------------------------------------------------------------------------- ChaLearn

def py2_pickle(obj):
    """Pickle a dict / str / float tree the way Python 2 does (str as SHORT_BINSTRING)."""
    out = bytearray(b"\x80\x02")

    def emit(o):
        if isinstance(o, dict):
            out.extend(b"}(")
            for k, v in o.items():
                emit(k)
                emit(v)
            out.extend(b"u")
        elif isinstance(o, str):
            b = o.encode("latin1")
            assert len(b) < 256
            out.extend(b"U" + bytes([len(b)]) + b)
        elif isinstance(o, float):
            out.extend(b"G" + struct.pack(">d", o))
        else:
            raise TypeError(o)
    emit(obj)
    out.extend(b".")
    return bytes(out)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_chalearn(tmp_path, capsys):
    root, out = tmp_path / "FI", tmp_path / "out"
    traits = list(get_dataset_info("chalearn-fi").label_names) + ["interview"]
    data = {}
    for split, n in (("training", 4), ("validation", 2), ("test", 2)):
        names = [f"vid{split[:2]}_{i}.00{i}.mp4" for i in range(n)]
        ann = {t: {nm: round(0.1 * j + 0.01 * i, 4) for i, nm in enumerate(names)}
               for j, t in enumerate(traits)}
        data[split] = ann
        os.makedirs(root / "annotations", exist_ok=True)
        with open(root / "annotations" / f"annotation_{split}.pkl", "wb") as f:
            f.write(py2_pickle(ann))
        for nm in names:
            touch(str(root / f"{split}_videos" / "part1" / nm))
    chalearn.main(["--root", str(root), "--out", str(out)])
    log = capsys.readouterr().out
    assert "official: train 4, val 2, test 2" in log
    for split, fn in (("training", "train"), ("validation", "val"), ("test", "test")):
        entries = read_split_file(str(out / "official" / f"{fn}.csv"), "regression", num_outputs=5)
        assert len(entries) == len(data[split]["openness"])
        for e in entries:
            nm = os.path.basename(e.path)
            assert e.label == tuple(data[split][t][nm] for t in traits[:5])   # O, C, E, A, N
    assert lines(out / "label_names.txt") == traits[:5]
    # a pickle that calls a global is refused, and the call never happens
    marker = tmp_path / "pwned"
    with open(root / "annotations" / "annotation_test.pkl", "wb") as f:
        pickle.dump({"openness": _Evil(str(marker))}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="annotation_test.pkl: refusing to load global"):
        chalearn.main(["--root", str(root), "--out", str(out)])
    assert not marker.exists()
    # numpy scalars and arrays, as annotation pickles often hold them, load
    import numpy as np
    for proto in (2, 4):
        ann = {t: {nm: np.float64(v) for nm, v in data["test"][t].items()} for t in data["test"]}
        ann["extras"] = np.arange(3, dtype=np.float32)
        with open(root / "annotations" / "annotation_test.pkl", "wb") as f:
            pickle.dump(ann, f, protocol=proto)
        got = chalearn.read_annotations(str(root / "annotations" / "annotation_test.pkl"), traits[:5])
        nm = sorted(data["test"]["openness"])[0]
        assert got[nm] == [data["test"][t][nm] for t in traits[:5]]
        assert chalearn.restricted_load(str(root / "annotations" / "annotation_test.pkl"))[
            "extras"].tolist() == [0, 1, 2]


# ------------------------------------------------------------------------------------ common parts

def test_common_helpers(tmp_path):
    assert common.split_last_field("Daily Life/Sad/0003 Sad") == ("Daily Life/Sad/0003", "Sad")
    assert common.split_last_field("aiim001_task_1, Wide-awake") == ("aiim001_task_1", "Wide-awake")
    assert common.label_index("Wide awake", ("excited", "wide-awake")) == 1
    with pytest.raises(ValueError, match="unknown label"):
        common.label_index("bored", ("excited", "wide-awake"))
    assert common.fold_dir("o", "3") == os.path.join("o", "split03")
    assert common.fold_dir("o", "official") == os.path.join("o", "official")
    with pytest.raises(ValueError, match="no fold"):
        common.group_folds([(50, ("a", 0))], ((1, 10),))
    p = tmp_path / "s.csv"
    common.write_split(str(p), [("a b/c d.avi", 3), ("x", [0.5, 1.0])])
    assert lines(p) == ["a b/c d.avi 3", "x 0.5 1.0"]

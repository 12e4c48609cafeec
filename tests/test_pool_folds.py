"""tools.pool_folds: pooled metrics over fold CSVs, AVCAffe grouping, clear errors."""
import csv
import os

import numpy as np
import pytest

from datasets.registry import get_dataset_info
from engine import metrics as M
from tools import pool_folds as PF


def write_cls(path, labels, scores, names, paths=None, extra=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        head = ["video_index", "path", "label"] + [f"prob_{n}" for n in names]
        if extra:
            head += list(extra)
        w.writerow(head)
        for i, (y, s) in enumerate(zip(labels, scores)):
            row = [i, paths[i] if paths else f"{path}/v{i:05d}", int(y)] + [f"{v:.8f}" for v in s]
            if extra:
                row += [extra[k][i] for k in extra]
            w.writerow(row)


def write_reg(path, targets, preds, names):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video_index", "path"] + [f"target_{n}" for n in names] + [f"pred_{n}" for n in names])
        for i, (t, p) in enumerate(zip(targets, preds)):
            w.writerow([i, f"{path}/v{i}"] + [f"{v:.8f}" for v in t] + [f"{v:.8f}" for v in p])


def _folds_cls(tmp_path, seed=0, k=5, names=None):
    rng = np.random.default_rng(seed)
    names = names or get_dataset_info("dfew").label_names
    files, ys, ss = [], [], []
    for f in range(k):
        n = int(rng.integers(40, 90))
        # folds of different difficulty and class balance, so pooled != mean of folds
        y = rng.integers(0, len(names) - f % 3, n)
        s = rng.random((n, len(names)))
        s[np.arange(n), y] += rng.random(n) * (0.3 + 0.3 * f)
        s = s / s.sum(1, keepdims=True)
        p = str(tmp_path / f"split{f + 1:02d}" / "pred_video.csv")
        write_cls(p, y, s, names)
        files.append(p), ys.append(y), ss.append(s)
    return files, np.concatenate(ys), np.vstack(ss)


@pytest.mark.parametrize("seed", [0, 1])
def test_pooled_classification(tmp_path, seed):
    files, y, s = _folds_cls(tmp_path, seed)
    info, folds, pooled, per_fold, targets, outputs = PF.run("dfew", files)
    assert [f.fold for f in folds] == [f"split{i:02d}" for i in range(1, 6)]
    assert pooled["war"] == pytest.approx(M.war(y, s), abs=1e-9)
    assert pooled["uar"] == pytest.approx(M.uar(y, s), abs=1e-9)
    mean_uar = np.mean([m["uar"] for m in per_fold])
    assert abs(pooled["uar"] - mean_uar) > 1e-6
    report = PF.format_report(info, files, folds, pooled, per_fold, targets, outputs)
    assert "62.83" in report and "confusion matrix" in report and "split03" in report


def test_pooled_regression_and_cli(tmp_path, capsys):
    rng = np.random.default_rng(3)
    names = get_dataset_info("werewolf-xl").label_names
    T, P = [], []
    for f in range(5):
        n = 30 + 10 * f
        t = rng.normal(loc=f * 0.3, size=(n, 3))
        p = 0.5 * t + rng.normal(size=(n, 3))
        write_reg(str(tmp_path / f"fold_{f + 1}" / "pred_video.csv"), t, p, names)
        T.append(t), P.append(p)
    T, P = np.vstack(T), np.vstack(P)
    rc = PF.main(["--data_set", "werewolf-xl", "--glob", str(tmp_path / "fold_*" / "pred_video.csv"),
                  "--json", str(tmp_path / "out.json")])
    assert rc == 0
    import json
    res = json.load(open(tmp_path / "out.json"))
    ccc = M.ccc(P, T)
    assert res["pooled"]["ccc_valence"] == pytest.approx(ccc[1], abs=1e-6)
    assert res["pooled"]["pcc_mean"] == pytest.approx(M.pcc(P, T).mean(), abs=1e-6)
    mean_ccc = np.mean([r["ccc_arousal"] for r in res["per_fold"]])
    assert abs(res["pooled"]["ccc_arousal"] - mean_ccc) > 1e-4
    out = capsys.readouterr().out
    assert "0.6427" in out and "ccc_dominance" in out


def test_columns_reordered_by_name(tmp_path):
    names = list(get_dataset_info("crema-d").label_names)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 30)
    s = rng.random((30, 6))
    perm = names[::-1]
    write_cls(str(tmp_path / "a" / "p.csv"), y, s[:, ::-1], perm)  # columns in reversed order
    fp = PF.read_prediction_csv(str(tmp_path / "a" / "p.csv"), get_dataset_info("crema-d"))
    np.testing.assert_allclose(fp.outputs, s, atol=1e-7)
    assert fp.names == names


def test_avcaffe_grouping(tmp_path):
    info = get_dataset_info("avcaffe-arousal")
    rng = np.random.default_rng(5)
    rows_y, rows_s, paths, keys = [], [], [], []
    vid_y, vid_s = [], []
    for part in range(1, 9):
        for task in range(1, 4):
            key = f"aiim{part:03d}_task_{task}"
            lab = int(rng.integers(0, 5))
            n = int(rng.integers(2, 6))
            s = rng.random((n, 5))
            for c in range(n):
                rows_y.append(lab), rows_s.append(s[c]), keys.append(key)
                paths.append(f"/d/aiim{part:03d}/task_{task}/clip{c}")
            vid_y.append(lab), vid_s.append(s.mean(0))
    vid_y, vid_s = np.array(vid_y), np.vstack(vid_s)
    clip_f1 = M.weighted_f1(np.array(rows_y), np.vstack(rows_s))
    ref = M.weighted_f1(vid_y, vid_s)
    # 1) explicit key column
    p1 = str(tmp_path / "k" / "pred_video.csv")
    write_cls(p1, rows_y, rows_s, info.label_names, paths, extra={"participant_task": keys})
    _, folds, pooled, *_ = PF.run("avcaffe-arousal", [p1])
    assert len(folds[0].targets) == 24 and folds[0].num_rows == len(rows_y)
    assert pooled["weighted_f1"] == pytest.approx(ref, abs=1e-6)
    assert abs(ref - clip_f1) > 1e-6
    # 2) key read from the path
    p2 = str(tmp_path / "p" / "pred_video.csv")
    write_cls(p2, rows_y, rows_s, info.label_names, paths)
    _, _, pooled2, *_ = PF.run("avcaffe-arousal", [p2])
    assert pooled2["weighted_f1"] == pytest.approx(ref, abs=1e-6)
    # 3) groups file (opaque paths)
    opaque = [f"/x/{i}" for i in range(len(paths))]
    p3 = str(tmp_path / "g" / "pred_video.csv")
    write_cls(p3, rows_y, rows_s, info.label_names, opaque)
    gf = tmp_path / "video_groups.txt"
    gf.write_text("".join(f"{p} {k}\n" for p, k in zip(opaque, keys)))
    _, _, pooled3, *_ = PF.run("avcaffe-arousal", [p3], str(gf))
    assert pooled3["weighted_f1"] == pytest.approx(ref, abs=1e-6)


def test_missing_columns_name_the_file(tmp_path, capsys):
    bad = tmp_path / "fold_1" / "pred_video.csv"
    bad.parent.mkdir()
    bad.write_text("video_index,path,label\n0,a,1\n")
    with pytest.raises(PF.PredictionFileError, match="pred_video.csv.*prob_"):
        PF.read_prediction_csv(str(bad), get_dataset_info("dfew"))
    assert PF.main(["--data_set", "dfew", "--pred_files", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
    reg = tmp_path / "r.csv"
    reg.write_text("video_index,path,target_arousal,target_valence,target_dominance\n0,a,1,2,3\n")
    with pytest.raises(PF.PredictionFileError, match="r.csv.*pred_"):
        PF.read_prediction_csv(str(reg), get_dataset_info("werewolf-xl"))


def test_duplicate_across_folds_warns(tmp_path):
    names = get_dataset_info("dfew").label_names
    rng = np.random.default_rng(1)
    y = rng.integers(0, 7, 10)
    s = rng.random((10, 7))
    shared = [f"/d/{i}" for i in range(10)]
    write_cls(str(tmp_path / "f1" / "p.csv"), y, s, names, shared)
    write_cls(str(tmp_path / "f2" / "p.csv"), y[:5], s[:5], names, shared[:5])
    with pytest.warns(UserWarning, match="also in the test set"):
        PF.run("dfew", [str(tmp_path / "f1" / "p.csv"), str(tmp_path / "f2" / "p.csv")])


@pytest.mark.parametrize("ds", ["mafw", "werewolf-xl"])
def test_engine_writer_round_trip(tmp_path, ds):
    """The engine's CSV writer (when present) and this reader agree: pooled = metrics on all folds."""
    F = pytest.importorskip("engine.evaluation")
    if not hasattr(F, "write_prediction_csvs") or not hasattr(F, "aggregate_views"):
        pytest.skip("engine.evaluation has no CSV writer yet")
    info = get_dataset_info(ds)
    rng = np.random.default_rng(7)
    all_t, all_s, dirs = [], [], []
    for fold in range(3):
        n, v = 25 + 5 * fold, 4
        vid = np.repeat(np.arange(n), v)
        if info.is_classification:
            t_vid = rng.integers(0, info.num_outputs, n)
        else:
            t_vid = rng.random((n, info.num_outputs))
        views = dict(outputs=rng.normal(size=(n * v, info.num_outputs)), targets=t_vid[vid],
                     video_index=vid, view_index=np.tile(np.arange(v), n))
        video = F.aggregate_views(views, info.task)
        d = str(tmp_path / f"split{fold + 1:02d}")
        paths = [f"/data/{ds}/f{fold}/clip {i}" for i in range(n)]  # a space in the path
        F.write_prediction_csvs(dict(views=views, videos=video), paths, info.task,
                                info.label_names, d, prefix="test")
        all_t.append(video["targets"]), all_s.append(video["scores"]), dirs.append(d)
    _, folds, pooled, *_ = PF.run(ds, PF.resolve_files(dirs, None))
    ref = M.compute_metrics(info, np.concatenate(all_s), np.concatenate(all_t))
    for k, v in ref.items():
        assert pooled[k] == pytest.approx(v, abs=1e-5), k


def test_optimistic_per_epoch_test_is_logged_and_pooled_apart(tmp_path, capsys):
    """--test_every_epoch: the test split after each epoch and its best epoch, labelled optimistic;
    the result (test_predictions.csv, the final record's test_*) stays the last epoch's."""
    import json
    import os
    import run_finetune
    from tests.helpers import make_tiny_dataset, tiny_finetune_argv
    data = make_tiny_dataset(str(tmp_path / 'syn'))
    fold = os.path.dirname(data['folds']['1']['test'])
    out = str(tmp_path / 'run')
    res = run_finetune.main(tiny_finetune_argv(fold, out, extra=['--epochs', '2', '--test_every_epoch']))
    recs = [json.loads(x) for x in open(os.path.join(out, 'log.jsonl'))]
    epochs = [r for r in recs if 'epoch' in r]
    assert [('optimistic_test_uar' in r) for r in epochs] == [True, True]
    final = recs[-1]
    best = max(epochs, key=lambda r: r['optimistic_test_uar'])
    assert final['optimistic_best_epoch'] == best['epoch']
    assert final['optimistic_best_test_uar'] == best['optimistic_test_uar']
    assert final['test_uar'] == res['test']['uar']                       # the result: last epoch
    assert os.path.isfile(os.path.join(out, 'test_optimistic_best_predictions.csv'))
    assert 'OPTIMISTIC (model selection on the test split' in capsys.readouterr().out
    assert PF.main(['--data_set', 'synthetic', '--expected_folds', '1', '--pred_files', out]) == 0
    text = capsys.readouterr().out
    assert "OPTIMISTIC, not a result: each fold's best epoch chosen on its own test split" in text
    assert f"uar {best['optimistic_test_uar']:.2f}" in text

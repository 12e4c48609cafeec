"""tools.eval_released end to end: checkpoints trained here, one per fold of the synthetic set,
tested fold by fold and compared with given per-fold values, the mean of folds and the pooled set."""
import json
import os

import numpy as np
import pytest

import run_finetune
from datasets.registry import get_dataset_info
from tests.helpers import make_tiny_dataset, repo_root, tiny_finetune_argv
from tools import eval_released as ER
from tools import pool_folds

EVAL_FLAGS = ['--model', 'svfap_tiny_patch16_160', '--num_frames', '8', '--sampling_rate', '2',
              '--input_size', '32', '--short_side_size', '32', '--test_num_segment', '1',
              '--test_num_crop', '1', '--batch_size', '2', '--device', 'cpu', '--num_workers', '0',
              '--amp', 'none']


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("released")
    data = make_tiny_dataset(str(d / "data"), num_labeled=15, num_unlabeled=1, num_folds=5)
    ckpts, results = [], {}
    for k in range(1, 6):
        out = str(d / "train" / f"fold_{k}")
        res = run_finetune.main(tiny_finetune_argv(
            os.path.join(data["out_dir"], f"fold_{k}"), out,
            extra=['--epochs', '1', '--max_steps_per_epoch', '2', '--seed', str(k)]))
        ckpts.append(os.path.join(out, "checkpoint-last.pth"))
        results[str(k)] = res["test"]
    return d, data, ckpts, results


def test_released_checkpoints_table(trained, capsys):
    d, data, ckpts, results = trained
    published = {str(k): {"uar": 50.0 + k, "war": 40.0 + k} for k in range(1, 6)}
    with open(d / "published.json", "w") as f:
        json.dump(published, f)
    out = str(d / "eval")
    summary = ER.main(['--data_set', 'synthetic', '--checkpoints'] + ckpts
                      + ['--data_path', data["out_dir"], '--output_dir', out,
                         '--config', os.path.join(repo_root(), 'configs', 'finetune', 'synthetic_tiny.yaml'),
                         '--published', str(d / "published.json")] + EVAL_FLAGS)
    text = capsys.readouterr().out
    # each fold's number is what its own training run tested at the end (same weights, same views)
    for k in map(str, range(1, 6)):
        for m in ("uar", "war"):
            assert summary["ours"][k][m] == pytest.approx(results[k][m], abs=1e-9)
    # the table: fold | ours | authors' | difference, per metric, then the mean of folds
    row = next(ln for ln in text.splitlines() if ln.startswith("3 "))
    u, w = summary["ours"]["3"]["uar"], summary["ours"]["3"]["war"]
    assert row.split() == ["3", f"{u:.2f}", "53.00", f"{u - 53.0:+.2f}", f"{w:.2f}", "43.00",
                           f"{w - 43.0:+.2f}"]
    mean_u = np.mean([summary["ours"][k]["uar"] for k in summary["ours"]])
    mean_row = next(ln for ln in text.splitlines() if ln.startswith("mean of folds"))
    assert f"{mean_u:.2f}" in mean_row and "53.00" in mean_row      # authors' mean: 53.00
    # pooled: the same as pooling the fold prediction files
    preds = [os.path.join(out, f"fold_{k}", "test_predictions.csv") for k in range(1, 6)]
    assert summary["pooled"] == pool_folds.run("synthetic", preds)[2]
    assert "pooled over 5 fold(s)" in text
    with open(os.path.join(out, "released_comparison.json")) as f:
        assert json.load(f)["ours"] == summary["ours"]


def test_checkpoint_count_and_folders_are_checked(trained, tmp_path):
    d, data, ckpts, _ = trained
    with pytest.raises(ER.ReleasedEvalError, match="5 fold\\(s\\).*need 5 checkpoint"):
        ER.resolve_checkpoints(ckpts[:3], get_dataset_info("synthetic").folds)
    with pytest.raises(ER.ReleasedEvalError, match="no split03 or fold_3"):
        ER.fold_dir(str(tmp_path), "3")
    folder = tmp_path / "ckpts"
    folder.mkdir()
    for k in (10, 2, 1, 3, 4):  # natural name order gives the fold order
        (folder / f"fold{k}.pth").write_bytes(b"x")
    got = ER.resolve_checkpoints([str(folder)], ("1", "2", "3", "4", "10"))
    assert [os.path.basename(p) for p in got] == ["fold1.pth", "fold2.pth", "fold3.pth", "fold4.pth",
                                                 "fold10.pth"]


def test_registry_holds_the_published_per_fold_values():
    dfew = get_dataset_info("dfew").released_results
    assert [dfew[str(k)]["uar"] for k in range(1, 6)] == [63.63, 58.82, 64.88, 63.73, 68.39]
    # the README's "Total (Reproduced)" is the mean of its folds
    assert np.mean([v["uar"] for v in dfew.values()]) == pytest.approx(63.89, abs=0.005)
    mafw = get_dataset_info("mafw").released_results
    assert np.mean([v["war"] for v in mafw.values()]) == pytest.approx(56.31, abs=0.01)
    assert get_dataset_info("ferv39k").released_results == {"official": {"uar": 43.05, "war": 52.86}}

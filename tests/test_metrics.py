"""engine.metrics against scikit-learn and numpy references."""
import numpy as np
import pytest
from sklearn import metrics as skm

from engine import metrics as M

SEEDS = [0, 1, 2, 3, 4]


def _cls_data(seed, n=200, c=7, drop_pred_class=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    scores = rng.random((n, c))
    scores[np.arange(n), y] += rng.random(n)  # better than chance
    if drop_pred_class:
        scores[:, c - 1] = -1.0  # class c-1 is never predicted
    return y, scores


@pytest.mark.parametrize("seed", SEEDS)
def test_classification_matches_sklearn(seed):
    y, s = _cls_data(seed)
    p = s.argmax(1)
    assert 6 not in p and 6 in y
    assert M.war(y, s) == pytest.approx(100 * skm.accuracy_score(y, p))
    assert M.war(y, p) == pytest.approx(100 * skm.accuracy_score(y, p))
    assert M.uar(y, s) == pytest.approx(100 * skm.balanced_accuracy_score(y, p))
    assert M.weighted_f1(y, s) == pytest.approx(100 * skm.f1_score(y, p, average="weighted"))
    assert M.macro_f1(y, p) == pytest.approx(100 * skm.f1_score(y, p, average="macro"))
    np.testing.assert_array_equal(M.confusion_matrix(y, s), skm.confusion_matrix(y, p, labels=range(7)))


@pytest.mark.parametrize("seed", SEEDS)
def test_class_absent_from_targets(seed):
    y, s = _cls_data(seed, drop_pred_class=False)
    keep = y != 2  # class 2 absent from y_true, may be predicted
    y, s = y[keep], s[keep]
    p = s.argmax(1)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_bal = skm.balanced_accuracy_score(y, p)
    assert M.uar(y, p) == pytest.approx(100 * ref_bal)  # mean over classes present in y_true
    rec = skm.recall_score(y, p, labels=range(7), average=None, zero_division=0)
    assert M.uar(y, p, num_classes=7) == pytest.approx(100 * rec.mean())
    assert M.weighted_f1(y, p) == pytest.approx(100 * skm.f1_score(y, p, average="weighted"))
    assert M.macro_f1(y, p) == pytest.approx(100 * skm.f1_score(y, p, average="macro"))
    assert M.macro_f1(y, p, num_classes=7) == pytest.approx(
        100 * skm.f1_score(y, p, labels=range(7), average="macro", zero_division=0))
    cm = M.confusion_matrix(y, s)
    assert cm.shape == (7, 7) and cm[2].sum() == 0


def test_perfect_and_inputs():
    y = np.array([0, 1, 2, 2])
    assert M.war(y, y) == 100.0 and M.uar(y, y) == 100.0 and M.weighted_f1(y, y) == 100.0
    with pytest.raises(ValueError):
        M.war(y, y[:3])
    with pytest.raises(ValueError):
        M.war(y, np.array([0.5, 1, 2, 2]))


def _ccc_ref(p, y):
    mp, my = p.mean(), y.mean()
    cov = np.mean((p - mp) * (y - my))
    return 2 * cov / (p.var() + y.var() + (mp - my) ** 2)


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_metrics(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(300, 3))
    p = 0.6 * y + rng.normal(scale=0.7, size=y.shape) + 0.2
    c, r, a = M.ccc(p, y), M.pcc(p, y), M.acc(p, y)
    assert c.shape == r.shape == a.shape == (3,)
    for d in range(3):
        assert c[d] == pytest.approx(_ccc_ref(p[:, d], y[:, d]))
        assert r[d] == pytest.approx(np.corrcoef(p[:, d], y[:, d])[0, 1])
        assert a[d] == pytest.approx(1 - np.mean(np.abs(p[:, d] - y[:, d])))
        assert isinstance(M.ccc(p[:, d], y[:, d]), float)
        assert M.ccc(p[:, d], y[:, d]) == pytest.approx(c[d])
    assert np.all(c <= r + 1e-12)  # CCC never exceeds PCC
    assert M.ccc(y, y) == pytest.approx(np.ones(3))
    assert M.pcc(np.ones((5, 2)), rng.normal(size=(5, 2))) == pytest.approx(np.zeros(2))


def test_compute_metrics_names():
    rng = np.random.default_rng(0)
    y, s = _cls_data(0)
    out = M.compute_metrics("dfew", s, y)
    assert list(out) == ["uar", "war"]
    assert out["war"] == pytest.approx(M.war(y, s))
    y5 = rng.integers(0, 5, 50)
    assert list(M.compute_metrics("avcaffe-arousal", rng.random((50, 5)), y5)) == ["weighted_f1"]
    t = rng.random((40, 3))
    out = M.compute_metrics("werewolf-xl", t + 0.1 * rng.normal(size=t.shape), t)
    assert list(out) == ["ccc_arousal", "ccc_valence", "ccc_dominance", "ccc_mean",
                         "pcc_arousal", "pcc_valence", "pcc_dominance", "pcc_mean"]
    t = rng.random((40, 5))
    out = M.compute_metrics("chalearn-fi", t, t)
    assert out["ccc_mean"] == pytest.approx(1.0) and out["acc_mean"] == pytest.approx(1.0)
    assert "acc_openness" in out and "ccc_neuroticism" in out


def test_format_confusion_matrix():
    cm = np.array([[3, 1], [0, 2]])
    txt = M.format_confusion_matrix(cm, ["happy", "sad"])
    assert "happy" in txt and "75.0" in txt and "100.0" in txt
    assert len(txt.splitlines()) == 4


def test_no_torch_import():
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(M))
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "torch" not in mods

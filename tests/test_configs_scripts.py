"""configs/*.yaml parse and use only known keys; launchers are valid bash with the registry's folds."""
import glob
import os
import re
import stat
import subprocess
import sys

import pytest

from datasets.registry import get_dataset_info
from cli import config as C

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True))
FT_SCRIPTS = sorted(p for p in glob.glob(os.path.join(ROOT, "scripts", "finetune", "*.sh"))
                    if not os.path.basename(p).startswith("_"))
ALL_SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "scripts", "**", "*.sh"), recursive=True)
                     + glob.glob(os.path.join(ROOT, "scripts", "**", "*.sbatch"), recursive=True))
DATASETS = ["dfew", "ferv39k", "mafw", "crema-d", "ravdess", "enterface05", "werewolf-xl",
            "avcaffe-arousal", "avcaffe-valence", "chalearn-fi"]


def _entry_point_keys(kind):
    """Flag names of the entry point's parser: the only list of keys a recipe may hold."""
    from cli import args as A
    return C.parser_keys(getattr(A, f"{kind}_parser")()), "cli.args"


def _kind(path):
    rel = os.path.relpath(path, os.path.join(ROOT, "configs"))
    return "pretrain" if ("pretrain" in rel.split(os.sep)[0] or "pretrain" in os.path.basename(rel)) \
        else "finetune"


def test_configs_exist():
    names = {os.path.relpath(p, os.path.join(ROOT, "configs")) for p in CONFIGS}
    for ds in DATASETS:
        for size in ("base", "small"):
            assert f"finetune/{ds.replace('-', '_')}_{size}.yaml" in names
    assert {"pretrain/voxceleb2_base.yaml", "pretrain/voxceleb2_small.yaml"} <= names


@pytest.mark.parametrize("kind", ["finetune", "pretrain"])
def test_configs_known_keys(kind):
    allowed, source = _entry_point_keys(kind)
    files = [p for p in CONFIGS if _kind(p) == kind]
    assert files
    for p in files:
        cfg = C.load_config(p, allowed=allowed)  # raises ConfigError naming file and key
        assert cfg, p
        for k, v in cfg.items():
            assert not (isinstance(v, str) and re.fullmatch(r"[-+0-9.eE]+", v)), \
                f"{p}: {k}: {v!r} parsed as a string (write floats as 1.0e-6)"


@pytest.mark.parametrize("ds", DATASETS)
def test_finetune_recipes_follow_registry(ds):
    info = get_dataset_info(ds)
    for size in ("base", "small"):
        cfg = C.load_config(os.path.join(ROOT, "configs", "finetune", f"{ds.replace('-', '_')}_{size}.yaml"))
        assert get_dataset_info(cfg["data_set"]).name == info.name
        assert cfg["nb_classes"] == info.num_outputs
        assert cfg["model"] == f"svfap_{size}_patch16_160"
        assert cfg["opt_betas"] == [0.9, 0.999] and cfg["blr"] == 1e-3 and cfg["layer_decay"] == 0.75
        # stride 4 "in most cases" (paper Sec. 4.1); FERV39k: 1, as the published script
        assert (cfg["num_frames"], cfg["sampling_rate"], cfg["input_size"]) == \
            (16, 1 if info.name == "ferv39k" else 4, 160)
        assert cfg["epochs"] == 100 and cfg["warmup_epochs"] == 5 and cfg["weight_decay"] == 0.05
        if info.is_classification:
            assert (cfg["smoothing"], cfg["mixup"], cfg["cutmix"]) == (0.1, 0.8, 1.0)
        else:
            assert (cfg["smoothing"], cfg["mixup"], cfg["cutmix"]) == (0.0, 0.0, 0.0)
            assert cfg["loss"] == "mse"
        assert cfg.get("output_activation", "none") == info.output_activation


def test_pretrain_recipe():
    cfg = C.load_config(os.path.join(ROOT, "configs", "pretrain", "voxceleb2_base.yaml"))
    assert cfg["model"] == "pretrain_svfap_base_patch16_160" and cfg["mask_ratio"] == 0.9
    assert cfg["blr"] == 3e-4 and cfg["opt_betas"] == [0.9, 0.95] and cfg["epochs"] == 100
    assert cfg["batch_size"] * 4 == 256


def test_load_config_includes_and_errors(tmp_path):
    (tmp_path / "base.yaml").write_text("epochs: 100\nlr: 1.0e-3\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.yaml").write_text("_base_: ../base.yaml\nepochs: 5\nbatch-size: 2\n")
    cfg = C.load_config(str(tmp_path / "sub" / "x.yaml"), allowed={"epochs", "lr", "batch_size"})
    assert cfg == {"epochs": 5, "lr": 1e-3, "batch_size": 2}
    with pytest.raises(C.ConfigError, match=r"base\.yaml: unknown key 'lr'"):
        C.load_config(str(tmp_path / "sub" / "x.yaml"), allowed={"epochs", "batch_size"})
    (tmp_path / "cyc.yaml").write_text("_base_: cyc.yaml\n")
    with pytest.raises(C.ConfigError, match="cyclic"):
        C.load_config(str(tmp_path / "cyc.yaml"))
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch_size", type=int, default=8)
    a = C.parse_args_with_config(p, ["--config", str(tmp_path / "sub" / "x.yaml"), "--epochs", "7"])
    assert (a.epochs, a.lr, a.batch_size) == (7, 1e-3, 2)


@pytest.mark.parametrize("path", ALL_SCRIPTS, ids=lambda p: os.path.relpath(p, ROOT))
def test_scripts_bash_syntax(path):
    r = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rel = os.path.relpath(path, os.path.join(ROOT, "scripts"))
    if rel.split(os.sep)[0] not in ("finetune", "pretrain", "slurm"):
        return  # top-level helpers (test.sh, quickstart.sh, _venv.sh) belong to others
    src = open(path).read()
    assert "set -euo pipefail" in src
    if not os.path.basename(path).startswith("_"):
        assert os.stat(path).st_mode & stat.S_IXUSR, f"{path} is not executable"


def test_finetune_scripts_cover_registry_folds():
    covered = set()
    for path in FT_SCRIPTS:
        src = open(path).read()
        ds = re.search(r"^DATASET=(\S+)", src, re.M).group(1)
        folds = re.search(r"^FOLDS=\(([^)]*)\)", src, re.M).group(1).split()
        info = get_dataset_info(ds)
        assert tuple(folds) == info.folds, path
        assert os.path.basename(path) == ds.replace("-", "_") + ".sh"
        covered.add(info.name)
    assert covered == set(DATASETS) | {"synthetic"}  # + the embedded set's dry-run launcher


def test_scripts_help():
    for path in FT_SCRIPTS[:1] + [os.path.join(ROOT, "scripts", "pretrain", "voxceleb2_base.sh"),
                                  os.path.join(ROOT, "scripts", "slurm", "pretrain_multinode.sbatch")]:
        r = subprocess.run(["bash", path, "-h"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "usage" in r.stdout.lower(), (path, r.stderr)
    src = open(os.path.join(ROOT, "scripts", "slurm", "pretrain_multinode.sbatch")).read()
    for needle in ("--rdzv_backend=c10d", "scontrol show hostnames", "--nnodes=\"$NNODES\"", "srun"):
        assert needle in src


STUB = r'''#!{python}
import os, sys, random
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as f:
    f.write(" ".join(args) + "\n")
if "run_finetune.py" in args:
    out = args[args.index("--output_dir") + 1]
    names = os.environ["STUB_NAMES"].split(",")
    rnd = random.Random(out)
    with open(os.path.join(out, "test_predictions.csv"), "w") as f:
        f.write("video_index,path,label," + ",".join("prob_" + n for n in names) + "\n")
        for i in range(20):
            s = [rnd.random() for _ in names]
            f.write(f"{{i}},{{out}}/v{{i}},{{rnd.randrange(len(names))}}," + ",".join(map(str, s)) + "\n")
'''


def _stub(tmp_path, names):
    stub = tmp_path / "torchrun_stub"
    stub.write_text(STUB.format(python=sys.executable))
    stub.chmod(0o755)
    env = dict(os.environ, TORCHRUN=str(stub), PYTHON=sys.executable, STUB_LOG=str(tmp_path / "log"),
               STUB_NAMES=",".join(names))
    return env


def test_finetune_launcher_dry_run(tmp_path):
    info = get_dataset_info("ravdess")
    env = _stub(tmp_path, info.label_names)
    for i in range(1, 7):
        (tmp_path / "splits" / f"split{i:02d}").mkdir(parents=True)
    env.update(MODEL="small", PRETRAINED="none", SPLITS=str(tmp_path / "splits"),
               OUT=str(tmp_path / "out"), NGPUS="4")
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "finetune", "ravdess.sh"), "--seed", "3"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    calls = (tmp_path / "log").read_text().splitlines()
    assert len(calls) == 6
    assert all("configs/finetune/ravdess_small.yaml" in c and "--batch_size 24" in c
               and c.endswith("--seed 3") and "--finetune" not in c for c in calls)
    assert "--data_path " + str(tmp_path / "splits" / "split06") in calls[-1]
    assert (tmp_path / "out" / "pooled_metrics.json").exists()
    assert "pooled over 6 fold(s), 120 videos" in r.stdout
    # second run: every fold done -> skipped, only pooling
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "finetune", "ravdess.sh")],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and len((tmp_path / "log").read_text().splitlines()) == 6


def test_pretrain_launcher_dry_run(tmp_path):
    env = _stub(tmp_path, ["x"])
    data = tmp_path / "pretrain.csv"
    data.write_text("a 0\n")
    env.update(DATA=str(data), OUTPUT=str(tmp_path / "pt"), NGPUS="8")
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "pretrain", "voxceleb2_base.sh")],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    call = (tmp_path / "log").read_text()
    assert "--nproc_per_node=8" in call and "--batch_size 32" in call
    assert "configs/pretrain/voxceleb2_base.yaml" in call

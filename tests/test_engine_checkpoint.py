"""Checkpoint I/O: atomic writes, weights_only loading, RNG state round trip, auto-resume lookup."""
import argparse
import os
import random

import numpy as np
import pytest
import torch

from dataclasses import replace

import engine.checkpoint as ck
from cli.args import finetune_parser, resume_roles
from models.checkpoint import CheckpointError, read_checkpoint
from tests.helpers import train_config

ROLES = resume_roles(finetune_parser())   # as run_finetune passes them


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))


def _save(path, model, epoch, args=None, **kw):
    """A checkpoint of ``model``; its flags are ``args``, or those of :func:`_resume_args`."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    if args is None:
        args = _resume_args('elsewhere').flags
    return ck.save_checkpoint(path, model=model, optimizer=opt, epoch=epoch, global_step=10 * epoch,
                              args=args, **kw)


def test_checkpoint_loads_weights_only(tmp_path):
    m = _model()
    flags = argparse.Namespace(lr=1e-3, opt_betas=[0.9, 0.95], output_dir='x', stage_depths=None,
                               cutmix_minmax=(0.2, 0.8))
    p = _save(str(tmp_path / 'checkpoint-last.pth'), m, 3, args=flags,
              scaler=torch.amp.GradScaler('cpu'), best={'metric': 'uar', 'value': 1.5, 'epoch': 2})
    obj = torch.load(p, weights_only=True)
    assert obj['epoch'] == 3 and obj['global_step'] == 30
    assert obj['format'] == ck.CHECKPOINT_FORMAT
    assert isinstance(obj['args'], dict) and obj['args']['opt_betas'] == [0.9, 0.95]
    assert obj['args']['cutmix_minmax'] == [0.2, 0.8]
    assert obj['scaler'] is not None and obj['model_ema'] is None
    for k, v in m.state_dict().items():
        assert torch.equal(obj['model'][k], v)
    assert set(obj['rng']) == {'python', 'numpy', 'torch', 'cuda'}
    # file mode is the usual one (not mkstemp's 0600)
    assert os.stat(p).st_mode & 0o044


def test_rng_state_round_trip():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = ck.get_rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    import io
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    ck.set_rng_state(torch.load(buf, weights_only=True))
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / 'checkpoint-last.pth')
    m = _model()
    _save(path, m, 0)
    before = open(path, 'rb').read()
    good = {k: v.clone() for k, v in torch.load(path, weights_only=True)['model'].items()}

    real_save = torch.save

    def broken_save(obj, f, *a, **kw):
        # write part of a real checkpoint, then die as a crash / full disk would
        import io
        buf = io.BytesIO()
        real_save(obj, buf)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 3])
        raise OSError('simulated crash mid-write')

    monkeypatch.setattr(ck.torch, 'save', broken_save)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)
    with pytest.raises(OSError, match='simulated crash'):
        _save(path, m, 1)
    monkeypatch.setattr(ck.torch, 'save', real_save)
    assert open(path, 'rb').read() == before
    obj = torch.load(path, weights_only=True)
    assert obj['epoch'] == 0
    for k, v in good.items():
        assert torch.equal(obj['model'][k], v)
    # no temporary file left behind
    assert sorted(os.listdir(tmp_path)) == ['checkpoint-last.pth']


def test_resume_candidates_newest_first(tmp_path):
    assert ck.resume_candidates(str(tmp_path)) == []
    for e in (1, 10, 2):
        (tmp_path / f'checkpoint-{e}.pth').write_bytes(b'x')
    assert ck.resume_candidates(str(tmp_path))[0].endswith('checkpoint-10.pth')
    (tmp_path / 'checkpoint-last.pth').write_bytes(b'x')
    assert ck.resume_candidates(str(tmp_path))[0].endswith('checkpoint-last.pth')


def test_auto_load_restores_state(tmp_path):
    m = _model()
    path = str(tmp_path / 'checkpoint-last.pth')
    _save(path, m, 4)
    m2 = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
    opt2 = torch.optim.AdamW(m2.parameters(), lr=1e-3)
    cfg = _resume_args(tmp_path)
    ckpt = ck.auto_load(cfg, m2, opt2, roles=ROLES)
    assert ck.resume_point(ckpt, cfg) == (5, 0)
    for a, b in zip(m.parameters(), m2.parameters()):
        assert torch.equal(a, b)
    assert len(opt2.state) == len(list(m2.parameters()))
    # a file that is not ours is refused with a pointer to --finetune
    torch.save({'model': m.state_dict()}, str(tmp_path / 'other.pth'))
    with pytest.raises(RuntimeError, match='--finetune'):
        ck.auto_load(replace(cfg, resume=str(tmp_path / 'other.pth')), m2, opt2)


def test_atomic_copy_matches_the_saved_file(tmp_path, monkeypatch):
    """checkpoint-<N>.pth copies are written like checkpoint-last.pth: same bytes, same file mode,
    no temporary file left, and the folder is fsynced after the rename."""
    last = str(tmp_path / 'checkpoint-last.pth')
    _save(last, _model(), 2)
    synced = []
    from datasets import atomic_file
    real = atomic_file.fsync_dir
    monkeypatch.setattr(atomic_file, 'fsync_dir', lambda d: (synced.append(d), real(d)))
    copy = str(tmp_path / 'checkpoint-2.pth')
    ck.atomic_copy(last, copy)
    with open(last, 'rb') as a, open(copy, 'rb') as b:
        assert a.read() == b.read()
    assert os.stat(copy).st_mode & 0o777 == os.stat(last).st_mode & 0o777
    assert synced == [str(tmp_path)]
    assert sorted(os.listdir(tmp_path)) == ['checkpoint-2.pth', 'checkpoint-last.pth']


def _resume_args(out, resume='', argv=(), entry='finetune'):
    return train_config(['--output_dir', str(out), '--resume', resume] + list(argv), entry)


@pytest.mark.parametrize('damage', ['truncated', 'empty'])
def test_auto_resume_falls_back_to_the_newest_readable_checkpoint(tmp_path, capsys, damage):
    m = _model()
    _save(str(tmp_path / 'checkpoint-1.pth'), m, 1)
    _save(str(tmp_path / 'checkpoint-0.pth'), _model(), 0)
    last = tmp_path / 'checkpoint-last.pth'
    _save(str(last), m, 2)
    data = last.read_bytes()
    last.write_bytes(data[:len(data) // 2] if damage == 'truncated' else b'')
    args = _resume_args(tmp_path)
    ckpt = ck.auto_load(args, _model(), roles=ROLES)
    out = capsys.readouterr().out
    assert ckpt['epoch'] == 1 and ck.resume_point(ckpt, args) == (2, 0)
    warn = [ln for ln in out.splitlines() if 'WARNING' in ln]
    assert len(warn) == 1 and str(last) in warn[0] and 'checkpoint-1.pth' in warn[0]
    assert f'resumed model from {tmp_path / "checkpoint-1.pth"}' in out
    assert (tmp_path / 'checkpoint-last.pth.unreadable').exists()  # kept, set aside
    # and checkpoint-last.pth is the state resumed from again, the newest readable one
    assert read_checkpoint(str(last))['epoch'] == 1
    assert 'checkpoint-last.pth restored from checkpoint-1.pth' in out


def test_unreadable_checkpoints_name_the_file(tmp_path):
    bad = tmp_path / 'checkpoint-last.pth'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match=r'checkpoint-last\.pth \(16 bytes\)'):
        ck.auto_load(_resume_args(tmp_path, resume=str(bad)), _model())
    with pytest.raises(CheckpointError, match=r'no readable checkpoint, only 1 unreadable'):
        ck.auto_load(_resume_args(tmp_path), _model())


def test_a_folder_of_unreadable_checkpoints_is_refused_every_time(tmp_path, capsys):
    """A Slurm requeue repeats the command: the second start must not train from epoch 0 over the
    run's log just because the first set the unreadable files aside."""
    (tmp_path / 'checkpoint-last.pth').write_bytes(b'broken')
    (tmp_path / 'checkpoint-9.pth').write_bytes(b'')
    for _ in range(3):
        with pytest.raises(CheckpointError, match=r'--force_restart'):
            ck.auto_load(_resume_args(tmp_path), _model())
    assert sorted(os.listdir(tmp_path)) == ['checkpoint-9.pth.unreadable', 'checkpoint-last.pth.unreadable']
    args = _resume_args(tmp_path, argv=['--force_restart'])
    assert ck.auto_load(args, _model()) is None and ck.resume_point(None, args) == (0, 0)
    assert 'kept aside' in capsys.readouterr().out


def test_stale_temp_files_are_removed_on_start(tmp_path, capsys):
    stale = tmp_path / '.checkpoint-last.pth.abc123.tmp'
    stale.write_bytes(b'x' * 1000)
    keep = tmp_path / 'notes.tmp'
    keep.write_text('mine')
    assert ck.auto_load(_resume_args(tmp_path), _model()) is None
    assert not stale.exists() and keep.exists()
    assert 'removed the partial file' in capsys.readouterr().out


def test_previous_last_checkpoint_is_kept_and_used_when_the_new_one_is_bad(tmp_path, capsys):
    """save_ckpt_freq 10: without the rotated copy a bad checkpoint-last.pth would send the run back
    to the start; with it, one epoch is lost."""
    from engine.checkpoint import save_epoch_checkpoints
    m = _model()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    args = train_config(['--output_dir', str(tmp_path), '--save_ckpt_freq', '10', '--epochs', '30'])
    for epoch in range(4):
        save_epoch_checkpoints(args, epoch, 10 * epoch, m, opt, None, None)
    assert sorted(os.listdir(tmp_path)) == ['checkpoint-last.pth', 'checkpoint-prev.pth']
    assert read_checkpoint(str(tmp_path / 'checkpoint-prev.pth'))['epoch'] == 2
    last = tmp_path / 'checkpoint-last.pth'
    last.write_bytes(last.read_bytes()[:100])      # e.g. a bad network filesystem
    ra = _resume_args(tmp_path)
    ckpt = ck.auto_load(ra, _model(), roles=ROLES)
    assert ckpt['epoch'] == 2 and ck.resume_point(ckpt, ra) == (3, 0)
    assert f'trying {tmp_path / "checkpoint-prev.pth"}' in capsys.readouterr().out


def test_rotation_never_leaves_the_folder_without_a_last_checkpoint(tmp_path):
    """Before a new last is written the old one becomes prev, but stays last until the new one
    replaces it: a kill between the two still finds checkpoint-last.pth."""
    last = str(tmp_path / 'checkpoint-last.pth')
    _save(last, _model(), 3)
    assert ck.rotate_last(str(tmp_path)) == last
    assert read_checkpoint(last)['epoch'] == 3                        # still there
    assert read_checkpoint(str(tmp_path / 'checkpoint-prev.pth'))['epoch'] == 3
    _save(last, _model(), 4)                                          # the new last replaces it
    assert read_checkpoint(last)['epoch'] == 4
    assert read_checkpoint(str(tmp_path / 'checkpoint-prev.pth'))['epoch'] == 3
    assert sorted(os.listdir(tmp_path)) == ['checkpoint-last.pth', 'checkpoint-prev.pth']


def test_resume_roles_come_from_the_parser(tmp_path, capsys):
    """A Shape flag that changed refuses the resume, a Runtime flag is not mentioned, any other
    change is warned about: read off the entry point's parser, for every flag it has."""
    from cli.args import NEUTRAL, REFUSED, pretrain_parser
    roles = resume_roles(pretrain_parser())
    assert roles['mask_ratio'] == roles['model'] == roles['input_size'] == REFUSED
    assert roles['num_workers'] == roles['output_dir'] == roles['world_size'] == NEUTRAL
    assert 'lr' not in roles and 'epochs' not in roles and 'blr' not in roles
    flags = {a.dest for a in pretrain_parser()._actions} | {'config', 'distributed', 'rank', 'world_size', 'gpu'}
    assert set(roles) <= flags
    m = _model()
    path = str(tmp_path / 'checkpoint-last.pth')
    ck.save_checkpoint(path, model=m, epoch=0, global_step=0, args=argparse.Namespace(
        mask_ratio=0.9, num_workers=10, lr=1e-3, output_dir='elsewhere'))
    now = _resume_args(tmp_path, argv=['--mask_ratio', '0.75', '--num_workers', '2', '--lr', '2e-3'],
                       entry='pretrain')
    with pytest.raises(ck.ResumeMismatchError, match=r"mask_ratio 0\.9 \(now 0\.75\)"):
        ck.auto_load(now, _model(), roles=roles)
    ck.auto_load(replace(now, force_resume=True), _model(), roles=roles)
    warn = [ln for ln in capsys.readouterr().out.splitlines() if 'resuming with' in ln]
    assert len(warn) == 1 and 'lr 0.001 -> 0.002' in warn[0] and 'mask_ratio' in warn[0]
    assert 'num_workers' not in warn[0] and 'output_dir' not in warn[0]

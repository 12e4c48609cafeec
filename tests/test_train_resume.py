"""End-to-end runs of run_finetune.main / run_pretrain.main on tiny synthetic videos: an interrupted
and auto-resumed run equals an uninterrupted one; a NaN loss stops the run and keeps the last
checkpoint; outputs (log.jsonl, CSVs, TensorBoard) are written."""
import glob
import subprocess
import sys
import json
import os

import numpy as np
import pytest
import torch

import engine.trainer
import run_finetune
import run_pretrain
from engine.step import NonFiniteLossError
from tests.helpers import make_tiny_dataset, repo_root, tiny_finetune_argv, tiny_pretrain_argv


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_tiny_dataset(str(tmp_path_factory.mktemp('syn')))


class Interrupt(Exception):
    pass


def _interrupt_after_epoch(monkeypatch, stop_epoch):
    real = engine.trainer.save_epoch_checkpoints

    def save_then_die(args, epoch, *a, **kw):
        out = real(args, epoch, *a, **kw)
        if epoch == stop_epoch:
            raise Interrupt(f'killed after epoch {epoch}')
        return out

    monkeypatch.setattr(engine.trainer, "save_epoch_checkpoints", save_then_die)


def _weights(path):
    return torch.load(path, weights_only=True)['model']


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0, msg=k)


FT_EXTRA = ['--epochs', '2', '--max_steps_per_epoch', '2', '--mixup', '0.8', '--cutmix', '1.0',
            '--smoothing', '0.1', '--update_freq', '1', '--num_workers', '1', '--save_ckpt_freq', '1',
            '--model_ema', '--model_ema_decay', '0.9']


def test_finetune_resume_equals_uninterrupted(data, tmp_path, monkeypatch):
    fold = os.path.dirname(data['folds']['1']['train'])
    a_dir, b_dir = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
    ra = run_finetune.main(tiny_finetune_argv(fold, a_dir, extra=FT_EXTRA))
    assert sorted(ra['step_losses']) == [0, 1]

    with monkeypatch.context() as m:
        _interrupt_after_epoch(m, 0)
        with pytest.raises(Interrupt):
            run_finetune.main(tiny_finetune_argv(fold, b_dir, extra=FT_EXTRA))
    assert torch.load(os.path.join(b_dir, 'checkpoint-last.pth'), weights_only=True)['epoch'] == 0
    rb = run_finetune.main(tiny_finetune_argv(fold, b_dir, extra=FT_EXTRA))  # auto-resume
    assert sorted(rb['step_losses']) == [1]
    np.testing.assert_allclose(rb['step_losses'][1], ra['step_losses'][1], atol=1e-6, rtol=0)
    _assert_same_weights(_weights(os.path.join(a_dir, 'checkpoint-last.pth')),
                         _weights(os.path.join(b_dir, 'checkpoint-last.pth')))
    ema_a = torch.load(os.path.join(a_dir, 'checkpoint-last.pth'), weights_only=True)['model_ema']
    ema_b = torch.load(os.path.join(b_dir, 'checkpoint-last.pth'), weights_only=True)['model_ema']
    _assert_same_weights(ema_a, ema_b)
    assert ra['test'] == pytest.approx(rb['test'])

    # outputs: log.jsonl (one line per epoch + final test), CSVs, TensorBoard, per-epoch files
    lines = [json.loads(l) for l in open(os.path.join(a_dir, 'log.jsonl'))]
    assert [l.get('epoch') for l in lines[:2]] == [0, 1] and lines[-1]['final_test']
    assert {'train_loss', 'train_lr', 'train_grad_norm'} <= set(lines[0])
    for f in ('test_predictions.csv', 'test_predictions_views.csv', 'checkpoint-0.pth',
              'checkpoint-1.pth', 'args.json'):
        assert os.path.isfile(os.path.join(a_dir, f)), f
    assert glob.glob(os.path.join(a_dir, 'tb', 'events.out.tfevents.*'))
    # synthetic has a distinct validation split: a best checkpoint is selected and tested
    if os.path.getsize(data['folds']['1']['val']) > 0:
        assert os.path.isfile(os.path.join(a_dir, 'checkpoint-best.pth'))
        assert 'test_best' in ra


def test_pretrain_resume_equals_uninterrupted(data, tmp_path, monkeypatch):
    extra = ['--epochs', '2', '--max_steps_per_epoch', '1', '--update_freq', '2', '--clip_grad', '1.0',
             '--weight_decay_end', '0.1']
    a_dir, b_dir = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
    ra = run_pretrain.main(tiny_pretrain_argv(data['pretrain'], a_dir, extra=extra))
    assert len(ra['step_losses'][0]) == 2  # 1 update x 2 micro-steps
    with monkeypatch.context() as m:
        _interrupt_after_epoch(m, 0)
        with pytest.raises(Interrupt):
            run_pretrain.main(tiny_pretrain_argv(data['pretrain'], b_dir, extra=extra))
    rb = run_pretrain.main(tiny_pretrain_argv(data['pretrain'], b_dir, extra=extra))
    np.testing.assert_allclose(rb['step_losses'][1], ra['step_losses'][1], atol=1e-6, rtol=0)
    _assert_same_weights(_weights(os.path.join(a_dir, 'checkpoint-last.pth')),
                         _weights(os.path.join(b_dir, 'checkpoint-last.pth')))
    ck = torch.load(os.path.join(a_dir, 'checkpoint-last.pth'), weights_only=True)
    assert ck['epoch'] == 1 and ck['global_step'] == 2 and ck['args']['mask_ratio'] == 0.75


def test_nan_loss_stops_and_keeps_last_checkpoint(data, tmp_path, monkeypatch):
    fold = os.path.dirname(data['folds']['1']['train'])
    out = str(tmp_path / 'nan')
    real = run_finetune.make_finetune_loss
    calls = []

    def poisoned(model, criterion, mixup_fn, device, batch_augment=None):
        fn = real(model, criterion, mixup_fn, device, batch_augment)

        def compute(batch):
            loss, n = fn(batch)
            calls.append(1)
            return (loss * float('nan') if len(calls) == 2 else loss), n  # epoch 1, step 0
        return compute

    monkeypatch.setattr(run_finetune, 'make_finetune_loss', poisoned)
    saved = {}
    real_save = engine.trainer.save_epoch_checkpoints

    def record_save(args, epoch, *a, **kw):
        p = real_save(args, epoch, *a, **kw)
        saved[epoch] = open(p, 'rb').read()
        return p

    monkeypatch.setattr(engine.trainer, "save_epoch_checkpoints", record_save)
    argv = tiny_finetune_argv(fold, out, extra=['--epochs', '2', '--max_steps_per_epoch', '1',
                                                '--mixup', '0', '--cutmix', '0'])
    with pytest.raises(NonFiniteLossError, match=r'nan at epoch 1, step \[1/1\]'):
        run_finetune.main(argv)
    assert list(saved) == [0]
    path = os.path.join(out, 'checkpoint-last.pth')
    assert open(path, 'rb').read() == saved[0]
    assert torch.load(path, weights_only=True)['epoch'] == 0
    assert not os.path.exists(os.path.join(out, 'checkpoint-1.pth'))
    assert len(open(os.path.join(out, 'log.jsonl')).readlines()) == 1


@pytest.mark.parametrize('crash', ['before_checkpoint', 'between_numbered_and_last'])
def test_a_crash_at_the_checkpoint_loses_no_record(data, tmp_path, monkeypatch, crash):
    """Epoch 1 ends, its log.jsonl record is written, then the run dies: before any checkpoint of
    epoch 1, or after checkpoint-1.pth but before checkpoint-last.pth. The resumed run keeps
    exactly one record per epoch, and a checkpoint-1.pth exists at the end."""
    import engine.checkpoint as rt
    fold = os.path.dirname(data['folds']['1']['train'])
    out = str(tmp_path / 'run')
    extra = ['--epochs', '3', '--max_steps_per_epoch', '1', '--save_ckpt_freq', '1', '--num_workers', '0']
    real_save, real_copy = rt.save_checkpoint, rt.atomic_copy

    def save(path, **kw):
        if kw['epoch'] == 1 and crash == 'before_checkpoint':
            raise Interrupt('killed before the checkpoint of epoch 1')
        return real_save(path, **kw)

    def copy(src, dst):
        if src.endswith('checkpoint-1.pth') and crash == 'between_numbered_and_last':
            raise Interrupt('killed between checkpoint-1.pth and checkpoint-last.pth')
        return real_copy(src, dst)

    with monkeypatch.context() as m:
        m.setattr(rt, 'save_checkpoint', save)
        m.setattr(rt, 'atomic_copy', copy)
        with pytest.raises(Interrupt):
            run_finetune.main(tiny_finetune_argv(fold, out, extra=extra))
    r = run_finetune.main(tiny_finetune_argv(fold, out, extra=extra))
    resumed_at = 2 if crash == 'between_numbered_and_last' else 1
    assert sorted(r['step_losses']) == list(range(resumed_at, 3))
    epochs = [json.loads(l).get('epoch') for l in open(os.path.join(out, 'log.jsonl'))]
    assert epochs[:3] == [0, 1, 2] and epochs.count(1) == 1
    for k in range(3):
        assert os.path.isfile(os.path.join(out, f'checkpoint-{k}.pth'))


def test_resume_with_changed_flags_is_loud_and_keeps_args_json(data, tmp_path, capsys):
    fold = os.path.dirname(data['folds']['1']['train'])
    out = str(tmp_path / 'run')
    base = ['--max_steps_per_epoch', '1', '--num_workers', '0', '--save_ckpt_freq', '1']
    run_finetune.main(tiny_finetune_argv(fold, out, extra=base + ['--epochs', '1']))
    first = json.load(open(os.path.join(out, 'args.json')))
    capsys.readouterr()
    run_finetune.main(tiny_finetune_argv(fold, out, extra=base + ['--epochs', '2', '--lr', '1000', '--num_workers', '1']))
    printed = capsys.readouterr().out
    warn = [ln for ln in printed.splitlines() if 'resuming with' in ln]
    assert len(warn) == 1 and "lr 0.001 -> 1000.0" in warn[0] and "epochs 1 -> 2" in warn[0]
    assert 'num_workers' not in warn[0]                   # runtime-only flags do not count
    assert json.load(open(os.path.join(out, 'args.json'))) == first
    assert json.load(open(os.path.join(out, 'args-resumed-at-epoch-1.json')))['lr'] == 1000.0


def test_unwritable_output_dir_fails_first_with_one_line(tmp_path):
    """An --output_dir that cannot be made (below a file: fails even for root) stops the run
    before anything is built, with one line naming the flag and the folder."""
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    out = str(blocker / 'out')
    r = subprocess.run([sys.executable, 'run_finetune.py'] + tiny_finetune_argv('x', out),
                       cwd=repo_root(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f'ERROR (rank 0): cannot write to --output_dir {out}')
    assert 'Traceback' not in r.stderr


def test_resume_refuses_shape_changes_unless_forced(data, tmp_path):
    from engine.checkpoint import ResumeMismatchError
    fold = os.path.dirname(data['folds']['1']['train'])
    out = str(tmp_path / 'run')
    base = ['--max_steps_per_epoch', '1', '--num_workers', '0', '--save_ckpt_freq', '1']
    run_finetune.main(tiny_finetune_argv(fold, out, extra=base + ['--epochs', '1']))
    with pytest.raises(ResumeMismatchError, match=r"sampling_rate 2 \(now 1\).*--force_resume"):
        run_finetune.main(tiny_finetune_argv(fold, out, extra=base + ['--epochs', '2', '--sampling_rate', '1']))
    r = run_finetune.main(tiny_finetune_argv(fold, out, extra=base + ['--epochs', '2', '--sampling_rate', '1',
                                                                      '--force_resume']))
    assert sorted(r['step_losses']) == [1]


def test_finetune_load_report_is_printed_once_and_written_in_full(data, tmp_path, capsys):
    pt = str(tmp_path / 'pt')
    run_pretrain.main(tiny_pretrain_argv(data['pretrain'], pt, extra=['--epochs', '1', '--max_steps_per_epoch', '1',
                                                                       '--vis_every', '0']))
    fold = os.path.dirname(data['folds']['1']['train'])
    out = str(tmp_path / 'ft')
    capsys.readouterr()
    run_finetune.main(tiny_finetune_argv(fold, out, extra=['--epochs', '1', '--max_steps_per_epoch', '1',
                                                          '--num_workers', '0', '--finetune',
                                                          os.path.join(pt, 'checkpoint-last.pth')]))
    printed = capsys.readouterr().out
    lines = [ln for ln in printed.splitlines() if 'checkpoint keys' in ln or ln.strip().startswith(('decoder.', 'mask_token'))]
    assert len(lines) == 1 and lines[0].startswith('| --finetune: loaded '), lines
    report = open(os.path.join(out, 'finetune_load_report.txt')).read()
    assert 'mask_token' in report and 'decoder.' in report and 'newly initialised' in report

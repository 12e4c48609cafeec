"""A run's folder belongs to one run, and a preempted run loses nothing (docs/launch.md, "What a
run promises"). Real processes, real signals, real files."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

import run_finetune
from models.checkpoint import CheckpointError, read_checkpoint
from tests.helpers import free_port, make_tiny_dataset, repo_root, tiny_finetune_argv, tiny_pretrain_argv

ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')


def _start(entry, argv, log):
    f = open(log, 'w')
    return subprocess.Popen([sys.executable, entry] + argv, cwd=repo_root(), env=ENV, stdout=f,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(log, text, proc, timeout=240):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if os.path.exists(log) and text in open(log).read():
            return
        if proc.poll() is not None:
            raise AssertionError(f'exited with {proc.returncode} before {text!r}:\n{open(log).read()[-3000:]}')
        time.sleep(0.05)
    raise AssertionError(f'{text!r} not seen in {timeout} s:\n{open(log).read()[-3000:]}')


def _run(entry, argv):
    p = subprocess.run([sys.executable, entry] + argv, cwd=repo_root(), env=ENV, capture_output=True,
                       text=True, timeout=400)
    return p.returncode, p.stdout + p.stderr


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_tiny_dataset(str(tmp_path_factory.mktemp('syn')), num_labeled=21, num_unlabeled=24)


def test_a_live_run_holds_its_folder(data, tmp_path):
    """A second training run and an --eval on the folder of a live run are refused in one line naming
    the holder; a run killed with -9 leaves no stale lock."""
    fold = os.path.dirname(data['folds']['1']['test'])
    out = str(tmp_path / 'ft')
    argv = tiny_finetune_argv(fold, out, extra=['--epochs', '200'])
    a = _start('run_finetune.py', argv, str(tmp_path / 'a.log'))
    try:
        _wait_for(str(tmp_path / 'a.log'), 'Epoch: [1]', a)
        rc, text = _run('run_finetune.py', argv)
        assert rc == 1, text
        err = [ln for ln in text.splitlines() if ln.startswith('ERROR')]
        assert len(err) == 1 and f'pid {a.pid} on {socket.gethostname()}' in err[0]
        assert 'in use by a live run' in err[0] and 'training started' in err[0]
        rc, text = _run('run_finetune.py', argv + ['--eval', '--resume', os.path.join(out, 'checkpoint-last.pth')])
        assert rc == 1 and 'give it a folder of its own' in text, text
        assert a.poll() is None  # the live run went on untouched
        before = open(os.path.join(out, 'log.jsonl')).read()
        assert 'eval_only' not in before
    finally:
        os.killpg(a.pid, signal.SIGKILL)
        a.wait()
    # the kernel released the lock with the process: the folder can be evaluated now
    rc, text = _run('run_finetune.py', argv + ['--eval', '--resume', os.path.join(out, 'checkpoint-last.pth')])
    assert rc == 0, text[-3000:]


def test_checkpoint_last_is_back_after_a_kill_during_the_last_copy(data, tmp_path, capsys):
    """The state a kill between the last epoch's numbered file and its copy leaves: the numbered
    file, the old last renamed to prev, no last. The rerun has nothing to train, and still restores
    checkpoint-last.pth, so the documented --eval --resume works."""
    fold = os.path.dirname(data['folds']['1']['test'])
    out = tmp_path / 'ft'
    argv = tiny_finetune_argv(fold, str(out), extra=['--epochs', '2', '--max_steps_per_epoch', '2'])
    run_finetune.main(argv)
    # epoch 1's save: last (epoch 0) renamed to prev, checkpoint-1.pth written, then killed in the copy
    assert read_checkpoint(str(out / 'checkpoint-prev.pth'))['epoch'] == 0
    os.unlink(out / 'checkpoint-last.pth')
    (out / '.checkpoint-last.pth.x1.tmp').write_bytes(b'partial')
    run_finetune.main(argv)
    assert 'checkpoint-last.pth restored from checkpoint-1.pth' in capsys.readouterr().out
    last = read_checkpoint(str(out / 'checkpoint-last.pth'))
    numbered = read_checkpoint(str(out / 'checkpoint-1.pth'))
    assert last['epoch'] == 1 and all(torch.equal(last['model'][k], v) for k, v in numbered['model'].items())
    res = run_finetune.main(argv + ['--eval', '--resume', str(out / 'checkpoint-last.pth'),
                                    '--output_dir', str(tmp_path / 'eval')])
    assert 'uar' in res['test']


def test_unreadable_checkpoints_refuse_every_retry_until_force_restart(data, tmp_path, capsys):
    fold = os.path.dirname(data['folds']['1']['test'])
    out = tmp_path / 'ft'
    argv = tiny_finetune_argv(fold, str(out), extra=['--epochs', '1', '--max_steps_per_epoch', '2'])
    run_finetune.main(argv)
    for name in os.listdir(out):
        if name.startswith('checkpoint-') and name.endswith('.pth'):
            (out / name).write_bytes(b'damaged')
    records = open(out / 'log.jsonl').read()
    for _ in range(2):  # the first start sets them aside; a requeue of the same command too is refused
        with pytest.raises(CheckpointError, match='--force_restart'):
            run_finetune.main(argv)
        assert open(out / 'log.jsonl').read() == records  # nothing deleted
    res = run_finetune.main(argv + ['--force_restart'])
    assert res['train_history'][0]['epoch'] == 0
    assert any(n.endswith('.unreadable') for n in os.listdir(out))


def _weights(path):
    return read_checkpoint(path)['model']


def _preempt_and_resume(cmd_prefix, argv, out, log, wait_text, signal_pids):
    """Run, send SIGTERM once ``wait_text`` shows, expect 143 and a mid-epoch checkpoint; rerun to the end."""
    f = open(log, 'w')
    p = subprocess.Popen(cmd_prefix + argv, cwd=repo_root(), env=ENV, stdout=f, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        _wait_for(log, wait_text, p)
        for pid in signal_pids(p):
            os.kill(pid, signal.SIGTERM)
        rc = p.wait(timeout=240)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    text = open(log).read()
    ck = read_checkpoint(os.path.join(out, 'checkpoint-last.pth'))
    mid = ck.get('resume_step')
    assert mid is not None and mid['epoch'] == 0 and 0 < mid['step'], text[-3000:]
    assert json.load(open(os.path.join(out, 'preempted.json')))['step'] == mid['step']
    p2 = subprocess.run(cmd_prefix + argv, cwd=repo_root(), env=ENV, capture_output=True, text=True,
                        timeout=400)
    text2 = p2.stdout + p2.stderr
    assert p2.returncode == 0, text2[-3000:]
    assert f'continuing epoch 0 at step {mid["step"]}' in text2
    assert not os.path.exists(os.path.join(out, 'preempted.json'))
    return rc, text, ck


def test_sigterm_saves_mid_epoch_and_the_resume_is_bit_exact(data, tmp_path):
    """Pre-training with 2 loader workers: SIGTERM mid-epoch -> checkpoint at the next step, exit
    143; the same command continues the epoch at that step; the weights at the end equal those of
    an uninterrupted run, so the data order and random state were restored."""
    extra = ['--epochs', '2', '--num_workers', '2', '--batch_size', '1']
    ref = str(tmp_path / 'ref')
    rc, text = _run('run_pretrain.py', tiny_pretrain_argv(data['pretrain'], ref, size=48, extra=extra))
    assert rc == 0, text[-3000:]
    out = str(tmp_path / 'pt')
    argv = tiny_pretrain_argv(data['pretrain'], out, size=48, extra=extra)
    rc, text, _ = _preempt_and_resume([sys.executable, 'run_pretrain.py'], argv, out,
                                        str(tmp_path / 'pt.log'), 'Epoch: [0] [ 3/24]', lambda p: [p.pid])
    assert rc == 143 and 'stopped by SIGTERM after step' in text, text[-3000:]
    a, b = _weights(os.path.join(ref, 'checkpoint-last.pth')), _weights(os.path.join(out, 'checkpoint-last.pth'))
    assert all(torch.equal(a[k], b[k]) for k in a)
    epochs = [json.loads(ln)['epoch'] for ln in open(os.path.join(out, 'log.jsonl'))]
    assert epochs == [0, 1]


def _workers(p):
    """The torchrun agent's worker processes."""
    deadline = time.time() + 30
    while time.time() < deadline:
        out = subprocess.run(['pgrep', '-P', str(p.pid)], capture_output=True, text=True).stdout.split()
        if len(out) == 2:
            return [int(x) for x in out]
        time.sleep(0.1)
    raise AssertionError('torchrun workers not found')


def test_sigterm_to_one_ddp_rank_stops_both_at_the_same_step(data, tmp_path):
    """torchrun, 2 processes on gloo: the signal reaches rank 1 only; both ranks agree to stop after
    the same step, the checkpoint holds both ranks' random states, and the resume is bit-exact."""
    extra = ['--epochs', '2', '--batch_size', '1', '--log_every', '2']
    torchrun = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                '--master_addr', '127.0.0.1', '--master_port', str(free_port()), 'run_pretrain.py']
    ref = str(tmp_path / 'ref')
    p = subprocess.run(torchrun + tiny_pretrain_argv(data['pretrain'], ref, size=48, extra=extra), cwd=repo_root(),
                       env=ENV, capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    out = str(tmp_path / 'pt')
    torchrun[torchrun.index('--master_port') + 1] = str(free_port())
    rc, text, ck = _preempt_and_resume(torchrun, tiny_pretrain_argv(data['pretrain'], out, size=48, extra=extra),
                                        out, str(tmp_path / 'ddp.log'), 'Epoch: [0] [ 2/12]',
                                        lambda p: _workers(p)[1:])
    assert rc != 0 and text.count('stopped by SIGTERM after step') == 2, text[-3000:]  # both ranks
    assert len(ck['rng_ranks']) == 2 and ck['resume_step']['step'] % 2 == 0  # agreed at a check step
    a, b = _weights(os.path.join(ref, 'checkpoint-last.pth')), _weights(os.path.join(out, 'checkpoint-last.pth'))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_slurm_script_checkpoints_on_its_time_limit_signal_and_requeues(data, tmp_path):
    """scripts/slurm/pretrain_multinode.sbatch with stand-ins for srun, scontrol and torchrun (no
    Slurm here): USR1 to the batch script, as --signal=B:USR1@300 sends it, reaches the training
    process as SIGTERM; the run checkpoints mid-epoch, and the script requeues the job."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text('#!/usr/bin/env bash\n'
                                  'while [[ "$1" == --* ]]; do shift; done\nexec "$@"\n')
    (bin_dir / 'scontrol').write_text('#!/usr/bin/env bash\n'
                                      'if [ "$1" = show ]; then echo localhost; else echo "$@" >> "$SCONTROL_LOG"; fi\n')
    (bin_dir / 'torchrun').write_text('#!/usr/bin/env bash\n'   # one process: drop torchrun's options
                                      f'while [[ "$1" == --* ]]; do shift; done\nexec {sys.executable} "$@"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    out = str(tmp_path / 'pt')
    env = dict(ENV, PATH=f'{bin_dir}:{ENV["PATH"]}', SLURM_JOB_ID='4242', SLURM_JOB_NODELIST='localhost',
               SLURM_NNODES='1', GPUS_PER_NODE='1', TOTAL_BATCH='1', OUTPUT=out, DATA=data['pretrain'],
               MODEL_SIZE='small', SCONTROL_LOG=str(tmp_path / 'scontrol.log'), TORCHRUN='torchrun')
    flags = tiny_pretrain_argv(data['pretrain'], out, size=48, extra=['--epochs', '2'])
    log = str(tmp_path / 'job.log')
    with open(log, 'w') as f:
        job = subprocess.Popen(['bash', os.path.join(repo_root(), 'scripts', 'slurm', 'pretrain_multinode.sbatch')]
                               + flags + ['--batch_size', '1'], cwd=repo_root(), env=env, stdout=f,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(log, 'Epoch: [0] [ 3/24]', job)
        os.kill(job.pid, signal.SIGUSR1)
        assert job.wait(timeout=240) == 0, open(log).read()[-3000:]
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    text = open(log).read()
    assert 'time limit near' in text and 'stopped by SIGTERM after step' in text, text[-3000:]
    assert open(tmp_path / 'scontrol.log').read().split() == ['requeue', '4242']
    assert read_checkpoint(os.path.join(out, 'checkpoint-last.pth'))['resume_step']['epoch'] == 0


def test_a_broken_test_video_is_reported_before_training(data, tmp_path):
    """Probed at start-up: one line naming the file and --skip_broken_eval, no epoch trained."""
    from datasets.split_file import read_split_file, write_split_file
    from tests.helpers import pattern_frames, write_truncated_mp4
    fold = tmp_path / 'fold'
    fold.mkdir()
    src = os.path.dirname(data['folds']['1']['test'])
    for name in ('train', 'test'):
        rows = [(e.path, e.label) for e in read_split_file(os.path.join(src, f'{name}.csv'), num_classes=7)]
        if name == 'test':
            rows.append((write_truncated_mp4(str(tmp_path / 'broken.mp4'), pattern_frames(40, 32, 32), 0.3), 1))
        write_split_file(str(fold / f'{name}.csv'), rows)
    rc, text = _run('run_finetune.py', tiny_finetune_argv(str(fold), str(tmp_path / 'ft'), extra=['--epochs', '3']))
    err = [ln for ln in text.splitlines() if ln.startswith('ERROR')]
    assert rc == 1 and len(err) == 1, text[-3000:]
    assert 'broken.mp4' in err[0] and '--skip_broken_eval' in err[0] and 'Epoch: [0]' not in text
    rc, text = _run('run_finetune.py', tiny_finetune_argv(str(fold), str(tmp_path / 'ft'), extra=[
        '--epochs', '1', '--max_steps_per_epoch', '1', '--skip_broken_eval']))
    assert rc == 0, text[-3000:]


def test_another_data_path_on_resume_is_refused(data, tmp_path):
    from engine.checkpoint import ResumeMismatchError
    out = str(tmp_path / 'ft')
    folds = [os.path.dirname(data['folds'][k]['test']) for k in ('1', '2')]
    extra = ['--epochs', '2', '--max_steps_per_epoch', '1']
    run_finetune.main(tiny_finetune_argv(folds[0], out, extra=['--epochs', '1', '--max_steps_per_epoch', '1']))
    with pytest.raises(ResumeMismatchError, match=r"data_path .*fold_1.*now .*fold_2"):
        run_finetune.main(tiny_finetune_argv(folds[1], out, extra=extra))
    res = run_finetune.main(tiny_finetune_argv(folds[1], out, extra=extra + ['--force_resume']))
    assert [r['epoch'] for r in res['train_history']] == [1]

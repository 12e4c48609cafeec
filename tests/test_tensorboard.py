"""The monitoring promise (docs/troubleshooting.md), end to end: tiny real runs write event files, the real
TensorBoard server (bound to the loopback, bounded in time) serves them, and its HTTP API has the
training loss, the lr, the validation UAR and the reconstruction image."""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

import run_finetune
import run_pretrain
from datasets.synthetic import generate_synthetic_dataset
from tests.helpers import free_port, tiny_finetune_argv, tiny_pretrain_argv

SERVER_TIMEOUT_S = 90


def _tensorboard_command():
    exe = shutil.which('tensorboard', path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get('PATH', ''))
    if exe is None:
        pytest.fail('the `tensorboard` command is missing: it is in requirements.txt, reinstall them')
    return exe


def _get(port, path, **params):
    url = f'http://127.0.0.1:{port}{path}'
    if params:
        url += '?' + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read()
    return body


def _get_json(port, path, **params):
    return json.loads(_get(port, path, **params))


def test_tensorboard_server_shows_loss_lr_val_uar_and_reconstruction(tmp_path):
    data = generate_synthetic_dataset(str(tmp_path / 'data'), num_labeled=35, num_unlabeled=6,
                                      num_frames=16, size=40, num_folds=3, val_fraction=0.3,
                                      seed=0)
    fold_dir = os.path.dirname(data['folds']['1']['test'])
    assert os.path.getsize(data['folds']['1']['val']) > 0
    logs = tmp_path / 'runs'
    run_pretrain.main(tiny_pretrain_argv(data['pretrain'], str(logs / 'pretrain'),
                                         extra=['--epochs', '1']))
    run_finetune.main(tiny_finetune_argv(fold_dir, str(logs / 'finetune'), extra=['--epochs', '2']))

    port = free_port()
    proc = subprocess.Popen([_tensorboard_command(), '--logdir', str(logs), '--host', '127.0.0.1',
                             '--port', str(port), '--load_fast', 'false', '--reload_interval', '1'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + SERVER_TIMEOUT_S
        runs = []
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f'tensorboard exited with {proc.returncode}: {proc.stdout.read()[-2000:]}')
            try:
                runs = _get_json(port, '/data/runs')
                tags = _get_json(port, '/data/plugin/scalars/tags')
                images = _get_json(port, '/data/plugin/images/tags')
                if ({'pretrain/tb', 'finetune/tb', 'pretrain/tb/steps', 'finetune/tb/steps'} <= set(runs)
                        and 'val/uar' in tags.get('finetune/tb', {})
                        and 'train/lr' in tags.get('finetune/tb/steps', {})
                        and 'pretrain/reconstruction' in images.get('pretrain/tb', {})):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f'tensorboard did not serve both runs within {SERVER_TIMEOUT_S} s '
                        f'(runs seen: {runs})')

        def scalars(run, tag):
            rows = _get_json(port, '/data/plugin/scalars/scalars', run=run, tag=tag)
            return [(step, value) for _, step, value in rows]

        for run in ('pretrain/tb/steps', 'finetune/tb/steps'):
            loss = scalars(run, 'train/loss_step')
            lr = scalars(run, 'train/lr')
            assert len(loss) >= 3 and all(v > 0 for _, v in loss), (run, loss)
            assert lr and all(0 < v < 1 for _, v in lr), (run, lr)
        uar = scalars('finetune/tb', 'val/uar')
        assert [s for s, _ in uar] == [0, 1]                        # one point per epoch
        assert all(0.0 <= v <= 100.0 for _, v in uar)

        samples = _get_json(port, '/data/plugin/images/images', run='pretrain/tb',
                            tag='pretrain/reconstruction', sample=0)
        assert samples and samples[0]['step'] == 0
        png = _get(port, '/data/plugin/images/individualImage?' + samples[0]['query'])
        assert png[:8] == b'\x89PNG\r\n\x1a\n'
        assert len(png) > 500                       # a real picture, not an empty placeholder
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_resumed_run_purges_the_epochs_and_steps_it_runs_again(tmp_path):
    """Run A writes epochs 0-1 (5 optimizer steps each) and is killed after epoch 1's events reached
    disk but before its checkpoint; run B resumes at epoch 1 and writes epochs 1-2. TensorBoard
    reads every epoch and every step once, with B's values where they overlap, on both axes."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from engine.logger import TensorboardLogger
    d = str(tmp_path / 'tb')
    a = TensorboardLogger(d)
    for epoch in (0, 1):
        a.series('train/loss_step', [float(i) for i in range(5 * epoch, 5 * epoch + 5)], 5 * epoch)
        a.scalars({'loss': float(epoch)}, epoch, prefix='train_epoch/')
        a.scalars({'lr': 0.5}, 5 * epoch + 4, prefix='train/', axis='step')
    a.close()
    time.sleep(1.1)                 # event files are named by the second they are opened in
    b = TensorboardLogger(d)
    b.resume_at(1, steps_per_epoch=5)
    for epoch in (1, 2):
        b.series('train/loss_step', [100.0 + i for i in range(5 * epoch, 5 * epoch + 5)], 5 * epoch)
        b.scalars({'loss': 100.0 + epoch}, epoch, prefix='train_epoch/')
        b.scalars({'lr': 0.25}, 5 * epoch + 4, prefix='train/', axis='step')
    b.close()
    steps = EventAccumulator(os.path.join(d, 'steps'))
    steps.Reload()
    events = steps.Scalars('train/loss_step')
    assert [e.step for e in events] == list(range(15))
    assert [e.value for e in events] == [0, 1, 2, 3, 4] + [100.0 + i for i in range(5, 15)]
    assert [(e.step, e.value) for e in steps.Scalars('train/lr')] == [(4, 0.5), (9, 0.25), (14, 0.25)]
    epochs = EventAccumulator(d)
    epochs.Reload()
    assert [(e.step, e.value) for e in epochs.Scalars('train_epoch/loss')] == [(0, 0.0), (1, 101.0),
                                                                              (2, 102.0)]
    assert 'train/loss_step' not in epochs.Tags()['scalars']   # one x-axis per directory


@pytest.mark.parametrize('delay', [0.0, 0.3])
def test_kill_and_resume_leaves_every_step_once_in_tensorboard(tmp_path, delay):
    """kill -9 just after epoch 0's record (often before its checkpoint: the rerun starts over) or
    during epoch 1 of 3 (sometimes between its flush and its checkpoint): epoch 0's scalars are on
    disk, and after --auto_resume TensorBoard and log.jsonl hold every step and epoch once."""
    import signal
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    data = generate_synthetic_dataset(str(tmp_path / 'data'), num_labeled=35, num_unlabeled=0,
                                      num_frames=16, size=40, num_folds=3, val_fraction=0.3, seed=0)
    fold_dir = os.path.dirname(data['folds']['1']['test'])
    out = str(tmp_path / 'run')
    cmd = [sys.executable, os.path.join(os.path.dirname(os.path.dirname(__file__)), 'run_finetune.py')] + \
        tiny_finetune_argv(fold_dir, out, extra=['--epochs', '3'])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = os.path.join(out, 'log.jsonl')
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(log) and len(open(log).readlines()) >= 1:
            break
        time.sleep(0.05)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def read():
        ea = EventAccumulator(os.path.join(out, 'tb'), size_guidance={'scalars': 0})
        ea.Reload()
        return ea
    ea = read()
    assert [e.step for e in ea.Scalars('train_epoch/loss')][:1] == [0]   # on disk before the kill
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    ea = read()
    assert [e.step for e in ea.Scalars('train_epoch/loss')] == [0, 1, 2]
    assert [e.step for e in ea.Scalars('val/uar')] == [0, 1, 2]
    records = [r for r in map(json.loads, open(log)) if 'epoch' in r]
    assert [r['epoch'] for r in records] == [0, 1, 2]
    steps = EventAccumulator(os.path.join(out, 'tb', 'steps'), size_guidance={'scalars': 0})
    steps.Reload()
    loss_steps = [e.step for e in steps.Scalars('train/loss_step')]
    assert loss_steps == list(range(3 * records[0]['train_steps']))  # optimizer steps, each once

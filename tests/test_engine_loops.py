"""Training loops on tiny models and fixed batches; evaluation aggregation; reconstruction image."""
import csv
import os

import numpy as np
import pytest
import timm
import torch
import torch.nn as nn

import models  # noqa: F401
from engine.evaluation import aggregate_views, evaluate, gather_predictions, write_prediction_csvs
from engine.finetune import make_finetune_loss
from engine.loop import train_one_epoch
from engine.pretrain import make_pretrain_loss, masked_targets, reconstruction_grid
from engine.step import NonFiniteLossError, NonFiniteTracker, Stepper


CPU = torch.device('cpu')


def _clf(**kw):
    torch.manual_seed(0)
    return timm.create_model('svfap_tiny_patch16_160', img_size=32, all_frames=8, num_classes=3, **kw)


def _stepper(model, lr=1e-3, update_freq=1, amp='none', scaler=None, clip=None, fused=None):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, fused=fused)
    return Stepper(model, model, opt, CPU, amp=amp, update_freq=update_freq, clip_grad=clip,
                   scaler=scaler)


def _const(n, value):
    return np.full(n, value, dtype=np.float64)


def test_finetune_loop_loss_falls_on_fixed_batch():
    model = _clf()
    g = torch.Generator().manual_seed(0)
    clip = torch.randn(2, 3, 8, 32, 32, generator=g)
    target = torch.tensor([0, 2])
    batch = (clip, target, torch.arange(2), torch.zeros(2, dtype=torch.long))
    st = _stepper(model, lr=3e-3)
    loss_fn = make_finetune_loss(model, nn.CrossEntropyLoss(), None, CPU)
    res = train_one_epoch(model, [batch] * 8, st, 0, 8, loss_fn, _const(8, 3e-3), log_every=4)
    losses = res['step_losses']
    assert len(losses) == 8 and all(np.isfinite(losses))
    assert np.mean(losses[-2:]) < 0.5 * losses[0]
    assert res['steps'] == 8 and res['overflow_steps'] == 0 and res['grad_norm'] > 0


def test_pretrain_loop_loss_falls_on_fixed_batch():
    torch.manual_seed(0)
    model = timm.create_model('pretrain_svfap_tiny_patch16_160', img_size=32, all_frames=8)
    g = torch.Generator().manual_seed(1)
    clip = torch.randn(2, 3, 8, 32, 32, generator=g)
    from datasets.masking import tube_mask
    mask = torch.from_numpy(np.stack([tube_mask((4, 2, 2), 0.5, i) for i in range(2)]))
    batch = (clip, mask, torch.zeros(2, dtype=torch.long))
    st = _stepper(model, lr=2e-3)
    res = train_one_epoch(model, [batch] * 16, st, 0, 16, make_pretrain_loss(model, CPU),
                          _const(16, 2e-3), log_every=0)
    losses = res['step_losses']
    assert np.mean(losses[-3:]) < 0.8 * losses[0]


def test_gradient_accumulation_matches_large_batch():
    g = torch.Generator().manual_seed(0)
    clip = torch.randn(4, 3, 8, 32, 32, generator=g)
    target = torch.tensor([0, 1, 2, 1])
    lr = _const(1, 1e-3)
    m1 = _clf()
    st1 = _stepper(m1)
    fn1 = make_finetune_loss(m1, nn.CrossEntropyLoss(), None, CPU)
    train_one_epoch(m1, [(clip, target)], st1, 0, 1, fn1, lr, log_every=0)
    m2 = _clf()
    st2 = _stepper(m2, update_freq=2)
    fn2 = make_finetune_loss(m2, nn.CrossEntropyLoss(), None, CPU)
    res = train_one_epoch(m2, [(clip[:2], target[:2]), (clip[2:], target[2:])], st2, 0, 1, fn2, lr,
                          log_every=0)
    assert len(res['step_losses']) == 2
    for (n, a), b in zip(m1.named_parameters(), m2.parameters()):
        torch.testing.assert_close(a, b, atol=2e-6, rtol=1e-5, msg=n)


def test_fp16_overflow_steps_counted_and_excluded():
    model = _clf()
    # scale 2^100: the first step's loss (x 1e10) overflows, the later ones do not
    scaler = torch.amp.GradScaler('cpu', init_scale=2.0 ** 100, growth_interval=1000)
    st = _stepper(model, amp='none', scaler=scaler)
    ce = nn.CrossEntropyLoss()
    calls = []

    def loss_fn(batch):
        loss = ce(model(batch[0]).float(), batch[1])
        calls.append(1)
        return (loss * 1e10 if len(calls) == 1 else loss), None

    batch = (torch.randn(2, 3, 8, 32, 32), torch.tensor([0, 1]))
    before = [p.detach().clone() for p in model.parameters()]
    res = train_one_epoch(model, [batch] * 3, st, 0, 3, loss_fn, _const(3, 1e-3), log_every=1)
    assert res['overflow_steps'] == 1
    assert np.isfinite(res['grad_norm']) and res['grad_norm'] > 0  # mean over the 2 real steps
    assert float(scaler.get_scale()) == 2.0 ** 99  # backed off once
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_bf16_autocast_step_runs():
    model = _clf()
    st = _stepper(model, amp='bf16')
    fn = make_finetune_loss(model, nn.CrossEntropyLoss(), None, CPU)
    res = train_one_epoch(model, [(torch.randn(2, 3, 8, 32, 32), torch.tensor([0, 1]))], st, 0,
                          1, fn, _const(1, 1e-3), log_every=0)
    assert all(np.isfinite(res['step_losses']))


@pytest.mark.parametrize('fused', [None, True], ids=['foreach', 'fused'])
def test_nonfinite_loss_stops_with_message(fused):
    """The NaN step is skipped: by a host check (foreach), or on the device (fused: ``found_inf``)."""
    model = _clf()
    st = _stepper(model, fused=fused)
    assert st.device_skip == bool(fused)

    def loss_fn(batch):
        out = model(batch[0])
        loss = out.float().mean()
        return (loss * float('nan') if batch[2] else loss), None

    clip = torch.randn(2, 3, 8, 32, 32)
    batches = [(clip, None, False), (clip, None, True), (clip, None, False)]
    with pytest.raises(NonFiniteLossError, match=r'nan at epoch 7, step \[2/3\]; stopping\. No '
                                                 r'optimizer step was taken on it'):
        train_one_epoch(model, batches, st, 7, 3, loss_fn, _const(30, 1e-3), log_every=0)
    # the NaN step was skipped in fp32 too: the weights stay finite, 2 of the 3 steps were taken
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert {int(st.optimizer.state[p]['step']) for p in model.parameters()} == {2}
    t = NonFiniteTracker(CPU)
    t.update(torch.tensor(1.0), 0)
    t.check(0)  # finite: no error


def _views_dataset(n_videos=5, n_views=3, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    items = []
    for v in range(n_videos):
        for w in range(n_views):
            items.append((torch.randn(3, 8, 32, 32, generator=g), v % classes, v, w))
    return items


def _collate(items):
    return (torch.stack([i[0] for i in items]), torch.tensor([i[1] for i in items]),
            torch.tensor([i[2] for i in items]), torch.tensor([i[3] for i in items]))


def test_evaluate_averages_softmax_over_views_and_writes_csv(tmp_path):
    from datasets.registry import get_dataset_info
    model = _clf()
    items = _views_dataset()
    loader = torch.utils.data.DataLoader(items, batch_size=4, collate_fn=_collate)
    info = get_dataset_info('synthetic')
    names = ['a', 'b', 'c']
    res = evaluate(model, loader, CPU, 'none', 'classification', distributed=False, info=None,
                   label_names=names)
    assert res['num_videos'] == 5 and res['num_views'] == 15
    with torch.no_grad():
        logits = model(torch.stack([i[0] for i in items])).view(5, 3, 3)
    expect = logits.softmax(-1).mean(1).numpy()
    np.testing.assert_allclose(res['videos']['scores'], expect, atol=1e-5)
    paths = [f'/videos/v{i}.mp4' for i in range(5)]
    files = write_prediction_csvs(res, paths, 'classification', names, str(tmp_path), prefix='test')
    with open(files['videos']) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ['video_index', 'path', 'label', 'pred', 'num_views', 'prob_a', 'prob_b',
                             'prob_c']
    assert [int(r['video_index']) for r in rows] == list(range(5))
    assert rows[2]['path'] == '/videos/v2.mp4' and rows[2]['num_views'] == '3'
    np.testing.assert_allclose([float(rows[1][f'prob_{n}']) for n in names], expect[1], atol=1e-6)
    with open(files['views']) as f:
        vrows = list(csv.DictReader(f))
    assert list(vrows[0])[:4] == ['video_index', 'view_index', 'path', 'label']
    assert len(vrows) == 15
    # metrics through the registry names
    from engine.evaluation import compute_eval_metrics
    m = compute_eval_metrics(info, res['videos'], list(info.label_names))
    assert set(m) == {'uar', 'war'}


def test_gather_removes_padding_duplicates():
    rng = np.random.default_rng(0)
    full = dict(outputs=rng.normal(size=(7, 3)), targets=np.arange(7) % 3,
                video_index=np.repeat(np.arange(4), 2)[:7], view_index=np.tile([0, 1], 4)[:7])
    # a distributed sampler (2 ranks, strided, padded with the first record)
    order = list(range(7)) + [0]
    r0 = {k: v[order[0::2]] for k, v in full.items()}
    r1 = {k: v[order[1::2]] for k, v in full.items()}
    cat = {k: np.concatenate([r0[k], r1[k]]) for k in full}
    assert len(cat['video_index']) == 8
    import engine.evaluation as ef
    orig = ef.all_gather_object
    ef.all_gather_object = lambda obj: [r0, r1]
    try:
        g = gather_predictions(r0, distributed=True)
    finally:
        ef.all_gather_object = orig
    for k in full:
        np.testing.assert_array_equal(g[k], full[k])
    agg = aggregate_views(g, 'regression')
    np.testing.assert_allclose(agg['scores'][0], full['outputs'][:2].mean(0))
    assert agg['num_views'].tolist() == [2, 2, 2, 1]


def test_regression_csv_columns(tmp_path):
    views = dict(outputs=np.array([[0.1, 0.2], [0.3, 0.4]]), targets=np.array([[1., 2.], [1., 2.]]),
                 video_index=np.array([0, 0]), view_index=np.array([0, 1]))
    video = aggregate_views(views, 'regression')
    files = write_prediction_csvs({'views': views, 'videos': video}, ['p0'], 'regression',
                                  ['arousal', 'valence'], str(tmp_path), prefix='val')
    with open(files['videos']) as f:
        row = next(csv.DictReader(f))
    assert list(row) == ['video_index', 'path', 'label_arousal', 'label_valence', 'num_views',
                         'pred_arousal', 'pred_valence']
    assert float(row['pred_valence']) == pytest.approx(0.3)
    assert os.path.basename(files['views']) == 'val_predictions_views.csv'


def test_reconstruction_grid_undoes_patch_normalisation():
    """With the ideal prediction (the normalised targets) the image's third row is the original."""
    torch.manual_seed(0)
    clip = torch.rand(1, 3, 8, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)
    norm = (clip - mean) / std
    from datasets.masking import tube_mask
    mask = torch.from_numpy(tube_mask((4, 2, 2), 0.5, 0))[None]

    class Oracle(nn.Module):
        def forward(self, x, m):
            return masked_targets(x, m)

    img = reconstruction_grid(Oracle(), norm, mask, CPU, max_frames=4)
    assert img.shape == (3, 3 * 32, 4 * 32)
    frames = [0, 2, 5, 7]
    orig = torch.cat([clip[0, :, f] for f in frames], dim=2).numpy()
    np.testing.assert_allclose(img[:, :32], orig, atol=1e-5)
    np.testing.assert_allclose(img[:, 64:], orig, atol=1e-4)
    # the masked row is grey exactly where tubes are masked
    assert np.isclose(img[:, 32:64], 0.5).mean() > 0.3


def test_video_level_grouping_matches_pool_folds(tmp_path):
    """AVCAffe: clip scores averaged per participant x task; the CSV carries the key and the
    fold-pooling tool reads it back to the same weighted F1."""
    from datasets.registry import get_dataset_info
    from engine.evaluation import compute_eval_metrics, group_videos, video_group_keys
    info = get_dataset_info('avcaffe-arousal')
    paths = [f'/data/aiim00{p}/task_{t}/clip_{c}.avi' for p in (1, 2) for t in (1, 2) for c in range(3)]
    groups_file = tmp_path / 'video_groups.txt'
    groups_file.write_text(f'{paths[0]} aiim001_task_1\n')
    keys = video_group_keys(paths, str(groups_file))
    assert keys[0] == 'aiim001_task_1' and keys[3] == 'aiim001_task_2' and keys[-1] == 'aiim002_task_2'
    rng = np.random.default_rng(0)
    n = len(paths)
    labels = np.repeat(rng.integers(0, 5, n // 3), 3)
    outputs = rng.normal(size=(n, 5))
    views = dict(outputs=outputs, targets=labels, video_index=np.arange(n), view_index=np.zeros(n, int))
    video = aggregate_views(views, 'classification')
    video['group_key'] = np.array([keys[i] for i in range(n)], dtype=object)
    grouped = group_videos(video, keys)
    assert len(grouped['keys']) == 4 and grouped['num_clips'].tolist() == [3, 3, 3, 3]
    np.testing.assert_allclose(grouped['scores'][1], video['scores'][3:6].mean(0))
    m = compute_eval_metrics(info, grouped, list(info.label_names))
    files = write_prediction_csvs({'views': views, 'videos': video}, paths, 'classification',
                                  list(info.label_names), str(tmp_path), group_column='participant_task')
    with open(files['videos']) as f:
        row = next(csv.DictReader(f))
    assert row['participant_task'] == 'aiim001_task_1'
    from tools.pool_folds import read_prediction_csv
    fold = read_prediction_csv(files['videos'], info, 'official', None)
    assert len(fold.paths) == 4
    from engine.metrics import weighted_f1
    assert weighted_f1(fold.targets, fold.outputs) == pytest.approx(m['weighted_f1'])


def test_evaluation_prints_progress_with_rate_and_eta(capsys, monkeypatch):
    """A line every interval (here every batch: the interval is patched to 0) and one at the end,
    each with the views done, the rate and the ETA."""
    import engine.logger as lg
    monkeypatch.setattr(lg, 'PROGRESS_INTERVAL_S', 0.0)
    model = _clf()
    loader = torch.utils.data.DataLoader(_views_dataset(), batch_size=4, collate_fn=_collate)
    evaluate(model, loader, CPU, 'none', 'classification', distributed=False, header='test')
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith('test [')]
    assert len(lines) == 4, lines          # after batches 1-3 (4 + 4 + 4 of 15) and the end
    assert lines[0].startswith('test [ 4/15 views]') and lines[-1].startswith('test [15/15 views]')
    assert all('views/s' in ln and 'eta ' in ln for ln in lines)


def test_progress_outside_a_terminal_is_plain_lines(capsys, monkeypatch):
    """Not a TTY (a log file): no carriage-return bar, one line per interval and one at the end."""
    import engine.logger as lg
    monkeypatch.setattr(lg, 'PROGRESS_INTERVAL_S', 0.0)
    items = list(lg.progress_iter(range(5), 5, 'decoding', 'clips'))
    assert items == list(range(5))
    err = capsys.readouterr().err
    assert '\r' not in err
    lines = [ln for ln in err.splitlines() if ln.startswith('decoding [')]
    assert lines[-1].startswith('decoding [5/5 clips]') and len(lines) == 5
    assert list(lg.progress_iter(range(3), 3, 'x', 'y', enabled=False)) == [0, 1, 2]
    assert capsys.readouterr().err == ''


def test_slow_progress_shows_seconds_per_item(monkeypatch):
    """Below one item a second the line gives seconds per item, not '0.0 views/s'."""
    from engine.logger import RateProgress
    bar = RateProgress('test', 100, unit='views', interval_s=1e9)
    bar.start -= 40.0     # 2 views in 40 s
    bar.done = 2
    assert '20.0 s/view' in bar.line() and 'views/s' not in bar.line()
    bar.done = 80         # 2 views a second
    assert '2.0 views/s' in bar.line()

"""tools.predict on synthetic videos with tiny checkpoints (ours and the authors' layout)."""
import argparse
import csv
import json
import os

import numpy as np
import pytest
import torch

from datasets.registry import get_dataset_info
from tests.helpers import pattern_frames, tiny_checkpoints, write_mp4

NF, RATE, SIZE = 8, 2, 32          # tiny clips: 8 frames, stride 2 -> span 15 frames, 32 px input
SPAN = (NF - 1) * RATE + 1


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    d = str(tmp_path_factory.mktemp('predict'))
    e = tiny_checkpoints(d, NF, RATE, SIZE)
    e['dir'] = d
    e['short'] = write_mp4(os.path.join(d, 'short.mp4'), pattern_frames(10, 40, 48))
    e['long'] = write_mp4(os.path.join(d, 'long.mp4'), pattern_frames(100, 48, 64, seed=1))
    return e


def _run(argv):
    from tools.predict import main
    return main(argv)


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_window_starts():
    from tools.inputs import num_windows, window_starts
    assert window_starts(10, NF, RATE, 16) == [0]                 # short: one clamped window
    assert window_starts(SPAN, NF, RATE, 16) == [0]
    assert window_starts(100, NF, RATE, 16) == [0, 16, 32, 48, 64, 80, 85]  # last window ends at frame 99
    assert window_starts(15 + 32, NF, RATE, 16) == [0, 16, 32]
    for L in (1, 14, 15, 16, 31, 47, 48, 100, 333):
        for stride in (1, 7, 16, 64):
            s = window_starts(L, NF, RATE, stride)
            assert len(s) == num_windows(L, NF, RATE, stride)
            assert s[-1] + SPAN - 1 == max(L - 1, SPAN - 1)


def test_predict_csv(env, tmp_path, capsys):
    out = str(tmp_path / 'preds.csv')
    assert _run(['--checkpoint', env['ft'], env['short'], env['long'], '--output', out, '--device', 'cpu',
                 '--batch_size', '3']) == 0
    names = get_dataset_info('dfew').label_names
    videos = _read_csv(out)
    windows = _read_csv(str(tmp_path / 'preds_windows.csv'))
    assert [v['path'] for v in videos] == [env['short'], env['long']]
    assert [c for c in videos[0] if c.startswith('prob_')] == [f'prob_{n}' for n in names]
    by_path = {}
    for w in windows:
        by_path.setdefault(w['path'], []).append(w)
    assert len(by_path[env['short']]) == 1 and videos[0]['num_windows'] == '1'
    assert len(by_path[env['long']]) == 7 and videos[1]['num_windows'] == '7'  # ceil((100-15)/16)+1
    assert [int(w['start_frame']) for w in by_path[env['long']]] == [0, 16, 32, 48, 64, 80, 85]
    assert by_path[env['short']][0]['end_frame'] == '9'
    for v in videos:
        p = np.array([float(v[f'prob_{n}']) for n in names])
        assert abs(p.sum() - 1) < 1e-5 and v['status'] == 'ok'
        assert v['pred_label'] == names[int(np.argmax(p))] and int(v['pred']) == int(np.argmax(p))
        wp = np.array([[float(w[f'prob_{n}']) for n in names] for w in by_path[v['path']]])
        assert np.allclose(wp.sum(1), 1, atol=1e-5)
        assert np.allclose(wp.mean(0), p, atol=1e-6)  # video = mean of its windows
    printed = capsys.readouterr().out
    assert 'long.mp4' in printed and '2 of 2 inputs predicted' in printed


def test_predict_json_authors_checkpoint(env, tmp_path):
    out = str(tmp_path / 'preds.json')
    assert _run(['--checkpoint', env['authors'], '--model', 'svfap_tiny_patch16_160', '--data_set', 'dfew',
                 env['long'], '--output', out, '--num_crops', '2', '--window_stride', '40']) == 0
    res = json.load(open(out))
    assert res['label_names'] == list(get_dataset_info('dfew').label_names)
    assert res['num_crops'] == 2 and res['window_stride'] == 40
    (v,) = res['videos']
    assert v['num_windows'] == 4 == len(v['windows'])   # starts 0, 40, 80, 85
    assert [w['start_frame'] for w in v['windows']] == [0, 40, 80, 85]
    assert abs(sum(v['probabilities'].values()) - 1) < 1e-6
    assert v['pred_label'] == max(v['probabilities'], key=v['probabilities'].get)
    # same weights as our checkpoint: same numbers
    out2 = str(tmp_path / 'ours.json')
    assert _run(['--checkpoint', env['ft'], env['long'], '--output', out2, '--num_crops', '2',
                 '--window_stride', '40']) == 0
    assert json.load(open(out2))['videos'][0]['probabilities'] == pytest.approx(v['probabilities'], abs=1e-6)


def test_predict_bad_inputs(env, tmp_path, capsys):
    import cv2
    d = tmp_path
    missing = str(d / 'missing.mp4')
    text = str(d / 'notes.mp4')
    open(text, 'w').write('this is not a video\n' * 20)
    empty = str(d / 'empty_frames')
    os.makedirs(empty)
    zero = str(d / 'zero.mp4')
    cv2.VideoWriter(zero, cv2.VideoWriter_fourcc(*'mp4v'), 25, (40, 40)).release()
    gray = str(d / 'gray.mp4')
    w = cv2.VideoWriter(gray, cv2.VideoWriter_fourcc(*'mp4v'), 25, (48, 48), isColor=False)
    for i in range(20):
        w.write(np.full((48, 48), 10 * i, np.uint8))
    w.release()
    tiny = write_mp4(str(d / 'tiny.mp4'), pattern_frames(20, 20, 20))
    bad = [missing, text, empty, zero]
    out = str(d / 'p.csv')
    capsys.readouterr()
    assert _run(['--checkpoint', env['ft'], missing, text, env['short'], empty, zero, gray, tiny,
                 '--output', out]) == 0
    err = capsys.readouterr().err.splitlines()
    for p in bad:
        lines = [ln for ln in err if ln.startswith(p + ':')]
        assert len(lines) == 1, (p, err)
    assert 'no such file' in next(ln for ln in err if ln.startswith(missing + ':'))
    assert 'empty folder' in next(ln for ln in err if ln.startswith(empty + ':'))
    assert any(ln.startswith(tiny + ':') and 'upscaled' in ln for ln in err)
    assert any(ln.startswith(gray + ':') and 'grayscale' in ln for ln in err)
    rows = {r['path']: r for r in _read_csv(out)}
    assert {p for p, r in rows.items() if r['status'] == 'error'} == set(bad)
    assert {p for p, r in rows.items() if r['status'] == 'ok'} == {env['short'], gray, tiny}
    # nothing usable at all: non-zero exit
    assert _run(['--checkpoint', env['ft'], missing, text]) == 1


def test_predict_face_crop(env, tmp_path, capsys):
    out = str(tmp_path / 'f.csv')
    capsys.readouterr()
    assert _run(['--checkpoint', env['ft'], env['short'], '--face_crop', '--output', out]) == 1
    err = capsys.readouterr().err
    assert f'{env["short"]}: no face found' in err
    assert _run(['--checkpoint', env['ft'], env['short'], '--face_crop', '--face_fallback', 'center',
                 '--output', out]) == 0
    (row,) = _read_csv(out)
    assert row['status'] == 'ok' and 'centre crop' in row['message']


def test_predict_rejects_pretrain_checkpoint(env, capsys):
    assert _run(['--checkpoint', env['pt'], env['short']]) == 2
    assert 'pre-training checkpoint' in capsys.readouterr().err


def test_predict_regression_and_folders(env, tmp_path):
    """Regression head (chalearn-fi: 5 traits, sigmoid) over a folder holding a video in a
    sub-folder and a frame folder; the authors' file without --model (size from its width)."""
    import timm
    from tests.helpers import write_frame_folder
    from tools.inputs import collect_inputs
    from tools.loading import load_model
    torch.manual_seed(1)
    m = timm.create_model('svfap_tiny_patch16_160', img_size=SIZE, all_frames=NF, num_classes=5)
    ck = str(tmp_path / 'reg.pth')
    torch.save({'model': m.state_dict(), 'args': dict(model='svfap_tiny_patch16_160', data_set='chalearn-fi',
                                                       input_size=SIZE, num_frames=NF, sampling_rate=RATE)}, ck)
    root = tmp_path / 'in'
    os.makedirs(root / 'a' / 'b')
    vid = write_mp4(str(root / 'a' / 'b' / 'x.avi'), pattern_frames(30, 40, 40))
    frames = write_frame_folder(str(root / 'a' / 'clip7'), pattern_frames(9, 40, 40))
    open(root / 'a' / 'readme.txt', 'w').write('ignored')
    assert collect_inputs([str(root)]) == [(vid, None), (frames, None)]   # natural path order
    out = str(tmp_path / 'r.csv')
    assert _run(['--checkpoint', ck, str(root), '--output', out]) == 0
    rows = _read_csv(out)
    names = get_dataset_info('chalearn-fi').label_names
    assert [c for c in rows[0] if c.startswith('pred_')] == [f'pred_{n}' for n in names]
    assert 'pred_label' not in rows[0]
    for r in rows:
        vals = np.array([float(r[f'pred_{n}']) for n in names])
        assert r['status'] == 'ok' and ((vals > 0) & (vals < 1)).all()   # sigmoid applied
    assert {r['path']: r['num_windows'] for r in rows} == {frames: '1', vid: '2'}
    lm = load_model(argparse.Namespace(checkpoint=env['authors'], data_set='dfew'), 'classifier', verbose=False)
    assert lm.model_name == 'svfap_tiny_patch16_160' and lm.notes and lm.label_names[0] == 'happy'


@pytest.mark.parametrize('max_frames', [NF, 20, 512])
def test_read_windows_frames(env, max_frames):
    """Windows read in groups get exactly their own frames (pattern frames encode their index)."""
    from datasets.sampling import clip_indices
    from tests.helpers import pattern_index
    from tools.inputs import read_windows, window_starts
    starts = window_starts(100, NF, RATE, 16)
    got = dict(read_windows(env['long'], 'decord', starts, NF, RATE, 100, max_frames=max_frames))
    assert sorted(got) == list(range(len(starts)))
    for w, s in enumerate(starts):
        idx = clip_indices(s, NF, RATE, 100)
        np.testing.assert_array_equal(pattern_index(got[w]), ((6 * idx + 3) % 246) // 6)  # red level wraps at 41

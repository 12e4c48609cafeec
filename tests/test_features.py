"""tools.extract_features: shapes, determinism, video = mean of its clips, bad inputs, npy output."""
import os

import numpy as np
import pytest

from tests.helpers import pattern_frames, tiny_checkpoints, write_mp4



@pytest.fixture(scope='module')
def env(tmp_path_factory):
    d = str(tmp_path_factory.mktemp('features'))
    e = tiny_checkpoints(d)
    vids = os.path.join(d, 'videos', 'sub')
    os.makedirs(vids)
    e['videos'] = [write_mp4(os.path.join(vids, f'v{i}.mp4'), pattern_frames(n, 40, 56, seed=i))
                   for i, n in enumerate((12, 30, 50))]
    e['broken'] = os.path.join(vids, 'broken.mp4')
    open(e['broken'], 'w').write('not a video')
    e['split'] = os.path.join(d, 'split.csv')
    with open(e['split'], 'w') as f:
        for p, lab in zip(e['videos'] + [e['broken']], (3, 0, 6, 1)):
            f.write(f'{p} {lab}\n')
    e['dir'] = d
    return e


def _run(argv):
    from tools.extract_features import main
    return main(argv + ['--no_progress', '--num_workers', '0'])


def test_features_npz(env, tmp_path, capsys):
    out1, out2 = str(tmp_path / 'a.npz'), str(tmp_path / 'b.npz')
    args = ['--checkpoint', env['ft'], '--split_file', env['split'], '--num_clips', '3', '--batch_size', '4']
    assert _run(args + ['--output', out1]) == 0
    err = capsys.readouterr().err
    assert sum(ln.startswith(env['broken'] + ':') for ln in err.splitlines()) == 1
    assert _run(args + ['--output', out2, '--batch_size', '4']) == 0
    a, b = np.load(out1), np.load(out2)
    assert list(a['paths']) == env['videos']            # broken one left out, order kept
    assert list(a['skipped_paths']) == [env['broken']]
    assert a['clip_features'].shape == (9, 96) and a['clip_features'].dtype == np.float32
    assert a['video_features'].shape == (3, 96)
    assert a['clip_video_index'].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert a['clip_segment'].tolist() == [0, 1, 2] * 3
    assert a['labels'].tolist() == [3, 0, 6]
    assert str(a['feature_type']) == 'fc_norm'
    for v in range(3):
        clips = a['clip_features'][a['clip_video_index'] == v]
        assert np.allclose(a['video_features'][v], clips.mean(0), atol=1e-6)
    np.testing.assert_array_equal(a['clip_features'], b['clip_features'])  # deterministic
    # a short video (12 frames < one clip span) gives identical (clamped, all start at 0) clips
    short = a['clip_features'][a['clip_video_index'] == 0]
    np.testing.assert_allclose(short[0], short[1], atol=1e-6)
    # the features are the model's forward_features of the test clip
    import torch
    from datasets.transforms import EvalTransform
    from datasets.video_reader import read_frames
    from tools.loading import load_model
    import argparse
    lm = load_model(argparse.Namespace(checkpoint=env['ft']), 'features', verbose=False)
    frames = read_frames(env['videos'][2], np.arange(0, 15, 2))
    with torch.no_grad():
        f0 = lm.model.forward_features(EvalTransform(32)(frames).unsqueeze(0))[0].numpy()
    np.testing.assert_allclose(a['clip_features'][6], f0, atol=1e-5)


def test_features_pretrain_npy_dir(env, tmp_path, capsys):
    out = str(tmp_path / 'npy')
    assert _run(['--checkpoint', env['pt'], os.path.join(env['dir'], 'videos'), '--output_dir', out,
                 '--num_clips', '2']) == 0
    assert 'without fc_norm' in capsys.readouterr().err
    lines = open(os.path.join(out, 'index.csv')).read().splitlines()
    assert len(lines) == 1 + 3
    for i in range(3):
        arr = np.load(os.path.join(out, 'sub', f'v{i}.mp4.npy'))
        assert arr.shape == (2, 96) and np.isfinite(arr).all()


def test_features_same_stem_and_stray_image(env, tmp_path, capsys):
    """a.avi and a.mp4 are two videos with two .npy files; a folder of videos with one thumbnail is
    a folder of videos, not a one-frame clip; a colour video opening on a black frame is no
    grayscale video."""
    from datasets.video_writer import write_video
    import cv2
    d = tmp_path / 'mixed'
    frames = pattern_frames(24, 40, 56)
    frames[0] = 0  # fade-in from black
    write_mp4(str(d / 'a.mp4'), frames)
    write_video(str(d / 'a.avi'), frames, codec='mpeg4')
    cv2.imwrite(str(d / 'thumb.jpg'), frames[5])
    out = str(tmp_path / 'npy')
    assert _run(['--checkpoint', env['ft'], str(d), '--output_dir', out, '--num_clips', '1']) == 0
    err = capsys.readouterr().err
    assert f'{d}: holds 2 video(s) and 1 image(s): read as a folder of videos' in err
    assert 'grayscale' not in err
    a, b = np.load(os.path.join(out, 'a.avi.npy')), np.load(os.path.join(out, 'a.mp4.npy'))
    assert a.shape == b.shape == (1, 96) and not np.array_equal(a, b)  # mp4v vs mpeg4 coding
    assert len(open(os.path.join(out, 'index.csv')).read().splitlines()) == 1 + 2


def test_features_nothing_usable(env, tmp_path):
    assert _run(['--checkpoint', env['ft'], env['broken'], '--output', str(tmp_path / 'x.npz')]) == 1

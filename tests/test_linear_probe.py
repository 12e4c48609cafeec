"""tools.linear_probe on real mp4 files: the pixel baseline sees appearance, the frame-difference
baseline sees only motion, and the encoder probes read a real pre-training checkpoint."""
import json

import numpy as np
import timm
import torch

import models  # noqa: F401
from tests.helpers import write_mp4
from tools import linear_probe

K = 3


def _split(tmp_path, name, n_per_class, moving_class=None, seed=0):
    """Static clips whose colour gives the class (and, for ``moving_class``, a moving bar)."""
    rng = np.random.default_rng(seed)
    lines = []
    for c in range(K):
        for i in range(n_per_class):
            frames = np.empty((20, 32, 32, 3), np.uint8)
            colour = np.array([60 + 70 * c, 120, 200 - 70 * c]) + rng.integers(-10, 10, 3)
            frames[:] = colour.astype(np.uint8)
            path = tmp_path / f'{name}_{c}_{i}.mp4'
            write_mp4(str(path), frames)
            lines.append(f'{path} {c}\n')
    (tmp_path / f'{name}.csv').write_text(''.join(lines))


def test_baselines_and_encoder_probe(tmp_path, capsys):
    _split(tmp_path, 'train', 6, seed=0)
    _split(tmp_path, 'test', 3, seed=1)
    ckpt = tmp_path / 'pretrain.pth'
    torch.manual_seed(1)
    model = timm.create_model('pretrain_svfap_tiny_patch16_160', img_size=32, all_frames=8)
    torch.save({'model': model.state_dict(), 'epoch': 0}, ckpt)
    out = tmp_path / 'probe.json'
    results = linear_probe.main(['--data_path', str(tmp_path), '--checkpoint', str(ckpt),
                                 '--num_classes', str(K), '--num_frames', '8',
                                 '--sampling_rate', '2', '--input_size', '32',
                                 '--pixel_size', '16', '--output', str(out)])
    assert results['pixels']['uar'] == 100.0               # colour is the class
    assert results['frame_diff']['uar'] <= 100.0 / K + 1e-6  # static clips: no motion to use
    assert results['pixels']['dim'] == 8 * 16 * 16 * 3
    assert results['frame_diff']['dim'] == 7 * 16 * 16 * 3
    for name in ('encoder', 'random_encoder'):
        assert results[name]['dim'] == 3 * 96             # three stages, mean-pooled
        assert 0.0 <= results[name]['uar'] <= 100.0
    saved = json.loads(out.read_text())
    assert saved['train'] == 6 * K and saved['test'] == 3 * K
    printed = capsys.readouterr().out
    assert 'pixels          UAR 100.00' in printed


def test_nested_subsets_are_balanced_and_grow_by_inclusion():
    labels = np.repeat(np.arange(4), [10, 10, 10, 6])
    subsets = linear_probe.nested_subsets(labels, [4, 8, 20, 36], seed=3)
    for small, big in ((4, 8), (8, 20), (20, 36)):
        assert set(subsets[small]) < set(subsets[big])
    for n in (4, 8, 20):
        counts = np.bincount(labels[subsets[n]], minlength=4)
        assert counts.max() - counts.min() <= 1 and counts.sum() == n
    assert len(np.unique(subsets[36])) == 36
    try:
        linear_probe.nested_subsets(labels, [37])
    except SystemExit as e:
        assert '37' in str(e) and '36 videos' in str(e)
    else:
        raise AssertionError('a size above the split must stop with a message')


def test_learning_curve_fits_each_size_on_the_same_test_split(tmp_path, capsys):
    _split(tmp_path, 'train', 6, seed=0)
    _split(tmp_path, 'test', 3, seed=1)
    results = linear_probe.main(['--data_path', str(tmp_path), '--num_classes', str(K),
                                 '--num_frames', '8', '--sampling_rate', '2',
                                 '--input_size', '32', '--pixel_size', '16',
                                 '--train_sizes', '6', '18'])
    assert set(results) == {'pixels@6', 'pixels@18', 'frame_diff@6', 'frame_diff@18'}
    assert results['pixels@18']['uar'] == 100.0
    assert [results[f'pixels@{n}']['train'] for n in (6, 18)] == [6, 18]
    printed = capsys.readouterr().out
    assert 'pixels n=6' in printed and 'frame_diff n=18' in printed

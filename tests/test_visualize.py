"""tools.visualize_reconstruction and tools.visualize_bottleneck on a tiny model."""
import os

import cv2
import numpy as np
import pytest

from tests.helpers import pattern_frames, tiny_checkpoints, write_mp4
from test_predict import NF, SIZE


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    d = str(tmp_path_factory.mktemp('visualize'))
    e = tiny_checkpoints(d)
    e['video'] = write_mp4(os.path.join(d, 'v.mp4'), pattern_frames(40, 48, 64))
    return e


def _png(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    assert img is not None, path
    return img[:, :, ::-1]


def test_reconstruction_grid(env, tmp_path):
    from tools.visualize_reconstruction import get_parser, run
    out, mp4 = str(tmp_path / 'rec.png'), str(tmp_path / 'rec.mp4')
    args = get_parser().parse_args(['--checkpoint', env['pt'], '--video', env['video'], '--output', out,
                                    '--mp4', mp4, '--mask_ratio', '0.5', '--seed', '3', '--scale', '3'])
    res = run(args)
    img, lay = _png(out), res['layout']
    assert img.shape == lay.shape and (lay.rows, lay.cols) == (3, NF)
    assert (lay.cell_h, lay.cell_w) == (3 * SIZE, 3 * SIZE)
    mask = res['mask'].reshape(NF // 2, SIZE // 16, SIZE // 16)
    assert mask.sum() == (NF // 2) * 2 and (mask == mask[:1]).all()   # tube mask: 2 of 4 positions per slice

    def cell(r, c):
        return img[lay.top(r):lay.top(r) + lay.cell_h:3, lay.left(c):lay.left(c) + lay.cell_w:3].astype(int)

    for c in range(NF):
        orig, masked, rec = cell(0, c), cell(1, c), cell(2, c)
        for i in range(SIZE // 16):
            for j in range(SIZE // 16):
                sl = (slice(16 * i, 16 * i + 16), slice(16 * j, 16 * j + 16))
                if mask[c // 2, i, j]:
                    assert (masked[sl] == 128).all()           # masked patch blanked grey, exactly
                else:
                    np.testing.assert_array_equal(masked[sl], orig[sl])   # visible patch untouched
                    np.testing.assert_array_equal(rec[sl], orig[sl])      # ... and kept in the reconstruction
    # predicted patches use the original patch's mean (per channel, per tube): equal means up to clamping
    m = res['mask'].reshape(NF // 2, 2, 2)
    t, i, j = np.argwhere(m)[0]
    o = res['original'][2 * t:2 * t + 2, 16 * i:16 * i + 16, 16 * j:16 * j + 16]
    r = res['reconstruction'][2 * t:2 * t + 2, 16 * i:16 * i + 16, 16 * j:16 * j + 16]
    assert np.abs(o.mean((0, 1, 2)) - r.mean((0, 1, 2))).max() < 0.05
    cap = cv2.VideoCapture(mp4)
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == NF


def test_reconstruction_needs_pretrain_checkpoint(env, tmp_path, capsys):
    from tools.visualize_reconstruction import main
    assert main(['--checkpoint', env['ft'], '--video', env['video'], '--output', str(tmp_path / 'x.png')]) == 2
    assert 'decoder' in capsys.readouterr().err
    assert main(['--checkpoint', env['pt'], '--video', str(tmp_path / 'nope.mp4'),
                 '--output', str(tmp_path / 'x.png')]) == 1


@pytest.mark.parametrize('which', ['ft', 'pt'])
def test_bottleneck_overlay(env, tmp_path, which):
    from tools.visualize_bottleneck import get_parser, run
    out = str(tmp_path / 'att.png')
    res = run(get_parser().parse_args(['--checkpoint', env[which], '--video', env['video'], '--output', out]))
    K = 4                                     # tiny config: 4 bottleneck tokens, stages (2, 2, 2)
    expected = {2: NF // 4, 3: NF // 8}      # slices per later stage (tubelet 2, then /2 per stage)
    assert sorted(res['written']) == [2, 3]
    maps = np.load(str(tmp_path / 'att_maps.npz'))
    for s, Ts in expected.items():
        w = res['written'][s]
        assert w['path'] == str(tmp_path / f'att_stage{s}.png')
        img, lay = _png(w['path']), w['layout']
        assert (lay.rows, lay.cols) == (K, Ts) and img.shape == lay.shape
        a = maps[f'stage{s}']
        assert a.shape == (Ts, SIZE // 16, SIZE // 16, K)
        np.testing.assert_allclose(a.sum(axis=(1, 2)), 1.0, atol=1e-5)   # softmax per slice and token
        assert (a >= 0).all()


def test_bottleneck_single_stage(env, tmp_path):
    from tools.visualize_bottleneck import main
    out = str(tmp_path / 'one.png')
    assert main(['--checkpoint', env['ft'], '--video', env['video'], '--output', out, '--stage', '3']) == 0
    assert os.path.isfile(out) and not os.path.exists(str(tmp_path / 'one_stage2.png'))


def test_bottleneck_colours_share_one_scale():
    """A near-uniform map is drawn near the middle of the shared scale, not saturated red as when
    each map was scaled to its own maximum."""
    from tools.visualize_bottleneck import overlay
    frame = np.zeros((32, 32, 3), np.float32)
    flat = np.full((4, 4), 1 / 16, np.float32)
    flat[0, 0] *= 1.02
    peaked = np.full((4, 4), 0.02, np.float32)
    peaked[2, 2] = 0.7
    lo, hi = min(flat.min(), peaked.min()), max(flat.max(), peaked.max())
    shared = overlay(frame, flat, alpha=1.0, lo=lo, hi=hi)
    own = overlay(frame, flat, alpha=1.0)
    # jet: red (R high, B low) at the top of the scale, blue at the bottom
    assert own[0, 0, 0] > 80 and own[0, 0, 2] < 40             # its own max: red
    assert shared[0, 0, 0] < 40 and shared[0, 0, 2] > 80       # on the shared scale: blue
    assert overlay(frame, peaked, 1.0, lo, hi)[17, 17, 0] > 80


def test_short_video_repeats_are_reported(env, tmp_path, capsys):
    from tools.visualize_bottleneck import main
    short = write_mp4(str(tmp_path / 'short.mp4'), pattern_frames(9, 48, 64))
    assert main(['--checkpoint', env['ft'], '--video', short, '--output', str(tmp_path / 's.png'),
                 '--stage', '2']) == 0
    err = capsys.readouterr().err
    assert f'{short}: short video: 9 frames, a clip spans' in err and 'all show frame 8' in err
    caption_png = _png(str(tmp_path / 's.png'))
    assert caption_png.size > 0

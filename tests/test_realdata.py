"""Real footage from ../shared/realdata (provenance and licences in its README; read from there,
never copied): the reader's displayed frames, CREMA-D's official files through face cropping and
the split script, the face track on a single face, on a cut from a face to a cartoon, on a clip
without a face and on a three-person composite, and predict's timeline, video and plot. Skipped
when the folder is absent."""
import json
import os

import cv2
import numpy as np
import pytest

from tests.helpers import repo_root, tiny_checkpoints

REAL = os.path.normpath(os.path.join(repo_root(), '..', 'shared', 'realdata'))
pytestmark = pytest.mark.skipif(not os.path.isdir(REAL), reason=f'no real clips in {REAL}')

SINGLE = os.path.join(REAL, 'pyfeat_single_face.mp4')
FACE_THEN_CARTOON = os.path.join(REAL, 'pyfeat_face_noface.mov')
NO_FACE_EDIT_LIST = os.path.join(REAL, 'pyfeat_no_face.mp4')
CREMA_D = [os.path.join(REAL, 'cremad', f'1001_DFA_{e}_XX.flv') for e in ('ANG', 'DIS', 'FEA', 'HAP', 'NEU', 'SAD')]


def sequential_decode(path):
    """The definition of a video's frames: FFmpeg's full sequential decode (PyAV), RGB."""
    import av
    with av.open(path) as c:
        return np.stack([f.to_ndarray(format='rgb24') for f in c.decode(c.streams.video[0])])


@pytest.fixture(scope='module')
def mtcnn():
    pytest.importorskip('facenet_pytorch')
    from preprocess.face_track import make_detector
    return make_detector('mtcnn')


def test_the_reader_returns_the_displayed_frames():
    """Every real clip: num_frames, probe_video and random access equal a full FFmpeg decode - the
    95 displayed frames of an MP4 whose edit list hides 3 of 98 coded ones, FLV/VP6 with the video
    as stream 2, variable-frame-rate HEVC in MOV."""
    import av
    from datasets.video_reader import iter_frames, open_video, probe_video
    for path in [SINGLE, FACE_THEN_CARTOON, NO_FACE_EDIT_LIST] + CREMA_D:
        ref = sequential_decode(path)
        v = open_video(path)
        try:
            n = v.num_frames
            pick = sorted({0, 1, n // 3, n // 2, n - 2, n - 1})
            got = v.get(pick[::-1])[::-1]
        finally:
            v.close()
        assert n == len(ref) == probe_video(path), path
        assert np.array_equal(got, ref[pick]), path
        assert sum(1 for _ in iter_frames(path)) == n
    with av.open(NO_FACE_EDIT_LIST) as c:
        assert c.streams.video[0].frames == 98 and len(sequential_decode(NO_FACE_EDIT_LIST)) == 95
    with av.open(CREMA_D[0]) as c:
        assert c.streams.video[0].index == 2


def test_crema_d_official_files_face_crop_then_splits(tmp_path, mtcnn):
    """The six official files of actor 1001, under their release names: face_crop writes one frame
    folder per clip with a face on every frame, and preprocess.crema_d turns the names into labels
    and folds, pointing at the frame folders."""
    from datasets.split_file import read_split_file
    from datasets.video_reader import open_video
    from preprocess import crema_d, face_crop
    flash = tmp_path / 'CREMA-D' / 'VideoFlash'
    flash.mkdir(parents=True)
    for path in CREMA_D:
        os.symlink(path, flash / os.path.basename(path))
    res = face_crop.main(['--input', str(flash), '--output', str(tmp_path / 'faces'), '--size', '112',
                          '--detector', 'mtcnn'])
    assert [r['status'] for r in res] == ['face'] * 6
    assert all(r['num_frames'] == r['source_frames'] for r in res)       # a face on every frame
    crema_d.main(['--root', str(tmp_path / 'CREMA-D'), '--out', str(tmp_path / 'splits'),
                  '--frames_root', str(tmp_path / 'faces')])
    rows = read_split_file(str(tmp_path / 'splits' / 'split01' / 'test.csv'), task='classification')
    assert [(os.path.basename(r.path), r.label) for r in rows] == \
        [(os.path.basename(p)[:-4], k) for k, p in enumerate(CREMA_D)]   # ANG..SAD -> 0..5, actor 1001 in fold 1
    for r, src in zip(rows, CREMA_D):
        v = open_video(r.path)
        assert v.num_frames == len(sequential_decode(src)) and v.get([0]).shape == (1, 112, 112, 3)


def test_face_track_on_real_clips(tmp_path, mtcnn):
    from preprocess.face_crop import NoFaceError, crop_face_video
    # one face: on every frame, and the crops hold a face at their centre
    info = crop_face_video(SINGLE, str(tmp_path / 'single'), size=160, detector=mtcnn)
    assert info['face_fraction'] >= 0.95 and info['people'] == 1 and info['num_frames'] == 72
    for name in ('00001.jpg', '00036.jpg', '00072.jpg'):
        crop = cv2.cvtColor(cv2.imread(str(tmp_path / 'single' / name)), cv2.COLOR_BGR2RGB)
        (x, y, w, h, _), = [d for d in mtcnn(crop) if d[2] > 60]
        assert abs(x + w / 2 - 80) < 20 and abs(y + h / 2 - 80) < 25 and 70 < max(w, h) < 130
    # a face, then a black frame and a cartoon: the face span ends where the black frame starts
    frames = sequential_decode(FACE_THEN_CARTOON)
    black = next(i for i, f in enumerate(frames) if f.mean() < 10)
    info = crop_face_video(FACE_THEN_CARTOON, str(tmp_path / 'cut'), size=64, detector=mtcnn)
    assert info['spans'][0] == [0, black, True] and not any(s[2] for s in info['spans'][1:])
    assert info['num_frames'] == black == len(os.listdir(tmp_path / 'cut'))
    assert json.load(open(info['sidecar']))['faces'][black] is None
    # no face at all (and an edit list): refused, or centre-cropped on request, 95 frames
    with pytest.raises(NoFaceError):
        crop_face_video(NO_FACE_EDIT_LIST, str(tmp_path / 'none'), detector=mtcnn)
    info = crop_face_video(NO_FACE_EDIT_LIST, str(tmp_path / 'none'), size=32, detector=mtcnn, fallback='center')
    assert info['status'] == 'center_fallback' and len(os.listdir(tmp_path / 'none')) == 95


def test_one_of_three_real_people_is_followed(tmp_path, mtcnn):
    """A composite of the single-face clip: a large copy in the middle, two small ones (one a second
    later in time) at the sides. The large central face is followed on every frame."""
    from datasets.video_writer import write_video
    from preprocess.face_track import TrackSettings, track_faces
    frames = sequential_decode(SINGLE)
    n = len(frames)
    canvas = np.full((n, 400, 1280, 3), 30, np.uint8)
    for i in range(n):
        canvas[i, 56:344, 384:896] = cv2.resize(frames[i], (512, 288), interpolation=cv2.INTER_AREA)
        canvas[i, 150:330, 20:340] = cv2.resize(frames[(i + 30) % n], (320, 180), interpolation=cv2.INTER_AREA)
        canvas[i, 150:330, 940:1260] = cv2.resize(frames[(i + 50) % n], (320, 180), interpolation=cv2.INTER_AREA)
    src = write_video(str(tmp_path / 'three.mp4'), canvas, fps=30)
    track, _ = track_faces(src, mtcnn, TrackSettings())
    assert track.people >= 3 and track.choice.startswith(f'{track.people} people seen')
    assert track.face_fraction >= 0.95
    assert all(f is None or 384 < f[0] < 896 for f in track.faces)


def test_predict_timeline_render_and_plot(tmp_path, mtcnn):
    """predict --face_crop on the face-then-cartoon clip: the timeline's windows have start and end
    times, the windows after the cut have no face and no probabilities, the video's probabilities
    are the mean over the windows with a face; --render writes every frame with the box and the
    bars, --plot a picture."""
    from tools.predict import main
    ck = tiny_checkpoints(str(tmp_path), 8, 4, 32)
    out = tmp_path / 'p.json'
    assert main(['--checkpoint', ck['ft'], FACE_THEN_CARTOON, '--face_crop', '--window_stride', '16',
                 '--output', str(out), '--render', str(tmp_path / 'r.mp4'), '--plot', str(tmp_path / 'p.png')]) == 0
    video, = json.load(open(out))['videos']
    wins = video['windows']
    from datasets.video_reader import frame_times
    times = frame_times(FACE_THEN_CARTOON)      # variable frame rate (30 and 24 fps): the stream's times
    assert len(times) == 169 and np.ptp(np.diff(times)) > 0.005
    assert all(w['start_s'] == pytest.approx(times[w['start_frame']]) for w in wins)
    assert all(w['end_s'] == pytest.approx(times[w['end_frame'] + 1]) for w in wins[:-1])
    black = next(i for i, f in enumerate(sequential_decode(FACE_THEN_CARTOON)) if f.mean() < 10)
    for w in wins:   # 8 frames at stride 4: a face when at least half of them come before the cut
        sampled = [min(w['start_frame'] + 4 * k, 168) for k in range(8)]
        assert w['face'] == (sum(i < black for i in sampled) >= 4)
        assert (w['probabilities'] is None) == (not w['face'])
    with_face = [w for w in wins if w['face']]
    assert video['num_face_windows'] == len(with_face) >= 3
    for w in with_face:
        assert abs(sum(w['probabilities'].values()) - 1) < 1e-4
    mean = {k: np.mean([w['probabilities'][k] for w in with_face]) for k in with_face[0]['probabilities']}
    assert all(abs(video['probabilities'][k] - v) < 1e-6 for k, v in mean.items())
    from datasets.video_reader import open_video
    r = open_video(str(tmp_path / 'r.mp4'))
    assert r.num_frames == 169
    first, last = r.get([10, 160])
    assert first.shape[0] == 396 and first.shape[1] == 640 + 300             # 360 px video + panel, 36 px strip
    green = (first[:360, :640, 1] > 180) & (first[:360, :640, 0] < 120) & (first[:360, :640, 2] < 120)
    assert green.sum() > 500                                                  # the face box
    assert not ((last[:360, :640, 1] > 180) & (last[:360, :640, 0] < 120) & (last[:360, :640, 2] < 120)).sum() > 500
    plot = cv2.imread(str(tmp_path / 'p.png'))
    assert plot is not None and plot.shape[1] > 1000 and plot.shape[0] > 400


def test_extract_features_follows_the_face(tmp_path, mtcnn, capsys):
    """extract_features --face_crop: the face video's features come from its face crops (not the
    full frames), the video without a face is reported and left out, or centre-cropped on request."""
    from tools.extract_features import main
    ck = tiny_checkpoints(str(tmp_path), 8, 4, 32)
    base = ['--checkpoint', ck['ft'], SINGLE, NO_FACE_EDIT_LIST, '--no_progress', '--num_workers', '0']
    assert main(base + ['--face_crop', '--output', str(tmp_path / 'f.npz')]) == 0
    assert f'{NO_FACE_EDIT_LIST}: no face found' in capsys.readouterr().err
    faces = np.load(tmp_path / 'f.npz')
    assert list(faces['paths']) == [SINGLE] and list(faces['skipped_paths']) == [NO_FACE_EDIT_LIST]
    assert main(base + ['--output', str(tmp_path / 'full.npz')]) == 0
    full = np.load(tmp_path / 'full.npz')
    assert list(full['paths']) == [SINGLE, NO_FACE_EDIT_LIST]
    assert not np.allclose(full['video_features'][0], faces['video_features'][0], atol=1e-3)
    assert main(base + ['--face_crop', '--face_fallback', 'center', '--output', str(tmp_path / 'c.npz')]) == 0
    centre = np.load(tmp_path / 'c.npz')
    assert list(centre['paths']) == [SINGLE, NO_FACE_EDIT_LIST]
    np.testing.assert_allclose(centre['video_features'][0], faces['video_features'][0], atol=1e-5)

"""The inputs of the "use a trained model" commands: finding them (files, frame folders,
directories searched recursively), checking a video before use (one ``path: reason`` line per bad
input), the sliding windows of ``predict`` and the one clip of the visualisations, and the
face-crop step. Frames are read only through ``datasets.video_reader``.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np


from datasets.sampling import clip_indices, clip_span
from datasets.video_reader import (DEFAULT_READER, IMAGE_EXTENSIONS, VideoReadError, natural_key,
                                   open_video, probe_fps, read_frames)
from models.checkpoint import CheckpointError

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.flv', '.mkv', '.mov', '.webm', '.mpg', '.mpeg', '.m4v', '.wmv')


class InputError(RuntimeError):
    """A bad input file: reported as one ``path: reason`` line, the other inputs go on."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f'{path}: {reason}')


def report(path: str, reason: str, stream=None) -> None:
    """The one-line message for an input that was skipped."""
    # written directly (not print): under torchrun, print is silenced on ranks other than 0
    stream = stream or sys.stderr
    stream.write(f'{path}: {reason}\n')
    stream.flush()


def run_single_input(run, args) -> int:
    """Exit code of a one-video tool: 0 done, 1 the input could not be used (one line naming it),
    2 the checkpoint could not be used."""
    try:
        run(args)
    except CheckpointError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except InputError as e:
        report(e.path, e.reason)
        return 1
    return 0


# ----------------------------------------------------------------------------------------------
# inputs

def _listing(folder: str) -> Tuple[int, int]:
    """(number of images, number of video files) directly in ``folder``."""
    try:
        names = [n for n in os.listdir(folder) if not n.startswith('.')]
    except OSError:
        return 0, 0
    return (sum(n.lower().endswith(IMAGE_EXTENSIONS) for n in names),
            sum(n.lower().endswith(VIDEO_EXTENSIONS) for n in names))


def has_frames(folder: str) -> bool:
    """A frame folder holds images and no videos (a folder of videos with a stray thumbnail is a
    folder of videos, not a one-frame clip)."""
    images, videos = _listing(folder)
    return images > 0 and videos == 0


def collect_inputs(paths: Sequence[str]) -> List[Tuple[str, Optional[str]]]:
    """Expand the command-line inputs into clips: ``[(path, error or None)]``.

    A file is a video (any extension when named explicitly). A folder holding images and no videos
    is one frame-folder clip; any other folder is searched recursively for video files (by
    extension) and frame folders. A folder holding both is taken as a folder of videos, and a note
    says so. A missing path, or a folder with neither, is kept with its error.
    """
    out: List[Tuple[str, Optional[str]]] = []
    for p in paths:
        if not os.path.exists(p):
            out.append((p, 'no such file or folder'))
        elif os.path.isfile(p):
            out.append((p, None))
        elif has_frames(p):
            out.append((p, None))
        else:
            images, videos = _listing(p)
            if images and videos:
                report(p, f'holds {videos} video(s) and {images} image(s): read as a folder of videos '
                          f'(a frame folder holds images only); the images are ignored')
            found = []
            for dirpath, dirs, files in os.walk(p):
                dirs.sort(key=natural_key)
                for d in dirs:
                    full = os.path.join(dirpath, d)
                    if has_frames(full):
                        found.append(full)
                found += [os.path.join(dirpath, f) for f in sorted(files, key=natural_key)
                          if f.lower().endswith(VIDEO_EXTENSIONS) and not f.startswith('.')]
            if found:
                out += [(f, None) for f in sorted(found, key=natural_key)]
            else:
                out.append((p, 'empty folder: no video files and no jpg/png frames'))
    return out


@dataclass
class VideoInfo:
    path: str
    num_frames: int
    height: int
    width: int
    fps: Optional[float]
    notes: List[str]
    times: Optional[np.ndarray] = None   # seconds of each frame from the stream's timestamps, or None


class native_stderr_silenced:
    """Send file descriptor 2 to /dev/null for a while: FFmpeg / decord print their own errors
    ("moov atom not found") straight to it; we report bad inputs ourselves, in one line."""

    def __enter__(self):
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        return False


def inspect_video(path: str, reader: str = DEFAULT_READER, input_size: int = 160) -> VideoInfo:
    """Open a clip and decode its first and last frame. Raises :class:`InputError` (with the reason)
    when it cannot be used; notes (not errors) for grayscale and for frames smaller than the model
    input (they are upscaled)."""
    try:
        with native_stderr_silenced():
            v = open_video(path, reader)
            try:
                n = int(v.num_frames)
                if n <= 0:
                    raise InputError(path, 'zero frames')
                frames = v.get(sorted({0, n // 4, n // 2, (3 * n) // 4, n - 1}))
                grey = getattr(v, 'is_grayscale', None)
                times = getattr(v, 'frame_times', None)
            finally:
                v.close()
    except VideoReadError as e:
        reason = e.reason
        if 'no such file' in reason:
            reason = 'no such file or folder'
        elif 'truncated' in reason:
            reason = f'damaged video: {reason}'
        elif 'no video frames' in reason or 'decodes no frames' in reason or '0 frames' in reason:
            reason = f'not a readable video (zero frames): {reason}'
        elif 'cannot open' in reason or 'no video stream' in reason:
            reason = f'not a readable video (not a video file): {reason}'
        raise InputError(path, reason) from e
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - anything else a decoder throws is a bad input
        raise InputError(path, f'cannot read it: {type(e).__name__}: {e}') from e
    _, h, w, _ = frames.shape
    notes = []
    # a grey pixel format, or grey content in every sampled frame (not just a black first frame)
    grey = grey or all(_is_grey(f) for f in frames)
    if grey:
        notes.append('grayscale: the channel is repeated 3 times')
    if min(h, w) < input_size:
        notes.append(f'small frames {w}x{h} upscaled to short side {input_size}: predictions on so little '
                     f'detail are unreliable')
    return VideoInfo(path, n, h, w, probe_fps(path), notes, times)


def _is_grey(frame: np.ndarray) -> bool:
    f = frame.astype(np.int16)
    return bool(np.abs(f[..., 0] - f[..., 1]).max() <= 2 and np.abs(f[..., 1] - f[..., 2]).max() <= 2)


# ----------------------------------------------------------------------------------------------
# windows over a video (predict)

def window_starts(video_len: int, num_frames: int, sampling_rate: int, stride: int) -> List[int]:
    """First frames of the sliding windows of ``predict``.

    A window is one clip: ``num_frames`` frames at exactly ``sampling_rate`` apart, spanning
    ``(num_frames - 1) * sampling_rate + 1`` frames. Starts are ``0, stride, 2 * stride, ...`` while the
    clip fits; if the last one does not reach the end, one more window ending at the last frame is
    added (so the tail is covered). A video shorter than one span gets one window at 0 whose
    indices past the end repeat the last frame (the dataset's clamping).
    """
    if video_len < 1:
        raise ValueError('video has no frames')
    if stride < 1:
        raise ValueError('window stride must be >= 1')
    span = clip_span(num_frames, sampling_rate)
    last = video_len - span
    if last <= 0:
        return [0]
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


def num_windows(video_len: int, num_frames: int, sampling_rate: int, stride: int) -> int:
    """``len(window_starts(...))`` in closed form: 1 for short videos, else ceil((L - span) / stride) + 1."""
    span = clip_span(num_frames, sampling_rate)
    if video_len <= span:
        return 1
    return -(-(video_len - span) // stride) + 1


def read_windows(path: str, reader: str, starts: Sequence[int], num_frames: int, sampling_rate: int,
                 video_len: int, max_frames: int = 512):
    """Yield ``(window_index, frames uint8 (T, H, W, 3))`` for every start, reading several windows'
    frames in one decoder call (at most ``max_frames`` distinct frames at a time)."""
    v = open_video(path, reader)
    try:
        group: List[int] = []
        wanted: set = set()

        def flush():
            idx = sorted(wanted)
            frames = v.get(idx)
            pos = {f: i for i, f in enumerate(idx)}
            for w in group:
                ci = clip_indices(starts[w], num_frames, sampling_rate, video_len)
                yield w, frames[[pos[int(i)] for i in ci]]

        for w in range(len(starts)):
            ci = set(int(i) for i in clip_indices(starts[w], num_frames, sampling_rate, video_len))
            if group and len(wanted | ci) > max_frames:
                yield from flush()
                group, wanted = [], set()
            group.append(w)
            wanted |= ci
        if group:
            yield from flush()
    finally:
        v.close()


def centre_clip_indices(video_len: int, num_frames: int, sampling_rate: int, start: Optional[int] = None):
    """One clip: centred in the video (or from ``start``), exact stride, clamped when short."""
    span = clip_span(num_frames, sampling_rate)
    if start is None:
        start = max(video_len - span, 0) // 2
    return clip_indices(int(start), num_frames, sampling_rate, video_len)


# ----------------------------------------------------------------------------------------------
# faces (predict --face_crop)

def add_face_args(g) -> None:
    """The face flags of the commands that run a model on raw videos (predict, extract_features)."""
    g.add_argument('--face_crop', action='store_true',
                   help='follow one face through each video (preprocess.face_track) and crop to it; '
                        'frames without the face are not used')
    g.add_argument('--face_fallback', choices=['none', 'center'], default='none',
                   help='a video without any face: skip it (none) or use centred square crops (center)')
    g.add_argument('--face_min_size', type=float, default=0.1, help='smallest face, x shorter frame side')
    g.add_argument('--face_margin', type=float, default=0.25, help='added to the face on each side, x its size')
    g.add_argument('--face_detector', choices=['auto', 'mtcnn', 'haar'], default='auto',
                   help='face detector (auto: MTCNN when facenet-pytorch is installed, else OpenCV Haar)')


class FaceWindows:
    """``predict --face_crop``: each input's face track (``preprocess.face_track``) and its windows
    cropped to the followed face. A window has a face when at least ``min_fraction`` of its frames
    do; its frames without the face take the box of the nearest frame with it. A video
    without any face raises :class:`InputError`, or with ``fallback='center'`` every window is
    cropped to the centred square (and says it has no face)."""

    def __init__(self, size: int, fallback: Optional[str] = None, min_face: float = 0.1,
                 detector: str = 'auto', margin: float = 0.25, min_fraction: float = 0.5):
        from preprocess.face_track import TrackSettings
        self.size, self.fallback, self.detector = size, fallback, detector
        self.margin, self.min_fraction = margin, min_fraction
        self.settings = TrackSettings(min_face=min_face)

    def track(self, path: str):
        from preprocess.face_track import DetectorUnavailable, track_for
        try:
            track, _, _ = track_for(path, None, self.detector, self.settings)
        except DetectorUnavailable as e:
            raise InputError(path, str(e)) from e
        except VideoReadError as e:
            raise InputError(path, e.reason) from e
        if not track.num_detected and self.fallback is None:
            raise InputError(path, 'no face found (use --face_fallback center to use a centre crop instead)')
        return track

    def boxes(self, track, indices: Sequence[int]) -> Tuple[bool, list]:
        """``(face present, one crop box per index)`` of one window."""
        from preprocess.face_track import center_box
        if not track.num_detected:
            return False, [center_box(*track.frame_size)] * len(indices)
        idx = [min(int(i), track.num_frames - 1) for i in indices]
        if sum(track.faces[i] is not None for i in idx) < self.min_fraction * len(idx):
            return False, []
        return True, [track.crop_box(track.nearest_face(i), self.margin) for i in idx]

    def crop(self, frames: np.ndarray, boxes: list) -> np.ndarray:
        from preprocess.face_track import crop_resize
        return np.stack([crop_resize(f, b, self.size) for f, b in zip(frames, boxes)])


# ----------------------------------------------------------------------------------------------
# the one clip of the visualisations

def load_input_clip(lm: 'LoadedModel', path: str, reader: str, start: Optional[int] = None):
    """One centred (or ``start``) test clip of ``path`` for the visualisations (``lm``: a
    ``tools.loading.LoadedModel``):
    ``(clip (1, 3, T, S, S) normalised, frame indices, VideoInfo)``. Raises InputError."""
    info = inspect_video(path, reader, lm.input_size)
    for n in info.notes:
        report(path, n)
    idx = centre_clip_indices(info.num_frames, lm.num_frames, lm.sampling_rate, start)
    repeated = len(idx) - len(set(int(i) for i in idx))
    if repeated:
        span = clip_span(lm.num_frames, lm.sampling_rate)
        report(path, f'short video: {info.num_frames} frames, a clip spans {span}: the last '
                     f'{repeated + 1} columns all show frame {int(idx[-1])} (the dataset repeats the '
                     f'last frame)')
    try:
        frames = read_frames(path, idx, reader)
    except VideoReadError as e:
        raise InputError(path, e.reason) from e
    return lm.eval_transform(1)(frames, 0).unsqueeze(0), idx, info


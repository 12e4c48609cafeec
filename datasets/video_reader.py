"""Reading frames from video files and frame folders, frame-exactly.

``open_video(path, reader)`` returns an object with ``num_frames`` and ``get(indices) -> uint8
(len(indices), H, W, 3) RGB``. Frame ``i`` is always the i-th frame of a full sequential FFmpeg
decode, whatever the indices (strided, unsorted, repeated, up to the last frame). Readers:

* :class:`PyAVVideo` - PyAV (``reader='pyav'``, the default): seeks to the keyframe before each
  wanted frame and decodes forward where the container's timestamps can be trusted, and decodes
  sequentially where they cannot (AVI with B-frames). As fast as decord (docs/data.md).
* :class:`DecordVideo` - decord (``reader='decord'``). decord's random access returns wrong frames on
  streams with B-frames other than H.264 in MP4/MOV/MKV (MPEG-4 part 2 in any container, H.264 in
  AVI, measured in docs/data.md); such files are read with PyAV instead, with one warning.
* :class:`OpenCVVideo` - OpenCV (``reader='opencv'``): sequential ``grab``/``retrieve``.
* :class:`FrameFolder` - a folder of ``jpg/jpeg/png/bmp`` images in sorted name order, as the
  published code reads them (``10.jpg`` before ``2.jpg``: one warning per process when the names
  are not zero-padded, so that sorted and natural order differ), decoded with OpenCV whatever
  ``reader`` says (the same pixels as PIL's decoder, measured in docs/data.md).

Damaged files: a packet the decoder rejects is skipped, as FFmpeg's sequential decode skips it, and
``num_frames`` (the number of video packets; never the header's count) drops to what decodes; an
index beyond it raises. Nothing is padded. Grayscale frames (and images with alpha) are returned
with 3 channels. Every failure is a :class:`VideoReadError` carrying ``path`` and ``reason``.
"""
from __future__ import annotations

import bisect
import logging
import os
import re
import threading
from typing import Iterator, List, Optional, Sequence

import numpy as np

try:  # OpenCV is a hard dependency; decord is optional (no wheels on some platforms)
    import cv2
    cv2.setNumThreads(1)
except ImportError:  # pragma: no cover
    cv2 = None

try:
    import decord
    HAS_DECORD = True
except Exception:  # pragma: no cover - decord missing or broken
    decord = None
    HAS_DECORD = False

try:
    import av
    from av.video.reformatter import VideoReformatter
    av.logging.set_level(av.logging.PANIC)  # damaged files are reported by VideoReadError, once
except Exception:  # pragma: no cover - PyAV missing
    av = None

logger = logging.getLogger("svfap.data")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
READERS = ("pyav", "decord", "opencv")
DEFAULT_READER = "pyav" if av is not None else "opencv"


class VideoReadError(RuntimeError):
    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"cannot read video {path}: {reason}")


def probe_fps(path: str) -> Optional[float]:
    """The container's frame rate (OpenCV), or None for a frame folder or an implausible value."""
    if os.path.isdir(path) or cv2 is None:
        return None
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return float(fps) if fps and np.isfinite(fps) and 1 <= fps <= 1000 else None


def natural_key(name: str):
    """Sort key that orders embedded numbers numerically: 'f2.jpg' < 'f10.jpg'."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower())
            for t in re.split(r"(\d+)", name) if t != ""]


def _to_rgb3(img: np.ndarray, bgr: bool) -> np.ndarray:
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    if img.shape[2] == 4:
        img = img[:, :, :3]
    if bgr:  # cvtColor: 70x faster than copying a reversed-channel view
        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


def _read_image(folder: str, file: str) -> np.ndarray:
    """uint8 (H, W, 3) RGB. JPEG is decoded straight to RGB (libjpeg-turbo's pixels, as PIL's);
    other images as stored (16-bit PNG scaled to 8 bits, grey and alpha made RGB). An EXIF
    orientation tag is not applied, as PIL's ``open().convert('RGB')`` (the published loader) does
    not apply it."""
    rgb = getattr(cv2, "IMREAD_COLOR_RGB", None)   # OpenCV >= 4.10
    jpeg_rgb = rgb is not None and file.lower().endswith((".jpg", ".jpeg"))
    img = cv2.imread(file, rgb | cv2.IMREAD_IGNORE_ORIENTATION if jpeg_rgb else cv2.IMREAD_UNCHANGED)
    if img is None:
        raise VideoReadError(folder, f"cannot decode frame {file}")
    if jpeg_rgb:
        return img
    if img.dtype != np.uint8:  # 16-bit png
        img = (img // 257).astype(np.uint8) if img.dtype == np.uint16 else np.clip(img, 0, 255).astype(np.uint8)
    return _to_rgb3(img, bgr=True)


def _check_indices(path: str, indices: Sequence[int], n: int) -> np.ndarray:
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise ValueError("no frame indices requested")
    if idx.min() < 0 or idx.max() >= n:
        raise VideoReadError(path, f"frame index out of range: requested {idx.min()}..{idx.max()}, "
                                   f"video has {n} frames")
    return idx


_warn_unpadded = True  # one warning per process: the first folder whose order is not natural


def _warn_order(path: str, names: List[str]):
    global _warn_unpadded
    _warn_unpadded = False
    natural = sorted(names, key=natural_key)
    k = next(i for i, (a, b) in enumerate(zip(names, natural)) if a != b)
    logger.warning("frame folder %s: file names are not zero-padded, so sorted order ('%s' at "
                   "position %d) is not the frames' natural order ('%s'); frames are read in "
                   "sorted order, as the published code reads them. Zero-pad the names "
                   "(00001.jpg) if this is not what the recording holds. Further folders are not "
                   "reported.", path, names[k], k, natural[k])


class FrameFolder:
    kind = "frames"

    def __init__(self, path: str):
        self.path = path
        try:
            names = [n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS)
                     and not n.startswith(".")]
        except OSError as e:
            raise VideoReadError(path, f"cannot list folder: {e}") from e
        if not names:
            raise VideoReadError(path, "folder holds no jpg/png frames")
        names.sort()  # the published order: sorted file names (code points)
        # names of one length (zero-padded) sort naturally: the natural sort, on every open of a
        # training item, only where lengths differ
        if _warn_unpadded and len({len(n) for n in names}) > 1 \
                and names != sorted(names, key=natural_key):
            _warn_order(path, names)
        self.files: List[str] = [os.path.join(path, n) for n in names]
        self.num_frames = len(self.files)

    def get(self, indices: Sequence[int]) -> np.ndarray:
        idx = _check_indices(self.path, indices, self.num_frames)
        cache = {}
        out = []
        for i in idx.tolist():
            if i not in cache:
                cache[i] = _read_image(self.path, self.files[i])
            out.append(cache[i])
        shapes = {f.shape for f in out}
        if len(shapes) != 1:
            raise VideoReadError(self.path, f"frames have different sizes: {sorted(shapes)}")
        return np.stack(out)

    def close(self):
        pass


def decord_exactness(path: str) -> Optional[str]:
    """None where decord's random access is verified frame-exact for ``path`` (no B-frames, or H.264
    in MP4/MOV/MKV), else why not (e.g. 'mpeg4 with B-frames in avi'). Needs PyAV; reads no frames;
    remembered per path (a training set reopens the same files every epoch)."""
    if av is None:
        return None
    if path not in _exactness:
        _exactness[path] = _probe_decord_exactness(path)
    return _exactness[path]


_exactness: dict = {}


def _probe_decord_exactness(path: str) -> Optional[str]:
    try:
        with av.open(path) as c:
            cc = c.streams.video[0].codec_context
            codec, fmt, b_frames = cc.name, c.format.name, bool(cc.has_b_frames)
    except Exception:
        return None  # unreadable: decord reports it
    if not b_frames or (codec in ("h264", "libx264") and ("mp4" in fmt or "matroska" in fmt)):
        return None
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    return f"{codec} with B-frames in {ext or fmt.split(',')[0]}"


_warned_decord = set()


class DecordVideo:
    kind = "decord"

    def __init__(self, path: str):
        if not HAS_DECORD:
            raise VideoReadError(path, "decord is not installed")
        self.path = path
        why = decord_exactness(path)
        if why is not None:
            raise _NotExact(why)
        try:
            self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            self.num_frames = len(self._vr)
        except Exception as e:
            raise VideoReadError(path, f"decord cannot open it: {_short(e)}") from e
        if self.num_frames <= 0:
            raise VideoReadError(path, "decord reports 0 frames")

    def get(self, indices: Sequence[int]) -> np.ndarray:
        idx = _check_indices(self.path, indices, self.num_frames)
        try:
            frames = self._vr.get_batch(idx.tolist()).asnumpy()
        except Exception as e:
            raise VideoReadError(self.path, f"decord cannot decode frames: {_short(e)}") from e
        if frames.ndim == 3:
            frames = frames[..., None]
        if frames.shape[-1] != 3:
            frames = np.stack([_to_rgb3(f, bgr=False) for f in frames])
        return frames

    def close(self):
        self._vr = None


class OpenCVVideo:
    """Sequential OpenCV reader. ``num_frames`` is counted by grabbing every frame at open: the
    container's count is an estimate in some formats (FLV: 202 for 200 frames)."""
    kind = "opencv"

    def __init__(self, path: str):
        if cv2 is None:  # pragma: no cover
            raise VideoReadError(path, "OpenCV is not installed")
        self.path = path
        cap = cv2.VideoCapture(path)
        try:
            if not cap.isOpened():
                raise VideoReadError(path, "OpenCV cannot open it")
            n = 0
            while cap.grab():
                n += 1
        finally:
            cap.release()
        if n <= 0:
            raise VideoReadError(path, "OpenCV decodes no frames")
        self.num_frames = n

    def get(self, indices: Sequence[int]) -> np.ndarray:
        idx = _check_indices(self.path, indices, self.num_frames)
        wanted = set(idx.tolist())
        last = int(idx.max())
        got = {}
        cap = cv2.VideoCapture(self.path)
        try:
            if not cap.isOpened():
                raise VideoReadError(self.path, "OpenCV cannot open it")
            for i in range(last + 1):
                if not cap.grab():
                    raise VideoReadError(
                        self.path, f"truncated or corrupt: decoding stopped after {i} of "
                                   f"{self.num_frames} frames (needed frame {last})")
                if i in wanted:
                    ok, frame = cap.retrieve()
                    if not ok or frame is None:
                        raise VideoReadError(self.path, f"OpenCV cannot decode frame {i}")
                    got[i] = _to_rgb3(frame, bgr=True)
        finally:
            cap.release()
        return np.stack([got[i] for i in idx.tolist()])

    def close(self):
        pass


_reformatters = threading.local()


def to_rgb(frame) -> np.ndarray:
    """A decoded PyAV frame as uint8 RGB (H, W, 3): FFmpeg's swscale conversion, the same pixels as
    ``frame.to_ndarray(format='rgb24')`` and as decord, through one reformatter per thread. (Each
    ``to_ndarray`` call builds and frees a conversion context, which cost 15x the conversion itself;
    docs/performance.md.)"""
    r = getattr(_reformatters, "r", None)
    if r is None:
        r = _reformatters.r = VideoReformatter()
    return r.reformat(frame, format="rgb24", threads=1).to_ndarray()  # one core per loader worker


class _NotExact(Exception):
    """decord would return other frames than a sequential decode for this file."""


class _Inconsistent(Exception):
    """The timestamps do not map onto a gap-free frame sequence: use the sequential decode."""


def _decode_tolerant(container, stream, skip=None):
    """Frames of a sequential decode, skipping packets the decoder rejects (as FFmpeg's CLI does)
    and packets ``skip(packet)`` leaves out."""
    for packet in container.demux(stream):
        if skip is not None and skip(packet):
            continue
        try:
            frames = packet.decode()
        except av.FFmpegError:
            continue
        yield from frames


def _avcc_length_size(codec_context) -> Optional[int]:
    """The NAL length field's size of H.264 stored as avcC (MP4/MOV/MKV), else None (Annex B
    streams, other codecs)."""
    extradata = codec_context.extradata
    if codec_context.name != "h264" or not extradata or len(extradata) < 7 or extradata[0] != 1:
        return None
    return (extradata[4] & 3) + 1


def _is_non_reference(packet, length_size: int) -> bool:
    """True where the packet's picture is one no other picture refers to (H.264 ``nal_ref_idc`` 0
    on its slices): it can be left undecoded without changing any other frame's pixels."""
    data = memoryview(packet)
    pos, n = 0, len(data)
    while pos + length_size < n:
        size = int.from_bytes(data[pos:pos + length_size], "big")
        header = data[pos + length_size]
        if header & 0x1F in (1, 5):          # a coded slice: its nal_ref_idc decides
            return header & 0x60 == 0
        pos += length_size + size
    return False


class PyAVVideo:
    """Frame-exact reader on PyAV (FFmpeg): frame ``i`` is the i-th frame of a sequential decode.

    At open the packets are demuxed (no decoding) to list timestamps and keyframes. Where the
    container's timestamps are trustworthy (unique, present, and not AVI with B-frames, whose
    timestamps are in decode order), a read seeks to the keyframe at or before each wanted frame and decodes forward, checking
    that the decoded timestamps are exactly the consecutive frames it expects. Anything else - AVI
    with B-frames, missing timestamps, a frame that does not decode, a seek that lands elsewhere - reads by a
    sequential decode from the first frame, which is the definition of the frame order.

    ``num_frames`` is the number of displayed video packets (an MP4 edit list can hide coded frames,
    which FFmpeg decodes as references and never outputs). A file holding fewer packets than its header
    lists (truncated) raises :class:`VideoReadError` at open; if decoding yields fewer frames than
    packets (a damaged stream) the missing indices raise and ``num_frames`` drops to what decodes.
    """
    kind = "pyav"

    def __init__(self, path: str):
        if av is None:
            raise VideoReadError(path, "PyAV (the 'av' package) is not installed")
        self.path = path
        self._c = self._open()
        s = self._c.streams.video[0]
        cc = s.codec_context
        self.codec = cc.name
        self.container_format = self._c.format.name
        self.pix_fmt = cc.pix_fmt or ""
        self.has_b_frames = bool(cc.has_b_frames)
        self.header_frames = int(s.frames or 0)
        self._nal_length = _avcc_length_size(cc)   # unwanted non-reference pictures are skipped
        pts, keys, packets = [], [], 0
        try:
            for p in self._c.demux(s):
                if p.size:
                    packets += 1
                    if not p.is_discard:   # an edit list hides it: decoded, never displayed
                        pts.append(p.pts)
                        keys.append(p.is_keyframe)
        except av.FFmpegError as e:  # truncated or corrupt container: keep what demuxed
            logger.debug("%s: demuxing stopped after %d packets (%s)", path, packets, _short(e))
        if self.header_frames > packets:
            self._c.close()
            raise VideoReadError(path, f"truncated: its header lists {self.header_frames} frames, "
                                       f"the file holds {packets}")
        if not pts:
            self._c.close()
            raise VideoReadError(path, "FFmpeg finds no video frames in it")
        self.num_frames = len(pts)
        # presentation times of the displayed frames, seconds from the first (variable frame rates
        # as recorded); None where timestamps are missing or repeated
        self.frame_times = None
        unique_pts = None not in pts and len(set(pts)) == len(pts)
        if unique_pts and s.time_base is not None:
            t = np.sort(np.asarray(pts, np.float64)) * float(s.time_base)
            self.frame_times = t - t[0]
        avi_b_frames = "avi" in self.container_format and self.has_b_frames
        self._by_seek = not avi_b_frames and unique_pts
        if self._by_seek:
            self._order = sorted(pts)
            self._index = {p: i for i, p in enumerate(self._order)}
            self._key_pts = sorted(p for p, k in zip(pts, keys) if k)
            self._by_seek = bool(self._key_pts) and self._key_pts[0] == self._order[0]

    def _open(self):
        return self._open_path(self.path)

    @staticmethod
    def _open_path(path: str):
        try:
            c = av.open(path)
        except Exception as e:
            raise VideoReadError(path, f"FFmpeg cannot open it: {_short(e)}") from e
        if not c.streams.video:
            c.close()
            raise VideoReadError(path, "it has no video stream")
        c.streams.video[0].thread_count = 1  # one core per loader worker
        return c

    @property
    def is_grayscale(self) -> bool:
        return self.pix_fmt.startswith(("gray", "ya", "mono"))

    def get(self, indices: Sequence[int]) -> np.ndarray:
        idx = _check_indices(self.path, indices, self.num_frames)
        want = sorted(set(idx.tolist()))
        got = None
        if self._by_seek:
            try:
                got = self._get_by_seek(want)
            except _Inconsistent as e:
                logger.debug("%s: %s; reading it sequentially", self.path, e)
                self._by_seek = False
        if got is None:
            got = self._get_sequential(want)
        return np.stack([got[i] for i in idx.tolist()])

    def _get_by_seek(self, want: List[int]) -> dict:
        s = self._c.streams.video[0]
        wanted = set(want)
        got, frames, pos = {}, None, None
        for t in want:
            if t in got:
                continue
            kpts = self._key_pts[bisect.bisect_right(self._key_pts, self._order[t]) - 1]
            k = self._index[kpts]
            if frames is None or pos >= t or k > pos + 1:
                try:
                    self._c.seek(kpts, stream=s, backward=True, any_frame=False)
                except av.FFmpegError as e:
                    raise _Inconsistent(f"seek failed ({_short(e)})") from e
                skipped = set()
                frames, pos = self._decode_from_seek(wanted, skipped), None
            for f in frames:
                if f.pts is None:
                    raise _Inconsistent("a decoded frame has no timestamp")
                if pos is None and f.pts < kpts:
                    continue  # leading frames of an open GOP: their references precede the seek
                i = self._index.get(f.pts)
                expected = k if pos is None else pos + 1
                while expected in skipped:
                    expected += 1
                if i != expected:
                    raise _Inconsistent(f"decoded frame {i} where frame {expected} was due")
                pos = i
                if i in wanted:
                    got[i] = to_rgb(f)
                if i >= t:
                    break
            else:
                raise _Inconsistent(f"decoding ended before frame {t}")
        return got

    def _decode_from_seek(self, wanted: set, skipped: set):
        """Frames decoded from the position just sought. An H.264 packet of a frame not wanted whose
        picture no other refers to is not decoded (its index goes to ``skipped``): the other
        frames' pixels are the same, and a B-frame stream decodes a third to half fewer pictures."""
        def unwanted_non_reference(packet) -> bool:
            if not packet.size or packet.is_discard:
                return False
            i = self._index.get(packet.pts)
            if i is None or i in wanted or not _is_non_reference(packet, self._nal_length):
                return False
            skipped.add(i)
            return True
        return _decode_tolerant(self._c, self._c.streams.video[0],
                                unwanted_non_reference if self._nal_length else None)

    def _get_sequential(self, want: List[int]) -> dict:
        wanted, last = set(want), want[-1]
        got, n = {}, 0
        c = self._open()
        try:
            for f in _decode_tolerant(c, c.streams.video[0]):
                if n in wanted:
                    got[n] = to_rgb(f)
                n += 1
                if n > last:
                    return got
        finally:
            c.close()
        listed, self.num_frames = self.num_frames, n
        raise VideoReadError(self.path, f"only {n} of the {listed} frames its container lists "
                                        f"decode (frame {last} requested)" if n else
                             "no frame decodes")

    def close(self):
        if self._c is not None:
            self._c.close()
            self._c = None


class _FallbackVideo:
    """decord first; PyAV (or OpenCV) if decord fails to decode the requested frames."""

    def __init__(self, primary, path: str):
        self._v = primary
        self.path = path
        self.num_frames = primary.num_frames
        self.kind = primary.kind

    def get(self, indices):
        try:
            return self._v.get(indices)
        except VideoReadError as e:
            if self._v.kind != "decord":
                raise
            logger.debug("decord failed on %s (%s); trying %s", self.path, e.reason, DEFAULT_READER)
            try:
                alt = _exact_reader(self.path)
                frames = alt.get(indices)
            except VideoReadError as e2:
                raise VideoReadError(self.path, f"{e.reason}; {DEFAULT_READER}: {e2.reason}") from e2
            self._v = alt
            self.num_frames, self.kind = alt.num_frames, alt.kind
            return frames

    def close(self):
        self._v.close()


def _short(e: Exception, n: int = 200) -> str:
    if av is not None and isinstance(e, av.FFmpegError) and getattr(e, "strerror", None):
        return str(e.strerror)[:n]  # without the errno and the path, which the caller names
    s = str(e).strip().splitlines()
    s = s[-1] if s else type(e).__name__
    return s[:n]


def _exact_reader(path: str):
    return PyAVVideo(path) if av is not None else OpenCVVideo(path)


def open_video(path: str, reader: str = DEFAULT_READER):
    """Open a video file or frame folder. ``reader``: 'pyav' (default) | 'decord' | 'opencv'."""
    if reader not in READERS:
        raise ValueError(f"reader must be one of {READERS}, got {reader!r}")
    if os.path.isdir(path):
        return FrameFolder(path)
    if not os.path.exists(path):
        raise VideoReadError(path, "no such file or folder")
    if reader == "opencv":
        return OpenCVVideo(path)
    if reader == "decord" and HAS_DECORD:
        try:
            return _FallbackVideo(DecordVideo(path), path)
        except _NotExact as e:
            if str(e) not in _warned_decord:
                _warned_decord.add(str(e))
                logger.warning("decord's random access is not frame-exact on %s (first seen: %s); "
                               "reading such files with %s", e, path, DEFAULT_READER)
        except VideoReadError as e:
            logger.debug("decord cannot open %s (%s); using %s", path, e.reason, DEFAULT_READER)
    return _exact_reader(path)


def read_frames(path: str, indices: Sequence[int], reader: str = DEFAULT_READER) -> np.ndarray:
    """Convenience: open ``path`` and return the frames at ``indices`` (uint8, (T, H, W, 3) RGB)."""
    v = open_video(path, reader)
    try:
        return v.get(indices)
    finally:
        v.close()


def iter_frames(path: str, reader: str = DEFAULT_READER) -> Iterator[np.ndarray]:
    """Every displayed frame of a video file or frame folder, in order, as uint8 RGB (H, W, 3), one
    at a time: the frames ``open_video(path).get(range(n))`` returns, without holding them all.
    A file that cannot be opened raises :class:`VideoReadError`; frames that do not decode are
    skipped (as the readers skip them)."""
    if os.path.isdir(path) or reader != "pyav" or av is None:
        v = open_video(path, reader)
        try:
            for start in range(0, v.num_frames, 32):
                yield from v.get(range(start, min(start + 32, v.num_frames)))
        finally:
            v.close()
        return
    if not os.path.exists(path):
        raise VideoReadError(path, "no such file or folder")
    c = PyAVVideo._open_path(path)
    try:
        for f in _decode_tolerant(c, c.streams.video[0]):
            yield to_rgb(f)
    finally:
        c.close()


def frame_times(path: str) -> Optional[np.ndarray]:
    """Presentation time in seconds of every displayed frame of a video file, from the first one
    (variable frame rates, as phones record, included): :attr:`PyAVVideo.frame_times`. None for a
    frame folder, without PyAV, or where timestamps are missing or repeated (then frame / fps is
    the best estimate)."""
    if av is None or os.path.isdir(path):
        return None
    try:
        v = PyAVVideo(path)
    except VideoReadError:
        return None
    v.close()
    return v.frame_times


def probe_video(path: str, reader: str = DEFAULT_READER) -> int:
    """Check that a video is readable; returns its frame count, raises VideoReadError if not.

    Opens it and decodes its first and last frame (for OpenCV this decodes the whole file, which
    catches truncated files whose header promises more frames than they hold).
    """
    v = open_video(path, reader)
    try:
        n = v.num_frames
        v.get([0, n - 1])
        return v.num_frames
    finally:
        v.close()

"""Face cropping for raw videos: the followed face, frame by frame, at a fixed size.

``crop_face_video`` takes the video's face track (``preprocess.face_track``: shots, detections
linked over time, one person followed, face spans located to the frame, boxes smoothed within a
span), crops every frame of the face spans with a square of the face side plus ``margin`` on every
side, resizes it to ``size`` x ``size``, and writes a folder of jpg frames (``00001.jpg``, ...) or a
video (``.mp4``/``.avi`` output path, fourcc 'mp4v'). Frames without the face (a cut to another
scene, a black transition, the person gone) are **not written**: the output holds the frames of
the face spans, in order. Beside the output, ``<output>.face.json`` (the sidecar) records the
per-frame boxes (``null``: no face), the spans, which person was followed and why, and the
detector; a later run with the same detection settings reuses it instead of detecting again.

A clip without any face raises :class:`NoFaceError` with a clear message, unless
``fallback='center'`` asks for a centred square crop of every frame instead.

Library use (the predict and feature commands use the track directly)::

    from preprocess.face_crop import crop_face_video
    info = crop_face_video("clip.mp4", "clip_face.mp4", size=224, fallback="center")

Command line, over one video or a folder of videos (the output mirrors the input layout; a frame
folder is ``<output>/<relative path without extension>``, the layout ``--frames_root`` of the dataset
scripts expects)::

    python -m preprocess.face_crop --input /data/CREMA-D/VideoFlash --output /data/CREMA-D/faces \
        --format frames --size 224 --fallback center --workers 4
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import cv2

from cli.args import HelpFormatter
from datasets.video_reader import iter_frames
from engine.logger import progress_iter
from preprocess.face_track import (DETECTORS, SHOT_THRESHOLD, DetectorUnavailable, TrackSettings,
                                   center_box, crop_resize, make_detector, track_for)

VIDEO_OUT_EXTS = (".mp4", ".avi", ".mov", ".mkv")
VIDEO_IN_EXTS = "mp4,avi,flv,mkv,mov,webm,mpg,mpeg,m4v,wmv"
KEEP_FRAMES_BYTES = 512 << 20   # clips up to this size are decoded once (else twice)


class NoFaceError(RuntimeError):
    """No face was detected in a clip (and no fallback was asked for)."""


def is_video_output(out_path: str, out_format: Optional[str] = None) -> bool:
    if out_format:
        if out_format not in ("frames", "mp4", "video"):
            raise ValueError(f"out_format must be 'frames' or 'mp4', not {out_format!r}")
        return out_format != "frames"
    return os.path.splitext(out_path)[1].lower() in VIDEO_OUT_EXTS


def sidecar_path(out_path: str) -> str:
    """``<output>.face.json`` beside a frame folder or a video (``clip/`` -> ``clip.face.json``,
    ``clip.mp4`` -> ``clip.face.json``)."""
    out = os.path.normpath(out_path)
    stem, ext = os.path.splitext(out)
    return (stem if ext.lower() in VIDEO_OUT_EXTS else out) + ".face.json"


def _frames_for(in_path: str, kept):
    return kept if kept is not None else iter_frames(in_path)


def _write(frames, boxes, out_path: str, as_video: bool, size: int, fps: float, jpg_quality: int) -> int:
    """Crops ``frames[i]`` with ``boxes[i]`` (None: frame left out) into ``out_path``; returns
    the number of frames written."""
    written = 0
    if as_video:
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
        if not writer.isOpened():
            raise RuntimeError(f"cannot open a video writer for {out_path}")
        try:
            for frame, box in zip(frames, boxes):
                if box is not None:
                    writer.write(cv2.cvtColor(crop_resize(frame, box, size), cv2.COLOR_RGB2BGR))
                    written += 1
        finally:
            writer.release()
        return written
    os.makedirs(out_path, exist_ok=True)
    params = [int(cv2.IMWRITE_JPEG_QUALITY), int(jpg_quality)]
    for frame, box in zip(frames, boxes):
        if box is not None:
            written += 1
            cv2.imwrite(os.path.join(out_path, f"{written:05d}.jpg"),
                        cv2.cvtColor(crop_resize(frame, box, size), cv2.COLOR_RGB2BGR), params)
    return written


def crop_face_video(in_path: str, out_path: str, size: int = 224, detect_every: int = 5,
                    margin: float = 0.25, fallback: Optional[str] = None, out_format: Optional[str] = None,
                    min_face: float = 0.1, center_fraction: float = 1.0, fps: Optional[float] = None,
                    jpg_quality: int = 95, detector="auto", shot_threshold: float = SHOT_THRESHOLD,
                    reuse: bool = True, **track_kw) -> Dict:
    """Crop the followed face of one clip (video file or frame folder) to ``size`` x ``size`` frames.

    ``out_path`` ending in .mp4/.avi (or ``out_format='mp4'``) writes a video (fourcc 'mp4v'),
    otherwise a folder of ``00001.jpg``, ``00002.jpg``, .... ``detector``: a name of
    :data:`~preprocess.face_track.DETECTORS` or a callable ``frame (RGB) -> [(x, y, w, h[, conf])]``;
    ``detect_every``, ``min_face``, ``shot_threshold`` and ``track_kw`` (``smooth_s``,
    ``max_gap_s``, ``same_person``) are the :class:`~preprocess.face_track.TrackSettings`. Only frames
    with the face are written. ``reuse``: take the track from ``<output>.face.json`` when it was made
    from this video with these settings.

    No face at all: ``fallback='center'`` crops the centred square (``center_fraction`` of the
    shorter side) of every frame; otherwise :class:`NoFaceError` is raised and no frame is written.

    Returns a dict: in_path, out_path, sidecar, status ('face' | 'center_fallback'), num_frames
    (written), source_frames, face_fraction, spans ([start, end, face] over the source frames),
    shots, people, choice, num_checked, num_detected, fps, detector, reused, message.
    """
    if fallback not in (None, "none", "center", "centre"):
        raise ValueError(f"fallback must be None or 'center', not {fallback!r}")
    sidecar = sidecar_path(out_path)
    settings = TrackSettings(detect_every=max(1, int(detect_every)), min_face=min_face,
                             shot_threshold=shot_threshold, **track_kw)
    track, kept, reused = track_for(in_path, sidecar, detector, settings, KEEP_FRAMES_BYTES, reuse)
    n, (w, h) = track.num_frames, track.frame_size
    spans = track.spans()
    if track.num_detected:
        status = "face"
        boxes = [track.crop_box(i, margin) for i in range(n)]
        dropped = [s for s in spans if not s[2]]
        msg = f"face on {sum(b is not None for b in boxes)} of {n} frames"
        if dropped:
            msg += f" ({len(dropped)} span{'s' if len(dropped) > 1 else ''} without it left out)"
        msg += f"; {track.choice}"
    elif fallback in ("center", "centre"):
        status = "center_fallback"
        boxes = [center_box(w, h, center_fraction)] * n
        msg = (f"no face found in {in_path} ({track.num_checked} frames checked); used a centre crop "
               f"instead")
    else:
        raise NoFaceError(f"no face found in {in_path} ({track.num_checked} of {n} frames checked, "
                          f"every {track.detect_every}th and each shot's ends, {w}x{h}); try a smaller "
                          f"--min_face or --every 1, or --fallback center for a centre crop")
    out_fps = fps or track.fps or 25.0
    written = _write(_frames_for(in_path, kept), boxes, out_path, is_video_output(out_path, out_format),
                     size, out_fps, jpg_quality)
    return {"in_path": in_path, "out_path": out_path, "sidecar": sidecar, "status": status,
            "num_frames": written, "source_frames": n, "face_fraction": track.face_fraction,
            "spans": [list(s) for s in spans], "shots": len(track.shots), "people": track.people,
            "choice": track.choice, "num_checked": track.num_checked, "num_detected": track.num_detected,
            "fps": out_fps, "detector": track.detector, "reused": reused, "message": msg}


# ----------------------------------------------------------------------------------------------
# command line

def list_inputs(inp: str, exts: Sequence[str]) -> List[Tuple[str, str]]:
    """(path, path relative to the input folder) of every video below ``inp`` (or ``inp`` itself)."""
    from preprocess.common import natural_key
    if os.path.isfile(inp):
        return [(inp, os.path.basename(inp))]
    out = []
    for dirpath, dirs, files in os.walk(inp):
        dirs.sort(key=natural_key)
        for fn in sorted(files, key=natural_key):
            if os.path.splitext(fn)[1].lower() in exts:
                full = os.path.join(dirpath, fn)
                out.append((full, os.path.relpath(full, inp)))
    return out


def output_path(output: str, rel: str, fmt: str) -> str:
    stem = os.path.splitext(rel)[0]
    return os.path.join(output, stem if fmt == "frames" else stem + "." + fmt)


def _job(a):
    in_path, out_path, kw = a
    try:
        return crop_face_video(in_path, out_path, **kw)
    except Exception as e:  # noqa: BLE001 - reported in the failure list
        return {"in_path": in_path, "out_path": out_path, "status": "failed",
                "message": f"{type(e).__name__}: {e}"}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Crop faces from videos: one followed face per video, frames "
                                            "without it left out, a .face.json sidecar per clip.",
                                formatter_class=HelpFormatter)
    p.add_argument("--input", required=True, help="a video, or a folder searched recursively")
    p.add_argument("--output", required=True, help="output folder (mirrors the input layout)")
    p.add_argument("--format", choices=("frames", "mp4", "avi"), default="frames",
                   help="output per clip: a folder of 00001.jpg ... frames, or a video")
    p.add_argument("--size", type=int, default=224, help="side of the square output frames (pixels)")
    p.add_argument("--every", type=int, default=5,
                   help="detect on every k-th frame (and each shot's first and last; span ends are "
                        "found to the frame)")
    p.add_argument("--margin", type=float, default=0.25, help="added on each side, x face size")
    p.add_argument("--min_face", type=float, default=0.1, help="smallest face, x shorter frame side")
    p.add_argument("--detector", choices=DETECTORS, default="auto",
                   help="face detector: MTCNN (facenet-pytorch) when installed, else OpenCV's Haar")
    p.add_argument("--shot_threshold", type=float, default=SHOT_THRESHOLD,
                   help="colour-histogram distance between frames that starts a new shot (1: one shot)")
    p.add_argument("--smooth", type=float, default=TrackSettings.smooth_s,
                   help="sigma of the boxes' smoothing over time (seconds; 0: none)")
    p.add_argument("--max_gap", type=float, default=TrackSettings.max_gap_s,
                   help="longest detector miss bridged inside a shot (seconds); longer gaps are "
                        "frames without the face")
    p.add_argument("--fallback", choices=("none", "center"), default="none",
                   help="what to do when no face is found at all: fail (listed) or crop the centre")
    p.add_argument("--ext", default=VIDEO_IN_EXTS, help="comma-separated video extensions to process")
    p.add_argument("--redetect", action="store_true",
                   help="detect again even where a clip's .face.json sidecar matches")
    p.add_argument("--workers", type=int, default=1, help="clips cropped in parallel (processes)")
    p.add_argument("--overwrite", action="store_true", help="redo clips whose output exists")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    exts = tuple("." + e.strip().lstrip(".").lower() for e in args.ext.split(",") if e.strip())
    if not os.path.exists(args.input):
        raise SystemExit(f"face_crop: --input {args.input}: no such file or folder")
    inputs = list_inputs(args.input, exts)
    if not inputs:
        raise SystemExit(f"face_crop: no videos ({', '.join(exts)}) found in {args.input}")
    try:
        make_detector(args.detector, args.min_face)  # a missing detector: one line, before any clip
    except DetectorUnavailable as e:
        raise SystemExit(f"face_crop: {e}")
    kw = dict(size=args.size, detect_every=args.every, margin=args.margin, min_face=args.min_face,
              detector=args.detector, shot_threshold=args.shot_threshold, smooth_s=args.smooth,
              max_gap_s=args.max_gap, reuse=not args.redetect,
              fallback=None if args.fallback == "none" else "center",
              out_format="frames" if args.format == "frames" else "mp4")
    jobs, skipped = [], 0
    for full, rel in inputs:
        out = output_path(args.output, rel, args.format)
        if not args.overwrite and os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
            skipped += 1
            continue
        jobs.append((full, out, kw))
    if skipped:
        print(f"{skipped} clips already done (use --overwrite to redo)")
    results = []
    if args.workers > 1 and len(jobs) > 1:
        import multiprocessing as mp
        with mp.Pool(args.workers) as pool:
            for r in progress_iter(pool.imap(_job, jobs), len(jobs), "face crop", "clips"):
                results.append(r)
    else:
        for j in progress_iter(jobs, len(jobs), "face crop", "clips"):
            results.append(_job(j))
    failed = [r for r in results if r["status"] == "failed"]
    fallback = [r for r in results if r["status"] == "center_fallback"]
    partial = [r for r in results if r["status"] == "face" and r["num_frames"] < r["source_frames"]]
    print(f"done: {len(results) - len(failed)} of {len(results)} clips cropped "
          f"({len(fallback)} with the centre-crop fallback), {len(failed)} failed")
    if partial:
        print(f"{len(partial)} clips have frames without the face, left out (spans in each clip's "
              f".face.json):")
        for r in partial:
            print(f"  {r['in_path']}: {r['num_frames']} of {r['source_frames']} frames")
    if fallback:
        print("centre-crop fallback (no face found):")
        for r in fallback:
            print(f"  {r['in_path']}")
    if failed:
        os.makedirs(args.output, exist_ok=True)
        fail_file = os.path.join(args.output, "face_crop_failures.txt")
        with open(fail_file, "w", encoding="utf-8") as f:
            for r in failed:
                f.write(f"{r['in_path']}\t{r['message']}\n")
        print(f"failures (also in {fail_file}):")
        for r in failed:
            print(f"  {r['in_path']}: {r['message']}")
    sys.stdout.flush()
    if results and len(failed) == len(results):
        raise SystemExit(f"face_crop: all {len(results)} clips failed (listed in {fail_file})")
    return results


if __name__ == "__main__":
    main()

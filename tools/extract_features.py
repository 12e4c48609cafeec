"""Extract clip- and video-level SVFAP features (pooled, before the head) for a split file or videos.

    python -m tools.extract_features --checkpoint output/dfew/checkpoint-best.pth \
        --split_file splits/dfew/set_1/test.csv --output feats/dfew_fold1_test.npz
    python -m tools.extract_features --checkpoint pretrain_checkpoint.pth --model svfap_base_patch16_160 \
        videos/ --output_dir feats/ --num_clips 4                       # one .npy per video
    torchrun --nproc_per_node 4 -m tools.extract_features --checkpoint ... --split_file ... --output f.npz

Clips are the engine's test views: ``--num_clips`` clips spread uniformly over each video (exact
stride; a short video repeats its last frame) times ``--num_crops`` crops along the long side,
resized and cropped like the test transform. Clip feature = ``forward_features`` of the fine-tuned
model: mean of the last stage's tokens, then ``fc_norm`` (C values). Video feature = mean of its
clip features.

From a **pre-training** checkpoint only the encoder is trained; its ``fc_norm`` would be freshly
initialised, so the clip feature is then the mean of the encoder's last-stage tokens *without*
``fc_norm`` (``feature_type = 'last_stage_mean'`` in the output; fine-tuned: ``'fc_norm'``).

Output ``.npz``: ``paths`` (V,), ``clip_features`` (num_clips, C) float32, ``clip_video_index``
(num_clips,), ``clip_segment``, ``clip_crop``, ``video_features`` (V, C) (mean over the video's
clips), ``labels`` (when read from a split file), ``feature_type``, ``skipped_paths`` /
``skipped_reasons``. ``--output_dir``: one ``<relative path, extension kept>.npy`` of shape (clips, C) per video and
``index.csv`` (path, npy file, label). With torchrun every rank takes every world_size-th video
and rank 0 merges the parts in input order. Unreadable inputs are reported (``path: reason``) and
left out; the exit code is 1 only when nothing could be processed.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import sys
import tempfile
from typing import Dict, List, Optional

import numpy as np
import torch


from cli.args import HelpFormatter
from tools.inputs import InputError, add_face_args, collect_inputs, inspect_video, report
from tools.loading import CheckpointError, add_model_args, load_model, resolve_device
from datasets.registry import CLASSIFICATION, REGRESSION, get_dataset_info
from datasets.split_file import SplitEntry, SplitFileError, read_split_file
from datasets.video_dataset import VideoClsDataset
from engine.logger import progress_iter


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    p.add_argument('inputs', nargs='*', help='videos, frame folders or folders of them (instead of --split_file)')
    p.add_argument('--split_file', default=None, help='a split file (labels are kept)')
    p.add_argument('--data_root', default=None, help='joined to relative split-file paths')
    add_model_args(p)
    g = p.add_argument_group('features')
    g.add_argument('--num_clips', type=int, default=2, help='clips per video, spread uniformly')
    g.add_argument('--num_crops', type=int, default=1, help='crops per clip along the long side')
    g.add_argument('--num_workers', type=int, default=2, help='DataLoader worker processes')
    g.add_argument('--output', default=None, help='.npz file with everything')
    g.add_argument('--output_dir', default=None, help='instead: one .npy (clips, C) per video + index.csv')
    g.add_argument('--no_progress', action='store_true', help='no progress display')
    add_face_args(p.add_argument_group('faces'))
    return p


def _face_cropper(args, lm, tmp: str):
    """``--face_crop``: ``entry -> frame folder of its face`` (``preprocess.face_crop``: the frames
    of the followed face's spans, ``short_side_size`` px), raising InputError without a face."""
    from preprocess.face_crop import NoFaceError, crop_face_video

    def crop(e: SplitEntry, k: int) -> str:
        out = os.path.join(tmp, f'{k:07d}')
        try:
            crop_face_video(e.path, out, size=lm.short_side_size, margin=args.face_margin,
                            min_face=args.face_min_size, detector=args.face_detector, out_format='frames',
                            fallback=None if args.face_fallback == 'none' else 'center')
        except NoFaceError:
            raise InputError(e.path, 'no face found (use --face_fallback center to use a centre crop instead)')
        except Exception as err:  # noqa: BLE001 - reported, the other inputs go on
            raise InputError(e.path, f'face crop failed: {err}')
        return out
    return crop


def _read_entries(args, data_set: Optional[str]) -> List[SplitEntry]:
    info = None
    if data_set:
        try:
            info = get_dataset_info(data_set)
        except KeyError:
            info = None
    if info is not None and info.task in (CLASSIFICATION, REGRESSION):
        return read_split_file(args.split_file, task=info.task, num_outputs=info.num_outputs,
                               num_classes=info.num_outputs if info.is_classification else None,
                               data_root=args.data_root, check_paths=False)
    try:  # no registry entry: integer labels if the file has them, else paths only
        return read_split_file(args.split_file, task='classification', data_root=args.data_root, check_paths=False)
    except SplitFileError:
        return read_split_file(args.split_file, task='pretrain', data_root=args.data_root, check_paths=False)


class FeatureModel(torch.nn.Module):
    """clip -> pooled feature: forward_features (fine-tuned) or the last-stage token mean (pre-trained)."""

    def __init__(self, lm):
        super().__init__()
        self.model = lm.model
        self.use_fc_norm = lm.checkpoint_kind == 'finetune'

    @torch.no_grad()
    def forward(self, clip):
        if self.use_fc_norm:
            return self.model.forward_features(clip)
        return self.model.forward_tokens(clip).mean(dim=1)


def _run_shard(lm, entries: List[SplitEntry], args, device, show_progress: bool) -> Dict[str, np.ndarray]:
    from torch.utils.data import DataLoader
    if not entries:
        C = lm.model.embed_dim
        return dict(feats=np.zeros((0, C), np.float32), vid=np.zeros(0, np.int64), view=np.zeros(0, np.int64))
    # the dataset wants a target; labels are kept by the caller, so a placeholder does
    entries = [SplitEntry(e.path, 0, e.line, e.raw_path) for e in entries]
    ds = VideoClsDataset(entries, 'test', task='classification', num_outputs=1,
                         transform=lm.eval_transform(args.num_crops), num_frames=lm.num_frames,
                         sampling_rate=lm.sampling_rate, num_segments=args.num_clips, num_crops=args.num_crops,
                         reader=args.reader)
    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=False, num_workers=args.num_workers,
                        pin_memory=device.type == 'cuda', persistent_workers=False)
    fm = FeatureModel(lm)
    feats, vids, views = [], [], []
    for clip, _, vid, view in progress_iter(loader, len(loader), 'features', 'batches', show_progress):
        feats.append(fm(clip.to(device, non_blocking=True)).float().cpu().numpy())
        vids.append(vid.numpy())
        views.append(view.numpy())
    return dict(feats=np.concatenate(feats).astype(np.float32), vid=np.concatenate(vids).astype(np.int64),
                view=np.concatenate(views).astype(np.int64))


def _labels_array(labels: List) -> Optional[np.ndarray]:
    if not labels or any(lab is None for lab in labels):
        return None
    if isinstance(labels[0], tuple):
        return np.asarray(labels, dtype=np.float32)
    return np.asarray(labels, dtype=np.int64)


def merge(parts: List[Dict[str, np.ndarray]], entries: List[SplitEntry], args, feature_type: str,
          skipped: List) -> Dict[str, np.ndarray]:
    """Parts (clip features with *global* video indices) -> the output arrays, in input order."""
    feats = np.concatenate([p['feats'] for p in parts])
    vid = np.concatenate([p['vid'] for p in parts])
    view = np.concatenate([p['view'] for p in parts])
    order = np.lexsort((view, vid))
    feats, vid, view = feats[order], vid[order], view[order]
    kept = np.unique(vid)  # every processed video, renumbered 0..V-1
    new_index = np.searchsorted(kept, vid)
    video_feats = np.zeros((len(kept), feats.shape[1]), np.float64)
    np.add.at(video_feats, new_index, feats.astype(np.float64))
    video_feats /= np.bincount(new_index, minlength=len(kept))[:, None]
    out = dict(paths=np.asarray([entries[i].path for i in kept]), clip_features=feats,
               clip_video_index=new_index.astype(np.int64), clip_segment=view // args.num_crops,
               clip_crop=view % args.num_crops, video_features=video_feats.astype(np.float32),
               feature_type=np.asarray(feature_type),
               skipped_paths=np.asarray([p for p, _ in skipped], dtype=str),
               skipped_reasons=np.asarray([r for _, r in skipped], dtype=str))
    labels = _labels_array([entries[i].label for i in kept])
    if labels is not None:
        out['labels'] = labels
    return out


def _is_clip_folder(path: str) -> bool:
    from tools.inputs import has_frames
    return has_frames(path)


def _npy_name(path: str, root: str) -> str:
    """``<path relative to root>.npy``, the video's extension kept (``a.avi`` and ``a.mp4`` are two
    videos: ``a.avi.npy``, ``a.mp4.npy``); a frame folder ``f`` gives ``f.npy``."""
    rel = os.path.relpath(os.path.abspath(path), root)
    return rel.replace('..' + os.sep, '__' + os.sep) + '.npy'


def write_npy_dir(out: Dict[str, np.ndarray], out_dir: str, inputs: Optional[List[str]] = None) -> str:
    """One ``.npy`` per video, named by its path relative to the input folder (or to the common
    parent folder of all videos), plus ``index.csv``."""
    paths = [str(p) for p in out['paths']]
    tops = [os.path.abspath(p) if os.path.isdir(p) and not _is_clip_folder(p) else os.path.dirname(os.path.abspath(p))
            for p in (inputs or paths)]
    root = os.path.commonpath(tops + [os.path.dirname(os.path.abspath(p)) for p in paths])
    index = os.path.join(out_dir, 'index.csv')
    os.makedirs(out_dir, exist_ok=True)
    with open(index, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['path', 'npy', 'num_clips', 'label'])
        taken = set()
        for i, p in enumerate(paths):
            name = _npy_name(p, root)
            stem, k = name[:-4], 2
            while name in taken:  # only a '..' path mapped onto an existing name can get here
                name, k = f'{stem}-{k}.npy', k + 1
            taken.add(name)
            full = os.path.join(out_dir, name)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            arr = out['clip_features'][out['clip_video_index'] == i]
            np.save(full, arr)
            lab = ''
            if 'labels' in out:
                lab = ' '.join(str(x) for x in np.atleast_1d(out['labels'][i]).tolist())
            w.writerow([p, name, len(arr), lab])
    return index


def _check_share(candidates, rank: int, world: int, args, lm, crop):
    """This rank's share of the inputs (every world-th), each checked; a bad one is reported once,
    by this rank. Returns ``(good input numbers, [(path, reason)] skipped, {number: face-crop
    file read instead})``."""
    good, skipped, read_from = [], [], {}
    for gi, (e, err) in enumerate(candidates):
        if gi % world != rank:
            continue
        try:
            if err:
                raise InputError(e.path, err)
            info = inspect_video(e.path, args.reader, lm.input_size)
            for n in info.notes:
                report(e.path, n)
            if crop is not None:
                read_from[gi] = crop(e, gi)
            good.append(gi)
        except InputError as ie:
            report(ie.path, ie.reason)
            skipped.append((e.path, ie.reason))
    return good, skipped, read_from


def _gather_parts(part: Dict[str, np.ndarray], skipped_local, args, rank: int, world: int):
    """Several processes: every rank's features through files beside the output, and every rank's
    skipped inputs; rank 0 gets ``(parts, skipped)``, the others ``(None, skipped)``."""
    from engine import distributed as dist
    tmp = os.path.dirname(os.path.abspath(args.output or os.path.join(args.output_dir, 'x')))
    os.makedirs(tmp, exist_ok=True)
    np.savez(os.path.join(tmp, f'.features_part{rank}.npz'), **part)
    skipped = sum(dist.all_gather_object(skipped_local), [])
    dist.barrier()
    if rank != 0:
        return None, skipped
    parts = []
    for r in range(world):
        f = os.path.join(tmp, f'.features_part{r}.npz')
        with np.load(f) as z:
            parts.append({k: z[k] for k in z.files})
        os.remove(f)
    return parts, skipped


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    if bool(args.inputs) == bool(args.split_file):
        print('give either --split_file or input paths', file=sys.stderr)
        return 2
    if bool(args.output) == bool(args.output_dir):
        print('give either --output X.npz or --output_dir', file=sys.stderr)
        return 2
    from engine import distributed as dist
    env = dist.init_distributed_mode(str(resolve_device(args.device)))
    rank, world = env.rank, env.world_size
    device = torch.device(env.device)
    face_dir = tempfile.TemporaryDirectory(prefix='svfap_faces_') if args.face_crop else None
    try:
        try:
            lm = load_model(args, 'features', device, verbose=rank == 0)
        except CheckpointError as e:
            print(f'error: {e}', file=sys.stderr)
            return 2
        feature_type = 'fc_norm' if lm.checkpoint_kind == 'finetune' else 'last_stage_mean'
        if lm.checkpoint_kind != 'finetune' and rank == 0:
            print('note: pre-training checkpoint: features are the mean of the encoder\'s last-stage tokens '
                  'without fc_norm (untrained here)', file=sys.stderr)
        if args.split_file:
            entries = _read_entries(args, args.data_set or lm.data_set)
            candidates = [(e, None) for e in entries]
        else:
            candidates = [(SplitEntry(p, None, i + 1, p), err) for i, (p, err) in enumerate(collect_inputs(args.inputs))]
        crop = _face_cropper(args, lm, face_dir.name) if face_dir is not None else None
        good_local, skipped_local, read_from = _check_share(candidates, rank, world, args, lm, crop)
        entries_all = [e for e, _ in candidates]
        shard = [dataclasses.replace(entries_all[gi], path=read_from.get(gi, entries_all[gi].path))
                 for gi in good_local]
        part = _run_shard(lm, shard, args, device, show_progress=rank == 0 and not args.no_progress)
        part['vid'] = np.asarray(good_local, np.int64)[part['vid']] if len(part['vid']) else part['vid']
        if world > 1:
            parts, skipped = _gather_parts(part, skipped_local, args, rank, world)
            if rank != 0:
                return 0
        else:
            parts, skipped = [part], skipped_local
        skipped.sort(key=lambda s: s[0])
        if sum(len(p['vid']) for p in parts) == 0:
            print('error: no input could be processed', file=sys.stderr)
            return 1
        out = merge(parts, entries_all, args, feature_type, skipped)
        V, C = out['video_features'].shape
        if args.output:
            os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
            np.savez(args.output, **out)
            where = args.output
        else:
            where = write_npy_dir(out, args.output_dir, args.inputs or None)
        print(f'{V} videos, {len(out["clip_features"])} clips, {C}-dim {feature_type} features -> {where}'
              + (f'; {len(skipped)} inputs skipped' if skipped else ''))
        return 0
    finally:
        if face_dir is not None:
            face_dir.cleanup()
        dist.destroy_distributed()


if __name__ == '__main__':
    sys.exit(main())

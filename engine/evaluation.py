"""Multi-view evaluation: scoring every view, gathering across processes, averaging per video,
grouping (AVCAffe), the paper's metrics, prediction CSVs and the main-metric choice.

Evaluation protocol (paper Sec. 4.1, inference): every view (clip x crop) of a test video is scored; the
softmax scores (classification) or outputs (regression) of a video's views are averaged; metrics
are computed once over all videos. With a distributed sampler every process scores a strided share
of the views (the sampler pads the last share with repeats); the (video, view) records of all
processes are gathered and duplicates removed before averaging, so the result equals that of one
process.
"""
from __future__ import annotations

import csv
import os
import re
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from engine.distributed import all_gather_object, is_main_process
from engine.logger import RateProgress
from engine.metrics import compute_metrics
from engine.step import autocast_context

__all__ = ['evaluate', 'gather_predictions', 'aggregate_views', 'write_prediction_csvs', 'compute_eval_metrics',
           'avcaffe_key', 'read_groups_file', 'group_key', 'video_group_keys', 'group_videos', 'score_columns', 'metrics_summary', 'main_metric_name']


@torch.no_grad()
def _run_views(model, loader, device, amp: str, header: str = 'eval'):
    """Raw outputs of every view this process sees: dict of numpy arrays. A progress line (views
    of this process, rate, ETA) every 10 s."""
    model.eval()
    outs, targets, vids, views = [], [], [], []
    progress = RateProgress(header, len(loader.sampler))
    for batch in loader:
        progress.update(len(batch[0]))
        clip, target, vid, view = batch[0], batch[1], batch[2], batch[3]
        clip = clip.to(device, non_blocking=True)
        with autocast_context(device, amp):
            out = model(clip)
        outs.append(out.float())
        targets.append(target)
        vids.append(torch.as_tensor(vid))
        views.append(torch.as_tensor(view))
    progress.finish()
    if not outs:
        return dict(outputs=np.zeros((0, 0), np.float32), targets=np.zeros((0,)),
                    video_index=np.zeros((0,), np.int64), view_index=np.zeros((0,), np.int64))
    # one device->host copy for the whole pass
    return dict(outputs=torch.cat(outs).cpu().numpy(),
                targets=torch.cat([torch.as_tensor(t) for t in targets]).cpu().numpy(),
                video_index=torch.cat(vids).cpu().numpy().astype(np.int64),
                view_index=torch.cat(views).cpu().numpy().astype(np.int64))


def gather_predictions(local: Dict[str, np.ndarray], distributed: bool) -> Dict[str, np.ndarray]:
    """Concatenate the per-view records of all processes and drop the sampler's padding duplicates
    (same ``(video_index, view_index)``), sorted by video then view."""
    parts = all_gather_object(local) if distributed else [local]
    parts = [p for p in parts if len(p['video_index'])]
    if not parts:
        return local
    cat = {k: np.concatenate([p[k] for p in parts]) for k in local}
    key = cat['video_index'].astype(np.int64) * (int(cat['view_index'].max()) + 1) + cat['view_index']
    _, first = np.unique(key, return_index=True)  # sorted by key = (video, view)
    return {k: v[first] for k, v in cat.items()}


def aggregate_views(views: Dict[str, np.ndarray], task: str) -> Dict[str, np.ndarray]:
    """Per-video mean of the views' softmax scores (classification) or outputs (regression)."""
    out = views['outputs'].astype(np.float64)
    if task == 'classification':
        scores = torch.from_numpy(out).softmax(dim=-1).numpy()
    else:
        scores = out
    vids = views['video_index']
    uniq, inv = np.unique(vids, return_inverse=True)
    sums = np.zeros((len(uniq), scores.shape[1]), np.float64)
    np.add.at(sums, inv, scores)
    counts = np.bincount(inv, minlength=len(uniq)).astype(np.float64)
    _, first = np.unique(inv, return_index=True)
    return dict(video_index=uniq, scores=sums / counts[:, None], targets=views['targets'][first],
                num_views=counts.astype(np.int64), view_scores=scores)


_AVC_KEY_RE = re.compile(r'(aiim\d+)[/\\_\-]+task_?(\d+)', re.IGNORECASE)


def avcaffe_key(path: str) -> Optional[str]:
    """AVCAffe's video of a clip from its path: ``.../aiim001/task_3/...`` -> ``aiim001_task_3``
    (participant x task; any of ``/ \\ _ -`` between them, task numbers without leading zeros);
    None when the path names neither."""
    m = _AVC_KEY_RE.search(path)
    return f'{m.group(1).lower()}_task_{int(m.group(2))}' if m else None


def read_groups_file(path: str) -> Dict[str, str]:
    """``video_groups.txt`` of preprocess.avcaffe: ``<clip path> <key>`` a line (the path may hold
    spaces; the key is the last field) -> {clip path: key}, each path also under its normalised
    form. A line without two fields raises ValueError naming the file and line."""
    table: Dict[str, str] = {}
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(None, 1)
            if len(parts) != 2:
                raise ValueError(f"{path}:{n}: expected '<clip path> <key>'")
            table[parts[0]] = table[os.path.normpath(parts[0])] = parts[1]
    return table


def group_key(path: str, groups: Optional[Dict[str, str]] = None) -> Optional[str]:
    """The group of one clip: from ``groups`` (:func:`read_groups_file`), else its path's
    :func:`avcaffe_key`, else None."""
    if groups:
        k = groups.get(path) or groups.get(os.path.normpath(path))
        if k is not None:
            return k
    return avcaffe_key(path)


def video_group_keys(paths: Sequence[str], groups_file: Optional[str] = None) -> List[str]:
    """AVCAffe-style grouping of clips into videos (registry ``video_level_key``): each clip's
    :func:`group_key` (``groups_file`` when it exists, else the path), else the clip's own path."""
    groups = read_groups_file(groups_file) if groups_file and os.path.isfile(groups_file) else None
    return [group_key(p, groups) or p for p in paths]


def group_videos(video: Dict[str, np.ndarray], keys: Sequence[str]) -> Dict[str, np.ndarray]:
    """Average the clip scores of each group (``keys[video_index]``) -> group-level records."""
    gk = [keys[int(v)] for v in video['video_index']]
    uniq = list(dict.fromkeys(gk))
    pos = {k: i for i, k in enumerate(uniq)}
    inv = np.array([pos[k] for k in gk], dtype=np.int64)
    sums = np.zeros((len(uniq), video['scores'].shape[1]), np.float64)
    np.add.at(sums, inv, video['scores'])
    counts = np.bincount(inv, minlength=len(uniq)).astype(np.float64)
    _, first = np.unique(inv, return_index=True)
    return dict(keys=np.array(uniq, dtype=object), scores=sums / counts[:, None],
                targets=video['targets'][first], num_clips=counts.astype(np.int64))


def compute_eval_metrics(info, video: Dict[str, np.ndarray], label_names: Sequence[str]) -> Dict:
    if info is None:
        return {}
    task = info.task
    if task == 'classification':
        m = compute_metrics(info, video['scores'], video['targets'].astype(np.int64),
                            label_names=label_names)
    else:
        m = compute_metrics(info, video['scores'], video['targets'], label_names=label_names)
    return dict(m)


def _eval_loss(views: Dict[str, np.ndarray], task: str) -> float:
    out = torch.from_numpy(views['outputs'].astype(np.float64))
    if len(out) == 0:
        return float('nan')
    if task == 'classification':
        return float(F.cross_entropy(out, torch.from_numpy(views['targets'].astype(np.int64))))
    return float(F.mse_loss(out, torch.from_numpy(views['targets'].astype(np.float64))))


def evaluate(model, loader, device: torch.device, amp: str, task: str, distributed: bool,
             info=None, label_names: Optional[Sequence[str]] = None,
             group_keys: Optional[Sequence[str]] = None, header: str = 'eval') -> Dict:
    """Multi-view evaluation. Returns ``{'metrics', 'loss', 'num_videos', 'num_views', 'views',
    'videos'}`` (plus ``'groups'`` with ``group_keys``) on every process (all processes gather the
    full set). With ``group_keys`` (one key per dataset item, e.g. AVCAffe's participant x task) the
    clips' scores are averaged per key and the metrics computed over the groups."""
    local = _run_views(model, loader, device, amp, header)
    views = gather_predictions(local, distributed)
    video = aggregate_views(views, task)
    names = list(label_names) if label_names is not None else \
        [str(i) for i in range(video['scores'].shape[1])]
    out = dict(loss=_eval_loss(views, task), num_videos=len(video['video_index']),
               num_views=len(views['video_index']), views=views, videos=video)
    scored = video
    if group_keys is not None:
        video['group_key'] = np.array([group_keys[int(v)] for v in video['video_index']],
                                      dtype=object)
        out['groups'] = scored = group_videos(video, group_keys)
        out['num_groups'] = len(scored['keys'])
    out['metrics'] = compute_eval_metrics(info, scored, names) if info is not None else {}
    return out


def _label_columns(task: str, names: Sequence[str]) -> List[str]:
    return ['label'] if task == 'classification' else [f'label_{n}' for n in names]


def score_columns(task: str, names: Sequence[str]) -> List[str]:
    """The score columns of a prediction table: ``prob_<class>`` or ``pred_<target>``."""
    return [f'prob_{n}' for n in names] if task == 'classification' else [f'pred_{n}' for n in names]


def _label_values(task: str, t) -> List:
    if task == 'classification':
        return [int(t)]
    return [float(x) for x in np.atleast_1d(t)]


def write_prediction_csvs(result: Dict, paths: Sequence[str], task: str, label_names: Sequence[str],
                          out_dir: str, prefix: str = 'test',
                          group_column: str = 'participant_task') -> Dict[str, str]:
    """``<prefix>_predictions_views.csv`` (video_index, view_index, path, label(s), scores) and
    ``<prefix>_predictions.csv`` (video_index, path, [group key], label(s), pred (classification),
    num_views, scores); scores are per-class probabilities or per-target values. Main process only."""
    if not is_main_process():
        return {}
    os.makedirs(out_dir, exist_ok=True)
    names = list(label_names)
    views, video = result['views'], result['videos']
    lab_cols, score_cols = _label_columns(task, names), score_columns(task, names)
    view_path = os.path.join(out_dir, f'{prefix}_predictions_views.csv')
    video_path = os.path.join(out_dir, f'{prefix}_predictions.csv')
    view_scores = video['view_scores']
    with open(view_path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['video_index', 'view_index', 'path'] + lab_cols + score_cols)
        for i in range(len(views['video_index'])):
            v = int(views['video_index'][i])
            w.writerow([v, int(views['view_index'][i]), paths[v]]
                       + _label_values(task, views['targets'][i])
                       + [f'{x:.7g}' for x in view_scores[i]])
    with open(video_path, 'w', newline='') as f:
        w = csv.writer(f)
        extra = ['pred'] if task == 'classification' else []
        group = [group_column] if 'group_key' in video else []
        w.writerow(['video_index', 'path'] + group + lab_cols + extra + ['num_views'] + score_cols)
        for i in range(len(video['video_index'])):
            v = int(video['video_index'][i])
            pred = [int(np.argmax(video['scores'][i]))] if task == 'classification' else []
            g = [video['group_key'][i]] if group else []
            w.writerow([v, paths[v]] + g + _label_values(task, video['targets'][i]) + pred
                       + [int(video['num_views'][i])] + [f'{x:.7g}' for x in video['scores'][i]])
    return {'views': view_path, 'videos': video_path}


def metrics_summary(metrics: Dict) -> str:
    return '  '.join(f'{k} {v:.4f}' for k, v in metrics.items() if isinstance(v, (int, float)))


def main_metric_name(info, metrics: Dict, requested: Optional[str] = None) -> Optional[str]:
    if requested:
        return requested
    if not metrics:
        return None
    if info is not None and info.metrics:
        first = info.metrics[0]
        if first in metrics:
            return first
        if f'{first}_mean' in metrics:
            return f'{first}_mean'
    return next(iter(metrics))


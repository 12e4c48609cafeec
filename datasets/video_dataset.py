"""Torch datasets over split files: fine-tuning (train / validation / test) and pre-training.

Items (docs/architecture.md):

* train: ``(clip float32 (3,T,H,W), target, index, n_broken_skipped)``; ``target`` is an int
  (classification) or a float32 tensor ``(num_outputs,)`` (regression); ``index`` is the index of
  the sample the clip actually comes from (the requested one unless it was substituted).
* validation / test: ``(clip, target, video_index, view_index)``; ``len = num_videos * num_views``,
  item ``i`` is view ``i % num_views`` of video ``i // num_views``; view ``v`` is temporal segment
  ``v // num_crops`` and spatial crop ``v % num_crops``.
* pre-training: ``(clip, mask bool (N,), n_broken_skipped)`` with a tube mask (True = masked).
* repeated sampling (``num_sample`` = n > 1, train and pre-training): the video is decoded once
  (one temporal window) and augmented n times: clips ``(n, 3, T, H, W)``, targets / indices /
  masks with a leading n; :func:`collate_repeated` flattens a batch to ``batch_size * n`` clips.

Randomness: each training item draws one seed from torch's RNG (seeded by the DataLoader per worker
and per epoch, so ``torch.manual_seed`` makes a run reproducible) and derives the clip position,
the augmentation and the mask from it.

Broken videos, training and pre-training: a video that cannot be read (or transformed) is logged
once per process on the ``svfap.data`` logger with path and reason, remembered, and replaced by
another sample chosen deterministically from ``(seed, index, attempt)`` - the same substitute on a
resumed run. The item reports how many broken videos it met (``n_broken_skipped``); with
``broken_log`` set, each process also appends ``path<TAB>reason`` to that file. After
``max_consecutive_failures`` (50) failures in a row for one item the dataset gives up with an error
(the whole set must be broken).

Broken videos, evaluation: never substituted. Reading one raises :class:`VideoReadError` naming the
file; with ``skip_broken_eval=True`` every video is probed when the dataset is built and the
unreadable ones are left out and listed in ``skipped`` as ``(path, reason)``.
"""
from __future__ import annotations

import logging
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .sampling import check_temporal_sampling, eval_clip_indices, train_indices
from .split_file import SplitEntry
from .video_cache import VideoCache
from .video_reader import DEFAULT_READER, VideoReadError, open_video, probe_video

logger = logging.getLogger("svfap.data")


def _open(path: str, reader: str, cache: Optional[VideoCache]):
    """``path`` from the in-memory cache when there is one, else from disk."""
    return cache.open(path) if cache is not None else open_video(path, reader)


def read_train_frames(path: str, reader: str, num_frames: int, sampling_rate: int,
                      rng: np.random.Generator, cache: Optional[VideoCache] = None,
                      sampling: str = "published", purpose: str = "finetune") -> np.ndarray:
    """One randomly placed training clip of ``path``: uint8 (num_frames, H, W, 3); ``sampling`` and
    ``purpose`` as :func:`datasets.sampling.train_indices`."""
    v = _open(path, reader, cache)
    try:
        return v.get(train_indices(v.num_frames, num_frames, sampling_rate, rng, sampling, purpose))
    finally:
        v.close()


class TooManyBrokenVideos(RuntimeError):
    pass


class _SubstitutingDataset(Dataset):
    """Shared broken-video handling for the training and pre-training datasets."""

    def __init__(self, entries: Sequence[SplitEntry], reader: str, seed: int,
                 max_consecutive_failures: int = 50, num_sample: int = 1,
                 temporal_sampling: str = "published", cache: Optional[VideoCache] = None,
                 batch_augment=None, broken_log: Optional[str] = None):
        check_temporal_sampling(temporal_sampling)
        self.temporal_sampling = temporal_sampling  # datasets.sampling
        if int(num_sample) < 1:
            raise ValueError(f"num_sample must be >= 1, got {num_sample}")
        self.num_sample = int(num_sample)  # augmented clips per decoded video (repeated sampling)
        self.entries: List[SplitEntry] = list(entries)
        if not self.entries:
            raise ValueError("dataset has no samples")
        self.paths = [e.path for e in self.entries]
        self.reader = reader
        self.seed = int(seed)
        self.max_consecutive_failures = int(max_consecutive_failures)
        self.broken = {}  # path -> reason, this process only
        # a file every process (DataLoader workers, ranks) appends "path<TAB>reason" lines to, once
        # per path and process (the run's, engine.trainer.broken_log_path), or None
        self.broken_log = broken_log
        # whole decoded videos kept in memory (datasets.video_cache), or None
        self.cache = cache
        # --augment_on device: what the training device does to a batch of worker outputs
        # (uint8 clips -> augmented float clips), or None
        self.batch_augment = batch_augment

    def __len__(self):
        return len(self.entries)

    def _substitute(self, index: int, attempt: int) -> int:
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, index, attempt, 0x5B57])
        return int(rng.integers(len(self.entries)))

    def _mark_broken(self, path: str, reason: str, index: int):
        if path not in self.broken:
            self.broken[path] = reason
            logger.warning("broken video skipped (substituted by another sample): %s: %s",
                           path, reason)
            if self.broken_log:
                line = f"{path}\t{' '.join(str(reason).split())}\n"
                try:
                    with open(self.broken_log, "a", encoding="utf-8") as f:
                        f.write(line)  # one short append: whole lines even from many processes
                except OSError as e:
                    logger.warning("cannot append to %s: %s", self.broken_log, e)

    def _load(self, i: int, rng: np.random.Generator):
        raise NotImplementedError

    def _load_with_substitution(self, index: int):
        if not 0 <= index < len(self.entries):
            raise IndexError(index)
        seed = int(torch.randint(0, 2 ** 62, (1,)).item())
        i, skipped, last_reason = index, 0, ""
        for attempt in range(self.max_consecutive_failures + 1):
            path = self.paths[i]
            if path not in self.broken:
                try:
                    return i, self._load(i, np.random.default_rng(seed)), skipped
                except Exception as e:  # unreadable or untransformable video: substitute
                    reason = e.reason if isinstance(e, VideoReadError) else \
                        f"{type(e).__name__}: {e}"
                    self._mark_broken(path, reason, i)
            skipped += 1
            last_reason = f"{path}: {self.broken[path]}"
            i = self._substitute(index, attempt)
        raise TooManyBrokenVideos(
            f"{self.max_consecutive_failures + 1} videos in a row could not be read while loading "
            f"sample {index} ({len(self.broken)} broken videos seen so far by this process); is "
            f"the whole data set broken, or the reader misconfigured? Last error: {last_reason}")


class VideoClsDataset(_SubstitutingDataset):
    """Fine-tuning dataset (classification or regression): 'train', 'validation' or 'test'."""

    def __init__(self, entries: Sequence[SplitEntry], mode: str, task: str, num_outputs: int,
                 transform, num_frames: int = 16, sampling_rate: int = 4,
                 num_segments: int = 1, num_crops: int = 1, reader: str = DEFAULT_READER,
                 seed: int = 0, skip_broken_eval: bool = False,
                 max_consecutive_failures: int = 50, num_sample: int = 1,
                 temporal_sampling: str = "published", cache: Optional[VideoCache] = None,
                 batch_augment=None, num_listed: Optional[int] = None, broken_log: Optional[str] = None):
        if mode not in ("train", "validation", "test"):
            raise ValueError(f"mode must be 'train', 'validation' or 'test', got {mode!r}")
        self.mode = mode
        self.task = task
        self.num_outputs = int(num_outputs)
        self.transform = transform
        self.num_frames, self.sampling_rate = int(num_frames), int(sampling_rate)
        self.num_segments, self.num_crops = int(num_segments), int(num_crops)
        self.skip_broken_eval = bool(skip_broken_eval)
        self.skipped: List[Tuple[str, str]] = []
        entries = list(entries)
        if mode != "train" and skip_broken_eval:
            entries, self.skipped = _probe_entries(entries, reader)
        super().__init__(entries, reader, seed, max_consecutive_failures,
                         num_sample if mode == "train" else 1, temporal_sampling, cache, batch_augment,
                         broken_log)
        self.labels = [e.label for e in self.entries]
        # the split file's samples before a few-shot subset (--train_fraction) was taken
        self.num_listed = len(self.entries) if num_listed is None else int(num_listed)

    # ---- views
    @property
    def num_videos(self) -> int:
        return len(self.entries)

    @property
    def num_views(self) -> int:
        return 1 if self.mode == "train" else self.num_segments * self.num_crops

    def __len__(self):
        return self.num_videos * self.num_views

    def check_readable(self) -> None:
        """Probe every video of an evaluation set now (a run calls it at start-up), so that a broken
        test video is reported before training, not after its last epoch: one VideoReadError
        listing them all."""
        _, skipped = _probe_entries(self.entries, self.reader, quiet=True)
        if skipped:
            listed = "; ".join(f"{p} ({r})" for p, r in skipped[:5])
            raise VideoReadError(skipped[0][0], f"{len(skipped)} of the {len(self.entries)} {self.mode} "
                                                f"videos cannot be read: {listed}"
                                                f"{' ...' if len(skipped) > 5 else ''}; fix or remove them "
                                                f"from the split file, or pass --skip_broken_eval to "
                                                f"leave them out (evaluation never substitutes videos)")

    def target(self, i: int):
        lab = self.entries[i].label
        if self.task == "regression":
            return torch.tensor(lab, dtype=torch.float32)
        return int(lab)

    # ---- loading
    def _load(self, i: int, rng: np.random.Generator):
        frames = read_train_frames(self.paths[i], self.reader, self.num_frames, self.sampling_rate,
                                   rng, self.cache, self.temporal_sampling, "finetune")
        if self.num_sample == 1:
            return self.transform(frames, rng)
        return torch.stack([self.transform(frames, rng) for _ in range(self.num_sample)])

    def __getitem__(self, index: int):
        if self.mode == "train":
            i, clip, skipped = self._load_with_substitution(index)
            if self.num_sample > 1:
                target = self.target(i)
                targets = torch.stack([target] * self.num_sample) if torch.is_tensor(target) else \
                    torch.full((self.num_sample,), target, dtype=torch.int64)
                return clip, targets, torch.full((self.num_sample,), i, dtype=torch.int64), skipped
            return clip, self.target(i), i, skipped
        if not 0 <= index < len(self):
            raise IndexError(index)
        vid, view = divmod(index, self.num_views)
        seg, crop = divmod(view, self.num_crops)
        path = self.paths[vid]
        try:
            v = _open(path, self.reader, self.cache)
            try:
                idx = eval_clip_indices(v.num_frames, seg, self.num_frames, self.sampling_rate,
                                        self.num_segments, self.temporal_sampling)
                frames = v.get(idx)
            finally:
                v.close()
        except VideoReadError as e:
            raise VideoReadError(path, f"{e.reason} (evaluation never substitutes videos: fix or "
                                       f"remove it from the split file, or pass --skip_broken_eval "
                                       f"to leave unreadable videos out)"
                                 ) from e
        return self.transform(frames, crop), self.target(vid), vid, view


class VideoPretrainDataset(_SubstitutingDataset):
    """Pre-training dataset: clip + tube mask."""

    def __init__(self, entries: Sequence[SplitEntry], transform, mask_generator,
                 num_frames: int = 16, sampling_rate: int = 4, reader: str = DEFAULT_READER,
                 seed: int = 0, max_consecutive_failures: int = 50, num_sample: int = 1,
                 temporal_sampling: str = "published", cache: Optional[VideoCache] = None,
                 batch_augment=None, broken_log: Optional[str] = None):
        super().__init__(entries, reader, seed, max_consecutive_failures, num_sample,
                         temporal_sampling, cache, batch_augment, broken_log)
        self.transform = transform
        self.mask_generator = mask_generator
        self.num_frames, self.sampling_rate = int(num_frames), int(sampling_rate)

    def _load(self, i: int, rng: np.random.Generator):
        frames = read_train_frames(self.paths[i], self.reader, self.num_frames, self.sampling_rate,
                                   rng, self.cache, self.temporal_sampling, "pretrain")
        clips, masks = [], []
        for _ in range(self.num_sample):  # one decode, num_sample crops and masks
            clips.append(self.transform(frames, rng))
            masks.append(torch.from_numpy(np.asarray(self.mask_generator(rng), dtype=bool)))
        if self.num_sample == 1:
            return clips[0], masks[0]
        return torch.stack(clips), torch.stack(masks)

    def __getitem__(self, index: int):
        _, (clip, mask), skipped = self._load_with_substitution(index)
        return clip, mask, skipped


def collate_repeated(batch):
    """DataLoader collate for ``num_sample`` > 1: items hold ``num_sample`` clips of one video; the
    batch is flattened to ``batch_size * num_sample`` clips (the count of broken videos is summed,
    as one per video)."""
    out = []
    for k, field in enumerate(zip(*batch)):
        if k == len(batch[0]) - 1:  # n_broken_skipped: one per video
            out.append(torch.as_tensor(field, dtype=torch.int64))
        else:
            out.append(torch.cat([torch.as_tensor(x) for x in field]))
    return out


def _probe_entries(entries: List[SplitEntry], reader: str, quiet: bool = False):
    kept, skipped = [], []
    for e in entries:
        try:
            probe_video(e.path, reader)
            kept.append(e)
        except VideoReadError as err:
            skipped.append((e.path, err.reason))
    if skipped and not quiet:
        logger.warning("skip_broken_eval: leaving out %d unreadable video(s) of %d: %s%s",
                       len(skipped), len(entries),
                       "; ".join(f"{p} ({r})" for p, r in skipped[:20]),
                       " ..." if len(skipped) > 20 else "")
    if not kept and not quiet:
        raise VideoReadError(entries[0].path if entries else "?",
                             f"all {len(entries)} videos of the evaluation set are unreadable")
    return kept, skipped


def select_fraction(labels: Sequence, fraction: float, seed: int, stratified: bool) -> List[int]:
    """Deterministic subset of ``round(fraction * n)`` sample indices (at least one per class when
    stratified), returned sorted. Stratified: the fraction is taken from each class separately."""
    n = len(labels)
    if fraction is None or fraction >= 1.0:
        return list(range(n))
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xF4AC])
    if not stratified:
        k = max(1, int(round(fraction * n)))
        return sorted(rng.choice(n, size=k, replace=False).tolist())
    by_class = {}
    for i, lab in enumerate(labels):
        by_class.setdefault(lab, []).append(i)
    chosen = []
    for lab in sorted(by_class):
        idx = by_class[lab]
        k = max(1, int(round(fraction * len(idx))))
        chosen += [idx[j] for j in rng.choice(len(idx), size=k, replace=False).tolist()]
    return sorted(chosen)

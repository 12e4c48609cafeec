"""Data loaders whose output is a function of (seed, epoch) only.

* Training order: ``DistributedSampler(shuffle=True, seed=seed)`` (also with one process) and
  ``set_epoch(epoch)``, so the permutation depends on (seed, epoch, world size) only.
* Augmentation randomness: :class:`EpochSeededDataset` receives ``(index, epoch)`` keys from
  :class:`EpochTaggedSampler` and re-seeds python ``random``, numpy and torch from
  ``(seed, epoch, index)`` before building the item. An item's crop, flip, RandAugment, erasing and
  tube mask are therefore the same whichever worker builds it, however many workers there are,
  whether workers are persistent or not, and whether the run was interrupted and resumed.
  In the main process (``num_workers=0``) the global RNG states are saved and restored around the
  item so the training loop's own randomness (drop path, mixup) is untouched.
* Evaluation: ``DistributedSampler(shuffle=False)`` with ``--dist_eval`` (its padding duplicates are
  dropped after gathering), otherwise a sequential sampler over the whole set.
"""
from __future__ import annotations

import random
from typing import Iterator, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, SequentialSampler

from datasets.video_dataset import collate_repeated
from engine.config import TrainConfig
from engine.distributed import get_rank, get_world_size
from engine.run_lock import forget_inherited_locks

__all__ = ['derive_seed', 'EpochTaggedSampler', 'EpochSeededDataset', 'build_train_loader',
           'build_eval_loader', 'seed_everything', 'seed_worker', 'seed_epoch']

_MASK64 = (1 << 64) - 1


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (splitmix64 chain)."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (int(p) & _MASK64)) & _MASK64
        x = (x + 0x9E3779B97F4A7C15) & _MASK64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        x = z ^ (z >> 31)
    return x & ((1 << 63) - 1)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all CUDA devices too)."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: a distinct base seed per (torch's per-loader seed, worker id). Items are
    re-seeded anyway by :class:`EpochSeededDataset`; this only covers code outside items."""
    forget_inherited_locks()  # the run folder's lock belongs to the main process (engine.run_lock)
    s = torch.initial_seed() % (2 ** 32)
    random.seed(s + worker_id)
    np.random.seed((s + worker_id) % (2 ** 32))


class EpochTaggedSampler(Sampler):
    """Wraps a sampler; yields ``(index, epoch)`` so that the epoch reaches dataset workers."""

    def __init__(self, sampler: Sampler):
        self.sampler = sampler
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """``skip``: leave out the epoch's first ``skip`` indices (an epoch resumed mid-way; the
        rest come in the same order and with the same augmentation seeds)."""
        self.epoch, self.skip = int(epoch), int(skip)
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator:
        e, skip = self.epoch, self.skip
        for k, i in enumerate(self.sampler):
            if k >= skip:
                yield (int(i), e)

    def __len__(self) -> int:
        return len(self.sampler)


class EpochSeededDataset(Dataset):
    """Builds item ``index`` of ``dataset`` with all global RNGs seeded from (seed, epoch, index)."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset = dataset
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name):
        # forward attributes (num_videos, paths, ...) of the wrapped dataset
        # never forward dunders (e.g. ``__getitems__``: the DataLoader would bypass the seeding)
        if name in ('dataset', 'seed') or name.startswith('__'):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            index, epoch = key
        else:
            index, epoch = key, 0
        s = derive_seed(self.seed, epoch, index)
        in_main = torch.utils.data.get_worker_info() is None
        if in_main:
            saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        try:
            random.seed(s)
            np.random.seed(s % (2 ** 32))
            torch.random.default_generator.manual_seed(s)  # CPU generator only (CUDA untouched)
            return self.dataset[index]
        finally:
            if in_main:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])


def _loader_kwargs(cfg: TrainConfig, device_is_cuda: bool) -> dict:
    nw = int(cfg.num_workers)
    kw = dict(num_workers=nw, pin_memory=bool(cfg.pin_mem) and device_is_cuda)
    if nw > 0:
        kw['persistent_workers'] = True
        kw['prefetch_factor'] = int(cfg.prefetch_factor or 2)
        kw['worker_init_fn'] = seed_worker
    return kw


def build_train_loader(dataset: Dataset, cfg: TrainConfig, device_is_cuda: bool) -> DataLoader:
    """Shuffled, per-(seed, epoch) deterministic training loader; call ``loader.sampler.set_epoch``."""
    world, rank = get_world_size(), get_rank()
    base = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True,
                              seed=int(cfg.seed), drop_last=False)
    sampler = EpochTaggedSampler(base)
    g = torch.Generator()
    g.manual_seed(derive_seed(cfg.seed, rank, 0x10AD))
    repeated = getattr(dataset, 'num_sample', 1) > 1
    return DataLoader(EpochSeededDataset(dataset, cfg.seed), sampler=sampler,
                      batch_size=int(cfg.batch_size), drop_last=True, generator=g,
                      collate_fn=collate_repeated if repeated else None,
                      **_loader_kwargs(cfg, device_is_cuda))


def build_eval_loader(dataset: Dataset, cfg: TrainConfig, device_is_cuda: bool, distributed: bool,
                      batch_size: Optional[int] = None) -> DataLoader:
    """In order, never shuffled. ``distributed=True``: each rank gets a strided share (padded)."""
    if distributed:
        sampler = DistributedSampler(dataset, num_replicas=get_world_size(), rank=get_rank(),
                                     shuffle=False, drop_last=False)
    else:
        sampler = SequentialSampler(dataset)
    bs = int(batch_size or cfg.eval_batch_size or cfg.batch_size)
    kw = _loader_kwargs(cfg, device_is_cuda)
    kw['persistent_workers'] = False  # evaluated a few times only; free the workers after
    return DataLoader(dataset, sampler=sampler, batch_size=bs, drop_last=False, **kw)


def seed_epoch(seed: int, epoch: int) -> None:
    """The training loop's own randomness (drop path, mixup) of an epoch: a function of
    (seed, epoch, rank) only, so a run resumed at an epoch boundary repeats it exactly."""
    seed_everything(derive_seed(seed, epoch, get_rank(), 0xE90C))

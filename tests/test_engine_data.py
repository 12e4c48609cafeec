"""Loaders: data order and item randomness are functions of (seed, epoch) only."""
import random

import numpy as np
import torch
from torch.utils.data import Dataset

from engine.data import build_eval_loader, build_train_loader
from tests.helpers import train_config


class RandomItems(Dataset):
    """Items made only of random draws from the three global RNGs (like augmentations)."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.tensor([i, random.random(), np.random.rand(), torch.rand(()).item()],
                            dtype=torch.float64)


def _epochs(num_workers, epochs=(0, 1, 2), seed=3):
    args = train_config(['--seed', str(seed), '--batch_size', '4', '--num_workers', str(num_workers),
                         '--no_pin_mem', '--prefetch_factor', '2'])
    loader = build_train_loader(RandomItems(), args, device_is_cuda=False)
    out = {}
    for e in epochs:
        loader.sampler.set_epoch(e)
        out[e] = torch.cat(list(loader))
    return out


def test_train_loader_depends_on_seed_and_epoch_only():
    torch.manual_seed(123), np.random.seed(5), random.seed(7)
    a = _epochs(0)
    b = _epochs(2)  # persistent workers
    c = _epochs(0, epochs=(2, 1))  # epochs in another order (a resumed run)
    for e in (0, 1, 2):
        assert a[e].shape == (8, 4)  # 10 items, batch 4, drop_last
        torch.testing.assert_close(a[e], b[e], rtol=0, atol=0)
    for e in (1, 2):
        torch.testing.assert_close(a[e], c[e], rtol=0, atol=0)
    assert not torch.equal(a[0], a[1])  # another order and other draws every epoch
    assert not torch.equal(a[0][:, 0], a[1][:, 0])
    d = _epochs(0, seed=4)
    assert not torch.equal(a[0], d[0])


def test_main_process_rng_not_disturbed_by_items():
    torch.manual_seed(0)
    expect = torch.rand(3)
    torch.manual_seed(0)
    _epochs(0, epochs=(0,))
    torch.testing.assert_close(torch.rand(3), expect, rtol=0, atol=0)


def test_eval_loader_in_order():
    args = train_config(['--batch_size', '3', '--num_workers', '0'])
    loader = build_eval_loader(list(range(7)), args, False, distributed=False)
    assert torch.cat(list(loader)).tolist() == list(range(7))

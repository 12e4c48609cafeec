"""The trainer both entry points share: optimisation set-up, the epoch loop, checkpoints, resume.

    training = build_training(cfg, model, model_without_ddp, train_ds, layer_decay, model_ema)
    result = fit(cfg, training, compute_loss, tb, jsonl, n_params, hooks)

with ``cfg`` the run's :class:`engine.config.TrainConfig`. ``fit`` runs epochs
``training.start_epoch .. cfg.epochs - 1``: one :func:`engine.loop.train_one_epoch`
each, then the entry point's :class:`EpochHooks` (validation and model selection for fine-tuning,
the reconstruction picture for pre-training), ``checkpoint-last.pth`` (+ ``checkpoint-<N>.pth``),
one ``log.jsonl`` record and a barrier. SIGTERM / SIGUSR1 stop it after the current optimizer
step with a mid-epoch checkpoint (``engine.preemption``); a resume from that checkpoint starts at
``training.start_step`` of ``training.start_epoch``.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np
import torch

from datasets.atomic_file import atomic_write
from engine.checkpoint import (auto_load, resume_point, save_epoch_checkpoints,
                               save_preemption_checkpoint, set_rng_state)
from engine.config import TrainConfig
from engine.data import build_train_loader, seed_epoch
from engine.distributed import barrier, check_same_on_all_ranks, get_rank, is_main_process
from engine.loop import train_one_epoch
from engine.optim import build_optimizer, build_schedules
from engine.preemption import MARKER, Preempted, Preemption
from engine.step import Stepper, make_scaler

__all__ = ['Training', 'EpochHooks', 'build_training', 'fit', 'broken_log_path']


@dataclass
class Training:
    """Everything the epoch loop steps: the model (wrapped and plain), its optimizer, loss scaler,
    EMA, the loader and the per-step lr / weight-decay schedules; ``checkpoint`` is the one
    resumed from (or None), ``start_epoch`` / ``start_step`` where training continues."""
    model: torch.nn.Module
    model_without_ddp: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: Optional[torch.amp.GradScaler]
    model_ema: Optional[torch.nn.Module]
    stepper: Stepper
    train_loader: torch.utils.data.DataLoader
    steps_per_epoch: int
    lr_schedule: np.ndarray
    wd_schedule: np.ndarray
    checkpoint: Optional[Dict]
    start_epoch: int
    start_step: int


class EpochHooks:
    """What an entry point adds to the shared loop; the defaults add nothing."""

    #: the best model so far ({'metric', 'value', 'epoch'}), written into every checkpoint
    best: Optional[Dict] = None

    def on_batch(self, epoch: int) -> Optional[Callable]:
        """A callable given every batch of ``epoch`` (or None)."""
        return None

    def after_epoch(self, epoch: int, global_step: int, record: Dict) -> None:
        """After the epoch's training, before its checkpoint; may add entries to ``record``."""


def build_training(cfg: TrainConfig, model, model_without_ddp, train_ds, layer_decay: Optional[float],
                   model_ema=None, what: str = 'training samples',
                   resume_roles: Optional[Dict[str, str]] = None) -> Training:
    """Loader, optimizer (with ``layer_decay``), loss scaler, schedules and :class:`Stepper`, then
    ``--resume`` / ``--auto_resume`` (``resume_roles``: :func:`engine.checkpoint.auto_load`; the
    start, checked to be the same on every process)."""
    device = torch.device(cfg.device)
    train_loader = build_train_loader(train_ds, cfg, device.type == 'cuda')
    steps_per_epoch = len(train_loader) // cfg.update_freq
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, int(cfg.max_steps_per_epoch))
    if steps_per_epoch < 1:
        raise ValueError(f'{len(train_ds)} {what} give no full optimizer step at batch '
                         f'{cfg.batch_size} x update_freq {cfg.update_freq} x '
                         f'{cfg.world_size} processes')
    optimizer = build_optimizer(cfg, model_without_ddp, layer_decay=layer_decay)
    scaler = make_scaler(device, cfg.amp)
    lr_schedule, wd_schedule = build_schedules(cfg, steps_per_epoch)
    stepper = Stepper(model, model_without_ddp, optimizer, device, cfg.amp, cfg.update_freq,
                      cfg.clip_grad, model_ema, scaler)
    ckpt = auto_load(cfg, model_without_ddp, optimizer, scaler, model_ema, resume_roles)
    start = resume_point(ckpt, cfg)
    check_same_on_all_ranks(start, 'the epoch and step to start from (is --output_dir on a file system '
                                   'that every node sees?)')
    return Training(model, model_without_ddp, optimizer, scaler, model_ema, stepper, train_loader,
                    steps_per_epoch, lr_schedule, wd_schedule, ckpt, *start)


def broken_log_path(output_dir: Optional[str]) -> Optional[str]:
    """The file a run's training datasets append broken videos to (their ``broken_log``)."""
    return os.path.join(output_dir, '.broken_videos.log') if output_dir else None


class BrokenVideoList:
    """``<output_dir>/broken_videos.txt``: every broken training video met so far, ``path<TAB>reason``,
    sorted, one line per path. The datasets' processes append to :func:`broken_log_path`; at each
    epoch end the main process writes the deduplicated list (atomically) and counts it."""

    def __init__(self, output_dir: Optional[str]):
        self.raw = broken_log_path(output_dir)
        self.path = os.path.join(output_dir, 'broken_videos.txt') if output_dir else None
        self.count = 0

    def update(self) -> int:
        """Rewrite the list from the raw log; returns the number of distinct broken videos."""
        if not self.raw or not is_main_process() or not os.path.exists(self.raw):
            return self.count
        seen: Dict[str, str] = {}
        with open(self.raw, encoding='utf-8', errors='replace') as f:
            for line in f:
                path, _, reason = line.rstrip('\n').partition('\t')
                if path and path not in seen:
                    seen[path] = reason
        text = ''.join(f'{p}\t{seen[p]}\n' for p in sorted(seen)).encode('utf-8')
        atomic_write(self.path, lambda f: f.write(text))
        if len(seen) > self.count:
            print(f'| {len(seen)} broken video(s) met so far, replaced by other samples; listed in '
                  f'{self.path}', flush=True)
        self.count = len(seen)
        return self.count


def fit(cfg: TrainConfig, tr: Training, compute_loss: Callable, tb, jsonl, n_params: int,
        hooks: Optional[EpochHooks] = None) -> Dict:
    """The epoch loop. Returns ``{'train_history': [records], 'step_losses': {epoch: [...]}}``."""
    hooks = hooks or EpochHooks()
    result: Dict = {'train_history': [], 'step_losses': {}}
    dropped = jsonl.drop_epochs_from(tr.start_epoch)
    if dropped:
        print(f'| log.jsonl: dropped {dropped} record(s) of epochs >= {tr.start_epoch} (they are run again)')
    if tb is not None:
        tb.resume_at(tr.start_epoch, tr.steps_per_epoch, tr.start_step)
    if tb is not None and tr.start_epoch == 0:
        tb.text('args', '  \n'.join(f'{k}: {v}' for k, v in sorted(cfg.flags.items())))
    broken = BrokenVideoList(cfg.output_dir)
    marker = os.path.join(cfg.output_dir, MARKER) if cfg.output_dir else None
    if marker and is_main_process() and os.path.exists(marker):
        os.unlink(marker)  # this run continues the preempted one (engine.preemption)
    t_start = time.time()
    # the ranks agree on a signal at log lines, where the loop reads the device anyway (never per step)
    with Preemption(torch.device(cfg.device), check_every=cfg.log_every or 20) as preempt:
        for epoch in range(tr.start_epoch, cfg.epochs):
            skip = tr.start_step if epoch == tr.start_epoch else 0
            tr.train_loader.sampler.set_epoch(epoch, skip=skip * cfg.batch_size * cfg.update_freq)
            seed_epoch(cfg.seed, epoch)
            if skip:  # the loop's random state where the preempted run stopped (this rank's)
                states = (tr.checkpoint or {}).get('rng_ranks') or []
                set_rng_state(states[get_rank()] if get_rank() < len(states) else None)
            stats = train_one_epoch(tr.model, tr.train_loader, tr.stepper, epoch, tr.steps_per_epoch,
                                    compute_loss, tr.lr_schedule, tr.wd_schedule, tb, cfg.log_every,
                                    on_batch=hooks.on_batch(epoch), start_step=skip, stop=preempt.due)
            stopped_after = stats.pop('stopped_after')
            if stopped_after is not None:
                _stop(cfg, tr, hooks, preempt, epoch, stopped_after)
            global_step = (epoch + 1) * tr.steps_per_epoch
            result['step_losses'][epoch] = stats.pop('step_losses')
            if skip:
                stats['resumed_at_step'] = skip  # the record covers the steps after the resume
            record = {'epoch': epoch, **{f'train_{k}': v for k, v in stats.items()}}
            record['broken_videos'] = broken.update()
            if tb is not None:
                tb.scalars({'broken_skipped': record['train_broken_skipped'],
                            'broken_videos': record['broken_videos']}, epoch, prefix='train_epoch/')
            hooks.after_epoch(epoch, global_step, record)
            record['n_parameters'] = n_params
            record['time'] = time.time() - t_start
            # the record before the checkpoint: a crash in between reruns the epoch, whose record
            # is then replaced (drop_epochs_from below), instead of losing it
            jsonl.write(record)
            save_epoch_checkpoints(cfg, epoch, global_step, tr.model_without_ddp, tr.optimizer,
                                   tr.scaler, tr.model_ema, best=hooks.best)
            result['train_history'].append(record)
            barrier()
            if epoch + 1 < cfg.epochs and preempt.due(-1, every_rank=True):  # a signal at the end
                _stop(cfg, tr, hooks, preempt, epoch + 1, 0, saved=True)
    return result


def _stop(cfg: TrainConfig, tr: Training, hooks, preempt, epoch: int, step: int, saved: bool = False):
    """Save the state after ``step`` optimizer steps of ``epoch`` (unless the epoch-end checkpoint
    already holds it), leave the marker the Slurm script requeues on, and raise :class:`Preempted`."""
    path = os.path.join(cfg.output_dir, 'checkpoint-last.pth') if cfg.output_dir else None
    if not saved:
        save_preemption_checkpoint(cfg, epoch, step, tr.steps_per_epoch, tr.model_without_ddp,
                                   tr.optimizer, tr.scaler, tr.model_ema, best=hooks.best)
    if cfg.output_dir and is_main_process():
        text = json.dumps({'signal': preempt.signum, 'epoch': epoch, 'step': step}).encode() + b'\n'
        atomic_write(os.path.join(cfg.output_dir, MARKER), lambda f: f.write(text))
    barrier()
    raise Preempted(preempt.signum, epoch, step, path)

"""The epoch loop shared by pre-training and fine-tuning.

``train_one_epoch`` runs ``steps_per_epoch`` optimizer updates of ``update_freq`` micro-batches each.
The loss of a micro-batch comes from a ``compute_loss(batch) -> (loss, n_broken)`` callable, run under
autocast. Per-step lr / weight decay come from precomputed schedules indexed by the global optimizer
step ``epoch * steps_per_epoch + step``. Nothing is read back from the device except at
``--log_every`` steps and at the end of the epoch.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

import torch

from engine.distributed import all_reduce_sum
from engine.logger import DeviceMeter, ProgressPrinter, TensorboardLogger
from engine.optim import apply_schedules
from engine.step import NonFiniteTracker, Stepper

__all__ = ['train_one_epoch', 'EpochResult']


class EpochResult(dict):
    """Epoch statistics (averaged over processes) plus ``step_losses`` (this process, per micro-step)."""


def _log_line(progress: ProgressPrinter, stepper: Stepper, tb: Optional[TensorboardLogger],
              vals: Dict[str, float], lr: float, step: int, it: int) -> None:
    """One console line of the steps since the last (``vals``: their mean loss and grad norm), and
    the same step in TensorBoard with the lr range and the weight decay."""
    stats = {'lr': lr, 'loss': vals.get('loss', float('nan')),
             'grad_norm': vals.get('grad_norm', float('nan'))}
    scale = stepper.loss_scale()
    if scale is not None:
        stats['loss_scale'] = float(scale.item())
    progress.log(step, stats)
    if tb is not None:
        groups = stepper.optimizer.param_groups
        tb.scalars({'lr': lr, 'grad_norm': stats['grad_norm'], 'min_lr': min(g['lr'] for g in groups),
                    'weight_decay': max(g['weight_decay'] for g in groups)},
                   it, prefix='train/', axis='step')
        if scale is not None:
            tb.scalars({'loss_scale': stats['loss_scale']}, it, prefix='train/', axis='step')


def _write_epoch(tb: TensorboardLogger, losses: List[float], update_freq: int, start_it: int,
                 epoch: int, vals: Dict[str, float], overflow_steps: float, finished: bool) -> None:
    """The loss of each optimizer step on this process (rank 0; the mean of its update_freq
    micro-batches), written once per epoch on the axis of train/lr; the epoch's point (a stopped
    epoch gets it when it is finished)."""
    groups = [losses[i:i + update_freq] for i in range(0, len(losses), update_freq)]
    tb.series('train/loss_step', [sum(g) / len(g) for g in groups], start_it, axis='step')
    if finished:
        tb.scalars({'loss': vals.get('loss', float('nan')),
                    'grad_norm_epoch': vals.get('grad_norm', float('nan')),
                    'overflow_steps': overflow_steps}, epoch, prefix='train_epoch/')
    tb.flush()


def train_one_epoch(model: torch.nn.Module, loader, stepper: Stepper, epoch: int,
                    steps_per_epoch: int, compute_loss: Callable, lr_schedule,
                    wd_schedule=None, tb: Optional[TensorboardLogger] = None, log_every: int = 20,
                    header: Optional[str] = None, on_batch: Optional[Callable] = None,
                    start_step: int = 0, stop: Optional[Callable[[int], bool]] = None) -> EpochResult:
    """Optimizer steps ``start_step .. steps_per_epoch - 1`` of ``epoch`` (a resumed epoch starts
    past 0; the loader then yields the batches from that step on). ``stop(step)`` is asked after
    every step but the last; when it says so the epoch ends early and the result's ``stopped_after``
    is the number of the epoch's steps done (``engine.preemption``)."""
    model.train()
    device = stepper.device
    update_freq = stepper.update_freq
    n_micro = (steps_per_epoch - start_step) * update_freq
    stopped_after = None
    meter = DeviceMeter(device)
    tracker = NonFiniteTracker(device)
    overflow_count = torch.zeros((), device=device, dtype=torch.float64)
    broken = 0  # counted on the host: the batch's CPU tensor, no device traffic
    step_losses: List[torch.Tensor] = []
    progress = ProgressPrinter(header or f'Epoch: [{epoch}]', steps_per_epoch)
    start_it = epoch * steps_per_epoch + start_step
    lr = float('nan')
    window = DeviceMeter(device)  # stats since the last log line
    micro = -1
    for micro, batch in enumerate(loader):
        if micro >= n_micro:
            break
        step = start_step + micro // update_freq
        it = epoch * steps_per_epoch + step
        if micro % update_freq == 0:
            lr = apply_schedules(stepper.optimizer, it, lr_schedule, wd_schedule)
        if on_batch is not None and micro == 0:
            on_batch(batch)
        with stepper.micro_context(micro):
            with stepper.autocast():
                loss, n_broken = compute_loss(batch)
            loss = loss.float()
            tracker.update(loss, step)
            out = stepper.backward(loss, micro, it)
        ld = loss.detach()
        step_losses.append(ld)
        meter.update('loss', ld)
        window.update('loss', ld)
        if n_broken is not None:
            broken += int(n_broken.sum()) if torch.is_tensor(n_broken) else int(sum(n_broken))
        if out is None:
            continue
        grad_norm, overflow = out
        ok = (~overflow).to(torch.float64)
        gn = torch.where(overflow, torch.zeros_like(grad_norm), grad_norm)
        meter.update('grad_norm', gn, weight=ok)
        window.update('grad_norm', gn, weight=ok)
        overflow_count += overflow.to(torch.float64)
        last = step == steps_per_epoch - 1
        if log_every and ((step + 1) % log_every == 0 or last):
            tracker.check(epoch, total=steps_per_epoch)
            _log_line(progress, stepper, tb, window.values(), lr, step, it)
            window = DeviceMeter(device)
        if stop is not None and not last and stop(step):
            stopped_after = step + 1
            break
    if micro < 0:
        raise RuntimeError('the training loader yielded no batch (dataset smaller than one batch?)')
    tracker.check(epoch, total=steps_per_epoch)
    seconds = progress.finish()
    totals = torch.stack([overflow_count,
                          torch.tensor(float(broken), device=device, dtype=torch.float64)])
    totals = all_reduce_sum(totals).tolist()
    vals = meter.values(reduce=True)
    losses = torch.stack(step_losses).tolist() if step_losses else []
    if tb is not None and losses:
        _write_epoch(tb, losses, update_freq, start_it, epoch, vals, totals[0], stopped_after is None)
    res = EpochResult(loss=vals.get('loss', float('nan')), grad_norm=vals.get('grad_norm', float('nan')),
                      lr=lr, overflow_steps=int(totals[0]), broken_skipped=int(totals[1]),
                      steps=(stopped_after or steps_per_epoch) - start_step, seconds=seconds)
    res['step_losses'] = losses
    res['stopped_after'] = stopped_after
    return res

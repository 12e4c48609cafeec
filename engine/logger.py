"""Logging: console progress lines with ETA, TensorBoard and one JSON-lines file per run.

Training statistics are accumulated as device tensors and read back to the host only at
``--log_every`` intervals and at the end of an epoch, so a step never waits for the GPU.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import sys
import time
from typing import Dict, List, Optional

import torch

from datasets.atomic_file import atomic_write_text
from engine.config import TrainConfig
from engine.distributed import all_reduce_sum, is_main_process

__all__ = ['RateProgress', 'make_progress', 'progress_iter', 'DeviceMeter', 'ProgressPrinter', 'TensorboardLogger', 'JsonlLogger', 'format_seconds', 'print_run_header']


def format_seconds(s: float) -> str:
    if not math.isfinite(s):
        return '?'
    return str(datetime.timedelta(seconds=int(max(s, 0))))


class DeviceMeter:
    """Running sums of scalar tensors on one device (no host sync until :meth:`values`)."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.sums: Dict[str, torch.Tensor] = {}
        self.counts: Dict[str, torch.Tensor] = {}

    def update(self, name: str, value: torch.Tensor, weight=1.0) -> None:
        """Add ``value * weight`` to the sum and ``weight`` to the count (weight may be a tensor)."""
        v = value.detach().to(self.device, torch.float64)
        if name not in self.sums:
            self.sums[name] = torch.zeros((), device=self.device, dtype=torch.float64)
            self.counts[name] = torch.zeros((), device=self.device, dtype=torch.float64)
        if torch.is_tensor(weight):
            w = weight.detach().to(self.device, torch.float64)
            self.sums[name] += v * w
            self.counts[name] += w
        else:  # python scalars: no host-to-device copy
            self.sums[name] += v * float(weight)
            self.counts[name] += float(weight)

    def values(self, reduce: bool = False) -> Dict[str, float]:
        """Averages (one host sync). ``reduce=True`` sums over processes first (a collective:
        every rank must call it)."""
        if not self.sums:
            return {}
        names = sorted(self.sums)
        stacked = torch.stack([self.sums[n] for n in names] + [self.counts[n] for n in names])
        if reduce:
            stacked = all_reduce_sum(stacked)
        vals = stacked.tolist()
        k = len(names)
        return {n: (vals[i] / vals[k + i] if vals[k + i] > 0 else float('nan'))
                for i, n in enumerate(names)}


class ProgressPrinter:
    """``Epoch [e] [step/total] eta ... lr ... loss ...`` lines on the main process."""

    def __init__(self, header: str, total: int):
        self.header, self.total = header, total
        self.start = time.time()

    def line(self, step: int, stats: Dict[str, float], extra: str = '') -> str:
        done = step + 1
        elapsed = time.time() - self.start
        per_it = elapsed / max(done, 1)
        eta = per_it * (self.total - done)
        w = len(str(self.total))
        parts = [f'{self.header} [{done:>{w}}/{self.total}]', f'eta: {format_seconds(eta)}']
        for k, v in stats.items():
            parts.append(f'{k}: {v:.6g}' if isinstance(v, float) else f'{k}: {v}')
        parts.append(f'time/it: {per_it:.3f}s')
        if torch.cuda.is_available():
            parts.append(f'max mem: {torch.cuda.max_memory_allocated() / 2 ** 20:.0f}MB')
        if extra:
            parts.append(extra)
        return '  '.join(parts)

    def log(self, step: int, stats: Dict[str, float], extra: str = '') -> None:
        if is_main_process():
            print(self.line(step, stats, extra), flush=True)

    def finish(self) -> float:
        total = time.time() - self.start
        if is_main_process():
            print(f'{self.header} total time: {format_seconds(total)} '
                  f'({total / max(self.total, 1):.3f} s / it)', flush=True)
        return total


PROGRESS_INTERVAL_S = 10.0  # seconds between progress lines of long non-training passes


class RateProgress:
    """Progress of a long pass that is not training (evaluation, prediction, feature extraction):
    ``<header> [done/total unit]  <rate> unit/s  eta ...``, one line every ``interval_s`` seconds
    (default ``PROGRESS_INTERVAL_S``)
    and one at the end, on the main process only (plain lines, so log files stay readable)."""

    def __init__(self, header: str, total: int, unit: str = 'views', interval_s: Optional[float] = None,
                 stream=None):
        self.header, self.total, self.unit, self.stream = header, int(total), unit, stream
        self.interval_s = PROGRESS_INTERVAL_S if interval_s is None else interval_s
        self.start = self.last = time.time()
        self.done = 0

    def line(self) -> str:
        elapsed = max(time.time() - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float('nan')
        w = len(str(self.total))
        eta_s = format_seconds(eta) if eta == eta else '?'
        # below one item a second, seconds per item ('0.0 views/s' says nothing)
        speed = f'{rate:.1f} {self.unit}/s' if rate >= 1 else \
            (f'{1 / rate:.1f} s/{self.unit.rstrip("s")}' if rate > 0 else f'- {self.unit}/s')
        return (f'{self.header} [{self.done:>{w}}/{self.total} {self.unit}]  {speed}  '
                f'eta {eta_s}  elapsed {format_seconds(elapsed)}')

    def update(self, n: int) -> None:
        self.done += int(n)
        now = time.time()
        if now - self.last >= self.interval_s and self.done < self.total:
            self.last = now
            if is_main_process():
                print(self.line(), file=self.stream, flush=True)

    def finish(self) -> None:
        if is_main_process():
            print(self.line(), file=self.stream, flush=True)

    close = finish  # the tqdm-like name make_progress's callers use


def make_progress(total: int, desc: str, unit: str, enabled: bool = True):
    """A progress display with ``update(n)`` and ``close()``: a tqdm bar when stderr is a terminal,
    else :class:`RateProgress` lines on stderr (one per interval, so log files stay readable);
    nothing on processes other than the main one or when not ``enabled``."""
    if not enabled or not is_main_process():
        return _NoProgress()
    if sys.stderr.isatty():
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, unit=unit, smoothing=0.05)
    return RateProgress(desc, total, unit, stream=sys.stderr)


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_iter(iterable, total: int, desc: str, unit: str, enabled: bool = True):
    """Iterate ``iterable`` while :func:`make_progress` shows how far it is."""
    bar = make_progress(total, desc, unit, enabled)
    try:
        for item in iterable:
            yield item
            bar.update(1)
    finally:
        bar.close()


class TensorboardLogger:
    """TensorBoard writers (``torch.utils.tensorboard``) on the main process; a silent stub elsewhere
    or without a log dir.

    Two x-axes, two event directories: epoch scalars (``train_epoch/*``, ``val/*``, ``test*/*``,
    images, the flags) in ``log_dir`` and optimizer-step scalars (``train/*``) in ``log_dir/steps``.
    A resumed run says where it resumes (:meth:`resume_at`) before the files open, and each writer
    then purges the events it will write again (``purge_step``, one threshold per file, hence one
    axis per directory): after a kill anywhere in an epoch every point is read once. :meth:`flush`
    (every epoch end) returns once every event written so far is on disk."""

    STEP_SUBDIR = 'steps'

    def __init__(self, log_dir: Optional[str]):
        self.log_dir = log_dir if log_dir and is_main_process() else None
        self._purge = {'epoch': None, 'step': None}
        self._writers = {}

    def resume_at(self, epoch: int, steps_per_epoch: int, start_step: int = 0) -> None:
        """Drop the events of epochs >= ``epoch`` (and of their optimizer steps from ``start_step``
        of ``epoch`` on: a preempted epoch keeps the steps it did) when the files open. Also at
        epoch 0: a run killed before its first checkpoint starts again from scratch."""
        self._purge = {'epoch': int(epoch), 'step': int(epoch) * int(steps_per_epoch) + int(start_step)}

    def _writer(self, axis: str):
        if axis not in self._purge:
            raise ValueError(f'unknown TensorBoard axis {axis!r} (epoch or step)')
        if axis not in self._writers and self.log_dir:
            from torch.utils.tensorboard import SummaryWriter
            d = self.log_dir if axis == 'epoch' else os.path.join(self.log_dir, self.STEP_SUBDIR)
            os.makedirs(d, exist_ok=True)
            self._writers[axis] = SummaryWriter(log_dir=d, purge_step=self._purge[axis])
        return self._writers.get(axis)

    def scalars(self, values: Dict[str, float], step: int, prefix: str = '', axis: str = 'epoch') -> None:
        w = self._writer(axis)
        if w is None:
            return
        for k, v in values.items():
            if isinstance(v, (int, float)) and math.isfinite(float(v)):
                w.add_scalar(f'{prefix}{k}', float(v), step)

    def series(self, tag: str, values: List[float], first_step: int, axis: str = 'step') -> None:
        w = self._writer(axis)
        if w is None:
            return
        for i, v in enumerate(values):
            if math.isfinite(v):
                w.add_scalar(tag, v, first_step + i)

    def image(self, tag: str, img_chw, step: int) -> None:
        w = self._writer('epoch')
        if w is not None:
            w.add_image(tag, img_chw, step, dataformats='CHW')

    def text(self, tag: str, text: str, step: int = 0) -> None:
        w = self._writer('epoch')
        if w is not None:
            w.add_text(tag, text, step)

    def flush(self) -> None:
        for w in self._writers.values():
            w.flush()

    def close(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers = {}
        self.log_dir = None


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


class JsonlLogger:
    """Appends one JSON object per line to ``<output_dir>/log.jsonl`` (main process only)."""

    def __init__(self, output_dir: Optional[str], name: str = 'log.jsonl'):
        self.path = os.path.join(output_dir, name) if output_dir and is_main_process() else None

    def write(self, record: Dict) -> None:
        if self.path is None:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, 'a') as f:
            f.write(json.dumps(_jsonable(record), sort_keys=False) + '\n')
            f.flush()

    def drop_epochs_from(self, epoch: int) -> int:
        """Remove the records a resumed run writes again: those of epochs >= ``epoch`` and the final
        records of an earlier end (at epoch 0, a run killed before its first checkpoint, all of
        them). Returns how many were removed."""
        if self.path is None or not os.path.isfile(self.path):
            return 0
        with open(self.path) as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
        keep = []
        for ln in lines:
            try:
                rec = json.loads(ln)
            except json.JSONDecodeError:
                continue                                    # a line cut by a crash
            e = rec.get('epoch')
            if isinstance(e, int) and e < epoch:
                keep.append(ln)
        if len(keep) == len(lines):
            return 0
        atomic_write_text(self.path, ''.join(ln + '\n' for ln in keep))
        return len(lines) - len(keep)


def print_run_header(cfg: TrainConfig, model, n_params: int, steps_per_epoch: Optional[int],
                     start_epoch: int = 0) -> None:
    if not is_main_process():
        return
    print(f'| model {cfg.model}: {n_params / 1e6:.2f}M trainable parameters')
    if steps_per_epoch is not None:
        print(f'| total batch {cfg.total_batch_size} = {cfg.batch_size} x {cfg.update_freq} '
              f'(update_freq) x {cfg.world_size} (processes); lr {cfg.lr:.3e}; '
              f'{steps_per_epoch} optimizer steps per epoch, {cfg.epochs} epochs; amp {cfg.amp}')
    if cfg.output_dir:
        os.makedirs(cfg.output_dir, exist_ok=True)
        # a resumed run keeps the first run's args.json and writes its own beside it
        name = 'args.json' if not start_epoch else f'args-resumed-at-epoch-{start_epoch}.json'
        atomic_write_text(os.path.join(cfg.output_dir, name),
                          json.dumps(cfg.flags, indent=1, sort_keys=True))

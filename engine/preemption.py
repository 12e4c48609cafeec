"""Preemption: SIGTERM or SIGUSR1 ends a training run at the next optimizer step, with a checkpoint.

Slurm and Kubernetes send SIGTERM before they stop a job; ``sbatch --signal=USR1@T`` sends SIGUSR1
T seconds before the time limit. The handler only records the signal. The training loop asks
:meth:`Preemption.due` after each optimizer step; under DDP the ranks agree with a one-number
all-reduce every ``check_every`` steps (the same steps on every rank), so every rank stops after
the same step even when only one of them was signalled. The run then saves a mid-epoch checkpoint
(``engine.trainer.fit``), writes ``<output_dir>/preempted.json`` and ends with
:class:`Preempted`, which the entry points turn into exit status 128 + the signal number. The same
command resumes it: the epoch goes on at the next step, with the same data order and random state,
so the result is bit-exact with an uninterrupted run.
"""
from __future__ import annotations

import signal
import threading
from typing import Optional

import torch

from engine.distributed import all_reduce_max, get_world_size

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
MARKER = 'preempted.json'


class Preempted(RuntimeError):
    """The run stopped on a signal after saving a checkpoint; ``exit_code`` is 128 + the signal."""

    def __init__(self, signum: int, epoch: int, step: int, path: Optional[str]):
        self.signum, self.epoch, self.step, self.path = int(signum), int(epoch), int(step), path
        self.exit_code = 128 + self.signum
        super().__init__(f'stopped by {signal.Signals(self.signum).name} after step {step} of epoch '
                         f'{epoch}; saved {path or "(no --output_dir: nothing saved)"}; run the same '
                         f'command again to continue from there')


class Preemption:
    """Context manager: installs the handlers (main thread only) and restores the previous ones."""

    def __init__(self, device: torch.device, check_every: int = 1):
        self.device = device
        self.check_every = max(1, int(check_every))
        self.signum: Optional[int] = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
            print(f'| received {signal.Signals(signum).name}: saving a checkpoint after the current '
                  f'optimizer step, then stopping', flush=True)

    def __enter__(self) -> 'Preemption':
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()

    def due(self, step: int, every_rank: bool = False) -> bool:
        """Whether to stop after optimizer step ``step`` (0-based within the epoch), the same
        answer on every rank; ``every_rank``: agree now, whatever the step (all ranks call it)."""
        if get_world_size() == 1:
            return self.signum is not None
        if not every_rank and (step + 1) % self.check_every:
            return False
        flag = torch.tensor([float(self.signum or 0)], device=self.device)
        agreed = int(all_reduce_max(flag).item())
        if agreed and self.signum is None:
            self.signum = agreed  # another rank was signalled
        return agreed > 0

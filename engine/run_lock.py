"""A run's folder belongs to one run: an OS lock on ``<output_dir>/.run.lock``.

The main process of a training run (or of an evaluation) takes an exclusive ``flock`` on the file
for as long as it runs. The kernel releases it when the process ends, however it ends (kill -9
included), so a crash never leaves a stale lock. A second run on the folder is refused with one
line naming the holder (pid, host, start time, what it is doing), which the holder writes into the
file. A non-blocking attempt never waits.

Shared file systems: on Linux, ``flock`` on an NFS mount is carried out as a POSIX lock by the NFS
lock manager (NFSv4, or NFSv3 with lockd), so a run on another node is refused too. Mounted with
``nolock`` (or ``local_lock=all``), the lock is only seen on one machine; a file system that
refuses locks altogether (ENOLCK, EOPNOTSUPP) is reported in one warning and the run goes on
unlocked (docs/launch.md).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from typing import Dict, Optional

from engine.config import TrainConfig

LOCK_NAME = '.run.lock'
_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class RunDirBusyError(RuntimeError):
    """Another live process holds the run folder."""


def holder_info(output_dir: str) -> Dict:
    """What the holder wrote into the lock file (empty when unreadable)."""
    try:
        with open(os.path.join(output_dir, LOCK_NAME), encoding='utf-8') as f:
            return json.loads(f.read() or '{}')
    except (OSError, ValueError):
        return {}


class RunDirLock:
    """Exclusive, non-blocking lock on a run folder; ``what`` ('training', 'evaluation') is
    recorded for the message another run would see."""

    def __init__(self, output_dir: str, what: str):
        self.output_dir = output_dir
        self.path = os.path.join(output_dir, LOCK_NAME)
        self.what = what
        self.fd: Optional[int] = None

    def acquire(self) -> 'RunDirLock':
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirBusyError(self._busy_message()) from None
            if e.errno in _UNSUPPORTED:
                print(f'| WARNING: cannot lock {self.output_dir} ({os.strerror(e.errno)}): this file '
                      f'system does not support locks, so nothing stops a second run from using the '
                      f'folder', flush=True)
                return self
            raise
        self.fd = fd
        info = {'pid': os.getpid(), 'host': socket.gethostname(), 'what': self.what,
                'started': time.strftime('%Y-%m-%d %H:%M:%S %Z'), 'command': ' '.join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + '\n').encode('utf-8'), 0)
        return self

    def _busy_message(self) -> str:
        h = holder_info(self.output_dir)
        who = (f"pid {h.get('pid', '?')} on {h.get('host', '?')}, {h.get('what', 'a run')} started "
               f"{h.get('started', '?')}") if h else 'another process'
        hint = (' (--eval writes its log and predictions to --output_dir: give it a folder of its own)'
                if self.what == 'evaluation' else '')
        return (f'{self.output_dir} is in use by a live run ({who}); two runs on one folder overwrite '
                f'each other\'s checkpoints and logs: wait for it to end, or give another --output_dir'
                f'{hint}')

    def release(self) -> None:
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None


_held: Dict[str, RunDirLock] = {}


def lock_run_dir(output_dir: str, what: str) -> RunDirLock:
    """Take the folder's lock for this process (once per folder); :func:`release_run_dirs` or the
    end of the process releases it."""
    key = os.path.realpath(output_dir)
    if key not in _held:
        _held[key] = RunDirLock(output_dir, what).acquire()
    return _held[key]


def forget_inherited_locks() -> None:
    """In a forked child (a DataLoader worker): close the inherited lock descriptors without
    unlocking, so that when the run's process dies the lock goes with it at once, not when its
    workers notice some seconds later."""
    for lock in _held.values():
        if lock.fd is not None:
            try:
                os.close(lock.fd)
            except OSError:
                pass
            lock.fd = None
    _held.clear()


def release_run_dirs() -> None:
    """Release every folder this process holds (the end of a run called in-process)."""
    while _held:
        _held.popitem()[1].release()


class OutputDirError(OSError):
    """--output_dir (or --log_dir) cannot be created or written; names the folder."""


def check_output_dirs(cfg: TrainConfig) -> None:
    """Create ``--output_dir`` and ``--log_dir`` and write a probe file into each, before anything
    is built, so a read-only or mistyped path fails at once with one line naming it; then take the
    output folder's lock, so a second run on it is refused in one line. The main process calls it."""
    for flag, d in (('--output_dir', cfg.output_dir), ('--log_dir', cfg.log_dir)):
        if not d:
            continue
        try:
            os.makedirs(d, exist_ok=True)
            probe = os.path.join(d, f'.write-test-{os.getpid()}')
            with open(probe, 'w') as f:
                f.write('ok')
            os.unlink(probe)
        except OSError as e:
            raise OutputDirError(f'cannot write to {flag} {d}: {e.strerror or e}') from None
    if cfg.output_dir:
        # the folder is this run's until it ends (engine.run_lock); a second run is refused
        lock_run_dir(cfg.output_dir, 'evaluation' if cfg.eval else 'training')

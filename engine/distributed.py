"""Distributed helpers.

One code path for: a plain process (CPU or one GPU, no process group), ``torchrun`` on one or many
nodes (``env://``: RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT) and Slurm ``srun``
(SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID). Every collective here is a no-op when no process
group is initialised, so callers never need to test for it.
"""
from __future__ import annotations

import datetime
import os
import subprocess
from dataclasses import dataclass
from typing import Any, Callable, List

import torch
import torch.distributed as dist

from engine.run_lock import release_run_dirs

__all__ = [
    'DistEnv', 'init_distributed_mode', 'is_dist_avail_and_initialized', 'get_rank', 'get_world_size',
    'is_main_process', 'barrier', 'all_gather_object', 'all_reduce_max', 'all_reduce_sum',
    'destroy_distributed', 'setup_for_distributed_print', 'check_same_on_all_ranks',
]


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the run, as the launcher set it up."""
    distributed: bool = False   # a process group is initialised
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0         # the GPU index on its node
    device: str = 'cpu'         # 'cuda:<local_rank>' or 'cpu'


def is_dist_avail_and_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if is_dist_avail_and_initialized() else 1


def get_rank() -> int:
    return dist.get_rank() if is_dist_avail_and_initialized() else 0


def is_main_process() -> bool:
    return get_rank() == 0


def _slurm_master_addr() -> str:
    nodelist = os.environ.get('SLURM_JOB_NODELIST') or os.environ.get('SLURM_NODELIST')
    if not nodelist:
        return '127.0.0.1'
    try:
        out = subprocess.check_output(['scontrol', 'show', 'hostnames', nodelist], text=True)
        return out.split()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        # a plain single-host name list ("node01") still works
        return nodelist.split(',')[0].split('[')[0]


def _env_int(name: str, default: int = 0) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def init_distributed_mode(device: str = 'cuda') -> DistEnv:
    """This process's :class:`DistEnv` for the requested ``device`` (cuda falls back to the CPU
    when there is none) and, for more than one process, the default process group (nccl on CUDA,
    gloo on CPU).

    Launch modes: torchrun (RANK/WORLD_SIZE set), Slurm srun with more than one task
    (SLURM_PROCID/SLURM_NTASKS; MASTER_ADDR from the node list, MASTER_PORT default 29500),
    otherwise a plain single process with no process group. Under torchrun the group is made even
    for one process, so that a one-GPU torchrun exercises the same NCCL path as a node.
    """
    want_cuda = str(device).startswith('cuda')
    if want_cuda and not torch.cuda.is_available():
        print('| CUDA is not available: running on CPU')
        want_cuda = False

    launched = 'RANK' in os.environ and 'WORLD_SIZE' in os.environ
    if launched:
        rank, world_size = _env_int('RANK'), _env_int('WORLD_SIZE', 1)
        local_rank = _env_int('LOCAL_RANK', 0)
    elif 'SLURM_PROCID' in os.environ and _env_int('SLURM_NTASKS', 1) > 1:
        rank, world_size = _env_int('SLURM_PROCID'), _env_int('SLURM_NTASKS', 1)
        local_rank = _env_int('SLURM_LOCALID', 0)
        os.environ.setdefault('MASTER_ADDR', _slurm_master_addr())
        os.environ.setdefault('MASTER_PORT', '29500')
        os.environ['RANK'], os.environ['WORLD_SIZE'] = str(rank), str(world_size)
        os.environ['LOCAL_RANK'] = str(local_rank)
    else:
        rank, world_size, local_rank = 0, 1, 0

    if want_cuda:
        torch.cuda.set_device(local_rank)
    env = DistEnv(distributed=world_size > 1 or launched, rank=rank, world_size=world_size,
                  local_rank=local_rank, device=f'cuda:{local_rank}' if want_cuda else 'cpu')
    if not env.distributed:   # torchrun with one process still gets a process group
        return env

    backend = 'nccl' if want_cuda else 'gloo'
    timeout = datetime.timedelta(minutes=int(os.environ.get('SVFAP_DIST_TIMEOUT_MIN', 60)))
    kwargs = dict(backend=backend, init_method='env://', world_size=world_size, rank=rank,
                  timeout=timeout)
    if want_cuda:
        kwargs['device_id'] = torch.device(env.device)
    if not dist.is_initialized():
        dist.init_process_group(**kwargs)
    print(f'| distributed init (rank {rank}/{world_size}, local rank {local_rank}, '
          f'backend {backend}, master {os.environ.get("MASTER_ADDR")}:{os.environ.get("MASTER_PORT")})',
          flush=True)
    barrier()
    setup_for_distributed_print(rank == 0)
    return env


def destroy_distributed(wait: bool = True) -> None:
    """Tear down the process group (after a barrier unless ``wait=False``) and restore print."""
    if is_dist_avail_and_initialized():
        try:
            if wait:
                barrier()
        finally:
            dist.destroy_process_group()
    restore_print()


def run_with_process_group(run: Callable, args):
    """Initialise the process group from the environment (torchrun / Slurm; a plain process stays
    single), call ``run(args, env)`` with this process's :class:`DistEnv` and tear the group down. A group initialised by the caller (tests,
    notebooks) is left alone; after a failure the teardown skips the barrier, since the other
    processes may be stuck."""
    owns_pg = not (dist.is_available() and dist.is_initialized())
    env = init_distributed_mode(args.device)
    try:
        result = run(args, env)
    except BaseException:
        release_run_dirs()
        if owns_pg:
            destroy_distributed(wait=False)
        raise
    release_run_dirs()  # the run's folder lock (engine.run_lock), taken by check_output_dirs
    if owns_pg:
        destroy_distributed()
    return result


def barrier() -> None:
    if not is_dist_avail_and_initialized():
        return
    if dist.get_backend() == 'nccl' and torch.cuda.is_available():
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def all_gather_object(obj: Any) -> List[Any]:
    """Gather one picklable object from every rank (a one-element list without a process group)."""
    if not is_dist_avail_and_initialized():
        return [obj]
    out: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def check_same_on_all_ranks(value, what: str) -> None:
    """Raise on every rank when ranks disagree about ``value`` (e.g. the resume epoch when the
    output folder is not on a file system that every node sees)."""
    values = all_gather_object(value)
    if any(v != values[0] for v in values):
        raise RuntimeError(f'processes disagree about {what}: {values}')


def _reduce(t: torch.Tensor, op) -> torch.Tensor:
    if not is_dist_avail_and_initialized():
        return t
    t = t.clone()
    dist.all_reduce(t, op=op)
    return t


def all_reduce_max(t: torch.Tensor) -> torch.Tensor:
    return _reduce(t, dist.ReduceOp.MAX)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    return _reduce(t, dist.ReduceOp.SUM)


_builtin_print = None


def setup_for_distributed_print(is_master: bool) -> None:
    """Silence ``print`` on non-main ranks (``print(..., force=True)`` still prints)."""
    import builtins
    global _builtin_print
    if _builtin_print is None:
        _builtin_print = builtins.print

    def _print(*a, **kw):
        force = kw.pop('force', False)
        if is_master or force:
            _builtin_print(*a, **kw)

    builtins.print = _print


def restore_print() -> None:
    import builtins
    global _builtin_print
    if _builtin_print is not None:
        builtins.print = _builtin_print
        _builtin_print = None


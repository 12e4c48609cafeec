"""Pieces of the entry points shared by ``run_pretrain.py`` and ``run_finetune.py``."""
from __future__ import annotations

import json
import os
import sys
from typing import Callable, Dict, Optional

import torch

from engine.checkpoint import (ResumeMismatchError, atomic_copy, get_rng_state,
                               plain_args, rotate_last, save_checkpoint)
from engine.data import derive_seed, seed_everything
from engine.distributed import all_gather_object, get_rank, is_main_process
from engine.optim import cosine_scheduler
from engine.preemption import Preempted
from engine.run_lock import RunDirBusyError, lock_run_dir
from engine.step import NonFiniteLossError
from models.checkpoint import CheckpointError, check_checkpoint_file

__all__ = ['configure_backends', 'seed_epoch', 'build_schedules', 'save_epoch_checkpoints',
           'print_run_header', 'build_ema', 'cli_main', 'check_output_dirs', 'check_input_files',
           'OutputDirError']


def configure_backends(device: torch.device) -> Dict[str, bool]:
    """Process-wide numeric / kernel settings for training on ``device`` (both entry points).

    * CPU: flush subnormal floats to zero (``torch.set_flush_denormal``). AdamW's second moments of
      small gradients underflow into subnormals in the first steps, and x86 handles them in slow
      microcode (measured ~3x slower steps on the tiny model; docs/performance.md).
    * CUDA: TF32 for fp32 matmuls and convolutions (the legacy ``allow_tf32`` flags, the API the
      benchmarks use; mixing it with the new ``fp32_precision`` API is an error in torch >= 2.9) and
      ``cudnn.benchmark`` (the clip shape is fixed within a run: the 3-D patch convolution picks its
      fastest algorithm once).
    Returns what was set.
    """
    device = torch.device(device)
    done: Dict[str, bool] = {}
    if device.type == 'cpu':
        done['flush_denormal'] = bool(torch.set_flush_denormal(True))
    elif device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        done.update(tf32=True, cudnn_benchmark=True)
    return done


def seed_epoch(seed: int, epoch: int) -> None:
    """The training loop's own randomness (drop path, mixup) of an epoch: a function of
    (seed, epoch, rank) only, so a run resumed at an epoch boundary repeats it exactly."""
    seed_everything(derive_seed(seed, epoch, get_rank(), 0xE90C))


def guard_min_lr(args) -> None:
    """A scaled lr below the absolute ``--min_lr`` (a small total batch) would make the cosine
    schedule climb to min_lr; clamp min_lr (and the warm-up start) to the lr, with a warning."""
    for flag in ('min_lr', 'warmup_lr'):
        v = getattr(args, flag, None)
        if v is not None and v > args.lr:
            if is_main_process():
                print(f'| WARNING: --{flag} {v:.3g} is above the lr {args.lr:.3g} (total batch '
                      f'{getattr(args, "total_batch_size", "?")}): the schedule would rise; --{flag} '
                      f'set to {args.lr:.3g}', flush=True)
            setattr(args, flag, args.lr)


def build_schedules(args, steps_per_epoch: int):
    guard_min_lr(args)
    lr_schedule = cosine_scheduler(args.lr, args.min_lr, args.epochs, steps_per_epoch,
                                   warmup_epochs=args.warmup_epochs, start_warmup_value=args.warmup_lr,
                                   warmup_steps=args.warmup_steps)
    wd_schedule = None
    if args.weight_decay_end is not None:
        wd_schedule = cosine_scheduler(args.weight_decay, args.weight_decay_end, args.epochs,
                                       steps_per_epoch)
    return lr_schedule, wd_schedule


def save_epoch_checkpoints(args, epoch: int, global_step: int, model_without_ddp, optimizer, scaler,
                           model_ema, best: Optional[Dict] = None) -> Optional[str]:
    """checkpoint-last.pth every epoch; checkpoint-<epoch>.pth every --save_ckpt_freq epochs and at
    the end, written first (``checkpoint-last.pth`` is then its atomic copy), so a crash between the
    two leaves the newer numbered file, which resume prefers. The previous checkpoint-last.pth is
    kept as checkpoint-prev.pth (renamed before each replace): if the new one turns out unreadable,
    resuming falls back one epoch, not --save_ckpt_freq epochs. Main process only; atomic."""
    if not (args.output_dir and getattr(args, 'save_ckpt', True)) or not is_main_process():
        return None
    last = rotate_last(args.output_dir)
    freq = max(int(args.save_ckpt_freq or 0), 0)
    state = dict(model=model_without_ddp, optimizer=optimizer, scaler=scaler, model_ema=model_ema,
                 epoch=epoch, global_step=global_step, args=args, best=best)
    if (freq and (epoch + 1) % freq == 0) or epoch + 1 == args.epochs:
        numbered = os.path.join(args.output_dir, f'checkpoint-{epoch}.pth')
        save_checkpoint(numbered, **state)
        atomic_copy(numbered, last)
    else:
        save_checkpoint(last, **state)
    return last


def save_preemption_checkpoint(args, epoch: int, step: int, steps_per_epoch: int, model_without_ddp,
                               optimizer, scaler, model_ema, best: Optional[Dict] = None) -> None:
    """checkpoint-last.pth after ``step`` optimizer steps of ``epoch`` (the old one becomes
    checkpoint-prev.pth), with every rank's random state: a resume continues the epoch at that step
    bit-exactly (``engine.preemption``). Called on every rank (the states are gathered)."""
    rng = all_gather_object(get_rng_state())
    if not (args.output_dir and getattr(args, 'save_ckpt', True)) or not is_main_process():
        return
    save_checkpoint(rotate_last(args.output_dir), model=model_without_ddp, optimizer=optimizer,
                    scaler=scaler, model_ema=model_ema, epoch=epoch - 1,
                    global_step=epoch * steps_per_epoch + step, args=args, best=best,
                    extra={'resume_step': {'epoch': int(epoch), 'step': int(step)}, 'rng_ranks': rng})


def print_run_header(args, model, n_params: int, steps_per_epoch: Optional[int]) -> None:
    if not is_main_process():
        return
    print(f'| model {args.model}: {n_params / 1e6:.2f}M trainable parameters')
    if steps_per_epoch is not None:
        print(f'| total batch {args.total_batch_size} = {args.batch_size} x {args.update_freq} '
              f'(update_freq) x {args.world_size} (processes); lr {args.lr:.3e}; '
              f'{steps_per_epoch} optimizer steps per epoch, {args.epochs} epochs; amp {args.amp}')
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
        # a resumed run keeps the first run's args.json and writes its own beside it
        name = 'args.json' if not args.start_epoch else f'args-resumed-at-epoch-{args.start_epoch}.json'
        with open(os.path.join(args.output_dir, name), 'w') as f:
            json.dump(plain_args(args), f, indent=1, sort_keys=True)


class OutputDirError(OSError):
    """--output_dir (or --log_dir) cannot be created or written; names the folder."""


def check_output_dirs(args) -> None:
    """Create ``--output_dir`` and ``--log_dir`` and write a probe file into each, before anything
    is built, so a read-only or mistyped path fails at once with one line naming it; then take the
    output folder's lock (main process), so a second run on it is refused in one line."""
    if not is_main_process():
        return
    for flag, d in (('--output_dir', getattr(args, 'output_dir', None)), ('--log_dir', getattr(args, 'log_dir', None))):
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
    if getattr(args, 'output_dir', None):
        # the folder is this run's until it ends (engine.run_lock); a second run is refused
        lock_run_dir(args.output_dir, 'evaluation' if getattr(args, 'eval', False) else 'training')


def check_input_files(args) -> None:
    """``--resume`` and ``--finetune``: present and not visibly truncated, checked before anything
    is built (a torch zip file must end with its central directory). Reading them comes later."""
    for flag in ('resume', 'finetune'):
        path = getattr(args, flag, None)
        if path:
            try:
                check_checkpoint_file(path)
            except CheckpointError as e:
                raise CheckpointError(f'--{flag} {e}') from None


def build_ema(args, model_without_ddp):
    if not getattr(args, 'model_ema', False):
        return None
    from timm.utils import ModelEmaV3
    ema = ModelEmaV3(model_without_ddp, decay=args.model_ema_decay)
    print(f'| EMA of the weights, decay {args.model_ema_decay}')
    return ema


def _user_errors():
    from datasets.split_file import MissingPathsError, SplitFileError
    from datasets.transforms import InputCropError
    from datasets.video_dataset import TooManyBrokenVideos
    from datasets.video_reader import VideoReadError
    from models.checkpoint import CheckpointError, check_checkpoint_file
    return (NonFiniteLossError, CheckpointError, ResumeMismatchError, OutputDirError,
            CheckpointError, SplitFileError, MissingPathsError, VideoReadError, TooManyBrokenVideos,
            InputCropError, RunDirBusyError)


def cli_main(main: Callable) -> None:
    """``if __name__ == '__main__'`` of the entry points: a user error (a non-finite loss, an
    unreadable checkpoint, a bad split line, a broken evaluation video, an unwritable folder, a
    missing split file) ends the process with its message and exit code 1 instead of a traceback;
    ``--debug`` (or ``SVFAP_DEBUG=1``) shows the traceback. Internal errors keep theirs."""
    debug = '--debug' in sys.argv or os.environ.get('SVFAP_DEBUG') == '1'
    try:
        main()
    except Preempted as e:
        print(f'| {e}', file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    except _user_errors() + (FileNotFoundError,) as e:
        if debug:
            raise
        msg = str(e) if not isinstance(e, FileNotFoundError) or not e.filename else \
            f'{e.strerror}: {e.filename}'
        print(f'ERROR (rank {get_rank()}): {msg}', file=sys.stderr, flush=True)
        sys.exit(1)

"""Our own training checkpoints: atomic writes, exact resume, RNG state capture.

Format (a dict that ``torch.load(..., weights_only=True)`` reads back)::

    {'model': state_dict, 'optimizer': ..., 'scaler': ... | None, 'model_ema': ... | None,
     'epoch': last finished epoch (0-based), 'global_step': optimizer steps done,
     'args': plain dict, 'rng': {'python', 'numpy', 'torch', 'cuda'}, 'best': {...} | None,
     'format': 'svfap-train-v1'}

Checkpoints are only written at epoch boundaries, so a resumed run starts a fresh epoch; the data
order and every augmentation draw of an epoch are functions of (seed, epoch) (see ``engine.data``),
which is what makes an interrupted-and-resumed run equal to an uninterrupted one.

Released checkpoints of the published implementation (and pre-trained encoders to fine-tune from)
are loaded by ``models.checkpoint.load_checkpoint`` (``--finetune``), not here.
"""
from __future__ import annotations

import glob
import os
import random
import re
import shutil
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from datasets.atomic_file import atomic_write
from engine.config import TrainConfig, plain_flags
from engine.distributed import all_gather_object, is_main_process
from models.checkpoint import CheckpointError, check_checkpoint_file, read_checkpoint

__all__ = ['atomic_torch_save', 'atomic_copy', 'save_checkpoint', 'resume_candidates',
           'remove_stale_temp_files',
           'get_rng_state', 'set_rng_state', 'auto_load', 'resume_point', 'CHECKPOINT_FORMAT',
           'ResumeMismatchError', 'changed_flags', 'save_epoch_checkpoints', 'save_preemption_checkpoint', 'check_input_files']

CHECKPOINT_FORMAT = 'svfap-train-v1'


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_copy(src: str, dst: str) -> None:
    """Copy ``src`` to ``dst`` through :func:`atomic_write` (same guarantees, same file mode)."""
    def copy(f):
        with open(src, 'rb') as s:
            shutil.copyfileobj(s, f, 16 * 2 ** 20)
    atomic_write(dst, copy)


def get_rng_state() -> Dict[str, Any]:
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        'python': [py[0], list(py[1]), py[2]],
        'numpy': {'name': np_state[0], 'keys': torch.from_numpy(np_state[1].astype(np.int64)),
                  'pos': int(np_state[2]), 'has_gauss': int(np_state[3]),
                  'cached_gaussian': float(np_state[4])},
        'torch': torch.get_rng_state(),
        'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: Optional[Dict[str, Any]]) -> None:
    if not state:
        return
    if 'python' in state:
        v, internal, gauss = state['python']
        random.setstate((v, tuple(int(x) for x in internal), gauss))
    if 'numpy' in state:
        s = state['numpy']
        np.random.set_state((s['name'], s['keys'].numpy().astype(np.uint32), int(s['pos']),
                             int(s['has_gauss']), float(s['cached_gaussian'])))
    if 'torch' in state:
        torch.set_rng_state(state['torch'].cpu())
    cuda = state.get('cuda') or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([c.cpu() for c in cuda])


def save_checkpoint(path: str, *, model, optimizer=None, scaler=None, model_ema=None, epoch: int,
                    global_step: int, args=None, best: Optional[Dict] = None,
                    extra: Optional[Dict] = None) -> Optional[str]:
    """Write one checkpoint atomically (main process only; returns the path or None)."""
    if not is_main_process():
        return None
    obj = {
        'model': model.state_dict(),
        'optimizer': optimizer.state_dict() if optimizer is not None else None,
        'scaler': scaler.state_dict() if scaler is not None else None,
        'model_ema': model_ema.state_dict() if model_ema is not None else None,
        'epoch': int(epoch),
        'global_step': int(global_step),
        'args': plain_flags(args) if args is not None else {},
        'rng': get_rng_state(),
        'best': best,
        'format': CHECKPOINT_FORMAT,
    }
    if extra:
        obj.update(extra)
    atomic_torch_save(obj, path)
    return path


_CKPT_RE = re.compile(r'checkpoint-(\d+)\.pth$')


def resume_candidates(output_dir: str) -> List[str]:
    """The checkpoints a run may resume from, best first: ``checkpoint-last.pth``, the rotated
    ``checkpoint-prev.pth``, then the ``checkpoint-<epoch>.pth`` copies from the newest epoch down."""
    if not output_dir or not os.path.isdir(output_dir):
        return []
    out = []
    for name in ('checkpoint-last.pth', 'checkpoint-prev.pth'):
        if os.path.isfile(os.path.join(output_dir, name)):
            out.append(os.path.join(output_dir, name))
    numbered = []
    for p in glob.glob(os.path.join(output_dir, 'checkpoint-*.pth')):
        m = _CKPT_RE.search(p)
        if m:
            numbered.append((int(m.group(1)), p))
    return out + [p for _, p in sorted(numbered, reverse=True)]


def remove_stale_temp_files(output_dir: str) -> List[str]:
    """Delete the partial ``.checkpoint-*.tmp`` files a killed write leaves behind (each can be as
    large as a checkpoint); returns what was removed."""
    removed = []
    if output_dir and os.path.isdir(output_dir):
        for p in sorted(glob.glob(os.path.join(output_dir, '.checkpoint-*.tmp'))):
            try:
                os.unlink(p)
                removed.append(p)
            except OSError:
                pass
    return removed


def _move_aside(path: str) -> str:
    """Rename an unreadable checkpoint to ``<name>.unreadable[.N]`` (kept for inspection, never
    picked again); main process only. Returns the new name (or the old one when not moved)."""
    if not is_main_process():
        return path
    target, n = path + '.unreadable', 1
    while os.path.exists(target):
        target, n = f'{path}.unreadable.{n}', n + 1
    try:
        os.replace(path, target)
        return target
    except OSError:
        return path


def unreadable_checkpoints(output_dir: str) -> List[str]:
    """Checkpoints an earlier start set aside as unreadable (``*.pth.unreadable[.N]``)."""
    if not output_dir or not os.path.isdir(output_dir):
        return []
    return sorted(glob.glob(os.path.join(output_dir, 'checkpoint*.pth.unreadable*')))


def _load_newest_readable(output_dir: str, force_restart: bool = False):
    """(path, checkpoint) of the first readable resume candidate; an unreadable one is reported in
    one line, set aside as ``.unreadable`` and the next is tried. (None, None) when there is none
    and nothing was ever set aside; a folder whose only checkpoints are unreadable is refused, on
    this start and every later one, unless ``force_restart``."""
    candidates = resume_candidates(output_dir)
    for i, path in enumerate(candidates):
        try:
            ckpt = read_checkpoint(path)
        except CheckpointError as e:
            nxt = candidates[i + 1] if i + 1 < len(candidates) else None
            aside = _move_aside(path)
            print(f'| WARNING: {e}; moved to {aside}; '
                  + (f'trying {nxt}' if nxt else 'no other checkpoint to resume from'), flush=True)
            continue
        # a numbered copy newer than checkpoint-last.pth (a crash between the two writes) wins
        newer = [p for p in candidates[i + 1:] if _CKPT_RE.search(p)
                 and int(_CKPT_RE.search(p).group(1)) > int(ckpt.get('epoch', -1))]
        for p in newer:
            try:
                return p, read_checkpoint(p)
            except CheckpointError as e:
                print(f'| WARNING: {e}', flush=True)
        return path, ckpt
    aside = unreadable_checkpoints(output_dir)
    if aside and not force_restart:
        raise CheckpointError(
            f'{output_dir} holds no readable checkpoint, only {len(aside)} unreadable one(s) set aside '
            f'({", ".join(os.path.basename(p) for p in aside)}); starting from epoch 0 would replace '
            f'this run\'s log and checkpoints: --resume a good checkpoint, or pass --force_restart to '
            f'start afresh (the .unreadable files are kept)')
    if aside:
        print(f'| --force_restart: starting from epoch 0; {len(aside)} unreadable checkpoint(s) kept '
              f'aside in {output_dir}', flush=True)
    return None, None


def rotate_last(output_dir: str) -> str:
    """Make ``checkpoint-prev.pth`` the current ``checkpoint-last.pth`` (if any) before a new last
    is written, so that an unreadable new one costs one epoch, not ``--save_ckpt_freq``; returns the
    path of the last checkpoint. The last stays in place (a hard link, where the file system has
    them) until the new one replaces it atomically: a kill at any moment leaves a last checkpoint."""
    last = os.path.join(output_dir, 'checkpoint-last.pth')
    prev = os.path.join(output_dir, 'checkpoint-prev.pth')
    if os.path.isfile(last):
        tmp = prev + '.link.tmp'
        try:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.link(last, tmp)
            os.replace(tmp, prev)
        except OSError:                       # no hard links here: rename, as before
            os.replace(last, prev)
    return last


def restore_last(output_dir: str, path: str) -> None:
    """After an auto-resume from ``path``, make ``checkpoint-last.pth`` that state (main process):
    a kill during the last epoch's copy leaves the numbered file and no new last, and a run with
    nothing left to train would never write it again. The old last, if any, becomes prev."""
    if not is_main_process() or os.path.basename(path) == 'checkpoint-last.pth':
        return
    atomic_copy(path, rotate_last(output_dir))
    print(f'| checkpoint-last.pth restored from {os.path.basename(path)}', flush=True)


class ResumeMismatchError(RuntimeError):
    """The checkpoint to resume from was trained with other shape- or data-defining flags."""


def changed_flags(saved: Dict[str, Any], cfg: TrainConfig, roles: Mapping[str, str]) -> List[tuple]:
    """``(flag, checkpoint's value, this run's value)`` for every flag that differs and is not
    ``'neutral'`` in ``roles`` (the entry point's ``cli.args.resume_roles``)."""
    now = cfg.flags
    out = []
    for k in sorted(set(saved) & set(now)):
        if roles.get(k) == 'neutral':
            continue
        if saved[k] != now[k]:
            out.append((k, saved[k], now[k]))
    return out


def auto_load(cfg: TrainConfig, model_without_ddp, optimizer=None, scaler=None, model_ema=None,
              roles: Optional[Mapping[str, str]] = None) -> Optional[Dict]:
    """Restore a training state from ``--resume`` or, with ``--auto_resume``, the newest checkpoint
    in ``--output_dir``; returns the loaded dict (or None). Where training continues:
    :func:`resume_point`. ``roles``: what a changed flag means (``cli.args.resume_roles``):
    ``'refused'`` stops the resume unless ``--force_resume``, ``'neutral'`` is not mentioned, any
    other change is warned about (no roles: every change is warned about)."""
    roles = roles or {}
    if is_main_process():
        for p in remove_stale_temp_files(cfg.output_dir):
            print(f'| removed the partial file {p} of an interrupted checkpoint write')
    path = cfg.resume or None
    if path:
        ckpt = read_checkpoint(path)
    elif cfg.auto_resume:
        path, ckpt = _load_newest_readable(cfg.output_dir, cfg.force_restart)
        if path and not cfg.eval:
            restore_last(cfg.output_dir, path)
    if not path:
        return None
    if ckpt.get('format') != CHECKPOINT_FORMAT or 'model' not in ckpt:
        raise RuntimeError(f'{path} is not an SVFAP training checkpoint; use --finetune to start '
                           f'from released or pre-trained weights')
    model_without_ddp.load_state_dict(ckpt['model'])
    print(f'| resumed model from {path} (epoch {ckpt.get("epoch")})')
    changed = changed_flags(ckpt.get('args') or {}, cfg, roles)
    refused = [c for c in changed if roles.get(c[0]) == 'refused']
    if refused and not cfg.force_resume:
        raise ResumeMismatchError(
            f'{path} was trained with other ' + '; '.join(f'{k} {a!r} (now {b!r})' for k, a, b in refused)
            + ': these change shapes or data; use another --output_dir, or --force_resume to continue anyway')
    if changed:
        print(f'| WARNING: resuming with {len(changed)} flag(s) that differ from the checkpoint\'s: '
              + '; '.join(f'{k} {a!r} -> {b!r}' for k, a, b in changed), flush=True)
    if cfg.eval:
        # evaluation only: weights are all we need (EMA too, if asked)
        if model_ema is not None and ckpt.get('model_ema') is not None:
            model_ema.load_state_dict(ckpt['model_ema'])
        return ckpt
    if optimizer is not None and ckpt.get('optimizer') is not None:
        optimizer.load_state_dict(ckpt['optimizer'])
    if scaler is not None and ckpt.get('scaler') is not None:
        scaler.load_state_dict(ckpt['scaler'])
    if model_ema is not None and ckpt.get('model_ema') is not None:
        model_ema.load_state_dict(ckpt['model_ema'])
    set_rng_state(ckpt.get('rng'))
    return ckpt


def resume_point(ckpt: Optional[Dict], cfg: TrainConfig) -> Tuple[int, int]:
    """``(epoch, step)`` where training continues: ``--start_epoch`` and 0 without a checkpoint;
    the epoch after the checkpoint's; or, for a checkpoint saved on a signal after ``step``
    optimizer steps of ``epoch`` (engine.preemption), that step, unless the batch geometry changed
    which samples those steps were (the epoch then starts again from its first step)."""
    if ckpt is None:
        return int(cfg.start_epoch), 0
    mid = ckpt.get('resume_step')
    if not mid:
        return int(ckpt['epoch']) + 1, 0
    saved = ckpt.get('args') or {}
    now = cfg.flags
    differ = {k: (saved.get(k), now.get(k)) for k in ('batch_size', 'update_freq', 'world_size')
              if saved.get(k) != now.get(k)}
    epoch = int(mid['epoch'])
    if differ:
        print(f'| WARNING: the checkpoint stopped after step {mid["step"]} of epoch {epoch}, but '
              + ', '.join(f'{k} {a} -> {b}' for k, (a, b) in differ.items())
              + ' changes which samples those steps were: the epoch starts again from its first '
                'step (its first steps are trained twice)', flush=True)
        return epoch, 0
    print(f'| continuing epoch {epoch} at step {mid["step"]}', flush=True)
    return epoch, int(mid['step'])


def _writes_checkpoints(cfg: TrainConfig) -> bool:
    """This process writes the run's checkpoints: the main one, with an output folder and --save_ckpt."""
    return bool(cfg.output_dir and cfg.save_ckpt) and is_main_process()


def save_epoch_checkpoints(cfg: TrainConfig, epoch: int, global_step: int, model_without_ddp, optimizer, scaler,
                           model_ema, best: Optional[Dict] = None) -> Optional[str]:
    """checkpoint-last.pth every epoch; checkpoint-<epoch>.pth every --save_ckpt_freq epochs and at
    the end, written first (``checkpoint-last.pth`` is then its atomic copy), so a crash between the
    two leaves the newer numbered file, which resume prefers. The previous checkpoint-last.pth is
    kept as checkpoint-prev.pth (:func:`rotate_last`): if the new one turns out unreadable,
    resuming falls back one epoch, not --save_ckpt_freq epochs. Main process only; atomic."""
    if not _writes_checkpoints(cfg):
        return None
    last = rotate_last(cfg.output_dir)
    freq = max(int(cfg.save_ckpt_freq or 0), 0)
    state = dict(model=model_without_ddp, optimizer=optimizer, scaler=scaler, model_ema=model_ema,
                 epoch=epoch, global_step=global_step, args=cfg.flags, best=best)
    if (freq and (epoch + 1) % freq == 0) or epoch + 1 == cfg.epochs:
        numbered = os.path.join(cfg.output_dir, f'checkpoint-{epoch}.pth')
        save_checkpoint(numbered, **state)
        atomic_copy(numbered, last)
    else:
        save_checkpoint(last, **state)
    return last


def save_preemption_checkpoint(cfg: TrainConfig, epoch: int, step: int, steps_per_epoch: int, model_without_ddp,
                               optimizer, scaler, model_ema, best: Optional[Dict] = None) -> None:
    """checkpoint-last.pth after ``step`` optimizer steps of ``epoch`` (the old one becomes
    checkpoint-prev.pth), with every rank's random state: a resume continues the epoch at that step
    bit-exactly (``engine.preemption``). Called on every rank (the states are gathered)."""
    rng = all_gather_object(get_rng_state())
    if not _writes_checkpoints(cfg):
        return
    save_checkpoint(rotate_last(cfg.output_dir), model=model_without_ddp, optimizer=optimizer,
                    scaler=scaler, model_ema=model_ema, epoch=epoch - 1,
                    global_step=epoch * steps_per_epoch + step, args=cfg.flags, best=best,
                    extra={'resume_step': {'epoch': int(epoch), 'step': int(step)}, 'rng_ranks': rng})


def check_input_files(cfg: TrainConfig) -> None:
    """``--resume`` and ``--finetune``: present and not visibly truncated, checked before anything
    is built (a torch zip file must end with its central directory). Reading them comes later."""
    for flag, path in (('resume', cfg.resume), ('finetune', cfg.finetune)):
        if path:
            try:
                check_checkpoint_file(path)
            except CheckpointError as e:
                raise CheckpointError(f'--{flag} {e}') from None

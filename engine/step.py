"""The optimisation step shared by pre-training and fine-tuning.

:class:`Stepper` does gradient accumulation (``--update_freq``; DDP gradient all-reduce only on the
last micro-step, via ``no_sync``), mixed precision (bf16 autocast, or fp16 autocast + GradScaler),
gradient clipping, the optimizer step and the EMA update. Everything it records stays on the
device: the grad norm of each real update, fp16 overflow (skipped) steps, and the first non-finite
loss (:class:`NonFiniteTracker`), which is checked at log intervals and at the end of the epoch.
"""
from __future__ import annotations

import contextlib
import math
from typing import Dict, Optional

import torch

from engine.distributed import all_reduce_max
from engine.model_utils import find_ddp

__all__ = ['AMP_DTYPES', 'autocast_context', 'make_scaler', 'Stepper', 'NonFiniteTracker',
           'NonFiniteLossError', 'configure_backends']

AMP_DTYPES = {'none': None, 'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def autocast_context(device: torch.device, amp: str):
    dtype = AMP_DTYPES[amp]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(device: torch.device, amp: str) -> Optional[torch.amp.GradScaler]:
    """A GradScaler for fp16 only (bf16 and fp32 need none)."""
    if amp != 'fp16':
        return None
    return torch.amp.GradScaler(device.type)


class NonFiniteLossError(FloatingPointError):
    """Raised when a training loss is NaN or Inf; no checkpoint is written after it."""


class NonFiniteTracker:
    """Remembers the first non-finite loss of an epoch on the device (no per-step sync)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.first_step = torch.full((), -1, dtype=torch.int64, device=device)
        self.first_value = torch.zeros((), dtype=torch.float32, device=device)

    def update(self, loss: torch.Tensor, step: int) -> None:
        bad = ~torch.isfinite(loss.detach().float())
        take = bad & (self.first_step < 0)
        self.first_step = torch.where(take, torch.full_like(self.first_step, step), self.first_step)
        self.first_value = torch.where(take, loss.detach().float(), self.first_value)

    def check(self, epoch: int, what: str = 'loss', total: Optional[int] = None) -> None:
        """Raise :class:`NonFiniteLossError` on every rank if any rank saw a non-finite loss
        (a collective when distributed: all ranks call it at the same points). The step is given
        as the console gives it: 1-based, ``[step/total]``."""
        flag = (self.first_step >= 0).to(torch.int64)
        flag = all_reduce_max(flag)
        if int(flag.item()) == 0:
            return
        step = int(self.first_step.item())
        if step >= 0:
            where = f'[{step + 1}/{total}]' if total else f'{step + 1} of this epoch'
            msg = (f'non-finite training {what} {float(self.first_value.item())} at epoch {epoch}, '
                   f'step {where}; stopping. No optimizer step was taken on it, and the last '
                   f'checkpoint written before this epoch is left as it was; lower the lr, use '
                   f'--clip_grad or --amp bf16.')
        else:
            msg = (f'non-finite training {what} on another process at epoch {epoch}; stopping. '
                   f'The last checkpoint is left as it was.')
        raise NonFiniteLossError(msg)


class Stepper:
    """Backward / accumulate / clip / step / EMA for one model."""

    def __init__(self, model: torch.nn.Module, model_without_ddp: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, device: torch.device, amp: str = 'none',
                 update_freq: int = 1, clip_grad: Optional[float] = None, model_ema=None,
                 scaler: Optional[torch.amp.GradScaler] = None):
        self.model = model
        self.model_without_ddp = model_without_ddp
        self.optimizer = optimizer
        self.device = device
        self.amp = amp
        self.update_freq = max(int(update_freq), 1)
        self.clip_grad = clip_grad if clip_grad and clip_grad > 0 else None
        self.model_ema = model_ema
        self.scaler = scaler
        self.ddp = find_ddp(model)
        self.is_ddp = self.ddp is not None
        self.params = [p for p in model_without_ddp.parameters() if p.requires_grad]
        # fused Adam/AdamW skip a step on the device when given ``found_inf``: no host sync
        self.device_skip = getattr(optimizer, '_step_supports_amp_scaling', False) and \
            all(g.get('fused') for g in optimizer.param_groups)

    def autocast(self):
        return autocast_context(self.device, self.amp)

    def micro_context(self, micro_step: int):
        """Wrap forward + backward of a micro-step: ``no_sync`` unless it is the last of an update."""
        last = (micro_step + 1) % self.update_freq == 0
        if self.is_ddp and not last:
            return self.ddp.no_sync()
        return contextlib.nullcontext()

    def is_update_step(self, micro_step: int) -> bool:
        return (micro_step + 1) % self.update_freq == 0

    def backward(self, loss: torch.Tensor, micro_step: int, global_step: int):
        """Backward of ``loss / update_freq``; on the last micro-step also clip + step + zero_grad +
        EMA. Returns ``None`` or ``(grad_norm, overflow)`` device tensors for an update step."""
        loss = loss / self.update_freq
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        if not self.is_update_step(micro_step):
            return None
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.clip_grad is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad)
        elif hasattr(torch.nn.utils, 'get_total_norm'):  # measure only, no rescaling pass
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
        else:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, math.inf)
        overflow = ~torch.isfinite(grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # skipped internally when grads are inf/nan
            self.scaler.update()
        elif self.device_skip:  # fp32 / bf16, fused kernel: skipped on the device
            self.optimizer.found_inf = overflow.to(torch.float32)
            try:
                self.optimizer.step()
            finally:
                del self.optimizer.found_inf
        elif not bool(overflow):  # fp32 / bf16, other optimizers: skip it too (one host sync)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.model_ema is not None:
            self.model_ema.update(self.model_without_ddp, step=global_step)
        return grad_norm.detach(), overflow

    def loss_scale(self) -> Optional[torch.Tensor]:
        if self.scaler is None or not self.scaler.is_enabled():
            return None
        return self.scaler._scale if getattr(self.scaler, '_scale', None) is not None else None


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

"""The one checkpoint loader of the project: authors' released files and our own, into any SVFAP model.

Files are read with ``torch.load(weights_only=True)`` only (``argparse.Namespace`` allow-listed for
the ``args`` entry of the authors' files). Weights may sit under ``model``, ``module`` or
``state_dict``, or be the bare state dict; ``module.`` (DDP), ``backbone.`` and ``encoder.``
prefixes are mapped onto the model's own key names.
"""
import argparse
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Union

import torch
import torch.nn as nn

__all__ = ['CheckpointError', 'LoadReport', 'check_checkpoint_file', 'read_checkpoint', 'extract_state_dict',
           'load_checkpoint', 'unwrap_model']

WEIGHT_ENTRIES = ('model', 'module', 'state_dict')
# checkpoint keys that belong to the pre-training decoder side
_DECODER_PREFIXES = ('decoder.', 'encoder_to_decoder.', 'mask_token')
# model keys that may legitimately stay freshly initialised, by model kind
_NEW_OK_FINETUNE = ('head.', 'fc_norm.')
_NEW_OK_PRETRAIN = ('decoder.', 'encoder_to_decoder.', 'mask_token', 'encoder.norm.')


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model."""


@dataclass
class LoadReport:
    """What ``load_checkpoint`` did: ``loaded`` model keys, ``skipped`` checkpoint keys with the reason,
    and ``initialised`` model keys that kept their fresh initialisation."""
    source: str
    loaded: List[str] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)
    initialised: List[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f'loaded {len(self.loaded)} tensors from {self.source}']
        if self.skipped:
            lines.append(f'skipped {len(self.skipped)} checkpoint keys:')
            lines += [f'  {key}: {reason}' for key, reason in self.skipped.items()]
        if self.initialised:
            lines.append(f'newly initialised {len(self.initialised)} model keys: {", ".join(self.initialised)}')
        return '\n'.join(lines)

    __str__ = summary


def describe_load_error(err: BaseException) -> str:
    """torch.load's failure in a few words: torch's own messages run over several paragraphs."""
    text = str(err).strip()
    if 'WeightsUnpickler error' in text:
        detail = next((ln.strip() for ln in text.split('WeightsUnpickler error:', 1)[1].splitlines()
                       if ln.strip()), '')
        m = re.search(r'GLOBAL (\S+) was not an allowed global', detail)
        if m:
            return (f'it holds a Python object ({m.group(1)}) that is never unpickled: only weights, '
                    f'tensors and plain values are read (weights_only=True)')
        return f'not a weights-only PyTorch file ({detail[:200]})'
    if 'central directory' in text or 'PytorchStreamReader' in text:
        return 'truncated or corrupt (its zip archive is incomplete)'
    if isinstance(err, EOFError) or not text:
        return f'empty or truncated ({type(err).__name__})'
    return f'{type(err).__name__}: {text.splitlines()[0][:200]}'


def check_checkpoint_file(path: str) -> None:
    """A checkpoint file present and not visibly truncated, without reading it: a torch zip file
    must end with its central directory. CheckpointError ``'<path>: <what is wrong>'`` otherwise."""
    if not os.path.isfile(path):
        raise CheckpointError(f'{path}: no such file')
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointError(f'{path}: empty file (0 bytes)')
    with open(path, 'rb') as f:
        head = f.read(4)
        f.seek(max(0, size - 65557))  # the end-of-central-directory record lies in the tail
        tail = f.read()
    if head == b'PK\x03\x04' and b'PK\x05\x06' not in tail:
        raise CheckpointError(f'{path}: truncated ({size} bytes; its zip archive has no central directory)')


def read_checkpoint(path: Union[str, os.PathLike]) -> object:
    """torch.load(path, weights_only=True) with argparse.Namespace allowed; CheckpointError otherwise."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint file not found: {path}')
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to read means "not a usable checkpoint"
        raise CheckpointError(f'cannot read checkpoint {path} ({os.path.getsize(path)} bytes): '
                              f'{describe_load_error(err)}') from None


def extract_state_dict(obj: object, source: str = '<state dict>') -> Dict[str, torch.Tensor]:
    """The weights of a loaded checkpoint: obj['model'|'module'|'state_dict'] or obj itself;
    leading ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) prefixes removed."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f'{source}: expected a dict, found {type(obj).__name__}')
    for entry in WEIGHT_ENTRIES:
        if isinstance(obj.get(entry), Mapping):
            obj = obj[entry]
            break
    state = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f'{source}: no weights found (entry {key!r} is a {type(value).__name__}; '
                                  f'expected weights under one of {WEIGHT_ENTRIES} or a bare state dict)')
        while key.startswith(('module.', '_orig_mod.')):  # DDP / torch.compile wrappers
            key = key.split('.', 1)[1]
        state[key] = value
    if not state:
        raise CheckpointError(f'{source}: the checkpoint holds no weights')
    return state


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module under DDP / DataParallel (``.module``) and torch.compile (``._orig_mod``)."""
    for _ in range(8):
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif isinstance(getattr(model, '_orig_mod', None), nn.Module):
            model = model._orig_mod
        else:
            break
    return model


def _candidates(key: str) -> List[str]:
    """Model key names a checkpoint key may stand for, most literal first."""
    out = [key]
    for prefix in ('encoder.', 'backbone.'):
        if key.startswith(prefix):
            out.append(key[len(prefix):])
    if not key.startswith('encoder.'):
        out.append('encoder.' + key)
    return out


def _reason_to_skip(key: str) -> Optional[str]:
    """Why a checkpoint key with no counterpart in the model may be dropped; None = it may not."""
    if key.startswith(_DECODER_PREFIXES):
        return 'pre-training decoder part, not in this model'
    if key in ('encoder.norm.weight', 'encoder.norm.bias', 'norm.weight', 'norm.bias'):
        return 'multi-scale fusion norm, used only in pre-training'
    if key.rsplit('.', 1)[-1] == 'pos_embed':
        return 'fixed sinusoid position table, rebuilt on the fly'
    if key.startswith(('head.', 'fc_norm.')):
        return 'fine-tuning head, not in this model'
    return None


def load_checkpoint(model: nn.Module, path_or_state: Union[str, os.PathLike, Mapping],
                    verbose: bool = True, strict: bool = True) -> LoadReport:
    """Load a checkpoint file (or an already loaded dict) into ``model`` and report what happened.

    * pre-training checkpoint -> fine-tuning model: decoder, encoder_to_decoder, mask_token and the
      fusion norm are skipped; fc_norm / head newly initialised;
    * a head with another class count is skipped (reported), the model keeps its new head;
    * any other shape mismatch or a checkpoint key the model cannot take -> CheckpointError;
    * with ``strict``, model keys left uninitialised outside the head (fine-tuning) or the decoder
      side (pre-training) -> CheckpointError.
    """
    if isinstance(path_or_state, Mapping):
        source, obj = '<state dict>', path_or_state
    else:
        source = os.fspath(path_or_state)
        obj = read_checkpoint(source)
    state = extract_state_dict(obj, source)
    model = unwrap_model(model)
    model_state = model.state_dict()
    report = LoadReport(source)

    to_load, mismatched, unexpected = {}, [], []
    for key, value in state.items():
        target = next((c for c in _candidates(key) if c in model_state), None)
        if target is None:
            reason = _reason_to_skip(key)
            if reason is None:
                unexpected.append(key)
            else:
                report.skipped[key] = reason
            continue
        if target in to_load:
            raise CheckpointError(f'{source}: checkpoint keys map twice onto model key {target!r}')
        want = tuple(model_state[target].shape)
        if tuple(value.shape) != want:
            if target.startswith('head.'):
                report.skipped[key] = (f'head shape {tuple(value.shape)} in checkpoint vs {want} in model '
                                       f'(different number of outputs); head newly initialised')
            else:
                mismatched.append(f'{key}: checkpoint {tuple(value.shape)} vs model {want}')
            continue
        to_load[target] = value

    if mismatched:
        raise CheckpointError(f'{source}: shape mismatch for {len(mismatched)} keys:\n  ' + '\n  '.join(mismatched))
    if unexpected:
        raise CheckpointError(f'{source}: {len(unexpected)} checkpoint keys do not exist in '
                              f'{type(model).__name__}: {", ".join(unexpected)}')

    report.initialised = [k for k in model_state if k not in to_load]
    if strict:
        new_ok = _NEW_OK_PRETRAIN if any(k.startswith('encoder.') for k in model_state) else _NEW_OK_FINETUNE
        missing = [k for k in report.initialised if not k.startswith(new_ok)]
        if missing:
            raise CheckpointError(f'{source}: {len(missing)} model keys are not in the checkpoint: '
                                  f'{", ".join(missing)}')

    result = model.load_state_dict(to_load, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    report.loaded = [k for k in model_state if k in to_load]
    if verbose:
        print(report.summary())
    return report

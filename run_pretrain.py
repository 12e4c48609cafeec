"""SVFAP masked facial video autoencoder pre-training, one process or torchrun.

    python run_pretrain.py --config configs/pretrain/voxceleb2_base.yaml \
        --data_path splits/voxceleb2/pretrain.csv --output_dir out/pretrain_base
    torchrun --nnodes 2 --nproc_per_node 4 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \
        run_pretrain.py --config ... (same flags)

``--data_path`` is a split file, or a folder holding ``pretrain.csv`` (else ``train.csv``).
See docs/training.md.
"""
from __future__ import annotations

import os
import time
from typing import Dict, Optional, Sequence

import torch

from engine.args import finalize_args, parse_args, pretrain_parser
from engine.checkpoint import auto_load
from engine.data import build_train_loader, seed_everything
from engine.distributed import (barrier, check_same_on_all_ranks, is_main_process,
                                run_with_process_group)
from engine.logger import JsonlLogger, TensorboardLogger
from engine.loop import train_one_epoch
from engine.model_utils import count_parameters, create_model, load_initial_weights, wrap_model
from engine.optim import build_optimizer
from engine.pretrain import make_pretrain_loss, reconstruction_grid
from engine.runtime import (build_schedules, cli_main, configure_backends, print_run_header, save_epoch_checkpoints,
                            seed_epoch)
from engine.step import Stepper, make_scaler


def _split_file(args) -> str:
    if not args.data_path:
        raise ValueError('--data_path (a split file, or a folder with pretrain.csv) is required')
    if os.path.isdir(args.data_path):
        for name in ('pretrain.csv', 'train.csv'):
            p = os.path.join(args.data_path, name)
            if os.path.isfile(p):
                return p
        raise FileNotFoundError(f'{args.data_path} holds neither pretrain.csv nor train.csv')
    if not os.path.isfile(args.data_path):
        raise FileNotFoundError(args.data_path)
    return args.data_path


def run(args) -> Dict:
    from datasets.build import build_pretrain_dataset

    finalize_args(args, args.world_size)
    if not args.normalize_target:
        raise ValueError('only normalised-pixel targets are supported (SPEC section 2)')
    device = torch.device(args.device)
    configure_backends(device)
    split = _split_file(args)

    seed_everything(args.seed)  # identical initial weights on every process
    model = create_model(args, pretrain=True)
    if args.finetune:
        load_initial_weights(model, args.finetune)
    tubelet = int(getattr(model, 'tubelet_size', args.tubelet_size))
    patch = int(getattr(model, 'patch_size', 16))
    model, model_without_ddp = wrap_model(model, args)
    n_params = count_parameters(model_without_ddp)

    train_ds = build_pretrain_dataset(split, args)
    train_loader = build_train_loader(train_ds, args, device.type == 'cuda')
    steps_per_epoch = len(train_loader) // args.update_freq
    if args.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, int(args.max_steps_per_epoch))
    if steps_per_epoch < 1:
        raise ValueError(f'{len(train_ds)} clips give no full optimizer step at batch '
                         f'{args.batch_size} x update_freq {args.update_freq} x {args.world_size}')
    optimizer = build_optimizer(args, model_without_ddp, layer_decay=None)
    scaler = make_scaler(device, args.amp)
    lr_schedule, wd_schedule = build_schedules(args, steps_per_epoch)
    stepper = Stepper(model, model_without_ddp, optimizer, device, args.amp, args.update_freq,
                      args.clip_grad, None, scaler)
    auto_load(args, model_without_ddp, optimizer, scaler, None)
    check_same_on_all_ranks(args.start_epoch, 'the epoch to start from (is --output_dir on a file '
                            'system that every node sees?)')
    print_run_header(args, model_without_ddp, n_params, steps_per_epoch)
    print(f'| {len(train_ds)} pre-training clips from {split}; mask ratio {args.mask_ratio}')

    tb = TensorboardLogger(args.log_dir) if is_main_process() else None
    jsonl = JsonlLogger(args.output_dir)
    compute_loss = make_pretrain_loss(model, device, tubelet, patch)
    result: Dict = {'train_history': [], 'step_losses': {}}
    try:
        if tb is not None and args.start_epoch == 0:
            tb.text('args', '  \n'.join(f'{k}: {v}' for k, v in sorted(vars(args).items())))
        t_start = time.time()
        for epoch in range(args.start_epoch, args.epochs):
            train_loader.sampler.set_epoch(epoch)
            seed_epoch(args.seed, epoch)
            vis = args.vis_every and tb is not None and \
                ((epoch + 1) % args.vis_every == 0 or epoch + 1 == args.epochs)
            kept = {}

            def keep_first(batch):
                kept['clip'], kept['mask'] = batch[0][:1].clone(), batch[1][:1].clone()

            stats = train_one_epoch(model, train_loader, stepper, epoch, steps_per_epoch,
                                    compute_loss, lr_schedule, wd_schedule, tb, args.log_every,
                                    on_batch=keep_first if vis else None)
            global_step = (epoch + 1) * steps_per_epoch
            result['step_losses'][epoch] = stats.pop('step_losses')
            if vis and kept:
                img = reconstruction_grid(model_without_ddp, kept['clip'], kept['mask'], device,
                                          args.amp, tubelet, patch)
                tb.image('pretrain/reconstruction', img, epoch)
                tb.flush()
            save_epoch_checkpoints(args, epoch, global_step, model_without_ddp, optimizer, scaler,
                                   None)
            record = {'epoch': epoch, **{f'train_{k}': v for k, v in stats.items()},
                      'n_parameters': n_params, 'time': time.time() - t_start}
            jsonl.write(record)
            result['train_history'].append(record)
            barrier()
        return result
    finally:
        if tb is not None:
            tb.close()


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    return run_with_process_group(run, parse_args(pretrain_parser(), argv))


if __name__ == '__main__':
    cli_main(main)

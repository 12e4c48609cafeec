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
from dataclasses import replace
from typing import Dict, Optional, Sequence

import torch

from cli.args import finalize_args, parse_args, pretrain_parser, resume_roles, scale_epochs_to_fraction
from datasets.build import build_pretrain_dataset
from datasets.config import DataConfig
from engine.checkpoint import check_input_files
from engine.config import TrainConfig
from engine.data import seed_everything
from engine.distributed import DistEnv, is_main_process, run_with_process_group
from engine.errors import cli_main
from engine.logger import JsonlLogger, TensorboardLogger, print_run_header
from engine.model_utils import count_parameters, create_model, load_initial_weights, wrap_model
from engine.pretrain import make_pretrain_loss, reconstruction_grid
from engine.run_lock import check_output_dirs
from engine.step import configure_backends
from engine.trainer import EpochHooks, broken_log_path, build_training, fit


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


def run(args, env: DistEnv) -> Dict:
    args = finalize_args(args, env, scale_epochs_to_fraction)
    cfg = TrainConfig.from_args(args)
    if is_main_process():
        check_output_dirs(cfg)
    check_input_files(cfg)
    if not args.normalize_target:
        raise ValueError('only per-patch normalised pixel targets (the published code\'s) are '
                         'supported; --normalize_target false is not implemented')
    device = torch.device(args.device)
    configure_backends(device)
    split = _split_file(args)

    seed_everything(args.seed)  # identical initial weights on every process
    model = create_model(cfg, pretrain=True)
    if args.finetune:
        load_initial_weights(model, args.finetune, args.output_dir)
    tubelet, patch = int(model.tubelet_size), int(model.patch_size)
    model, model_without_ddp = wrap_model(model, cfg)
    n_params = count_parameters(model_without_ddp)

    # the tube mask's token grid is the model's
    data_cfg = replace(DataConfig.from_args(args), tubelet_size=tubelet, patch_size=patch)
    train_ds = build_pretrain_dataset(split, data_cfg, broken_log_path(cfg.output_dir))
    training = build_training(cfg, model, model_without_ddp, train_ds, layer_decay=None, what='clips',
                              resume_roles=resume_roles(pretrain_parser()))
    print_run_header(cfg, model_without_ddp, n_params, training.steps_per_epoch, training.start_epoch)
    print(f'| {len(train_ds)} pre-training clips from {split}; mask ratio {args.mask_ratio}')

    tb = TensorboardLogger(args.log_dir) if is_main_process() else None
    jsonl = JsonlLogger(args.output_dir)
    compute_loss = make_pretrain_loss(model, device, tubelet, patch,
                                      train_ds.batch_augment)
    hooks = ReconstructionPicture(args, model_without_ddp, tb, device, tubelet, patch,
                                  train_ds.batch_augment)
    try:
        return fit(cfg, training, compute_loss, tb, jsonl, n_params, hooks)
    finally:
        if tb is not None:
            tb.close()


class ReconstructionPicture(EpochHooks):
    """Every ``--vis_every`` epochs (and the last): original / masked / reconstruction of the
    epoch's first training clip in TensorBoard (``pretrain/reconstruction``)."""

    def __init__(self, args, model_without_ddp, tb, device, tubelet: int, patch: int,
                 batch_augment=None):
        self.args, self.model, self.tb, self.device = args, model_without_ddp, tb, device
        self.tubelet, self.patch = tubelet, patch
        self.batch_augment = batch_augment  # --augment_on device: the batch holds uint8 clips
        self.kept: Dict = {}

    def _due(self, epoch: int) -> bool:
        every = self.args.vis_every
        return bool(every) and self.tb is not None and \
            ((epoch + 1) % every == 0 or epoch + 1 == self.args.epochs)

    def on_batch(self, epoch: int):
        self.kept = {}
        if not self._due(epoch):
            return None

        def keep_first(batch):
            clip = batch[0][:1].clone()
            if self.batch_augment is not None:
                clip = self.batch_augment(clip.to(self.device)).cpu()
            self.kept['clip'], self.kept['mask'] = clip, batch[1][:1].clone()
        return keep_first

    def after_epoch(self, epoch: int, global_step: int, record: Dict) -> None:
        if self._due(epoch) and self.kept:
            img = reconstruction_grid(self.model, self.kept['clip'], self.kept['mask'], self.device,
                                      self.args.amp, self.tubelet, self.patch)
            self.tb.image('pretrain/reconstruction', img, epoch)
            self.tb.flush()


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    return run_with_process_group(run, parse_args(pretrain_parser(), argv))


if __name__ == '__main__':
    cli_main(main)

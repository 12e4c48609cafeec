"""Dataset builders used by the entry points (docs/architecture.md, datasets section).

Each takes a split file and a :class:`datasets.config.DataConfig` (its fields and defaults are
documented there); the task, outputs and fixed crop come from :func:`datasets.config.resolve_task`.
"""
from __future__ import annotations

import logging
from typing import Optional

from .config import DataConfig, resolve_task
from .masking import TubeMaskGenerator
from .registry import CLASSIFICATION, REGRESSION
from .split_file import read_split_file
from .transforms import (EvalTransform, FinetuneTrainTransform, InputCropError, PretrainTransform,
                         crop_fits)
from .video_cache import VideoCache
from .video_dataset import VideoClsDataset, VideoPretrainDataset, select_fraction
from .video_reader import VideoReadError, open_video

__all__ = ["build_finetune_dataset", "build_pretrain_dataset"]

logger = logging.getLogger("svfap.data")


def _config(cfg) -> DataConfig:
    if not isinstance(cfg, DataConfig):
        raise TypeError(f"the dataset builders take a datasets.config.DataConfig "
                        f"(DataConfig.from_args(args)), got {type(cfg).__name__}")
    return cfg


def check_input_crop(entries, crop, reader: str, data_set: Optional[str], probe: int = 3) -> None:
    """The fixed input crop must fit the frames: checked on the first readable videos at start-up,
    so a settings mistake is one error naming the setting, not every clip reported broken."""
    if crop is None:
        return
    for e in entries[:max(probe * 3, probe)]:
        try:
            v = open_video(e.path, reader)
            try:
                h, w = v.get([0]).shape[1:3]
            finally:
                v.close()
        except VideoReadError:
            continue  # broken videos are the dataset's business
        if not crop_fits(crop, h, w):
            top, bottom, left, right = crop
            whose = f"the input_crop of data_set {data_set}" if data_set else "--input_crop"
            raise InputCropError(
                f"the fixed input crop rows {top}-{bottom}, cols {left}-{right} ({whose}) does not "
                f"fit the {w}x{h} frames of {e.path}: give --input_crop TOP BOTTOM LEFT RIGHT that "
                f"fits (or another --data_set), or use videos of the size the recipe expects")
        probe -= 1
        if probe == 0:
            return


def _staged(transform, cfg: DataConfig):
    """The workers' transform: all of it, or with ``augment_on='device'`` only its worker stage
    (the dataset's ``batch_augment`` then does the rest on the training device)."""
    if cfg.augment_on not in ("workers", "device"):
        raise ValueError(f"augment_on must be 'workers' or 'device', got {cfg.augment_on!r}")
    return transform.worker_stage if cfg.augment_on == "device" else transform


def _batch_stage(transform, cfg: DataConfig):
    """The training device's share with ``augment_on='device'``, else None."""
    return transform.batch_stage if cfg.augment_on == "device" else None


def _cache(cfg: DataConfig) -> Optional[VideoCache]:
    """An in-memory cache of decoded videos when ``cfg.cache_gb`` > 0."""
    if cfg.cache_gb < 0:
        raise ValueError(f"cache_gb must be >= 0, got {cfg.cache_gb}")
    return VideoCache(int(cfg.cache_gb * 2 ** 30), cfg.reader) if cfg.cache_gb > 0 else None


def build_finetune_dataset(split_file: str, mode: str, cfg: DataConfig,
                           broken_log: Optional[str] = None) -> VideoClsDataset:
    """Fine-tuning dataset over ``split_file`` in mode 'train' | 'validation' | 'test';
    ``broken_log``: the file training processes append broken videos to (see video_dataset)."""
    cfg = _config(cfg)
    if mode not in ("train", "validation", "test"):
        raise ValueError(f"mode must be 'train', 'validation' or 'test', got {mode!r}")
    spec = resolve_task(cfg.data_set, cfg.task, cfg.nb_classes, cfg.input_crop)
    task, num_outputs = spec.task, spec.num_outputs
    if task not in (CLASSIFICATION, REGRESSION) or not num_outputs:
        raise ValueError(f"cannot fine-tune on data_set={cfg.data_set!r}: "
                         f"task {task!r}, {num_outputs} outputs")
    entries = read_split_file(split_file, task=task, num_outputs=num_outputs,
                              num_classes=num_outputs if task == CLASSIFICATION else None,
                              data_root=cfg.data_root, check_paths=cfg.check_paths)
    check_input_crop(entries, spec.input_crop, cfg.reader,
                     cfg.data_set if cfg.input_crop is None else None)
    common = dict(task=task, num_outputs=num_outputs, num_frames=cfg.num_frames,
                  sampling_rate=cfg.sampling_rate, reader=cfg.reader, seed=cfg.seed,
                  temporal_sampling=cfg.temporal_sampling, cache=_cache(cfg))
    listed = len(entries)
    if mode == "train":
        if cfg.train_fraction < 1.0:
            keep = select_fraction([e.label for e in entries], cfg.train_fraction, cfg.subset_seed,
                                   stratified=(task == CLASSIFICATION))
            logger.info("train_fraction %.4g: %d of %d training samples", cfg.train_fraction,
                        len(keep), len(entries))
            entries = [entries[i] for i in keep]
        transform = FinetuneTrainTransform(
            cfg.input_size, scale=tuple(cfg.train_crop_scale), auto_augment=cfg.aa,
            reprob=cfg.reprob, remode=cfg.remode, recount=cfg.recount, erase_mode=cfg.erase_mode,
            input_crop=spec.input_crop, order=cfg.aug_order, resize_mode=cfg.resize_mode,
            resize_filter=cfg.resize_filter)
        return VideoClsDataset(entries, "train", transform=_staged(transform, cfg),
                               num_sample=cfg.num_sample, num_listed=listed,
                               batch_augment=_batch_stage(transform, cfg), broken_log=broken_log, **common)
    if mode == "test":
        segs, crops = cfg.test_num_segment, cfg.test_num_crop
    else:
        segs, crops = cfg.val_num_segment, cfg.val_num_crop
    transform = EvalTransform(cfg.input_size, cfg.eval_short_side, crops, input_crop=spec.input_crop,
                              resize_mode=cfg.resize_mode, resize_filter=cfg.resize_filter)
    return VideoClsDataset(entries, mode, transform=transform, num_segments=segs, num_crops=crops,
                           skip_broken_eval=cfg.skip_broken_eval, **common)


def build_pretrain_dataset(split_file: str, cfg: DataConfig,
                           broken_log: Optional[str] = None) -> VideoPretrainDataset:
    """Pre-training dataset (clip, tube mask, n_broken_skipped) over ``split_file``;
    ``broken_log``: the file its processes append broken videos to (see video_dataset)."""
    cfg = _config(cfg)
    crop = cfg.input_crop
    if crop is None and cfg.data_set:
        try:
            crop = resolve_task(cfg.data_set).input_crop
        except KeyError:
            crop = None
    crop = tuple(int(c) for c in crop) if crop is not None else None
    entries = read_split_file(split_file, task="pretrain", data_root=cfg.data_root,
                              check_paths=cfg.check_paths)
    if cfg.pretrain_fraction < 1.0:
        keep = select_fraction([0] * len(entries), cfg.pretrain_fraction, cfg.subset_seed,
                               stratified=False)
        logger.info("pretrain_fraction %.4g: %d of %d clips", cfg.pretrain_fraction, len(keep),
                    len(entries))
        entries = [entries[i] for i in keep]
    check_input_crop(entries, crop, cfg.reader, cfg.data_set if cfg.input_crop is None else None)
    tubelet, patch = cfg.tubelet_size, cfg.patch_size
    if cfg.num_frames % tubelet or cfg.input_size % patch:
        raise ValueError(f"num_frames {cfg.num_frames} / input_size {cfg.input_size} not divisible by "
                         f"tubelet {tubelet} / patch {patch}")
    grid = (cfg.num_frames // tubelet, cfg.input_size // patch, cfg.input_size // patch)
    mask_gen = TubeMaskGenerator(grid, cfg.mask_ratio)
    transform = PretrainTransform(cfg.input_size, scales=tuple(cfg.pretrain_scales), input_crop=crop,
                                  resize_filter=cfg.resize_filter)
    return VideoPretrainDataset(entries, _staged(transform, cfg), mask_gen, num_frames=cfg.num_frames,
                                sampling_rate=cfg.sampling_rate, reader=cfg.reader, seed=cfg.seed,
                                num_sample=cfg.num_sample, temporal_sampling=cfg.temporal_sampling,
                                cache=_cache(cfg), batch_augment=_batch_stage(transform, cfg),
                                broken_log=broken_log)

"""Dataset builders used by the engine (docs/architecture.md, datasets section).

``args`` may be any object with attributes (an argparse.Namespace with only a few of them works);
missing fields take these defaults:

=====================  =============================  =========================================
field                  default                        meaning
=====================  =============================  =========================================
data_set               None                           registry name (task, labels, input_crop)
data_root              None                           relative split-file paths are joined to it
num_frames             16                             frames per clip
sampling_rate          4                              exact temporal stride
input_size             160                            model input side
short_side_size        input_size                     eval: short side resized to this
test_num_segment       2                              test clips per video
test_num_crop          2                              test spatial crops per clip
val_num_segment        1                              validation clips per video (centred)
val_num_crop           1                              validation crops (centred)
reader                 'decord'                       'decord' (falls back to OpenCV) | 'opencv'
aa                     'rand-m7-n4-mstd0.5-inc1'      RandAugment config; None/'none' = off
reprob                 0.25                           random erasing probability
remode / recount       'pixel' / 1                    random erasing mode / max boxes
erase_mode             'clip'                         'clip' (same box all frames) | 'frame'
train_crop_scale       (0.08, 1.0)                    random resized crop area range
train_fraction         1.0                            few-shot: stratified (cls) / random subset
pretrain_fraction      1.0                            random subset of the pre-training set
seed                   0                              subsets and broken-video substitution
fraction_seed          seed                           seed of the subsets only
skip_broken_eval       False                          probe eval videos, leave broken ones out
mask_ratio             0.9                            tube mask ratio (pre-training)
input_crop             registry's                     fixed (top, bottom, left, right) crop
task / nb_classes      -                              only when data_set is not in the registry
check_paths            True                           verify every split-file path exists
=====================  =============================  =========================================
"""
from __future__ import annotations

import logging

from .masking import TubeMaskGenerator
from .registry import CLASSIFICATION, REGRESSION, get_dataset_info
from .split_file import read_split_file
from .transforms import DEFAULT_AA, EvalTransform, FinetuneTrainTransform, PretrainTransform
from .video_dataset import VideoClsDataset, VideoPretrainDataset, select_fraction

logger = logging.getLogger("svfap.data")


def _get(args, name, default):
    v = getattr(args, name, None)
    return default if v is None else v


def _task_of(args):
    """(task, num_outputs, input_crop) from the registry, or from args.task / args.nb_classes."""
    name = getattr(args, "data_set", None)
    info = None
    if name:
        try:
            info = get_dataset_info(name)
        except KeyError:
            if getattr(args, "nb_classes", None) is None:
                raise
    if info is not None and info.task in (CLASSIFICATION, REGRESSION):
        task, n = info.task, info.num_outputs
    else:
        task = _get(args, "task", CLASSIFICATION)
        n = getattr(args, "nb_classes", None)
    crop = getattr(args, "input_crop", None)
    if crop is None and info is not None:
        crop = info.input_crop
    return task, n, (tuple(int(c) for c in crop) if crop is not None else None)


def build_finetune_dataset(split_file: str, mode: str, args) -> VideoClsDataset:
    """Fine-tuning dataset over ``split_file`` in mode 'train' | 'validation' | 'test'."""
    if mode not in ("train", "validation", "test"):
        raise ValueError(f"mode must be 'train', 'validation' or 'test', got {mode!r}")
    task, num_outputs, crop = _task_of(args)
    if task not in (CLASSIFICATION, REGRESSION) or not num_outputs:
        raise ValueError(f"cannot fine-tune on data_set={getattr(args, 'data_set', None)!r}: "
                         f"task {task!r}, {num_outputs} outputs")
    entries = read_split_file(split_file, task=task, num_outputs=num_outputs,
                              num_classes=num_outputs if task == CLASSIFICATION else None,
                              data_root=getattr(args, "data_root", None),
                              check_paths=bool(_get(args, "check_paths", True)))
    seed = int(_get(args, "seed", 0))
    input_size = int(_get(args, "input_size", 160))
    common = dict(task=task, num_outputs=num_outputs,
                  num_frames=int(_get(args, "num_frames", 16)),
                  sampling_rate=int(_get(args, "sampling_rate", 4)),
                  reader=_get(args, "reader", "decord"), seed=seed)
    if mode == "train":
        frac = float(_get(args, "train_fraction", 1.0))
        if frac < 1.0:
            keep = select_fraction([e.label for e in entries], frac,
                                   int(_get(args, "fraction_seed", seed)),
                                   stratified=(task == CLASSIFICATION))
            logger.info("train_fraction %.4g: %d of %d training samples", frac, len(keep),
                        len(entries))
            entries = [entries[i] for i in keep]
        aa = getattr(args, "aa", DEFAULT_AA)
        transform = FinetuneTrainTransform(
            input_size, scale=tuple(_get(args, "train_crop_scale", (0.08, 1.0))),
            auto_augment=aa, reprob=float(_get(args, "reprob", 0.25)),
            remode=_get(args, "remode", "pixel"), recount=int(_get(args, "recount", 1)),
            erase_mode=_get(args, "erase_mode", "clip"), input_crop=crop)
        return VideoClsDataset(entries, "train", transform=transform, **common)
    if mode == "test":
        segs, crops = int(_get(args, "test_num_segment", 2)), int(_get(args, "test_num_crop", 2))
    else:
        segs, crops = int(_get(args, "val_num_segment", 1)), int(_get(args, "val_num_crop", 1))
    transform = EvalTransform(input_size, int(_get(args, "short_side_size", input_size)), crops,
                              input_crop=crop)
    return VideoClsDataset(entries, mode, transform=transform, num_segments=segs, num_crops=crops,
                           skip_broken_eval=bool(_get(args, "skip_broken_eval", False)), **common)


def build_pretrain_dataset(split_file: str, args) -> VideoPretrainDataset:
    """Pre-training dataset (clip, tube mask, n_broken_skipped) over ``split_file``."""
    name = getattr(args, "data_set", None)
    crop = getattr(args, "input_crop", None)
    if crop is None and name:
        try:
            crop = get_dataset_info(name).input_crop
        except KeyError:
            crop = None
    crop = tuple(int(c) for c in crop) if crop is not None else None
    entries = read_split_file(split_file, task="pretrain",
                              data_root=getattr(args, "data_root", None),
                              check_paths=bool(_get(args, "check_paths", True)))
    seed = int(_get(args, "seed", 0))
    frac = float(_get(args, "pretrain_fraction", 1.0))
    if frac < 1.0:
        keep = select_fraction([0] * len(entries), frac, int(_get(args, "fraction_seed", seed)),
                               stratified=False)
        logger.info("pretrain_fraction %.4g: %d of %d clips", frac, len(keep), len(entries))
        entries = [entries[i] for i in keep]
    num_frames = int(_get(args, "num_frames", 16))
    input_size = int(_get(args, "input_size", 160))
    tubelet, patch = int(_get(args, "tubelet_size", 2)), int(_get(args, "patch_size", 16))
    if num_frames % tubelet or input_size % patch:
        raise ValueError(f"num_frames {num_frames} / input_size {input_size} not divisible by "
                         f"tubelet {tubelet} / patch {patch}")
    grid = (num_frames // tubelet, input_size // patch, input_size // patch)
    mask_gen = TubeMaskGenerator(grid, float(_get(args, "mask_ratio", 0.9)))
    transform = PretrainTransform(input_size, input_crop=crop)
    return VideoPretrainDataset(entries, transform, mask_gen, num_frames=num_frames,
                                sampling_rate=int(_get(args, "sampling_rate", 4)),
                                reader=_get(args, "reader", "decord"), seed=seed)

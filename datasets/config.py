"""What the dataset builders need, typed, with its defaults in one place; and the one
registry-to-task resolver.

The entry points build a :class:`DataConfig` from their flags (``DataConfig.from_args(args)``,
which reads the attributes of the same names and leaves the defaults for absent or None ones);
``cli.args`` takes its data-flag defaults from here.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional, Sequence, Tuple

from .registry import CLASSIFICATION, REGRESSION, DatasetInfo, get_dataset_info
from .transforms import DEFAULT_AA, PRETRAIN_SCALES

__all__ = ['DataConfig', 'TaskSpec', 'resolve_task']


@dataclass
class DataConfig:
    """Inputs, views, augmentation, subsets and masking of every dataset the engine builds."""
    data_set: Optional[str] = None            # registry name (task, labels, input_crop)
    data_root: Optional[str] = None           # relative split-file paths are joined to it
    num_frames: int = 16                      # frames per clip (paper Sec. 4.1)
    sampling_rate: int = 4                    # temporal stride (paper Sec. 4.1)
    temporal_sampling: str = 'published'      # 'published' | 'exact_stride' (datasets.sampling)
    input_size: int = 160                     # model input side
    short_side_size: Optional[int] = None     # eval: short side resized to this (None: input_size)
    test_num_segment: int = 2                 # test clips per video
    test_num_crop: int = 2                    # test spatial crops per clip
    val_num_segment: int = 1                  # validation clips per video (centred)
    val_num_crop: int = 1                     # validation crops (centred)
    reader: str = 'pyav'                      # 'pyav' | 'decord' | 'opencv' (datasets.video_reader)
    cache_gb: float = 0.0                     # decoded videos kept in memory per process (0: off)
    aa: Optional[str] = DEFAULT_AA            # RandAugment config; None / 'none' = off
    reprob: float = 0.25                      # random erasing probability
    remode: str = 'pixel'                     # random erasing mode
    recount: int = 1                          # random erasing: max boxes
    erase_mode: str = 'clip'                  # 'clip' (same box in all frames) | 'frame'
    train_crop_scale: Tuple[float, float] = (0.08, 1.0)   # random resized crop area range
    resize_mode: str = 'squash'               # 'squash' (published: s x s, aspect not kept) | 'short_side'
    resize_filter: str = 'pil'                # 'pil' (published: PIL bilinear, antialiased) | 'opencv'
    aug_order: str = 'published'              # 'published' (RandAugment on the full frame, fill 128,
                                              # then the crop) | 'crop_first' (crop, then RandAugment)
    num_sample: int = 1                       # repeated sampling: augmented clips per decoded video
    augment_on: str = 'workers'               # 'workers' | 'device' (workers decode, the batch is
                                              # augmented on the training device)
    train_fraction: float = 1.0               # few-shot: stratified (cls) / random subset
    pretrain_fraction: float = 1.0            # random subset of the pre-training set
    seed: int = 0                             # subsets and broken-video substitution
    fraction_seed: Optional[int] = None       # seed of the subsets only (None: seed)
    skip_broken_eval: bool = False            # probe eval videos, leave broken ones out
    mask_ratio: float = 0.9                   # tube mask ratio (pre-training, Sec. 3.1.2)
    pretrain_scales: Tuple[float, ...] = PRETRAIN_SCALES   # multi-scale crop sizes (fractions of the short side)
    tubelet_size: int = 2                     # token grid of the mask: the entry point sets both from
    patch_size: int = 16                      # the model (frames per token, pixels per token side)
    input_crop: Optional[Tuple[int, int, int, int]] = None  # fixed (top, bottom, left, right); None: registry's
    task: Optional[str] = None                # only when data_set is not in the registry
    nb_classes: Optional[int] = None          # idem
    check_paths: bool = True                  # verify every split-file path exists

    @classmethod
    def from_args(cls, args) -> 'DataConfig':
        """The fields of any attribute holder (an argparse.Namespace); absent or None -> default."""
        kw = {}
        for f in fields(cls):
            v = getattr(args, f.name, None)
            if v is not None or (f.name == 'aa' and hasattr(args, 'aa')):   # aa=None: no RandAugment
                kw[f.name] = tuple(v) if isinstance(v, list) else v
        return cls(**kw)

    @property
    def eval_short_side(self) -> int:
        return int(self.short_side_size or self.input_size)

    @property
    def subset_seed(self) -> int:
        return int(self.seed if self.fraction_seed is None else self.fraction_seed)


@dataclass(frozen=True)
class TaskSpec:
    """What a dataset is to the model: task, outputs, label names, activation, fixed crop."""
    info: Optional[DatasetInfo]
    task: str
    num_outputs: Optional[int]
    label_names: Tuple[str, ...]
    output_activation: str
    input_crop: Optional[Tuple[int, int, int, int]]


def resolve_task(data_set: Optional[str], task: Optional[str] = None, nb_classes: Optional[int] = None,
                 input_crop: Optional[Sequence[int]] = None) -> TaskSpec:
    """The registry's description of ``data_set``; ``task`` / ``nb_classes`` stand in for a name the
    registry does not know (a KeyError when neither is there). ``nb_classes`` never overrides the
    registry's output count here (the entry point warns about a mismatch); label names are the
    registry's when the counts agree, else '0', '1', ..."""
    info = None
    if data_set:
        try:
            info = get_dataset_info(data_set)
        except KeyError:
            if nb_classes is None:
                raise
    if info is not None and info.task in (CLASSIFICATION, REGRESSION):
        kind, n = info.task, info.num_outputs
    else:
        kind, n = task or CLASSIFICATION, nb_classes
    names = tuple(info.label_names) if info is not None and len(info.label_names) == (nb_classes or n) \
        else tuple(str(i) for i in range(int(nb_classes or n or 0)))
    crop = input_crop if input_crop is not None else (info.input_crop if info is not None else None)
    return TaskSpec(info=info, task=kind, num_outputs=n, label_names=names,
                    output_activation=(info.output_activation if info is not None else 'none'),
                    input_crop=tuple(int(c) for c in crop) if crop is not None else None)

"""Datasets and builders on real files: items, views, broken videos, masks, subsets, registry."""
import logging
import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from datasets.build import build_finetune_dataset, build_pretrain_dataset
from datasets.config import DataConfig
from datasets.registry import dataset_names, get_dataset_info
from datasets.sampling import eval_clip_indices
from datasets.split_file import MissingPathsError, write_split_file
from tests.helpers import (pattern_frames, pattern_index, write_frame_folder, write_mp4,
                              write_random_bytes, write_truncated_mp4)
from datasets.transforms import denormalize
from datasets.video_dataset import TooManyBrokenVideos, select_fraction
from datasets.video_reader import VideoReadError

T, STRIDE, S = 8, 2, 64          # 8 frames at stride 2 (span 15), 64x64


def _args(**kw):
    base = dict(data_set="dfew", num_frames=T, sampling_rate=STRIDE, input_size=S,
                short_side_size=S, test_num_segment=2, test_num_crop=2, reader="decord",
                aa=None, reprob=0.0, train_crop_scale=(1.0, 1.0), seed=0)
    base.update(kw)
    return DataConfig(**base)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    good = []
    for i in range(6):
        n = 24 + 4 * i                                   # 24..44 frames
        good.append((write_mp4(str(d / f"good {i}.mp4"), pattern_frames(n, S, S, seed=i)), i % 7))
    good.append((write_frame_folder(str(d / "frames_jpg"), pattern_frames(12, S, S), "jpg"), 3))
    good.append((write_frame_folder(str(d / "frames_png"), pattern_frames(20, S, S), "png"), 5))
    bad = [(write_random_bytes(str(d / "random.mp4")), 1),
           (write_truncated_mp4(str(d / "trunc.mp4"), pattern_frames(30, S, S), 0.5, False), 2),
           (write_truncated_mp4(str(d / "trunc_head.mp4"), pattern_frames(40, S, S), 0.3), 4)]
    splits = {}
    splits["good"] = str(d / "good.txt")
    write_split_file(splits["good"], good)
    splits["mixed"] = str(d / "mixed.txt")
    write_split_file(splits["mixed"], good[:3] + bad[:2] + good[3:] + bad[2:])
    splits["bad"] = str(d / "bad.txt")
    write_split_file(splits["bad"], bad)
    splits["reg"] = str(d / "reg.txt")
    write_split_file(splits["reg"], [(p, (0.1 * k, -0.5, 1.0)) for k, (p, _) in enumerate(good)])
    return dict(dir=str(d), good=good, bad=bad, splits=splits)


def test_train_items_exact_stride(data):
    ds = build_finetune_dataset(data["splits"]["good"], "train", _args(temporal_sampling="exact_stride"))
    assert len(ds) == len(data["good"]) and ds.num_views == 1
    torch.manual_seed(0)
    for i in range(len(ds)):
        clip, target, index, skipped = ds[i]
        assert clip.shape == (3, T, S, S) and clip.dtype == torch.float32
        assert isinstance(target, int) and target == data["good"][i][1]
        assert index == i and skipped == 0
        frames = (denormalize(clip).clamp(0, 1) * 255).round().permute(1, 2, 3, 0).numpy()
        idx = pattern_index(frames)
        L = ([24 + 4 * k for k in range(6)] + [12, 20])[i]
        if L >= (T - 1) * STRIDE + 1:
            assert (np.diff(idx) == STRIDE).all(), idx
        else:                                            # 12-frame folder: clamped to the end
            assert idx.tolist() == [0, 2, 4, 6, 8, 10, 11, 11]


def test_train_items_published_sampling(data):
    """The default: the published fine-tuning indices, written out here: an end e in [T*s, L),
    linspace(e - T*s, e, T) clipped to e - 1 and truncated; short videos linspace(0, L, L // s)
    padded with L, clipped to L - 1."""
    ds = build_finetune_dataset(data["splits"]["good"], "train", _args())
    torch.manual_seed(0)
    ends = set()
    for rep in range(3):
        for i in range(len(ds)):
            clip, _, _, _ = ds[i]
            frames = (denormalize(clip).clamp(0, 1) * 255).round().permute(1, 2, 3, 0).numpy()
            idx = pattern_index(frames).tolist()
            L = ([24 + 4 * k for k in range(6)] + [12, 20])[i]
            if L > T * STRIDE:
                e = idx[-1] + 1
                want = np.clip(np.linspace(e - T * STRIDE, e, T), e - T * STRIDE, e - 1).astype(int)
                assert T * STRIDE <= e < L and idx == want.tolist(), (L, idx)
                assert set(np.diff(idx).tolist()) == {2, 3}  # strides s and s + 1
                ends.add((i, e))
            else:  # the 12-frame folder
                assert idx == [0, 2, 4, 7, 9, 11, 11, 11]
    assert len(ends) > 8  # the end is drawn, not fixed


def test_train_items_with_augmentation(data):
    ds = build_finetune_dataset(data["splits"]["good"], "train",
                                _args(aa="rand-m7-n4-mstd0.5-inc1", reprob=0.25,
                                      train_crop_scale=(0.08, 1.0)))
    clip, target, index, skipped = ds[0]
    assert clip.shape == (3, T, S, S) and torch.isfinite(clip).all()


def test_regression_targets(data):
    ds = build_finetune_dataset(data["splits"]["reg"], "train", _args(data_set="werewolf-xl"))
    _, target, _, _ = ds[2]
    assert target.dtype == torch.float32 and target.shape == (3,)
    assert torch.allclose(target, torch.tensor([0.2, -0.5, 1.0]))
    with pytest.raises(Exception, match="expected"):
        build_finetune_dataset(data["splits"]["reg"], "train", _args(data_set="chalearn-fi"))


def test_test_views(data):
    ds = build_finetune_dataset(data["splits"]["good"], "test", _args())
    assert ds.num_videos == len(data["good"]) and ds.num_views == 4
    assert len(ds) == 4 * ds.num_videos and ds.paths == [p for p, _ in data["good"]]
    assert ds.skipped == []
    seen = set()
    for i in range(4 * 2):                                # first two videos, all views
        clip, target, vid, view = ds[i]
        seen.add((vid, view))
        assert clip.shape == (3, T, S, S) and target == data["good"][vid][1]
        frames = (denormalize(clip).clamp(0, 1) * 255).round().permute(1, 2, 3, 0).numpy()
        L = 24 + 4 * vid
        grid = list(range(0, L, STRIDE))  # the published test clips, written out
        start = int((view // 2) * (len(grid) - T) / (2 - 1))
        assert pattern_index(frames).tolist() == grid[start:start + T] == \
            eval_clip_indices(L, view // 2, T, STRIDE, 2).tolist()
    assert seen == {(v, k) for v in range(2) for k in range(4)}
    val = build_finetune_dataset(data["splits"]["good"], "validation", _args())
    assert val.num_views == 1 and len(val) == val.num_videos


def test_broken_videos_in_training_are_substituted_and_counted(data, caplog):
    split = data["splits"]["mixed"]
    ds = build_finetune_dataset(split, "train", _args())
    bad_paths = {p for p, _ in data["bad"]}
    bad_idx = [i for i, p in enumerate(ds.paths) if p in bad_paths]
    assert len(bad_idx) == 3
    with caplog.at_level(logging.WARNING, logger="svfap.data"):
        for epoch in range(2):
            total = 0
            for i in range(len(ds)):
                clip, target, index, skipped = ds[i]
                assert clip.shape == (3, T, S, S)
                assert ds.paths[index] not in bad_paths
                assert target == ds.labels[index]
                assert (skipped > 0) == (i in bad_idx)
                total += skipped
            assert total >= 3
    logged = [r.getMessage() for r in caplog.records if r.name == "svfap.data"]
    for p in bad_paths:                                   # each broken path logged exactly once
        assert sum(p in m for m in logged) == 1
    assert set(ds.broken) == bad_paths
    # the substitute is a function of (seed, index): a fresh dataset (resumed run) picks the same
    ds2 = build_finetune_dataset(split, "train", _args())
    for i in bad_idx:
        assert ds2[i][2] == ds[i][2]


def test_broken_counts_through_dataloader_workers(data):
    ds = build_finetune_dataset(data["splits"]["mixed"], "train", _args())
    torch.manual_seed(0)
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=True)
    total = sum(int(b[3].sum()) for b in loader)
    assert total >= 3


def test_all_broken_training_set_gives_up(data):
    ds = build_finetune_dataset(data["splits"]["bad"], "train", _args())
    with pytest.raises(TooManyBrokenVideos, match="in a row"):
        ds[0]


def test_broken_videos_in_evaluation(data):
    ds = build_finetune_dataset(data["splits"]["mixed"], "test", _args())
    bad = data["bad"][0][0]
    vid = ds.paths.index(bad)
    with pytest.raises(VideoReadError) as ei:
        ds[vid * ds.num_views]
    assert bad in str(ei.value) and "skip_broken_eval" in str(ei.value)
    with pytest.raises(VideoReadError, match="trunc_head"):   # opens, then fails mid-file
        for v in range(ds.num_views):
            ds[ds.paths.index(data["bad"][2][0]) * ds.num_views + v]
    ds = build_finetune_dataset(data["splits"]["mixed"], "validation",
                                _args(skip_broken_eval=True))
    assert ds.num_videos == len(data["good"])
    assert sorted(p for p, _ in ds.skipped) == sorted(p for p, _ in data["bad"])
    assert all(reason for _, reason in ds.skipped)
    for i in range(len(ds)):
        ds[i]


def test_pretrain_masks_and_crop(data):
    for ratio in (0.75, 0.9):
        args = _args(data_set="synthetic-pretrain", mask_ratio=ratio, input_crop=(0, 48, 8, 56))
        ds = build_pretrain_dataset(data["splits"]["mixed"], args)
        grid_hw = (S // 16) ** 2
        n_masked = int(np.floor(ratio * grid_hw + 1e-6))
        total_skipped = 0
        for i in range(len(ds)):
            clip, mask, skipped = ds[i]
            assert clip.shape == (3, T, S, S)
            assert mask.dtype == torch.bool and mask.shape == (T // 2 * grid_hw,)
            per_slice = mask.view(T // 2, grid_hw)
            assert (per_slice == per_slice[0]).all()      # a tube: same positions every slice
            assert int(per_slice[0].sum()) == n_masked
            total_skipped += skipped
        assert total_skipped >= 3


def test_fractions(data):
    labels = [c for c in range(4) for _ in range(10)] + [4]
    sel = select_fraction(labels, 0.3, seed=1, stratified=True)
    counts = np.bincount([labels[i] for i in sel], minlength=5)
    assert counts.tolist() == [3, 3, 3, 3, 1]
    assert sel == select_fraction(labels, 0.3, seed=1, stratified=True)
    assert sel != select_fraction(labels, 0.3, seed=2, stratified=True)
    assert len(select_fraction(labels, 0.5, seed=0, stratified=False)) == 20
    assert select_fraction(labels, 1.0, 0, True) == list(range(len(labels)))
    ds = build_finetune_dataset(data["splits"]["good"], "train", _args(train_fraction=0.5))
    ds2 = build_finetune_dataset(data["splits"]["good"], "train", _args(train_fraction=0.5))
    assert ds.paths == ds2.paths and 0 < len(ds) < len(data["good"])
    pre = build_pretrain_dataset(data["splits"]["good"], _args(pretrain_fraction=0.5))
    assert len(pre) == 4


def test_missing_paths_reported_at_build(data, tmp_path):
    sf = str(tmp_path / "s.txt")
    write_split_file(sf, [(p, c) for p, c in data["good"]] +
                     [(os.path.join(data["dir"], f"gone_{i}.mp4"), 0) for i in range(3)])
    with pytest.raises(MissingPathsError, match="3 path"):
        build_finetune_dataset(sf, "train", _args())


def test_registry():
    names = dataset_names()
    for n in ("dfew", "ferv39k", "mafw", "crema-d", "ravdess", "enterface05", "werewolf-xl",
              "avcaffe-arousal", "avcaffe-valence", "chalearn-fi", "voxceleb2"):
        assert n in names
    assert get_dataset_info("DFEW").num_outputs == 7 and get_dataset_info("mafw").num_outputs == 11
    assert get_dataset_info("cremad").name == "crema-d"
    assert get_dataset_info("werewolf").is_regression
    assert get_dataset_info("chalearn").num_outputs == 5
    assert get_dataset_info("voxceleb2").input_crop == (0, 160, 32, 192)
    assert get_dataset_info("ravdess").label_names[0] == "neutral"
    with pytest.raises(KeyError, match="unknown dataset"):
        get_dataset_info("imagenet")


def test_voxceleb2_crop_on_small_frames_is_a_settings_error(data, tmp_path):
    """The VideoMAE-style VoxCeleb2 recipe crops rows 0-160, cols 32-192: on 64x64 frames that is one
    error naming the setting at start-up, not every clip reported as a broken video."""
    from datasets.build import build_pretrain_dataset
    from datasets.transforms import InputCropError
    split = str(tmp_path / "pretrain.csv")
    write_split_file(split, [(p, 0) for p, _ in data["good"]])
    with pytest.raises(InputCropError, match=r"rows 0-160, cols 32-192 \(the input_crop of data_set "
                                             r"voxceleb2\) does not fit the 64x64 frames of .*--input_crop"):
        build_pretrain_dataset(split, _args(data_set="voxceleb2"))
    with pytest.raises(InputCropError, match=r"\(--input_crop\)"):
        build_finetune_dataset(data["splits"]["good"], "train", _args(input_crop=(0, 100, 0, 40)))
    ds = build_pretrain_dataset(split, _args(data_set="voxceleb2", input_crop=(0, 40, 4, 44)))
    assert ds[0][0].shape == (3, T, S, S)


def test_repeated_sampling_decodes_once_and_augments_n_times(data, tmp_path, monkeypatch):
    """num_sample 3: three clips of the same temporal window (one decode), each with its own crop
    and mask; the loader flattens a batch of 2 videos to 6 clips."""
    from torch.utils.data import DataLoader
    from datasets import video_dataset as vd
    from datasets.build import build_pretrain_dataset
    split = str(tmp_path / "pretrain.csv")
    write_split_file(split, [(p, 0) for p, _ in data["good"]])
    ds = build_pretrain_dataset(split, _args(data_set="synthetic-pretrain", num_sample=3,
                                             pretrain_scales=(1.0, 0.75, 0.5)))
    reads = []
    real = vd.read_train_frames
    monkeypatch.setattr(vd, "read_train_frames", lambda *a, **k: reads.append(1) or real(*a, **k))
    clips, masks, skipped = ds[1]
    assert len(reads) == 1 and clips.shape == (3, 3, T, S, S) and masks.shape[0] == 3
    idx = [pattern_index((denormalize(c).clamp(0, 1) * 255).round().permute(1, 2, 3, 0).numpy()).tolist()
           for c in clips]
    assert idx[0] == idx[1] == idx[2]                       # the same frames ...
    assert not (torch.equal(clips[0], clips[1]) and torch.equal(clips[1], clips[2]))   # ... augmented
    assert not torch.equal(masks[0], masks[1]) or not torch.equal(masks[1], masks[2])
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=vd.collate_repeated)))
    assert batch[0].shape == (6, 3, T, S, S) and batch[1].shape[0] == 6 and batch[2].shape == (2,)
    ft = build_finetune_dataset(data["splits"]["good"], "train", _args(num_sample=2))
    clips, targets, index, _ = ft[0]
    assert clips.shape == (2, 3, T, S, S) and targets.tolist() == [ft.labels[int(index[0])]] * 2
    b = next(iter(DataLoader(ft, batch_size=3, collate_fn=vd.collate_repeated)))
    assert b[0].shape == (6, 3, T, S, S) and b[1].shape == (6,) and b[2].shape == (6,)
    assert build_finetune_dataset(data["splits"]["good"], "test", _args(num_sample=2)).num_sample == 1


def test_video_cache_gives_the_readers_frames_and_keeps_its_budget(data, monkeypatch, tmp_path):
    """--cache_gb: train, test and pre-training items equal the uncached ones (mp4v, frame folders,
    and H.264 / MPEG-4 part 2 with B-frames); each video is decoded once; a broken video is still
    reported and substituted; the budget bounds what is kept."""
    from datasets.video_writer import write_video
    bframes = [(write_video(str(tmp_path / name), pattern_frames(40, S, S, seed=k), codec=codec,
                            gop_size=12, max_b_frames=2), k)
               for k, (name, codec) in enumerate((("h264_b.mp4", "libx264"), ("mpeg4_b.avi", "mpeg4")))]
    split_b = str(tmp_path / "bframes.txt")
    write_split_file(split_b, bframes)
    for mode in ("train", "test"):
        plain = build_finetune_dataset(split_b, mode, _args(reader="pyav"))
        cached = build_finetune_dataset(split_b, mode, _args(reader="pyav", cache_gb=0.5))
        for i in range(len(plain)):
            torch.manual_seed(i)
            a = plain[i]
            torch.manual_seed(i)
            assert torch.equal(a[0], cached[i][0])
        assert len(cached.cache) == len(bframes)
    import datasets.video_cache as video_cache
    opened = []
    real_open = video_cache.open_video
    monkeypatch.setattr(video_cache, "open_video", lambda p, r: opened.append(p) or real_open(p, r))
    for mode in ("train", "test"):
        plain = build_finetune_dataset(data["splits"]["mixed" if mode == "train" else "good"], mode,
                                       _args(aa="rand-m7-n4-mstd0.5-inc1"))
        cached = build_finetune_dataset(data["splits"]["mixed" if mode == "train" else "good"], mode,
                                        _args(aa="rand-m7-n4-mstd0.5-inc1", cache_gb=0.5))
        assert plain.cache is None and cached.cache is not None
        for rounds in range(2):
            for i in range(len(plain)):
                torch.manual_seed(100 * rounds + i)
                a = plain[i]
                torch.manual_seed(100 * rounds + i)
                b = cached[i]
                assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
        assert len(cached.cache) == len(data["good"])  # the frame folders are cached too
        assert len(opened) == len(set(opened))  # every video decoded once, whatever the rounds
        if mode == "train":
            assert set(cached.broken) == set(plain.broken) == {p for p, _ in data["bad"]}
        opened.clear()
    pre_plain = build_pretrain_dataset(data["splits"]["good"], _args(mask_ratio=0.75))
    pre_cached = build_pretrain_dataset(data["splits"]["good"], _args(mask_ratio=0.75, cache_gb=0.5))
    for i in range(len(pre_plain)):
        torch.manual_seed(i)
        a = pre_plain[i]
        torch.manual_seed(i)
        b = pre_cached[i]
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # a budget of about two videos keeps two, then reads from disk; a worker starts empty
    small = build_finetune_dataset(data["splits"]["good"], "test",
                                   _args(cache_gb=2.5 * 24 * S * S * 3 / 2 ** 30))
    for i in range(len(small)):
        small[i]
    assert len(small.cache) == 2 and small.cache.bytes <= small.cache.max_bytes
    import pickle
    assert len(pickle.loads(pickle.dumps(small.cache))) == 0

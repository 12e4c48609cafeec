"""The pixels the model sees equal the published pipeline's (docs/training.md, "Published | ours").

The published pipeline is written out here from its description, independently of the code under
test: frame folders listed with ``sorted(glob('*.jpg'))`` and opened with PIL; test clips on the
stride grid from frame 0 (clip k of K from grid entry ``int(k * (n - 16) / (K - 1))``); every frame
squashed with ``PIL.Image.resize((s, s), BILINEAR)``; ``/ 255`` and the ImageNet normalisation.
"""
import glob
import os

import av
import numpy as np
import pytest
import torch
from PIL import Image

from datasets.build import build_finetune_dataset, build_pretrain_dataset
from datasets.config import DataConfig
from datasets.split_file import write_split_file
from datasets.transforms import (IMAGENET_MEAN, IMAGENET_STD, PretrainTransform, denormalize,
                                 multi_scale_crop_params, resize_frames, squash_frames)
from datasets.video_writer import write_frame_folder

REALDATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared",
                        "realdata")
F, STRIDE, S = 16, 4, 160
LENGTHS = (30, 64, 97, 150)


def textured_frames(n: int, h: int = 256, w: int = 256, seed: int = 0) -> np.ndarray:
    """Frames with fine detail (where an un-antialiased resize differs), each shifted by its index,
    so every frame differs from its neighbours."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 2, w // 2 + n, 3)).astype(np.float32)
    base = np.repeat(np.repeat(base, 2, 0), 2, 1)
    base = 0.5 * base + 0.5 * np.roll(base, 1, 1)
    return np.stack([base[:, 2 * i:2 * i + w].astype(np.uint8) for i in range(n)])


def normalise(buf: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> (3, T, H, W), as ClipToTensor + Normalize."""
    x = torch.from_numpy(np.array(buf)).float() / 255.0
    x = (x - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    return x.permute(3, 0, 1, 2)


def published_test_view(images, k: int, num_segments: int) -> torch.Tensor:
    """The published test view of a list of PIL images (all frames of the video)."""
    grid = list(range(0, len(images), STRIDE))
    while len(grid) < F:
        grid.append(grid[-1])
    buf = np.stack([np.asarray(images[i].resize((S, S), Image.BILINEAR)) for i in grid])
    step = max(1.0 * (buf.shape[0] - F) / (num_segments - 1), 0)
    start = int(k * step)
    return normalise(buf[start:start + F])


def folder_images(folder: str):
    return [Image.open(f).convert("RGB") for f in sorted(glob.glob(os.path.join(folder, "*.jpg")))]


def video_images(path: str):
    with av.open(path) as c:
        return [Image.fromarray(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def write_h264(path: str, frames: np.ndarray) -> str:
    """H.264 in MP4 with B-frames (libx264 defaults)."""
    with av.open(path, "w") as c:
        st = c.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        st.options = {"crf": "18", "bf": "3"}
        for f in frames:
            for p in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    return path


def _cfg(**kw):
    base = dict(data_set="dfew", num_frames=F, sampling_rate=STRIDE, input_size=S,
                test_num_segment=2, test_num_crop=2, reader="pyav", aa=None, reprob=0.0,
                train_crop_scale=(1.0, 1.0), seed=0)
    base.update(kw)
    return DataConfig(**base)


@pytest.fixture(scope="module")
def dfew_like(tmp_path_factory):
    """DFEW-style folders of 256x256 JPEG frames (00001.jpg ...) and the same frames as H.264 MP4."""
    d = tmp_path_factory.mktemp("dfew_like")
    folders, videos = [], []
    for i, n in enumerate(LENGTHS):
        frames = textured_frames(n, seed=i)
        folders.append((write_frame_folder(str(d / "frames" / f"{i + 1:05d}"), frames, "jpg", 90), i))
        videos.append((write_h264(str(d / f"{i + 1:05d}.mp4"), frames), i))
    write_split_file(str(d / "folders.csv"), folders)
    write_split_file(str(d / "videos.csv"), videos)
    return d


@pytest.mark.parametrize("kind", ["folders", "videos"])
def test_test_views_equal_the_published_pipeline(dfew_like, kind):
    """Every view of every video within 0.01 (mean absolute difference, normalised units)."""
    ds = build_finetune_dataset(str(dfew_like / f"{kind}.csv"), "test", _cfg())
    assert ds.num_views == 4
    worst = 0.0
    for vid, path in enumerate(ds.paths):
        images = folder_images(path) if kind == "folders" else video_images(path)
        assert len(images) == LENGTHS[vid]
        for view in range(4):
            clip, _, v, w = ds[vid * 4 + view]
            assert (v, w) == (vid, view) and clip.shape == (3, F, S, S)
            ref = published_test_view(images, view // 2, 2)
            worst = max(worst, float((clip - ref).abs().mean()))
    assert worst < 0.01, worst
    if kind == "folders":  # the check has teeth: the earlier inputs fail it on these frames
        old = build_finetune_dataset(str(dfew_like / "folders.csv"), "test",
                                     _cfg(resize_filter="opencv", temporal_sampling="exact_stride"))
        diffs = [float((old[i][0] - published_test_view(folder_images(old.paths[i // 4]), (i % 4) // 2,
                                                         2)).abs().mean()) for i in range(len(old))]
        assert min(diffs) > 0.01 and max(diffs) > 0.1, diffs


def test_training_frames_equal_the_published_resize(dfew_like):
    """With augmentation off, a training clip is the published indices' frames squashed by PIL."""
    ds = build_finetune_dataset(str(dfew_like / "folders.csv"), "train", _cfg())
    ds.transform.hflip = 0.0
    torch.manual_seed(0)
    for i, n in enumerate(LENGTHS):
        clip, _, idx, _ = ds[i]
        images = folder_images(ds.paths[idx])
        frames = np.stack([np.asarray(im) for im in images])
        # which frames: the clip's first and last columns of texture say where in the video it is
        got = (denormalize(clip).clamp(0, 1) * 255).round().permute(1, 2, 3, 0).numpy().astype(int)
        cands = np.stack([np.asarray(im.resize((S, S), Image.BILINEAR)) for im in images]).astype(int)
        chosen = [int(np.abs(cands - g).mean(axis=(1, 2, 3)).argmin()) for g in got]
        if n > F * STRIDE:
            end = chosen[-1] + 1
            want = np.clip(np.linspace(end - F * STRIDE, end, F), end - F * STRIDE, end - 1).astype(int)
        else:
            want = np.clip(np.concatenate([np.linspace(0, n, n // STRIDE),
                                           np.full(F - n // STRIDE, n)]), 0, n - 1).astype(int)
        assert chosen == want.tolist(), (n, chosen)
        ref = normalise(np.stack([np.asarray(images[j].resize((S, S), Image.BILINEAR)) for j in want]))
        assert float((clip - ref).abs().mean()) < 0.002
        assert frames.shape[1:] == (256, 256, 3)


def test_resize_equals_pil_bilinear():
    """PIL's bilinear (antialiased when shrinking) within half a grey level on average, at most 1
    anywhere: squashing 256 -> 160, 640x360 -> 160, enlarging 140 -> 160, real and textured frames."""
    sources = [textured_frames(4, 256, 256), textured_frames(4, 360, 640, seed=3),
               textured_frames(4, 140, 140, seed=4)]
    real = os.path.join(REALDATA, "pyfeat_single_face.mp4")
    if os.path.exists(real):
        with av.open(real) as c:
            sources.append(np.stack([f.to_ndarray(format="rgb24")
                                     for _, f in zip(range(4), c.decode(video=0))]))
    for frames in sources:
        for h, w in ((S, S), (112, 200)):
            ours = resize_frames(frames, h, w).astype(int)
            ref = np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.BILINEAR))
                            for f in frames]).astype(int)
            assert ours.shape == ref.shape
            diff = np.abs(ours - ref)
            assert diff.mean() < 0.5 and diff.max() <= 1, (frames.shape, (h, w), diff.mean())
            assert np.array_equal(squash_frames(frames, S), resize_frames(frames, S, S))
    # the OpenCV option is the earlier, un-antialiased one: visibly different when shrinking
    f = textured_frames(2)
    ref = np.stack([np.asarray(Image.fromarray(x).resize((S, S), Image.BILINEAR)) for x in f]).astype(int)
    assert np.abs(squash_frames(f, S, "opencv").astype(int) - ref).mean() > 2


def test_pretraining_crop_is_resized_as_the_published_multiscale_crop():
    """The multi-scale crop of PIL images: ``img.crop(box).resize((s, s), BILINEAR)``."""
    frames = textured_frames(3, 224, 224)
    t = PretrainTransform(S, input_crop=(0, 160, 32, 192))
    for seed in range(6):
        clip = t(frames, np.random.default_rng(seed))
        top, left, ch, cw = multi_scale_crop_params(160, 160, S, t.scales, rng=np.random.default_rng(seed))
        ref = normalise(np.stack([np.asarray(Image.fromarray(f[0:160, 32:192]).crop(
            (left, top, left + cw, top + ch)).resize((S, S), Image.BILINEAR)) for f in frames]))
        assert float((clip - ref).abs().mean()) < 0.002, (seed, ch, cw)


def test_pretraining_dataset_uses_the_published_start(dfew_like):
    """Pre-training clips start uniformly in [0, L - 64] at exact stride 4 (150 frames: 0..86)."""
    split = str(dfew_like / "pre.csv")
    with open(split, "w") as f:
        f.write(os.path.join(str(dfew_like), "00004.mp4") + "\n")
    ds = build_pretrain_dataset(split, _cfg(data_set=None, pretrain_scales=(1.0,), input_crop=None))
    images = video_images(ds.paths[0])
    cands = torch.stack([normalise(np.asarray(im.resize((S, S), Image.BILINEAR))[None])[:, 0]
                         for im in images])  # (L, 3, S, S)
    torch.manual_seed(0)
    starts = set()
    for _ in range(40):
        clip, mask, _ = ds[0]
        first = int((cands - clip[:, 0]).abs().mean(dim=(1, 2, 3)).argmin())
        last = int((cands - clip[:, -1]).abs().mean(dim=(1, 2, 3)).argmin())
        assert last - first == 60 and 0 <= first <= 150 - 64
        starts.add(first)
    assert len(starts) > 15

"""RandAugment on clip tensors: timm's decisions replayed exactly, PIL's pixel definitions (point
ops bit-exact, geometric ops within interpolation differences), and the same clip as the PIL path."""
import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import auto_augment as AA

from datasets.tensor_augment import TENSOR_OPS, apply_plan, timm_plan
from datasets.transforms import ClipRandAugment, FinetuneTrainTransform
from tests.helpers import pattern_frames


def _image(h=64, w=80):
    rng = np.random.default_rng(0)
    img = pattern_frames(1, h, w)[0].copy()
    img[10:30, 20:50] = (200, 30, 90)
    return (img.astype(int) + rng.integers(0, 60, img.shape)).clip(0, 255).astype(np.uint8)


POINT = [('Posterize', AA.posterize, (3,)), ('Solarize', AA.solarize, (100,)),
         ('SolarizeAdd', AA.solarize_add, (60,)), ('Color', AA.color, (1.6,)),
         ('Contrast', AA.contrast, (0.4,)), ('Brightness', AA.brightness, (1.5,)),
         ('Sharpness', AA.sharpness, (1.8,)), ('Sharpness', AA.sharpness, (0.2,)),
         ('AutoContrast', AA.auto_contrast, ()), ('Equalize', AA.equalize, ()), ('Invert', AA.invert, ())]
GEOMETRIC = [('Rotate', AA.rotate, (20.0,)), ('Rotate', AA.rotate, (-13.0,)), ('ShearX', AA.shear_x, (0.2,)),
             ('ShearY', AA.shear_y, (-0.15,)), ('TranslateXRel', AA.translate_x_rel, (0.3,)),
             ('TranslateYRel', AA.translate_y_rel, (-0.2,))]


@pytest.mark.parametrize('name,fn,args', POINT + GEOMETRIC, ids=[f'{c[0]}{c[2]}' for c in POINT + GEOMETRIC])
def test_each_op_follows_pil(name, fn, args):
    img = _image()
    ref = np.asarray(fn(Image.fromarray(img), *args, fillcolor=(128, 128, 128),
                        resample=Image.BILINEAR)).astype(int)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
    got = TENSOR_OPS[name](x, *args, fillcolor=(128, 128, 128))[0].permute(1, 2, 0).numpy().astype(int)
    d = np.abs(ref - got)
    if (name, fn, args) in POINT:
        assert d.max() == 0
    else:  # bilinear sampling: the same up to rounding, except a few pixels at the fill border
        assert d.mean() < 1.5 and (d > 1).mean() < 0.05


def test_the_plan_is_timms_and_the_clip_matches_the_pil_path():
    frames = np.stack([np.asarray(Image.fromarray(_image()).resize((96, 96)))] * 4)
    pil = ClipRandAugment(input_size=96, fill=128, interpolation='bilinear')
    ten = ClipRandAugment(input_size=96, fill=128, interpolation='bilinear', backend='tensor')
    seen_ops = set()
    diffs = []
    for s in range(25):
        a, b = pil(frames, np.random.default_rng(s)), ten(frames, np.random.default_rng(s))
        diffs.append(np.abs(a.astype(int) - b).mean())
        seed = int(np.random.default_rng(s).integers(0, 2 ** 63 - 1))
        plan = timm_plan(ten.ra, seed)
        assert plan == timm_plan(ten.ra, seed)                     # deterministic
        seen_ops |= {n for n, _, _ in plan}
        assert all(np.array_equal(b[0], b[t]) for t in range(1, 4))  # identical frames stay identical
    assert np.mean(diffs) < 0.6 and max(diffs) < 2.0
    assert len(seen_ops) >= 8
    assert all(n in TENSOR_OPS for n in AA._RAND_INCREASING_TRANSFORMS)
    # the transform's other random draws are unchanged by the backend
    tf_a = FinetuneTrainTransform(48, auto_augment=None, reprob=0.0)
    tf_b = FinetuneTrainTransform(48, auto_augment=None, reprob=0.0, ra_backend='tensor')
    assert torch.equal(tf_a(frames, np.random.default_rng(1)), tf_b(frames, np.random.default_rng(1)))
    with pytest.raises(TypeError):
        apply_plan(torch.zeros(2, 4, 8, 8, dtype=torch.uint8), [])


def test_device_stage_equals_the_worker_path_for_the_same_generator():
    """--augment_on device: workers resize, the device stage does the rest; for one generator the
    result equals the worker path with the tensor RandAugment (exactly with RandAugment off)."""
    frames = pattern_frames(6, 72, 96)
    for aa in (None, 'rand-m7-n4-mstd0.5-inc1'):
        tf = FinetuneTrainTransform(48, auto_augment=aa, reprob=1.0, ra_backend='tensor')
        for s in range(6):
            want = tf(frames, np.random.default_rng(s))
            x = tf.worker_stage(frames, np.random.default_rng(99))
            assert x.dtype == torch.uint8 and x.shape == (6, 48, 48, 3)
            torch.manual_seed(s)
            got = tf.augment_tensor(x.permute(0, 3, 1, 2), np.random.default_rng(s))
            torch.manual_seed(s)
            want = tf(frames, np.random.default_rng(s))
            assert got.shape == want.shape == (3, 6, 48, 48)
            assert (got - want).abs().max() < 1e-5, (aa, s)
    batch = torch.stack([tf.worker_stage(frames, None)] * 3)
    np.random.seed(0)
    out = tf.batch_stage(batch)
    assert out.shape == (3, 3, 6, 48, 48) and not torch.equal(out[0], out[1])


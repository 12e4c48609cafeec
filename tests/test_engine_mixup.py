"""Video mixup / cutmix: the CutMix box is spatial and identical for every frame and channel."""
import numpy as np
import pytest
import torch
from timm.data import Mixup

from engine.finetune import VideoMixup


def _batch(B=4, C=3, T=8, H=32, W=40):
    # every sample a distinct constant, so a pasted region is recognisable everywhere
    x = torch.arange(1, B + 1, dtype=torch.float32).view(B, 1, 1, 1, 1).expand(B, C, T, H, W).clone()
    y = torch.arange(B) % 3
    return x, y


@pytest.mark.parametrize('seed', range(5))
def test_cutmix_box_is_spatial_and_same_for_all_frames(seed):
    np.random.seed(seed)
    B, C, T, H, W = 4, 3, 8, 32, 40
    x, y = _batch(B, C, T, H, W)
    mix = VideoMixup(mixup_alpha=0.0, cutmix_alpha=1.0, prob=1.0, switch_prob=0.0,
                     label_smoothing=0.1, num_classes=3)
    out, target = mix(x.clone(), y)
    assert out.shape == (B, C, T, H, W)
    assert target.shape == (B, 3)
    changed = out != x  # (B, C, T, H, W)
    ref = changed[:, :1, :1]
    # identical across channels and frames
    assert torch.equal(changed, ref.expand_as(changed))
    # the changed region is the flipped partner's value, in a rectangle of the H x W plane
    m = ref[0, 0, 0]
    if m.any():
        rows = m.any(dim=1).nonzero().flatten()
        cols = m.any(dim=0).nonzero().flatten()
        box = torch.zeros_like(m)
        box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
        assert torch.equal(m, box)
        assert torch.all(out[0][:, :, m] == x.flip(0)[0][:, :, m])
        # target weights follow the box area
        lam = 1 - m.float().mean().item()
        off, on = 0.1 / 3, 1 - 0.1 + 0.1 / 3
        expect0 = torch.full((3,), off) * lam + torch.full((3,), off) * (1 - lam)
        expect0[y[0]] += (on - off) * lam
        expect0[y.flip(0)[0]] += (on - off) * (1 - lam)
        torch.testing.assert_close(target[0], expect0, atol=1e-5, rtol=0)


def test_plain_timm_mixup_on_5d_would_cut_time():
    """Why the reshape is needed: on (B, C, T, H, W) timm's x[:, :, a:b, c:d] slices T and H, so
    some frames get the pasted region and others do not."""
    np.random.seed(2)
    x, y = _batch()
    mix = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, prob=1.0, switch_prob=0.0, num_classes=3)
    xx = x.clone()
    mix(xx, y)
    per_frame = (xx != x)[0, 0].flatten(1).any(dim=1)  # (T,)
    assert per_frame.any() and not per_frame.all()


def test_mixup_blend_same_lambda_all_frames():
    np.random.seed(1)
    x, y = _batch()
    mix = VideoMixup(mixup_alpha=0.8, cutmix_alpha=0.0, prob=1.0, switch_prob=0.0,
                     label_smoothing=0.0, num_classes=3)
    out, target = mix(x.clone(), y)
    lam = target[0, y[0]].item() if y[0] != y.flip(0)[0] else None
    vals = out[0].unique()
    assert len(vals) == 1  # one blend for every pixel of every frame
    if lam is not None:
        assert vals.item() == pytest.approx(lam * 1 + (1 - lam) * 4, abs=1e-5)

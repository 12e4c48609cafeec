"""Model tests: shapes, parameter table, masking invariance, fusion alignment, targets, tube masks."""
import numpy as np
import pytest
import timm
import torch

import models  # noqa: F401  (registers the models)
from models.layers import (CrossAttention, get_attention_backend, set_attention_backend, sinusoid_position_table)
from models.mae import patchify_targets
from datasets.masking import TubeMaskGenerator, masked_positions, tube_mask
from models.masking import num_masked_tokens
from models.tpsbt import fuse_stages

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# ablation variants of the paper's Tables III, V and VI, as kwargs on the base architecture
ABLATIONS = {
    'default': {},
    'vit': dict(stage_depths=(24,)),
    'tp_only': dict(stage_depths=(12, 8, 4), spatial_bottleneck=False),
    'sbt_only': dict(temporal_downsample='none'),
    'k4': dict(num_bottleneck_tokens=4),
    'k16': dict(num_bottleneck_tokens=16),
    'avg': dict(temporal_downsample='avg'),
    'max': dict(temporal_downsample='max'),
}
# the same variants, shrunk for speed (the structure, not the size, is the point)
TINY_ABLATIONS = {
    'default': {},
    'vit': dict(stage_depths=(3,)),
    'tp_only': dict(stage_depths=(2, 2, 1), spatial_bottleneck=False),
    'sbt_only': dict(temporal_downsample='none'),
    'sbt_only_windows': dict(temporal_downsample='none', bottleneck_slices=(2, 4)),
    'k4': dict(num_bottleneck_tokens=4),
    'k16': dict(num_bottleneck_tokens=16),
    'avg': dict(temporal_downsample='avg'),
    'max': dict(temporal_downsample='max'),
    'four_stages': dict(stage_depths=(1, 1, 1, 1), num_bottleneck_tokens=(2, 3, 4)),
    'layer_scale': dict(init_values=0.1, drop_path_rate=0.1),
}
TINY = dict(embed_dim=48, num_heads=2)
SIZES = [(16, 160), (8, 112)]  # (frames, pixels)


def build(name, **kwargs):
    torch.manual_seed(0)
    return timm.create_model(name, **kwargs).eval()


def params_m(name, **kwargs):
    with torch.device('meta'):
        model = timm.create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters()) / 1e6


def tube_mask_batch(grid, ratio, batch, seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.stack([tube_mask(grid, ratio, rng) for _ in range(batch)]))


# ---------------------------------------------------------------------------------------------- shapes

def build_fast(name, **kwargs):
    """Full-size model with N(0, 0.02) weights, skipping the slower standard initialisation."""
    with torch.device('meta'):
        model = timm.create_model(name, **kwargs)
    model = model.to_empty(device='cpu').eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02, generator=gen)
    return model


@pytest.mark.parametrize('name', ['svfap_base_patch16_160', 'svfap_small_patch16_160'])
def test_full_size_output_shapes(name):
    model = build_fast(name, num_classes=7)
    for frames, size in SIZES:
        clip = torch.randn(1, 3, frames, size, size)
        with torch.no_grad():
            assert model(clip).shape == (1, 7)


@pytest.mark.parametrize('variant', sorted(TINY_ABLATIONS))
def test_ablation_shapes(variant):
    kwargs = dict(TINY, **TINY_ABLATIONS[variant])
    model = build('svfap_tiny_patch16_160', num_classes=5, **kwargs)
    pre = build('pretrain_svfap_tiny_patch16_160', **kwargs)
    for frames, size in SIZES:
        t, h, w = frames // 2, size // 16, size // 16
        clip = torch.randn(2, 3, frames, size, size)
        mask = tube_mask_batch((t, h, w), 0.75, 2)
        if variant == 'four_stages' and frames == 8:  # 4 slices -> 2 -> 1 -> nothing left
            with pytest.raises(ValueError, match='temporal slices'):
                model(clip)
            continue
        with torch.no_grad():
            assert model(clip).shape == (2, 5)
            stages = model.forward_stages(clip)
            assert stages[0].shape == (2, t, h * w, 48)
            pred = pre(clip, mask)
        assert pred.shape == (2, int(mask[0].sum()), 1536)
        assert torch.isfinite(pred).all()


def test_stage_lengths_and_spatial_attention():
    model = build('svfap_tiny_patch16_160', num_bottleneck_tokens=(3, 5))
    clip = torch.randn(2, 3, 16, 64, 64)
    with torch.no_grad():
        stages, attn = model.forward_stages(clip, return_spatial_attention=True)
    assert [s.shape for s in stages] == [(2, 8, 16, 96), (2, 4, 16, 96), (2, 2, 16, 96)]
    assert [a.shape for a in attn] == [(2, 4, 16, 3), (2, 2, 16, 5)]
    for a in attn:  # softmax over the spatial tokens of each slice
        torch.testing.assert_close(a.sum(dim=2), torch.ones_like(a.sum(dim=2)))


def test_bottleneck_windows():
    model = build('svfap_tiny_patch16_160', temporal_downsample='none', bottleneck_slices=(2, 4))
    with torch.no_grad():
        stages, attn = model.forward_stages(torch.randn(1, 3, 16, 64, 64), return_spatial_attention=True)
    assert [s.shape[1] for s in stages] == [8, 8, 8]
    assert [a.shape for a in attn] == [(1, 8, 16, 4), (1, 8, 16, 4)]
    for a, window in zip(attn, (2, 4)):  # softmax over the spatial tokens of a window of slices
        sums = a.reshape(1, 8 // window, window * 16, 4).sum(dim=2)
        torch.testing.assert_close(sums, torch.ones_like(sums))


def test_block_layout_matches_reference_names():
    with torch.device('meta'):
        model = timm.create_model('svfap_base_patch16_160')
    assert len(model.blocks) == 21
    assert all(not hasattr(model.blocks[i], 'cross_attn') for i in range(12))
    assert all(hasattr(model.blocks[i], 'cross_attn') for i in range(12, 21))
    keys = set(model.state_dict())
    assert 'temporal_downsamples.1.weight' in keys and 'spatial_downsamples.1.mlp.fc2.weight' in keys
    assert not any('gamma' in k or 'pos_embed' in k or k.startswith('norm.') for k in keys)
    with torch.device('meta'):
        scaled = timm.create_model('svfap_tiny_patch16_160', init_values=0.1)
    assert {'blocks.0.gamma_1', 'blocks.0.gamma_2', 'blocks.3.gamma_0'} <= set(scaled.state_dict())


# ---------------------------------------------------------------------------------------------- parameters

@pytest.mark.parametrize('name, kwargs, paper', [
    ('svfap_base_patch16_160', ABLATIONS['default'], 77.6),
    ('svfap_small_patch16_160', {}, 29.7),
    ('pretrain_svfap_base_patch16_160', {}, 85.5),
    ('svfap_base_patch16_160', ABLATIONS['vit'], 76.4),
    ('svfap_base_patch16_160', ABLATIONS['tp_only'], 77.5),
    ('svfap_base_patch16_160', ABLATIONS['sbt_only'], 76.6),
    ('svfap_base_patch16_160', ABLATIONS['k4'], 77.6),
    ('svfap_base_patch16_160', ABLATIONS['k16'], 77.6),
    ('svfap_base_patch16_160', ABLATIONS['avg'], 76.6),
    ('svfap_base_patch16_160', ABLATIONS['max'], 76.6),
])
def test_parameter_table(name, kwargs, paper):
    assert abs(params_m(name, **kwargs) - paper) < 0.05


def test_pretrain_encoder_has_base_size():
    with torch.device('meta'):
        model = timm.create_model('pretrain_svfap_base_patch16_160')
    encoder = sum(p.numel() for n, p in model.encoder.named_parameters() if not n.startswith('norm.'))
    assert abs(encoder / 1e6 - (77.6 - 0.004)) < 0.05  # the fine-tuning model less fc_norm/head


# ---------------------------------------------------------------------------------------------- masking

def test_masked_pixels_change_nothing():
    model = build('pretrain_svfap_tiny_patch16_160')
    frames, size = 8, 64
    grid = model.token_grid(frames, size, size)
    mask = tube_mask_batch(grid, 0.75, 2)
    clip = torch.randn(2, 3, frames, size, size)
    # pixel-level mask: True where the pixel belongs to a masked tube
    pix = mask.view(2, 1, grid[0], 1, grid[1], 1, grid[2], 1).expand(2, 3, grid[0], 2, grid[1], 16, grid[2], 16)
    pix = pix.reshape(2, 3, frames, size, size)
    other = torch.where(pix, torch.randn_like(clip) * 5, clip)
    assert not torch.equal(other, clip)
    with torch.no_grad():
        enc_a, enc_b = model.encoder.forward_stages(clip, mask), model.encoder.forward_stages(other, mask)
        pred_a, pred_b = model(clip, mask), model(other, mask)
    for a, b in zip(enc_a, enc_b):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    torch.testing.assert_close(pred_a, pred_b, rtol=0, atol=1e-6)
    # a visible pixel does change the predictions
    changed = torch.where(pix, clip, clip + 1.0)
    with torch.no_grad():
        assert not torch.allclose(model(changed, mask), pred_a)


def test_non_tube_mask_is_rejected():
    model = build('svfap_tiny_patch16_160')
    first_half = torch.arange(16) < 8
    mask = torch.cat([first_half, ~first_half, first_half, first_half])[None]  # 8 per slice, not a tube
    with pytest.raises(ValueError, match='tube'):
        model.forward_stages(torch.randn(1, 3, 8, 64, 64), mask)


def test_tube_mask_ratio_and_slices():
    mask = tube_mask((8, 10, 10), 0.9, np.random.default_rng(1))
    assert mask.dtype == bool and mask.shape == (800,)
    per_slice = mask.reshape(8, 100)
    assert (per_slice.sum(1) == 90).all()
    assert (per_slice == per_slice[:1]).all()
    assert tube_mask((8, 7, 7), 0.9, 0).reshape(8, 49).sum(1)[0] == 44  # floor(0.9 * 49)
    np.testing.assert_array_equal(tube_mask((2, 4, 4), 0.5, 3), tube_mask((2, 4, 4), 0.5, 3))
    gen = TubeMaskGenerator((8, 10, 10), 0.75)
    masks = np.stack([gen() for _ in range(4)])
    assert masks.shape == (4, 800) and (masks.sum(1) == 600).all() and gen.num_masked == 600
    assert len({m.tobytes() for m in masks}) > 1  # fresh draws


def test_data_and_model_masked_counts_agree():
    """The generator (datasets.masking) and the model's count under torch.compile
    (models.masking.num_masked_tokens) are two owners of one formula: they must never differ."""
    for ratio in (0.0, 0.25, 0.5, 0.6, 0.75, 0.8, 0.9, 0.95, 0.99):
        for t, h, w in ((1, 4, 4), (8, 10, 10), (8, 7, 7), (4, 14, 14), (2, 3, 5)):
            drawn = int(tube_mask((t, h, w), ratio, 0).sum())
            assert drawn == t * masked_positions(h * w, ratio) == num_masked_tokens((t, h, w), ratio), \
                (ratio, t, h, w)


# ---------------------------------------------------------------------------------------------- fusion

def _reference_fusion(stages):
    """Slice-by-slice loop: token (t, i) = sum over stages of stage[t * T_s // T_1, i]."""
    B, T1, N, C = stages[0].shape
    out = torch.zeros(B, T1, N, C)
    for t in range(T1):
        for s in stages:
            out[:, t] += s[:, t * s.shape[1] // T1]
    return out.reshape(B, T1 * N, C)


def test_fusion_alignment():
    B, N, C = 2, 5, 3
    stages = [torch.randn(B, T, N, C) for T in (8, 4, 2)]
    torch.testing.assert_close(fuse_stages(stages), _reference_fusion(stages))

    # The published code's misalignment: repeat the flattened tokens instead of the temporal slices
    # (a reshape with the wrong length) - pairs a stage-1 token with the wrong stage-2/3 tokens.
    def misaligned(stages):
        fused = stages[0].reshape(B, -1, C)
        for s in stages[1:]:
            factor = stages[0].shape[1] // s.shape[1]
            fused = fused + s.reshape(B, -1, C).repeat_interleave(factor, dim=1)
        return fused
    assert not torch.allclose(misaligned(stages), _reference_fusion(stages))


def test_encoder_fusion_uses_aligned_stages():
    model = build('pretrain_svfap_tiny_patch16_160')
    clip = torch.randn(1, 3, 16, 64, 64)
    mask = tube_mask_batch(model.token_grid(16, 64, 64), 0.5, 1)
    with torch.no_grad():
        stages = model.encoder.forward_stages(clip, mask)
        fused = model.encoder(clip, mask)
    assert [s.shape[1] for s in stages] == [8, 4, 2]
    torch.testing.assert_close(fused, model.encoder.norm(_reference_fusion(stages)))


# ---------------------------------------------------------------------------------------------- targets

def test_patchify_targets_matches_loop():
    torch.manual_seed(0)
    clip = torch.randn(2, 3, 4, 32, 48)
    out = patchify_targets(clip, MEAN, STD)
    assert out.shape == (2, 2 * 2 * 3, 1536)
    raw = clip * torch.tensor(STD).view(1, 3, 1, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1, 1)
    for b in range(2):
        n = 0
        for t in range(2):
            for i in range(2):
                for j in range(3):
                    tube = raw[b, :, 2 * t:2 * t + 2, 16 * i:16 * i + 16, 16 * j:16 * j + 16]  # (3, 2, 16, 16)
                    values = []
                    for dt in range(2):
                        for y in range(16):
                            for x in range(16):
                                values.append(tube[:, dt, y, x])
                    pixels = torch.stack(values)  # (512, 3), (t, h, w) order
                    expect = (pixels - pixels.mean(0)) / (pixels.std(0, unbiased=True) + 1e-6)
                    torch.testing.assert_close(out[b, n], expect.reshape(-1), rtol=1e-4, atol=1e-4)
                    n += 1


# ---------------------------------------------------------------------------------------------- layers

def test_sdpa_and_naive_attention_agree():
    model = build('pretrain_svfap_tiny_patch16_160')
    clip = torch.randn(2, 3, 8, 64, 64)
    mask = tube_mask_batch(model.token_grid(8, 64, 64), 0.5, 2)
    assert get_attention_backend() == 'sdpa'
    try:
        with torch.no_grad():
            fast = model(clip, mask)
            set_attention_backend('naive')
            naive = model(clip, mask)
    finally:
        set_attention_backend('sdpa')
    torch.testing.assert_close(fast, naive, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        set_attention_backend('flash')


def test_attention_biases():
    layer = CrossAttention(8, 2)
    assert sorted(n for n, _ in layer.named_parameters()) == [
        'kv.weight', 'proj.bias', 'proj.weight', 'q.weight', 'q_bias', 'v_bias']
    with torch.no_grad():  # a k bias would shift all logits equally; only v_bias may reach the output
        layer.v_bias.fill_(1.0)
        layer.kv.weight.zero_()
        layer.proj.weight.copy_(torch.eye(8))
        layer.proj.bias.zero_()
        out = layer(torch.randn(1, 3, 8), torch.randn(1, 4, 8))
    torch.testing.assert_close(out, torch.ones(1, 3, 8))


def test_sinusoid_table():
    table = sinusoid_position_table(50, 16)
    assert table.shape == (1, 50, 16)
    pos, k = 7, 3
    angle = pos / 10000 ** (2 * k / 16)
    torch.testing.assert_close(table[0, pos, 2 * k], torch.tensor(np.sin(angle), dtype=torch.float32))
    torch.testing.assert_close(table[0, pos, 2 * k + 1], torch.tensor(np.cos(angle), dtype=torch.float32))


# ---------------------------------------------------------------------------------------------- classifier API

def test_classifier_api():
    model = build('svfap_tiny_patch16_160', num_classes=3, output_activation='sigmoid')
    clip = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        out = model(clip)
    assert out.shape == (2, 3) and ((out > 0) & (out < 1)).all()
    assert model.output_activation == 'sigmoid'
    assert model.head.weight.std() < 1e-4  # trunc-normal(.02) * init_scale (.001)
    assert model.get_num_layers() == 6
    assert model.get_layer_id('patch_embed.proj.weight') == 0
    assert model.get_layer_id('blocks.0.attn.qkv.weight') == 1
    assert model.get_layer_id('blocks.5.mlp.fc1.bias') == 6
    # published: the later stages' downsampling modules get the last id (lr scale 1.0)
    assert model.get_layer_id('temporal_downsamples.0.weight') == 7
    assert model.get_layer_id('spatial_downsamples.1.norm.weight') == 7
    # 'stage': the id of the first block of the stage they open
    assert model.get_layer_id('temporal_downsamples.0.weight', 'stage') == 3  # stage 2: blocks 2, 3
    assert model.get_layer_id('spatial_downsamples.1.norm.weight', 'stage') == 5
    assert model.get_layer_id('head.weight') == model.get_layer_id('fc_norm.bias') == 7
    assert isinstance(model.no_weight_decay(), set)
    pre = build('pretrain_svfap_tiny_patch16_160', mask_ratio=0.75)
    assert pre.no_weight_decay() == {'mask_token'} and pre.mask_ratio == 0.75
    assert (pre.patch_size, pre.tubelet_size, pre.token_grid(16, 160, 160)) == (16, 2, (8, 10, 10))


def test_registration_accepts_timm_kwargs():
    for name in ('svfap_tiny_patch16_160', 'pretrain_svfap_tiny_patch16_160'):
        fn = timm.models.model_entrypoint(name)
        fn(pretrained=False, pretrained_cfg=None, pretrained_cfg_overlay=None, cache_dir=None, drop_block_rate=None)
        with pytest.raises(ValueError, match='load_checkpoint'):
            fn(pretrained=True)


def test_index_gather_matches_boolean_mask():
    """tube_mask_indices + gather select the same tokens, in the same order, as boolean indexing."""
    from engine.pretrain import masked_targets
    from models.masking import gather_tokens, tube_mask_indices
    model = build('pretrain_svfap_tiny_patch16_160', mask_ratio=0.75)
    frames, size = 8, 64
    grid = model.token_grid(frames, size, size)
    mask = tube_mask_batch(grid, 0.75, 3)
    n_masked = int(mask[0].sum())
    x = torch.randn(3, mask.shape[1], 5)
    keep, masked = tube_mask_indices(mask, grid, n_masked)
    assert torch.equal(gather_tokens(x, keep), x[~mask].reshape(3, -1, 5))
    assert torch.equal(gather_tokens(x, masked), x[mask].reshape(3, -1, 5))
    assert model.num_masked_from_ratio(grid) == n_masked
    clip = torch.randn(3, 3, frames, size, size)
    with torch.no_grad():
        torch.testing.assert_close(model(clip, mask, n_masked), model(clip, mask), rtol=0, atol=0)
    t = patchify_targets(clip, MEAN, STD)
    assert torch.equal(masked_targets(clip, mask, num_masked=n_masked), t[mask].reshape(3, -1, t.shape[-1]))
    assert torch.equal(masked_targets(clip, mask), t[mask].reshape(3, -1, t.shape[-1]))
    with pytest.raises(ValueError, match='num_masked'):
        model(clip, mask, n_masked - grid[0])


def test_pretrain_init_follows_the_published_code():
    """xavier-uniform Linears in encoder and decoder (zero biases), PyTorch's default for
    encoder_to_decoder, mask_token truncated at +-0.02; 'trunc_normal' keeps std 0.02 everywhere."""
    import math
    torch.manual_seed(0)
    m = timm.create_model('pretrain_svfap_small_patch16_160')
    lin = [(n, mod) for n, mod in m.named_modules() if isinstance(mod, torch.nn.Linear)
           and not n.startswith('encoder_to_decoder')]
    assert any(n.startswith('encoder.') for n, _ in lin) and any(n.startswith('decoder.') for n, _ in lin)
    for n, mod in lin:
        fan_out, fan_in = mod.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = mod.weight.detach()
        assert w.abs().max() <= bound + 1e-6, n
        if w.numel() > 10000:
            assert abs(w.std().item() - bound / math.sqrt(3)) < 0.05 * bound, n
        if mod.bias is not None:
            assert torch.count_nonzero(mod.bias) == 0, n
    e2d = m.encoder_to_decoder.weight.detach()               # kaiming-uniform(a=sqrt(5)): bound 1/sqrt(fan_in)
    assert e2d.abs().max() <= 1 / math.sqrt(e2d.shape[1]) + 1e-6
    assert abs(e2d.std().item() - 1 / math.sqrt(3 * e2d.shape[1])) < 0.1 / math.sqrt(e2d.shape[1])
    assert m.mask_token.abs().max() <= 0.02 and m.mask_token.std() > 0.005
    torch.manual_seed(0)
    t = timm.create_model('pretrain_svfap_small_patch16_160', init='trunc_normal')
    w = t.encoder.blocks[0].mlp.fc1.weight.detach()
    assert abs(w.std().item() - 0.02) < 0.002
    with pytest.raises(ValueError, match='init'):
        timm.create_model('pretrain_svfap_tiny_patch16_160', init='kaiming')

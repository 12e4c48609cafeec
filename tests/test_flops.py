"""FLOP counting: the sdpa rule matches the explicit attention, and a few rows of the paper table."""
import timm
import torch

import models  # noqa: F401
from models.layers import set_attention_backend
from tools import flops


def test_sdpa_counted_like_naive_attention():
    model = timm.create_model('svfap_tiny_patch16_160')
    clip = torch.randn(1, 3, 8, 64, 64)
    fast = flops.count_flops(model, (clip,))
    try:
        set_attention_backend('naive')
        naive = flops.count_flops(model, (clip,))
    finally:
        set_attention_backend('sdpa')
    assert fast == naive


def test_attention_layer_count():
    from models.layers import Attention
    layer, tokens = Attention(96, 3), torch.randn(1, 64, 96)
    linear = 64 * 96 * 3 * 96 + 64 * 96 * 96
    assert flops.count_flops(layer, (tokens,)) == linear + 2 * 64 * 64 * 96  # QK^T and AV


def test_paper_finetune_flops():
    params, count = flops.finetune_cost('svfap_base_patch16_160')
    assert abs(params / 1e6 - 77.6) <= 0.05
    assert abs(count / 1e9 - 43.6) <= 0.1


def test_paper_pretrain_flops():
    assert abs(flops.pretrain_flops('svfap_base_patch16_160', {}, 0.9) / 1e9 - 12.9) <= 0.1


def test_cli(capsys):
    assert flops.main(['--model', 'svfap_tiny_patch16_160', '--kwargs', 'stage_depths=(1,1)',
                       'num_bottleneck_tokens=2', '--mask-ratio', '0.9']) == 0
    out = capsys.readouterr().out
    assert 'params' in out and 'FLOPs ' in out and 'FLOPs-P' in out

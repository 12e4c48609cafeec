"""Parameter groups (weight-decay exclusion, layer-wise lr decay), optimizer and lr schedule."""
import math

import numpy as np
import pytest
import timm
import torch

import models  # noqa: F401
from engine.optim import apply_schedules, build_optimizer, cosine_scheduler, param_groups
from tests.helpers import train_config


def _tiny(**kw):
    return timm.create_model('svfap_tiny_patch16_160', img_size=32, all_frames=8, num_classes=7, **kw)


def _groups_by_name(model, wd=0.05, ld=0.75):
    groups = param_groups(model, wd, ld)
    out = {}
    for g in groups:
        for n in g['param_names']:
            out[n] = g
    return out


def test_no_weight_decay_on_norms_biases_tokens():
    model = _tiny()
    by_name = _groups_by_name(model)
    assert set(by_name) == {n for n, p in model.named_parameters() if p.requires_grad}
    for name, p in model.named_parameters():
        g = by_name[name]
        is_norm = '.norm' in name or name.startswith('norm') or 'fc_norm' in name or \
            name.split('.')[-2].startswith('norm')
        if name.endswith('.bias') or name.endswith('q_bias') or name.endswith('v_bias') or \
                p.ndim == 1 or is_norm:
            assert g['weight_decay'] == 0.0, name
        else:
            assert g['weight_decay'] == 0.05, name
    # at least some of each kind exist in the tiny model
    assert any(n.endswith('q_bias') for n in by_name)
    assert any(g['weight_decay'] > 0 for g in by_name.values())


def test_mask_token_no_decay_in_pretrain_model():
    model = timm.create_model('pretrain_svfap_tiny_patch16_160', img_size=32, all_frames=8)
    by_name = _groups_by_name(model, ld=None)
    assert by_name['mask_token']['weight_decay'] == 0.0
    assert by_name['encoder_to_decoder.weight']['weight_decay'] == 0.05
    # no layer decay without get_layer_id
    assert all(g['lr_scale'] == 1.0 for g in by_name.values())


def test_layer_decay_scales():
    model = _tiny()
    ld = 0.75
    by_name = _groups_by_name(model, ld=ld)
    L = model.get_num_layers()  # blocks
    top = L + 1
    assert by_name['head.weight']['lr_scale'] == pytest.approx(1.0)
    assert by_name['fc_norm.weight']['lr_scale'] == pytest.approx(1.0)
    assert by_name['patch_embed.proj.weight']['lr_scale'] == pytest.approx(ld ** top)
    for name, g in by_name.items():
        lid = model.get_layer_id(name)
        assert g['lr_scale'] == pytest.approx(ld ** (top - lid)), name
    # block 0 -> layer 1
    b0 = [n for n in by_name if n.startswith('blocks.0.')][0]
    assert by_name[b0]['lr_scale'] == pytest.approx(ld ** L)


def test_build_optimizer_and_apply_schedule():
    model = _tiny()
    args = train_config(['--opt', 'adamw', '--lr', '1e-3', '--weight_decay', '0.05', '--opt_eps', '1e-8',
                         '--opt_betas', '0.9', '0.999'])
    opt = build_optimizer(args, model, layer_decay=0.75)
    assert isinstance(opt, torch.optim.AdamW)
    assert not opt.defaults.get('fused')  # CPU: not the fused kernel
    assert opt.defaults['betas'] == (0.9, 0.999)
    n_opt = sum(len(g['params']) for g in opt.param_groups)
    assert n_opt == len(list(model.parameters()))
    sched = cosine_scheduler(1e-3, 1e-6, 2, 5, warmup_epochs=1, start_warmup_value=0.0)
    wd = cosine_scheduler(0.05, 0.2, 2, 5)
    lr = apply_schedules(opt, 3, sched, wd)
    assert lr == pytest.approx(sched[3])
    for g in opt.param_groups:
        assert g['lr'] == pytest.approx(sched[3] * g['lr_scale'])
        if g['weight_decay'] > 0:
            assert g['weight_decay'] == pytest.approx(wd[3])
    # a state dict loads with weights_only (no exotic objects in param groups)
    import io
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    torch.load(buf, weights_only=True)


def test_cosine_schedule_values():
    base, final, start = 1.0, 0.1, 0.0
    s = cosine_scheduler(base, final, epochs=4, niter_per_ep=10, warmup_epochs=1,
                         start_warmup_value=start)
    assert len(s) == 40
    # linear per-step warm-up over 10 steps
    np.testing.assert_allclose(s[:10], np.arange(10) / 10.0)
    # cosine part: starts at base, ends near final, monotone
    assert s[10] == pytest.approx(base)
    n = 30
    for j in (0, 7, 15, 29):
        expect = final + 0.5 * (base - final) * (1 + math.cos(math.pi * j / n))
        assert s[10 + j] == pytest.approx(expect)
    assert np.all(np.diff(s[10:]) <= 1e-12)
    assert s[-1] > final and s[-1] == pytest.approx(final, abs=5e-3)
    # warmup_steps overrides warmup_epochs
    s2 = cosine_scheduler(base, final, 4, 10, warmup_epochs=1, warmup_steps=4)
    np.testing.assert_allclose(s2[:4], np.arange(4) / 4.0)
    assert s2[4] == pytest.approx(base)
    # no warm-up
    s3 = cosine_scheduler(base, final, 1, 5, warmup_epochs=0)
    assert s3[0] == pytest.approx(base)


def test_foreach_on_cpu():
    opt = build_optimizer(train_config(['--lr', '1e-3'], opt_eps=None, opt_betas=None), _tiny())
    assert opt.defaults.get('foreach') is True and not opt.defaults.get('fused')


def test_configure_backends_cpu_flushes_denormals():
    from engine.step import configure_backends
    try:
        assert configure_backends(torch.device('cpu')) == {'flush_denormal': True}
        assert torch.tensor([1e-40], dtype=torch.float32).item() == 0.0
    finally:
        torch.set_flush_denormal(False)


@pytest.mark.parametrize('assignment', ['published', 'stage'])
def test_tpsbt_b_group_lr_scales(assignment, capsys):
    """TPSBT-B, layer decay 0.75: patch embedding 0.75^22, block i 0.75^(21-i), head/fc_norm 1.0;
    the temporal-pyramid convs and spatial-attention pools 1.0 as in the published code, or their
    stage's first block (stage 2 opens at block 12: 0.75^9, stage 3 at block 18: 0.75^3)."""
    import timm
    import models  # noqa: F401
    from engine.optim import param_groups
    with torch.device('meta'):
        model = timm.create_model('svfap_base_patch16_160', num_classes=7)
    groups = param_groups(model, 0.05, 0.75, verbose=True, assignment=assignment)
    printed = capsys.readouterr().out
    print(printed)
    assert 'param group layer_0_decay: lr_scale' in printed
    scale = {n: g['lr_scale'] for g in groups for n in g['param_names']}
    assert model.get_num_layers() == 21
    assert scale['patch_embed.proj.weight'] == pytest.approx(0.75 ** 22)
    assert scale['blocks.0.attn.qkv.weight'] == pytest.approx(0.75 ** 21)
    assert scale['blocks.20.mlp.fc2.weight'] == pytest.approx(0.75 ** 1)
    assert scale['head.weight'] == scale['fc_norm.weight'] == 1.0
    down = [n for n in scale if n.startswith(('temporal_downsamples.', 'spatial_downsamples.'))]
    assert len(down) >= 8
    for n in down:
        stage = int(n.split('.')[1]) + 1
        want = 1.0 if assignment == 'published' else 0.75 ** (22 - ((12, 18)[stage - 1] + 1))
        assert scale[n] == pytest.approx(want), n


def test_schedule_never_climbs_when_the_scaled_lr_is_below_min_lr(capsys):
    """blr 1.5e-4 at total batch 8 gives lr 4.7e-6, below min_lr 1e-5: without the guard the cosine
    part would rise from 4.7e-6 to 1e-5."""
    import numpy as np
    from cli.args import finalize_args, finetune_parser, parse_args
    from engine.distributed import DistEnv
    from engine.optim import build_schedules
    args = parse_args(finetune_parser(), ['--blr', '1.5e-4', '--batch_size', '8', '--min_lr', '1e-5',
                                          '--no_scale_min_lr', '--warmup_lr', '1e-6', '--epochs', '4',
                                          '--warmup_epochs', '1', '--device', 'cpu'])
    args = finalize_args(args, DistEnv())
    lr, _ = build_schedules(args, 10)
    out = capsys.readouterr().out
    assert '--min_lr 1e-05 is above the lr 4.69e-06' in out and args.min_lr == args.lr
    cos = lr[10:]
    assert np.all(np.diff(cos) <= 1e-18) and cos.max() <= args.lr + 1e-18

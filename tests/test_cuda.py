"""The CUDA path at full size (TPSBT-B, SVFAP-B): fp32 against the CPU, bf16 against fp32, the
masked-pixel invariance, one optimizer step under bf16 and fp16 + GradScaler, torch.compile against
eager, and every SDPA backend the models reach.

Marked ``cuda``; skipped where torch sees no GPU. ``benchmarks/gpu_check.sh`` runs them with
``pytest -m cuda``. fp32 comparisons switch TF32 off (matmul and cuDNN), so that a mismatch is a
bug and not TF32 rounding.
"""
import copy
import os

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F

import models  # noqa: F401  (registers the models)
from engine.finetune import make_finetune_loss
from engine.optim import build_optimizer
from engine.pretrain import make_pretrain_loss
from engine.step import Stepper, autocast_context, make_scaler
from models.layers import set_attention_backend
from datasets.masking import tube_mask

# SVFAP_CUDA_DRY_RUN=1 runs the same checks on the CPU with the tiny models (to check the checks)
DRY_RUN = os.environ.get('SVFAP_CUDA_DRY_RUN') == '1'
DEV = 'cpu' if DRY_RUN else 'cuda'
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not (DRY_RUN or torch.cuda.is_available()), reason='needs a CUDA GPU')]

if DRY_RUN:
    FT, PT = 'svfap_tiny_patch16_160', 'pretrain_svfap_tiny_patch16_160'
    FRAMES, SIZE, BATCH, RATIO = 8, 64, 2, 0.75
else:
    FT, PT = 'svfap_base_patch16_160', 'pretrain_svfap_base_patch16_160'
    FRAMES, SIZE, BATCH, RATIO = 16, 160, 2, 0.9
GRID = (FRAMES // 2, SIZE // 16, SIZE // 16)   # tubelet 2, patch 16


@pytest.fixture(autouse=True)
def no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.double().flatten(), b.double().flatten(), dim=0))


def build(name: str, device='cpu', **kwargs):
    torch.manual_seed(0)
    kw = dict(img_size=SIZE, all_frames=FRAMES)
    kw.update(dict(mask_ratio=RATIO) if name.startswith('pretrain_') else dict(num_classes=7))
    kw.update(kwargs)
    return timm.create_model(name, **kw).to(device)


def inputs(seed: int = 0):
    """A clip (B, 3, T, H, W) and a tube mask (B, T/2*N) of the token grid, on the CPU."""
    g = torch.Generator().manual_seed(seed)
    clip = torch.randn(BATCH, 3, FRAMES, SIZE, SIZE, generator=g)
    rng = np.random.default_rng(seed)
    mask = torch.from_numpy(np.stack([tube_mask(GRID, RATIO, rng) for _ in range(BATCH)]))
    return clip, mask


def pixel_mask(mask: torch.Tensor, grid, tubelet: int = 2, patch: int = 16) -> torch.Tensor:
    """(B, T/2*N) token mask -> (B, 3, T, H, W) pixel mask."""
    B = mask.shape[0]
    t, h, w = grid
    m = mask.view(B, 1, t, 1, h, 1, w, 1).expand(B, 3, t, tubelet, h, patch, w, patch)
    return m.reshape(B, 3, t * tubelet, h * patch, w * patch)


# ---------------------------------------------------------------------------------------------- outputs

@torch.no_grad()
def test_finetune_outputs_cuda_match_cpu_and_bf16_stays_close():
    cpu = build(FT).eval()
    gpu = copy.deepcopy(cpu).to(DEV).eval()
    clip, _ = inputs()
    ref = cpu.forward_features(clip)
    out = gpu.forward_features(clip.to(DEV))
    assert rel_err(out, ref) < 1e-4, rel_err(out, ref)
    torch.testing.assert_close(gpu(clip.to(DEV)).cpu(), cpu(clip), rtol=1e-3, atol=1e-5)
    with autocast_context(torch.device(DEV), 'bf16'):
        low = gpu.forward_features(clip.to(DEV))
    assert low.dtype == torch.bfloat16 or low.dtype == torch.float32
    assert torch.isfinite(low.float()).all()
    assert rel_err(low, ref) < 5e-2, rel_err(low, ref)


@torch.no_grad()
def test_pretrain_outputs_cuda_match_cpu_and_bf16_stays_close():
    cpu = build(PT).eval()
    gpu = copy.deepcopy(cpu).to(DEV).eval()
    assert cpu.token_grid(FRAMES, SIZE, SIZE) == GRID
    clip, mask = inputs()
    ref = cpu(clip, mask)
    out = gpu(clip.to(DEV), mask.to(DEV))
    assert out.shape == ref.shape
    assert rel_err(out, ref) < 1e-4, rel_err(out, ref)
    with autocast_context(torch.device(DEV), 'bf16'):
        low = gpu(clip.to(DEV), mask.to(DEV))
    assert torch.isfinite(low.float()).all()
    assert rel_err(low, ref) < 5e-2, rel_err(low, ref)


@pytest.mark.parametrize('amp', ['none', 'bf16'])
@torch.no_grad()
def test_masked_pixels_change_nothing_on_cuda(amp):
    model = build(PT, DEV).eval()
    clip, mask = inputs()
    pix = pixel_mask(mask, GRID)
    other = torch.where(pix, torch.randn_like(clip) * 5, clip)
    clip, other, mask, pix = clip.to(DEV), other.to(DEV), mask.to(DEV), pix.to(DEV)
    with autocast_context(torch.device(DEV), amp):
        a, b = model(clip, mask), model(other, mask)
        changed = model(torch.where(pix, clip, clip + 1.0), mask)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert not torch.allclose(changed, a)


# ---------------------------------------------------------------------------------------------- one step

def _one_step(name: str, amp: str, batch, max_tries: int = 8):
    """Parameters before and after one real optimizer update of the engine's step (fused AdamW
    on CUDA; fp16 with a GradScaler, retried on the same batch while the scaler skips), plus the
    gradients of that update."""
    device = torch.device(DEV)
    model = build(name, DEV, **({} if name.startswith('pretrain_') else dict(drop_path_rate=0.0)))
    model.train()
    pretrain = name.startswith('pretrain_')
    from tests.helpers import train_config
    opt_cfg = train_config(['--lr', '1e-4', '--opt_eps', '1e-8', '--opt_betas', '0.9',
                            '0.95' if pretrain else '0.999'])
    optimizer = build_optimizer(opt_cfg, model, layer_decay=None if pretrain else 0.75)
    assert DRY_RUN or optimizer.defaults.get('fused'), 'AdamW is not fused on CUDA'
    stepper = Stepper(model, model, optimizer, device, amp=amp, scaler=make_scaler(device, amp))
    if pretrain:
        compute_loss = make_pretrain_loss(model, device)
    else:
        compute_loss = make_finetune_loss(model, torch.nn.CrossEntropyLoss(), None, device)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    grads = {}

    def keep_grads():
        for k, p in model.named_parameters():
            if p.grad is not None:
                grads[k] = p.grad.detach().float().clone()

    # the grads as the optimizer sees them (unscaled), just before it steps
    optimizer.register_step_pre_hook(lambda *_: keep_grads())
    for tries in range(max_tries):
        with stepper.autocast():
            loss, _ = compute_loss(batch)
        assert torch.isfinite(loss), (amp, float(loss))
        grad_norm, overflow = stepper.backward(loss.float(), 0, tries)
        if not bool(overflow):
            break
        # a skipped fp16 step leaves the weights as they were
        for k, p in model.named_parameters():
            assert torch.equal(p.detach(), before[k]), k
    else:
        pytest.fail(f'{amp}: every one of {max_tries} steps overflowed')
    after = {k: v.detach().clone() for k, v in model.named_parameters()}
    return before, after, grads, tries


@pytest.mark.parametrize('name', [FT, PT])
def test_one_step_under_bf16_and_fp16_matches_fp32(name):
    clip, mask = inputs()
    batch = (clip, mask) if name.startswith('pretrain_') else (clip, torch.tensor([1, 5]))
    b0, a0, g0, _ = _one_step(name, 'none', batch)
    for amp in ('bf16', 'fp16'):
        b1, a1, g1, tries = _one_step(name, amp, batch)
        assert b1.keys() == b0.keys()
        for k in b0:
            torch.testing.assert_close(b1[k], b0[k], rtol=0, atol=0)     # same init
            assert torch.isfinite(a1[k]).all(), (amp, k)
        d0 = torch.cat([(a0[k] - b0[k]).flatten() for k in b0])
        d1 = torch.cat([(a1[k] - b1[k]).flatten() for k in b0])
        gk = sorted(g0)
        assert gk == sorted(g1), amp
        gc = cosine(torch.cat([g1[k].flatten() for k in gk]), torch.cat([g0[k].flatten() for k in gk]))
        uc = cosine(d1, d0)
        print(f'{name} {amp}: grad cosine {gc:.4f}, update cosine {uc:.4f}, fp16 retries {tries}')
        assert gc > 0.99, (amp, gc)
        assert uc > 0.9, (amp, uc)
        assert d1.abs().max() > 0


# ---------------------------------------------------------------------------------------------- compile

@pytest.mark.parametrize('name', [FT, PT])
def test_compile_matches_eager(name):
    import torch._dynamo
    torch._dynamo.reset()
    eager = build(name, DEV, **({} if name.startswith('pretrain_') else dict(drop_path_rate=0.0)))
    eager.train()
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model)
    pretrain = name.startswith('pretrain_')
    clip, mask = inputs()
    clip, mask = clip.to(DEV), mask.to(DEV)
    outs, grads = [], []
    for fn, mod in ((eager, eager), (compiled, compiled_model)):
        if pretrain:
            out = fn(clip, mask, int(mask[0].sum()))
        else:
            out = fn(clip)
        out.float().pow(2).mean().backward()
        outs.append(out.detach())
        grads.append(torch.cat([p.grad.flatten() for p in mod.parameters() if p.grad is not None]))
    assert rel_err(outs[1], outs[0]) < 1e-4, rel_err(outs[1], outs[0])
    assert cosine(grads[1], grads[0]) > 0.9999, cosine(grads[1], grads[0])


# ---------------------------------------------------------------------------------------------- SDPA

@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
@pytest.mark.parametrize('name', [FT, PT])
@torch.no_grad()
def test_every_sdpa_backend_agrees_with_the_naive_path(name, dtype):
    """Each SDPA backend alone (flash, memory-efficient, cuDNN, math) against the explicit
    softmax(QK^T)V path; a backend that cannot take these shapes/dtypes raises and is not used."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    model = build(name, DEV).eval().to(dtype)
    pretrain = name.startswith('pretrain_')
    clip, mask = inputs()
    clip, mask = clip.to(DEV).to(dtype), mask.to(DEV)

    def run():
        return (model(clip, mask) if pretrain else model.forward_features(clip)).float()

    set_attention_backend('naive')
    try:
        ref = run()
    finally:
        set_attention_backend('sdpa')
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    used = []
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                    SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH):
        try:
            with sdpa_kernel([backend]):
                out = run()
        except RuntimeError as e:             # "No available kernel": this backend is never picked
            print(f'{name} {dtype} {backend.name}: not available ({str(e).splitlines()[0][:80]})')
            continue
        used.append(backend.name)
        err = rel_err(out, ref)
        print(f'{name} {dtype} {backend.name}: rel err vs naive {err:.2e}')
        assert err < tol, (backend.name, err)
    default = run()
    assert rel_err(default, ref) < tol
    assert 'MATH' in used
    if dtype == torch.bfloat16 and not DRY_RUN:
        assert {'FLASH_ATTENTION', 'EFFICIENT_ATTENTION'} & set(used), used

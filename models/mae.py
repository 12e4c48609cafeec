"""SVFAP pre-training: masked facial video autoencoder with a TPSBT encoder (paper Sec. 3.1).

The encoder sees only the visible tokens of a tube mask; the outputs of all its stages are fused
(nearest-neighbour repetition along time, sum, LayerNorm ``encoder.norm``); a light decoder of
standard blocks reconstructs the normalised pixels of the masked tubes.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from einops import rearrange
from timm.layers import trunc_normal_
from timm.models import register_model

from .layers import Block, LayerNorm, drop_path_rates, sinusoid_position_table
from .masking import (check_tube_mask, count_masked, gather_tokens, is_compiling, num_masked_tokens,
                      tube_mask_indices)
from .tpsbt import TPSBT, create_from_config

__all__ = ['PretrainSVFAP', 'PretrainDecoder', 'patchify', 'unpatchify', 'patch_statistics', 'patchify_targets']


def patchify(x: torch.Tensor, tubelet: int = 2, patch: int = 16) -> torch.Tensor:
    """Clip (B, C, T, H, W) -> tubes (B, N, tubelet*patch*patch, C) in token order (time-major),
    each tube's pixels in (t, h, w) order."""
    return rearrange(x, 'b c (t pt) (h ph) (w pw) -> b (t h w) (pt ph pw) c', pt=tubelet, ph=patch, pw=patch)


def unpatchify(p: torch.Tensor, shape: Sequence[int], tubelet: int = 2, patch: int = 16) -> torch.Tensor:
    """Inverse of :func:`patchify`: tubes (B, N, P, C) -> clip (B, C, T, H, W) of ``shape`` (C, T, H, W)."""
    _, T, H, W = shape
    return rearrange(p, 'b (t h w) (pt ph pw) c -> b c (t pt) (h ph) (w pw)',
                     t=T // tubelet, h=H // patch, w=W // patch, pt=tubelet, ph=patch, pw=patch)


def patch_statistics(tubes: torch.Tensor):
    """Per-tube, per-channel mean and unbiased std (+1e-6) of tubes (B, N, P, C): the target
    normalisation of the pre-training targets (the published code's choice; Eq. (11), Sec. 3.1.4, states
    only an MSE in pixel space). Returns ((B, N, 1, C), (B, N, 1, C))."""
    return tubes.mean(dim=-2, keepdim=True), tubes.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6


def patchify_targets(clip_normalised: torch.Tensor, mean: Union[Sequence[float], torch.Tensor],
                     std: Union[Sequence[float], torch.Tensor], tubelet: int = 2, patch: int = 16) -> torch.Tensor:
    """Reconstruction targets: clip (B, 3, T, H, W) normalised with mean/std -> (B, N, tubelet*patch*patch*3).

    Undo the normalisation (back to [0, 1]), cut tubelet x patch x patch tubes in token order
    (time-major), normalise every channel of every tube by its own mean and unbiased std (+1e-6,
    :func:`patch_statistics`), and flatten each tube in (t, h, w, channel) order.
    """
    C = clip_normalised.shape[1]
    mean = torch.as_tensor(mean, dtype=clip_normalised.dtype, device=clip_normalised.device).view(1, C, 1, 1, 1)
    std = torch.as_tensor(std, dtype=clip_normalised.dtype, device=clip_normalised.device).view(1, C, 1, 1, 1)
    x = patchify(clip_normalised * std + mean, tubelet, patch)
    mu, sd = patch_statistics(x)
    return ((x - mu) / sd).flatten(2)


def _xavier_init(m: nn.Module) -> None:
    """The published pre-training init of a Linear (xavier-uniform weight, zero bias) and a LayerNorm."""
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class PretrainDecoder(nn.Module):
    """Standard blocks + LayerNorm + linear head applied to the last ``num_masked`` tokens.

    x (B, N, D) -> (B, num_masked, num_outputs).
    """

    def __init__(self, embed_dim: int = 384, depth: int = 4, num_heads: int = 6, num_outputs: int = 1536,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path_rate: float = 0.0,
                 init_values: Optional[float] = 0.0):
        super().__init__()
        dpr = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, drop_path=dpr[i], init_values=init_values)
            for i in range(depth))
        self.norm = LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_outputs)

    def forward(self, x: torch.Tensor, num_masked: int) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x[:, -num_masked:]))


class PretrainSVFAP(nn.Module):
    """Masked autoencoder: clip (B, 3, T, H, W), tube mask (B, N) bool (True = masked)
    -> predictions (B, N_masked, 3 * tubelet * patch^2) for the masked tokens in token order.

    Args: the TPSBT encoder's (``embed_dim``, ``stage_depths``, ...), plus ``decoder_embed_dim``,
    ``decoder_depth``, ``decoder_num_heads``, ``decoder_drop_path_rate`` and ``mask_ratio`` (stored for
    reference; the mask itself is an input) and ``init``: ``'published'`` (the published
    pre-training code: xavier-uniform weights and zero biases for every Linear of the encoder and the
    decoder, PyTorch's default for ``encoder_to_decoder``, ``mask_token`` truncated normal with std
    0.02 cut at +-0.02) or ``'trunc_normal'`` (truncated normal 0.02 everywhere, as fine-tuning).
    """

    def __init__(self, img_size: int = 160, patch_size: int = 16, all_frames: int = 16, tubelet_size: int = 2,
                 decoder_embed_dim: int = 384, decoder_depth: int = 4, decoder_num_heads: int = 6,
                 decoder_drop_path_rate: float = 0.0, mask_ratio: float = 0.9, init_values: Optional[float] = 0.0,
                 init: str = 'published', **encoder_kwargs):
        super().__init__()
        encoder_kwargs.pop('multiscale_fusion', None)
        self.encoder = TPSBT(img_size=img_size, patch_size=patch_size, all_frames=all_frames,
                             tubelet_size=tubelet_size, init_values=init_values, multiscale_fusion=True,
                             **encoder_kwargs)
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.mask_ratio = mask_ratio
        self.decoder_embed_dim = decoder_embed_dim
        self.num_outputs = 3 * tubelet_size * patch_size ** 2
        self.encoder_to_decoder = nn.Linear(self.encoder.embed_dim, decoder_embed_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder = PretrainDecoder(decoder_embed_dim, decoder_depth, decoder_num_heads, self.num_outputs,
                                       drop_path_rate=decoder_drop_path_rate, init_values=init_values)
        if init == 'published':
            self.encoder.apply(_xavier_init)
            self.decoder.apply(_xavier_init)
            trunc_normal_(self.mask_token, std=0.02, a=-0.02, b=0.02)
        elif init == 'trunc_normal':
            self.encoder_to_decoder.apply(TPSBT._init_weights)
            self.decoder.apply(TPSBT._init_weights)
            trunc_normal_(self.mask_token, std=0.02)
        else:
            raise ValueError(f"init must be 'published' or 'trunc_normal', got {init!r}")

    def token_grid(self, num_frames: int, height: int, width: int) -> Tuple[int, int, int]:
        """(T, H, W) of a clip -> (T/2, H/16, W/16) token grid."""
        return self.encoder.token_grid(num_frames, height, width)

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return {'mask_token'}

    def num_masked_from_ratio(self, grid: Tuple[int, int, int]) -> int:
        """Masked tokens per clip of a tube mask at ``mask_ratio`` over ``grid``."""
        return num_masked_tokens(grid, self.mask_ratio)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, num_masked: Optional[int] = None) -> torch.Tensor:
        """clip (B, 3, T, H, W), tube mask (B, N) bool -> (B, N_masked, D_out) in token order.

        ``num_masked`` (masked tokens per clip, a Python int) lets the visible / masked tokens be
        gathered without reading the mask back to the host. Without it the count is read from the
        mask in eager mode (free for a CPU mask, one synchronisation on CUDA) and taken from
        ``mask_ratio`` under torch.compile (no graph break; the mask must then match the ratio).
        """
        B = x.shape[0]
        grid = self.token_grid(*x.shape[2:])
        mask = mask.to(x.device)
        if num_masked is None:
            if is_compiling():
                num_masked = self.num_masked_from_ratio(grid)
            else:
                check_tube_mask(mask, grid)
                num_masked = count_masked(mask)
        visible = self.encoder_to_decoder(self.encoder(x, mask, num_masked))  # (B, N_vis, D)
        D = visible.shape[-1]
        ids_visible, ids_masked = tube_mask_indices(mask, grid, num_masked)
        pos = sinusoid_position_table(mask.shape[1], D, device=visible.device, dtype=visible.dtype)
        pos = pos.expand(B, -1, -1)
        pos_visible = gather_tokens(pos, ids_visible)
        pos_masked = gather_tokens(pos, ids_masked)
        tokens = torch.cat([visible + pos_visible, self.mask_token.to(visible.dtype) + pos_masked], dim=1)
        return self.decoder(tokens, pos_masked.shape[1])


# ---------------------------------------------------------------------------------------------
# timm registration

def _create(size: str, pretrained: bool = False, **kwargs) -> PretrainSVFAP:
    kwargs.pop('num_classes', None)  # meaningless for pre-training; accepted and ignored
    return create_from_config(PretrainSVFAP, size, pretrained, **kwargs)


@register_model
def pretrain_svfap_base_patch16_160(pretrained: bool = False, **kwargs) -> PretrainSVFAP:
    """SVFAP-B pre-training model: TPSBT-B encoder (512 ch) + 4-block 384-ch decoder (85.5M params)."""
    return _create('base', pretrained, **kwargs)


@register_model
def pretrain_svfap_small_patch16_160(pretrained: bool = False, **kwargs) -> PretrainSVFAP:
    """SVFAP-S pre-training model: TPSBT-S encoder (384 ch) + 4-block 384-ch decoder."""
    return _create('small', pretrained, **kwargs)


@register_model
def pretrain_svfap_tiny_patch16_160(pretrained: bool = False, **kwargs) -> PretrainSVFAP:
    """Tiny pre-training config for tests and the quickstart (96-ch encoder, 96-ch 2-block decoder)."""
    kwargs.setdefault('decoder_embed_dim', 96)
    kwargs.setdefault('decoder_depth', 2)
    kwargs.setdefault('decoder_num_heads', 3)
    return _create('tiny', pretrained, **kwargs)

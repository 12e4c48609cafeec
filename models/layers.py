"""Building blocks of the TPSBT encoder and the SVFAP decoder.

Shapes: ``B`` batch, ``N`` tokens, ``C`` channels, ``T`` temporal slices, ``K`` bottleneck tokens.
All LayerNorms use ``eps=1e-6``.
"""
from functools import partial
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from timm.layers import DropPath, Mlp

__all__ = [
    'LayerNorm', 'set_attention_backend', 'get_attention_backend', 'scaled_dot_product',
    'Attention', 'CrossAttention', 'Block', 'SBTBlock', 'SpatialAttentionPool',
    'TemporalConvDownsample', 'TemporalPoolDownsample', 'build_temporal_downsample',
    'sinusoid_position_table', 'PatchEmbed3d',
]

LayerNorm = partial(nn.LayerNorm, eps=1e-6)

# ----------------------------------------------------------------------------------------------
# attention kernel switch

_ATTENTION_BACKENDS = ('sdpa', 'naive')
_attention_backend = 'sdpa'


def set_attention_backend(name: str) -> None:
    """Select the attention kernel: 'sdpa' (torch's fused kernel) or 'naive' (explicit softmax(QK^T)V)."""
    global _attention_backend
    if name not in _ATTENTION_BACKENDS:
        raise ValueError(f'attention backend must be one of {_ATTENTION_BACKENDS}, got {name!r}')
    _attention_backend = name


def get_attention_backend() -> str:
    return _attention_backend


def drop_path_rates(max_rate: float, n: int) -> List[float]:
    """Stochastic-depth rates rising linearly from 0 to ``max_rate`` over ``n`` blocks."""
    return [max_rate * i / (n - 1) if n > 1 else 0.0 for i in range(n)]


def scaled_dot_product(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v for q (B, H, Nq, d), k/v (B, H, Nk, d) -> (B, H, Nq, d)."""
    if _attention_backend == 'sdpa':
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    attn = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    attn = attn.softmax(dim=-1)
    if dropout_p > 0.0:
        attn = F.dropout(attn, p=dropout_p)
    return attn @ v


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, N, C) -> (B, H, N, C/H)."""
    B, N, C = x.shape
    return x.view(B, N, num_heads, C // num_heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, N, d) -> (B, N, H*d)."""
    B, H, N, d = x.shape
    return x.transpose(1, 2).reshape(B, N, H * d)


# ----------------------------------------------------------------------------------------------
# attention layers

class _HeadsAttention(nn.Module):
    """What self- and cross-attention share: ``q_bias`` / ``v_bias`` (k has none), the heads, the
    attention dropout and the output projection. Subclasses add their input projections."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool, attn_drop: float, proj_drop: float):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(B, Nq, C), (B, Nk, C), (B, Nk, C) -> (B, Nq, C), through the output projection."""
        x = scaled_dot_product(*(_split_heads(t, self.num_heads) for t in (q, k, v)),
                               dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(_merge_heads(x)))


class Attention(_HeadsAttention):
    """Multi-head self-attention; one bias-free ``qkv`` projection plus ``q_bias``/``v_bias`` (k has none).

    (B, N, C) -> (B, N, C).
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__(dim, num_heads, qkv_bias, attn_drop, proj_drop)
        self.qkv = nn.Linear(dim, dim * 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        return self._attend(*F.linear(x, self.qkv.weight, bias).chunk(3, dim=-1))


class CrossAttention(_HeadsAttention):
    """Multi-head cross-attention: queries from ``x``, keys/values from ``context``.

    Bias-free ``q`` and ``kv`` projections plus ``q_bias`` / ``v_bias`` (k has none).
    x (B, Nq, C), context (B, Nk, C) -> (B, Nq, C).
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__(dim, num_heads, qkv_bias, attn_drop, proj_drop)
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, dim * 2, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        kv_bias = None
        if self.q_bias is not None:
            kv_bias = torch.cat((torch.zeros_like(self.v_bias), self.v_bias))
        q = F.linear(x, self.q.weight, self.q_bias)
        return self._attend(q, *F.linear(context, self.kv.weight, kv_bias).chunk(2, dim=-1))


# ----------------------------------------------------------------------------------------------
# transformer blocks

def _layer_scale(dim: int, init_values: Optional[float]) -> Optional[nn.Parameter]:
    return nn.Parameter(init_values * torch.ones(dim)) if init_values else None


def _scaled(x: torch.Tensor, gamma: Optional[torch.Tensor]) -> torch.Tensor:
    return x if gamma is None else x * gamma


def _add_self_attention_and_ffn(m: nn.Module, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool,
                                drop: float, attn_drop: float, drop_path: float, init_values: Optional[float],
                                act_layer, norm_layer, with_gamma_0: bool = False) -> None:
    """The self-attention and FFN sub-layers a block shares, registered in the published key order
    (norm1, attn, drop_path, norm2, mlp, [gamma_0,] gamma_1, gamma_2)."""
    m.norm1 = norm_layer(dim)
    m.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
    m.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
    m.norm2 = norm_layer(dim)
    m.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
    if with_gamma_0:
        m.gamma_0 = _layer_scale(dim, init_values)
    m.gamma_1 = _layer_scale(dim, init_values)
    m.gamma_2 = _layer_scale(dim, init_values)


class Block(nn.Module):
    """Standard pre-norm transformer block: x += MHSA(LN(x)); x += FFN(LN(x)). (B, N, C) -> (B, N, C).

    With ``init_values`` > 0 the residual branches are scaled by learned ``gamma_1`` / ``gamma_2``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0,
                 init_values: Optional[float] = None, act_layer=nn.GELU, norm_layer=LayerNorm):
        super().__init__()
        _add_self_attention_and_ffn(self, dim, num_heads, mlp_ratio, qkv_bias, drop, attn_drop, drop_path,
                                    init_values, act_layer, norm_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(_scaled(self.attn(self.norm1(x)), self.gamma_1))
        x = x + self.drop_path(_scaled(self.mlp(self.norm2(x)), self.gamma_2))
        return x


class SBTBlock(nn.Module):
    """Spatial bottleneck transformer block.

    q += MHCA(cross_norm1(q), cross_norm2(kv)); q += MHSA(norm1(q)); q += FFN(norm2(q)).
    As a normal SBT block the queries are the bottleneck tokens z and kv the stage tokens x;
    as the reverse block the roles swap (queries x, kv z), which restores the spatial resolution.
    query (B, Nq, C), context (B, Nk, C) -> (B, Nq, C).

    With ``init_values`` > 0 the residual branches are scaled by ``gamma_0`` (cross-attention),
    ``gamma_1`` and ``gamma_2``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0,
                 init_values: Optional[float] = None, act_layer=nn.GELU, norm_layer=LayerNorm):
        super().__init__()
        self.cross_norm1 = norm_layer(dim)
        self.cross_norm2 = norm_layer(dim)
        self.cross_attn = CrossAttention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        _add_self_attention_and_ffn(self, dim, num_heads, mlp_ratio, qkv_bias, drop, attn_drop, drop_path,
                                    init_values, act_layer, norm_layer, with_gamma_0=True)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = query
        x = x + self.drop_path(_scaled(self.cross_attn(self.cross_norm1(x), self.cross_norm2(context)), self.gamma_0))
        x = x + self.drop_path(_scaled(self.attn(self.norm1(x)), self.gamma_1))
        x = x + self.drop_path(_scaled(self.mlp(self.norm2(x)), self.gamma_2))
        return x


# ----------------------------------------------------------------------------------------------
# spatial bottleneck and temporal pyramid

class SpatialAttentionPool(nn.Module):
    """Summarise the spatial tokens of each temporal slice into K bottleneck tokens.

    logits = fc2(GELU(fc1(LN(x)))); softmax over the spatial tokens of a slice;
    z[t, k] = sum_n softmax[t, n, k] * x[t, n] (x not normalised).
    x (B, T, N, C) -> z (B, T, K, C), weights (B, T, N, K).
    """

    def __init__(self, dim: int, num_tokens: int = 8, hidden_dim: int = 128, norm_layer=LayerNorm):
        super().__init__()
        self.num_tokens = num_tokens
        self.norm = norm_layer(dim)
        self.mlp = Mlp(dim, hidden_dim, num_tokens, act_layer=nn.GELU)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        weights = self.mlp(self.norm(x)).softmax(dim=2)
        z = torch.einsum('btnk,btnc->btkc', weights, x)
        return z, weights


class TemporalConvDownsample(nn.Conv1d):
    """Strided Conv1d(C, C, 2, stride 2) over time at every spatial position. (B, T, N, C) -> (B, T/2, N, C).

    Subclasses ``nn.Conv1d`` so that its parameters are keyed ``weight`` / ``bias`` directly.
    """

    def __init__(self, dim: int, factor: int = 2):
        super().__init__(dim, dim, kernel_size=factor, stride=factor)
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(rearrange(x, 'b t n c -> (b n) c t'))
        return rearrange(y, '(b n) c t -> b t n c', b=x.shape[0])


class TemporalPoolDownsample(nn.Module):
    """Average or max pooling (kernel = stride = factor) over time. (B, T, N, C) -> (B, T/factor, N, C)."""

    def __init__(self, mode: str = 'avg', factor: int = 2):
        super().__init__()
        if mode not in ('avg', 'max'):
            raise ValueError(f'pooling mode must be avg or max, got {mode!r}')
        self.mode = mode
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, N, C = x.shape
        x = x[:, :T - T % self.factor].reshape(B, T // self.factor, self.factor, N, C)
        return x.mean(dim=2) if self.mode == 'avg' else x.amax(dim=2)


class TemporalIdentity(nn.Module):
    """No temporal downsampling (ablation 'none')."""
    factor = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def build_temporal_downsample(kind: str, dim: int) -> nn.Module:
    """'conv' | 'avg' | 'max' | 'none' -> module mapping (B, T, N, C) to (B, T / factor, N, C)."""
    if kind == 'conv':
        return TemporalConvDownsample(dim)
    if kind in ('avg', 'max'):
        return TemporalPoolDownsample(kind)
    if kind in ('none', None):
        return TemporalIdentity()
    raise ValueError(f"temporal_downsample must be 'conv', 'avg', 'max' or 'none', got {kind!r}")


# ----------------------------------------------------------------------------------------------
# embeddings

_position_tables = {}


def sinusoid_position_table(num_positions: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Fixed 1-D sinusoid table (1, num_positions, dim): channel 2k = sin(p / 10000^(2k/dim)), 2k+1 = cos.

    Computed in float64 once per (size, device, dtype) and cached; never a parameter.
    """
    key = (num_positions, dim, str(device), dtype)
    table = _position_tables.get(key)
    if table is None:
        pos = torch.arange(num_positions, dtype=torch.float64)[:, None]
        freq = torch.pow(10000.0, -2.0 * (torch.arange(dim, dtype=torch.float64) // 2) / dim)
        angle = pos * freq[None]
        table = torch.where(torch.arange(dim) % 2 == 0, torch.sin(angle), torch.cos(angle))
        table = table[None].to(device=device, dtype=dtype)
        _position_tables[key] = table
    return table


class PatchEmbed3d(nn.Module):
    """Tubelet embedding: Conv3d(3, C, (tubelet, patch, patch), same stride). (B, 3, T, H, W) -> (B, N, C).

    Tokens are flattened time-major: index t*(h*w) + i*w + j.
    """

    def __init__(self, patch_size: int = 16, tubelet_size: int = 2, in_chans: int = 3, embed_dim: int = 512):
        super().__init__()
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=(tubelet_size, patch_size, patch_size),
                              stride=(tubelet_size, patch_size, patch_size))

    def token_grid(self, num_frames: int, height: int, width: int) -> Tuple[int, int, int]:
        """(T, H, W) of a clip -> (t, h, w) token grid."""
        for size, step, name in ((num_frames, self.tubelet_size, 'frames'), (height, self.patch_size, 'height'),
                                 (width, self.patch_size, 'width')):
            if size % step:
                raise ValueError(f'clip {name} {size} is not a multiple of {step}')
        return num_frames // self.tubelet_size, height // self.patch_size, width // self.patch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.token_grid(*x.shape[2:])
        return rearrange(self.proj(x), 'b c t h w -> b (t h w) c')

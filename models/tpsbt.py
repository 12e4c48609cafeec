"""TPSBT: Temporal Pyramid and Spatial Bottleneck Transformer, and the SVFAP fine-tuning model.

Encoder layout (paper Sec. 3.1.3), for ``stage_depths=(L1, L2, ..., LS)``:

* stage 1: ``L1`` standard blocks on all (visible) tokens;
* stage s >= 2: temporal downsampling (T -> T/2), spatial attention pooling into ``K`` bottleneck
  tokens per temporal slice, ``Ls - 1`` SBT blocks on the bottleneck tokens and one reverse SBT block
  that brings the stage back to full spatial resolution.

All blocks live in one flat ``blocks`` list (stage after stage), so the state-dict keys match the
authors' released checkpoints (``blocks.0`` ... ``blocks.20`` for the base model).
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from timm.layers import trunc_normal_
from timm.models import register_model
from torch.utils.checkpoint import checkpoint

from .layers import (Block, LayerNorm, PatchEmbed3d, SBTBlock, SpatialAttentionPool, build_temporal_downsample,
                     drop_path_rates, sinusoid_position_table)
from .masking import check_tube_mask, count_masked, gather_tokens, tube_mask_indices

__all__ = ['TPSBT', 'SVFAPClassifier', 'MODEL_CONFIGS', 'LAYER_DECAY_ASSIGNMENTS', 'fuse_stages']

# Layer ids of the later stages' downsampling modules (get_layer_id): as the published code, or
# with the first block of their stage.
LAYER_DECAY_ASSIGNMENTS = ('published', 'stage')

# Architecture of the registered sizes (shared with models/mae.py).
MODEL_CONFIGS = {
    'base': dict(embed_dim=512, num_heads=8, stage_depths=(12, 6, 3), num_bottleneck_tokens=8),
    'small': dict(embed_dim=384, num_heads=6, stage_depths=(8, 4, 2), num_bottleneck_tokens=8),
    'tiny': dict(embed_dim=96, num_heads=3, stage_depths=(2, 2, 2), num_bottleneck_tokens=4),
}


def fuse_stages(stages: Sequence[torch.Tensor]) -> torch.Tensor:
    """Multi-scale fusion: sum of the stage outputs, each brought back to stage 1's temporal length.

    stages: list of (B, T_s, N, C) with T_1 >= T_2 >= ...; every stage is repeated along time by
    nearest neighbour (slice i of stage 1 pairs with slice floor(i * T_s / T_1) of stage s).
    Returns (B, T_1 * N, C).
    """
    B, T1, N, C = stages[0].shape
    fused = stages[0]
    for x in stages[1:]:
        Ts = x.shape[1]
        if Ts != T1:
            index = torch.div(torch.arange(T1, device=x.device) * Ts, T1, rounding_mode='floor')
            x = x.index_select(1, index)
        fused = fused + x
    return fused.reshape(B, T1 * N, C)


class TPSBT(nn.Module):
    """TPSBT encoder. clip (B, 3, T, H, W) [+ tube mask (B, N) bool, True = masked] -> tokens.

    Args:
        img_size, all_frames: nominal clip size (the position table is rebuilt for any size).
        embed_dim, num_heads, mlp_ratio: transformer width.
        stage_depths: blocks per stage (any number of stages >= 1); a later SBT stage ends with
            its reverse block, so needs depth >= 1.
        num_bottleneck_tokens: K, an int or one value per later stage.
        bottleneck_slices: how many consecutive temporal slices one set of K bottleneck tokens
            summarises (int or one per later stage; default 1 = per slice, as in the paper's text).
            ``temporal_downsample='none', bottleneck_slices=(2, 4)`` keeps the bottleneck-token count
            of the TP model and reproduces the paper's SBT-only FLOPs (docs/models.md).
        temporal_downsample: 'conv' | 'avg' | 'max' | 'none' between stages.
        spatial_bottleneck: False builds standard blocks in the later stages (ablations).
        drop_path_rate: stochastic depth, rising linearly over all blocks.
        init_values: layer scale (gamma_*) init; 0 / None = off.
        multiscale_fusion: pre-training encoder; adds ``norm`` and ``forward`` returns the fused
            stage outputs (Eq. (10), paper Sec. 3.1.4) instead of the last stage.
        use_checkpoint: gradient checkpointing of every block while training.
    """

    def __init__(self, img_size: int = 160, patch_size: int = 16, in_chans: int = 3, all_frames: int = 16,
                 tubelet_size: int = 2, embed_dim: int = 512, num_heads: int = 8,
                 stage_depths: Sequence[int] = (12, 6, 3),
                 num_bottleneck_tokens: Union[int, Sequence[int]] = 8,
                 bottleneck_slices: Union[int, Sequence[int]] = 1, temporal_downsample: str = 'conv',
                 spatial_bottleneck: bool = True, spatial_hidden_dim: int = 128, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, init_values: Optional[float] = 0.0,
                 multiscale_fusion: bool = False, use_checkpoint: bool = False):
        super().__init__()
        stage_depths = tuple(int(d) for d in stage_depths)
        if not stage_depths or min(stage_depths) < 1:
            raise ValueError(f'stage_depths needs at least one stage, each of depth >= 1, got {stage_depths}')
        num_later = len(stage_depths) - 1
        if isinstance(num_bottleneck_tokens, int):
            num_bottleneck_tokens = (num_bottleneck_tokens,) * num_later
        num_bottleneck_tokens = tuple(int(k) for k in num_bottleneck_tokens)
        if isinstance(bottleneck_slices, int):
            bottleneck_slices = (bottleneck_slices,) * num_later
        bottleneck_slices = tuple(int(g) for g in bottleneck_slices)
        if spatial_bottleneck and (len(num_bottleneck_tokens) != num_later or len(bottleneck_slices) != num_later):
            raise ValueError(f'num_bottleneck_tokens and bottleneck_slices need one value per later stage '
                             f'({num_later}), got {num_bottleneck_tokens} and {bottleneck_slices}')

        self.img_size = img_size
        self.num_frames = all_frames
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.embed_dim = self.num_features = embed_dim
        self.stage_depths = stage_depths
        self.num_bottleneck_tokens = num_bottleneck_tokens if spatial_bottleneck else ()
        self.bottleneck_slices = bottleneck_slices if spatial_bottleneck else ()
        self.temporal_downsample = temporal_downsample
        self.spatial_bottleneck = spatial_bottleneck
        self.multiscale_fusion = multiscale_fusion
        self.use_checkpoint = use_checkpoint

        self.patch_embed = PatchEmbed3d(patch_size, tubelet_size, in_chans, embed_dim)

        dpr = drop_path_rates(drop_path_rate, sum(stage_depths))
        common = dict(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop=drop_rate,
                      attn_drop=attn_drop_rate, init_values=init_values)
        blocks = []
        for stage, depth in enumerate(stage_depths):
            block_cls = SBTBlock if stage > 0 and spatial_bottleneck else Block
            for _ in range(depth):
                blocks.append(block_cls(drop_path=dpr[len(blocks)], **common))
        self.blocks = nn.ModuleList(blocks)
        self.temporal_downsamples = nn.ModuleList(
            build_temporal_downsample(temporal_downsample, embed_dim) for _ in range(num_later))
        self.spatial_downsamples = nn.ModuleList(
            SpatialAttentionPool(embed_dim, k, spatial_hidden_dim) for k in self.num_bottleneck_tokens)
        self.norm = LayerNorm(embed_dim) if multiscale_fusion else None

        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------ helpers
    @property
    def num_stages(self) -> int:
        return len(self.stage_depths)

    def stage_block_range(self, stage: int) -> range:
        """Indices into ``blocks`` of the blocks of ``stage`` (0-based)."""
        start = sum(self.stage_depths[:stage])
        return range(start, start + self.stage_depths[stage])

    def token_grid(self, num_frames: int, height: int, width: int) -> Tuple[int, int, int]:
        """(T, H, W) of a clip -> (T/2, H/16, W/16) token grid."""
        return self.patch_embed.token_grid(num_frames, height, width)

    def _run(self, block: nn.Module, *args: torch.Tensor) -> torch.Tensor:
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    # ------------------------------------------------------------------ forward
    def forward_stages(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None,
                       return_spatial_attention: bool = False, num_masked: Optional[int] = None):
        """Run the encoder and return every stage's output.

        x: clip (B, 3, T, H, W); mask: optional tube mask (B, N) bool, True = masked (only visible
        tokens are embedded further). Returns a list of (B, T_s, N_vis, C) per stage, and with
        ``return_spatial_attention`` also a list of spatial-attention weights (B, T_s, N_vis, K)
        per later SBT stage. ``num_masked``: masked tokens per clip (a Python int, e.g. from the
        mask ratio or the CPU batch); without it the count is read from the mask (a device -> host
        sync on CUDA). The visible tokens are gathered by index, so there is no sync and no
        data-dependent shape when the count is given.
        """
        B = x.shape[0]
        t, h, w = self.token_grid(*x.shape[2:])
        x = self.patch_embed(x)
        C = x.shape[-1]
        x = x + sinusoid_position_table(t * h * w, C, device=x.device, dtype=x.dtype)
        if mask is not None:
            mask = mask.to(x.device)
            if num_masked is None:
                check_tube_mask(mask, (t, h, w))
                num_masked = count_masked(mask)
                check_tube_mask(mask, (t, h, w), num_masked, check_content=False)
            else:
                check_tube_mask(mask, (t, h, w), num_masked)
            keep, _ = tube_mask_indices(mask, (t, h, w), num_masked)
            x = gather_tokens(x, keep)  # visible tokens, time-major order kept
        n = x.shape[1] // t

        stages, spatial_attention = [], []
        for stage in range(self.num_stages):
            blocks = [self.blocks[i] for i in self.stage_block_range(stage)]
            if stage == 0:
                for blk in blocks:
                    x = self._run(blk, x)
            else:
                downsample = self.temporal_downsamples[stage - 1]
                if t < downsample.factor:
                    raise ValueError(f'{t} temporal slices cannot be downsampled again in stage {stage + 1}; '
                                     f'use more frames or fewer stages')
                x4 = downsample(x.view(B, t, n, C))
                t = x4.shape[1]
                x = x4.reshape(B, t * n, C)
                if self.spatial_bottleneck:
                    window = self.bottleneck_slices[stage - 1]
                    if t % window:
                        raise ValueError(f'{t} temporal slices do not split into bottleneck windows of {window}')
                    z, weights = self.spatial_downsamples[stage - 1](x4.reshape(B, t // window, window * n, C))
                    if return_spatial_attention:
                        spatial_attention.append(weights.reshape(B, t, n, -1))
                    z = z.reshape(B, -1, C)
                    for blk in blocks[:-1]:
                        z = self._run(blk, z, x)
                    x = self._run(blocks[-1], x, z)  # reverse block: back to full resolution
                else:
                    for blk in blocks:
                        x = self._run(blk, x)
            stages.append(x.reshape(B, t, n, C))
        if return_spatial_attention:
            return stages, spatial_attention
        return stages

    def forward_tokens(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None,
                       num_masked: Optional[int] = None) -> torch.Tensor:
        """Fused and normalised stage outputs (B, T_1 * N_vis, C) with ``multiscale_fusion``,
        otherwise the last stage's tokens (B, T_last * N_vis, C)."""
        stages = self.forward_stages(x, mask, num_masked=num_masked)
        if self.multiscale_fusion:
            return self.norm(fuse_stages(stages))
        return stages[-1].flatten(1, 2)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None,
                num_masked: Optional[int] = None) -> torch.Tensor:
        return self.forward_tokens(x, mask, num_masked)

    # ------------------------------------------------------------------ optimiser support
    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        """Parameter names exempt from weight decay beyond the usual 1-D rule (none: no learned tables)."""
        return set()

    def get_num_layers(self) -> int:
        """Number of blocks (layer-wise lr decay: patch embed 0, block i -> i + 1, head last)."""
        return len(self.blocks)

    def get_layer_id(self, name: str, assignment: str = 'published') -> int:
        """Layer index of parameter ``name`` for layer-wise lr decay.

        patch_embed -> 0; blocks.i -> i + 1; anything else (fc_norm, head, norm) -> num_layers + 1.
        The temporal-pyramid convs and spatial-attention pools of the later stages
        (``temporal_downsamples.j``, ``spatial_downsamples.j``) get num_layers + 1 as well with
        ``assignment='published'`` (the published training code), or the id of the first block of
        the stage they open with ``assignment='stage'``.
        """
        if assignment not in LAYER_DECAY_ASSIGNMENTS:
            raise ValueError(f'layer-decay assignment must be one of {LAYER_DECAY_ASSIGNMENTS}, got {assignment!r}')
        if name.startswith('module.'):
            name = name[len('module.'):]
        parts = name.split('.')
        if parts[0] == 'patch_embed':
            return 0
        if parts[0] == 'blocks':
            return int(parts[1]) + 1
        if parts[0] in ('temporal_downsamples', 'spatial_downsamples') and assignment == 'stage':
            return self.stage_block_range(int(parts[1]) + 1).start + 1
        return self.get_num_layers() + 1


class SVFAPClassifier(TPSBT):
    """Fine-tuning model: TPSBT (no fusion) -> mean over last-stage tokens -> fc_norm -> dropout -> head.

    clip (B, 3, T, H, W) -> (B, num_classes). Keys are flat (``patch_embed``, ``blocks``, ...,
    ``fc_norm``, ``head``) as in the authors' fine-tuned checkpoints.

    Args (beyond TPSBT):
        num_classes: outputs of the head (0 = no head, forward returns features).
        fc_drop_rate: dropout before the head.
        init_scale: the trunc-normal(0.02) head init is multiplied by this.
        output_activation: 'none' | 'sigmoid' | 'tanh' | 'relu' applied to the head output.
    """

    _ACTIVATIONS = {'none': nn.Identity, 'sigmoid': nn.Sigmoid, 'tanh': nn.Tanh, 'relu': nn.ReLU}

    def __init__(self, num_classes: int = 7, fc_drop_rate: float = 0.0, init_scale: float = 0.001,
                 output_activation: str = 'none', use_mean_pooling: bool = True, **kwargs):
        if not use_mean_pooling:
            raise ValueError('SVFAPClassifier only supports mean pooling')
        if output_activation not in self._ACTIVATIONS:
            raise ValueError(f'output_activation must be one of {list(self._ACTIVATIONS)}, got {output_activation!r}')
        kwargs['multiscale_fusion'] = False
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.init_scale = init_scale
        self.output_activation = output_activation
        self.fc_norm = LayerNorm(self.embed_dim)
        self.fc_dropout = nn.Dropout(fc_drop_rate)
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.activation = self._ACTIVATIONS[output_activation]()
        self._init_head()

    def _init_head(self) -> None:
        if isinstance(self.head, nn.Linear):
            trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)
            with torch.no_grad():
                self.head.weight.mul_(self.init_scale)
                self.head.bias.mul_(self.init_scale)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a freshly initialised one with ``num_classes`` outputs."""
        self.num_classes = num_classes
        device = self.fc_norm.weight.device
        self.head = (nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()).to(device)
        self._init_head()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """clip (B, 3, T, H, W) -> pooled features (B, C), after fc_norm, before dropout / head."""
        return self.fc_norm(self.forward_tokens(x).mean(dim=1))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., num_classes): dropout, head, output activation."""
        return self.activation(self.head(self.fc_dropout(features)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# ---------------------------------------------------------------------------------------------
# timm registration

_TIMM_ONLY_KWARGS = ('pretrained_cfg', 'pretrained_cfg_overlay', 'cache_dir', 'drop_block_rate')


def create_from_config(cls, size: str, pretrained: bool = False, **kwargs):
    """Build ``cls`` from ``MODEL_CONFIGS[size]`` updated with ``kwargs`` (timm's own kwargs dropped)."""
    for key in _TIMM_ONLY_KWARGS:
        kwargs.pop(key, None)
    if pretrained:
        raise ValueError('SVFAP has no hosted weights; build with pretrained=False and load a file with '
                         'models.checkpoint.load_checkpoint(model, path)')
    config = dict(MODEL_CONFIGS[size])
    config.update(kwargs)
    return cls(**config)


@register_model
def svfap_base_patch16_160(pretrained: bool = False, **kwargs) -> SVFAPClassifier:
    """SVFAP-B fine-tuning model: 512 ch, 8 heads, stages (12, 6, 3), K = 8 (77.6M params)."""
    return create_from_config(SVFAPClassifier, 'base', pretrained, **kwargs)


@register_model
def svfap_small_patch16_160(pretrained: bool = False, **kwargs) -> SVFAPClassifier:
    """SVFAP-S fine-tuning model: 384 ch, 6 heads, stages (8, 4, 2), K = 8 (29.7M params)."""
    return create_from_config(SVFAPClassifier, 'small', pretrained, **kwargs)


@register_model
def svfap_tiny_patch16_160(pretrained: bool = False, **kwargs) -> SVFAPClassifier:
    """Tiny config for tests and the quickstart: 96 ch, 3 heads, stages (2, 2, 2), K = 4."""
    return create_from_config(SVFAPClassifier, 'tiny', pretrained, **kwargs)

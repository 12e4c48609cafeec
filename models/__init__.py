"""SVFAP models. Importing this package registers the timm model names:

svfap_{base,small,tiny}_patch16_160 (fine-tuning) and pretrain_svfap_{base,small,tiny}_patch16_160.
"""
from .layers import get_attention_backend, set_attention_backend
from .tpsbt import TPSBT, SVFAPClassifier
from .mae import PretrainSVFAP, patchify_targets
from .checkpoint import CheckpointError, LoadReport, load_checkpoint

__all__ = [
    'TPSBT', 'SVFAPClassifier', 'PretrainSVFAP', 'patchify_targets',
    'set_attention_backend', 'get_attention_backend', 'load_checkpoint', 'LoadReport', 'CheckpointError',
]

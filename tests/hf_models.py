"""Tiny Video Mask2Formers with the two backbone families transformers also has (Swin, ResNet).

Hidden 32, Q=5, K=3, 1 pixel-decoder encoder layer and 2 decoder layers; Swin with embed 16 and
window 3, ResNet-50 of 1/8 width. Used by the tests of ``video_mask2former.hf`` and of
``tools/convert_hf.py``.
"""

import torch
from torch import nn

from tests.modeling.tiny_video_model import HIDDEN, NUM_CLASSES, NUM_QUERIES, build_tiny_model
from video_mask2former.modeling.backbone.resnet import ResNet
from video_mask2former.modeling.backbone.swin import SwinTransformer
from video_mask2former.modeling.video_maskformer import VideoMaskFormer

DEC_LAYERS = 2
__all__ = ["HIDDEN", "NUM_CLASSES", "NUM_QUERIES", "DEC_LAYERS", "randomize_", "tiny_model"]
TINY_SWIN = dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=3)
TINY_RESNET = dict(depth=50, stem_out_channels=8, res2_out_channels=32, width_per_group=8)


def randomize_(model: nn.Module, seed: int, keep: str = "") -> nn.Module:
    """Random values of a sensible scale for every float parameter and buffer (but those whose
    name contains ``keep``, when given)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point() or (keep and keep in name):
                continue
            x = torch.randn(t.shape, generator=generator)
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "running_var":
                t.copy_(1 + 0.1 * x.abs())
            elif t.dim() == 1 and leaf == "weight":
                t.copy_(1 + 0.1 * x)
            elif t.dim() < 2:
                t.copy_(0.1 * x)
            else:
                t.copy_(x / t[0].numel() ** 0.5)
    return model


def tiny_model(family: str) -> VideoMaskFormer:
    if family == "swin":
        backbone = SwinTransformer(**TINY_SWIN, drop_path_rate=0.0)
    else:
        backbone = ResNet(**TINY_RESNET)
    model = build_tiny_model(backbone=backbone, dec_layers=DEC_LAYERS)
    return randomize_(model, seed=len(family)).eval()

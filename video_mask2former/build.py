"""A model ready for inference from a backbone name and weights (no detectron2).

It sits above :mod:`video_mask2former.modeling` (the network) and
:mod:`video_mask2former.checkpoint` (which reads the backbone layouts of ``modeling``), so that
neither imports the other's builder; detectron2 users build the same from a config with
``video_mask2former.d2.build_inference_model(cfg)``.
"""

from typing import Optional, Union

import torch

from .checkpoint import load_checkpoint
from .modeling.build import build_video_maskformer
from .modeling.video_maskformer import VideoMaskFormer

__all__ = ["build_inference_model"]


def build_inference_model(
    backbone: str = "R50",
    weights: Optional[str] = None,
    *,
    num_classes: int = 40,
    device: Union[str, torch.device] = "cpu",
    allow_partial_weights: bool = False,
    **options,
) -> VideoMaskFormer:
    """Build an official Video Mask2Former, load its weights for inference, put it in eval mode.

    Args:
        backbone (str): "R50", "R101", "swin_tiny", "swin_small", "swin_base_384" or
            "swin_large_384".
        weights (str, optional): a checkpoint path, URL or transformers location (anything
            :func:`~video_mask2former.checkpoint.load_checkpoint` reads); None or "": the random
            initialisation (measurements, export tests).
        num_classes (int): K (40 for YouTube-VIS 2019 and 2021).
        device (str or torch.device): where the model runs.
        allow_partial_weights (bool): experts' opt-out of the inference loading policy (load
            what fits, with a warning); False: every key must fit exactly.
        **options: other keyword arguments of
            :func:`~video_mask2former.modeling.build.build_video_maskformer` (``window_size``,
            ``test_topk``, ``num_queries``, ...).

    Returns:
        VideoMaskFormer: in eval mode on ``device``.

    Raises:
        CheckpointFileError: ``weights`` is not a checkpoint.
        CheckpointMismatchError: its weights do not fit the model (nothing is loaded then).
    """
    model = build_video_maskformer(backbone, num_classes=num_classes, **options)
    if weights:
        load_checkpoint(model, weights, strict=not allow_partial_weights)
    return model.to(device).eval()

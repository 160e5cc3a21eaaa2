"""``MaskFormerHead``: the pixel decoder followed by the transformer decoder ("predictor").

Shapes: B videos, T frames, Q queries, K classes, h x w the mask-feature size (stride 4).

The attribute names ``pixel_decoder`` and ``predictor`` give the official state-dict keys
(``sem_seg_head.pixel_decoder.*``, ``sem_seg_head.predictor.*``).
"""

from typing import Dict

import torch
from torch import nn
from torch.profiler import record_function


class MaskFormerHead(nn.Module):
    """Runs the pixel decoder on every frame, then the video decoder on each video's frames.

    Args:
        pixel_decoder (nn.Module): with ``forward_features(features) -> (mask_features,
            encoder_features, multi_scale_features)``.
        predictor (nn.Module): the transformer decoder, called as
            ``predictor(multi_scale_features, mask_features, num_frames, keep_aux)``.
        num_classes (int): K.
    """

    # The official module's state-dict version: checkpoints saved here record it, so the official
    # code loads them as they are (it renames the keys of versions < 2 as pre-release layouts).
    _version = 2

    def __init__(self, *, pixel_decoder: nn.Module, predictor: nn.Module, num_classes: int):
        super().__init__()
        self.pixel_decoder = pixel_decoder
        self.predictor = predictor
        self.num_classes = num_classes

    def forward(
        self, features: Dict[str, torch.Tensor], num_frames: int, keep_aux: bool = False
    ) -> Dict[str, object]:
        """Predict classes and 3-D masks.

        Args:
            features (dict): backbone features, name -> (B*T, C, H/stride, W/stride), the frames
                of each video consecutive.
            num_frames (int): T.
            keep_aux (bool): also return the deep-supervision predictions (``aux_outputs``).

        Returns:
            dict: ``pred_logits`` (B, Q, K+1), ``pred_masks`` (B, Q, T, h, w) [, ``aux_outputs``].
        """
        with record_function("pixel_decoder"):
            mask_features, _, multi_scale_features = self.pixel_decoder.forward_features(features)
        with record_function("transformer_decoder"):
            return self.predictor(multi_scale_features, mask_features, num_frames, keep_aux)

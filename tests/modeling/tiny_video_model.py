"""A tiny Video Mask2Former for fast CPU tests (hidden 32, Q=5, K=3, 1+3 layers)."""

import torch
from torch import nn

from video_mask2former.modeling.build import build_criterion
from video_mask2former.modeling.head import MaskFormerHead
from video_mask2former.modeling.pixel_decoder import MSDeformAttnPixelDecoder
from video_mask2former.modeling.transformer_decoder import VideoMultiScaleMaskedTransformerDecoder
from video_mask2former.modeling.video_maskformer import VideoMaskFormer
from video_mask2former.structures import ShapeSpec

HIDDEN = 32
NUM_QUERIES = 5
NUM_CLASSES = 3
DEC_LAYERS = 3  # decoder layers (the config's DEC_LAYERS would be 4)


class TinyBackbone(nn.Module):
    """Strided convolutions giving res2..res5 (8, 16, 24, 32 channels at strides 4..32)."""

    channels = {"res2": 8, "res3": 16, "res4": 24, "res5": 32}

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, kernel_size=4, stride=4)
        self.res3 = nn.Conv2d(8, 16, kernel_size=3, stride=2, padding=1)
        self.res4 = nn.Conv2d(16, 24, kernel_size=3, stride=2, padding=1)
        self.res5 = nn.Conv2d(24, 32, kernel_size=3, stride=2, padding=1)
        self.size_divisibility = 0

    def output_shape(self):
        return {
            name: ShapeSpec(channels=c, stride=4 * 2**i)
            for i, (name, c) in enumerate(self.channels.items())
        }

    def forward(self, x):
        res2 = self.stem(x)
        res3 = self.res3(res2)
        res4 = self.res4(res3)
        return {"res2": res2, "res3": res3, "res4": res4, "res5": self.res5(res4)}


def build_tiny_model(
    test_topk: int = 10,
    inference_chunk_size=2,
    seed: int = 0,
    backbone: nn.Module = None,
    dec_layers: int = DEC_LAYERS,
) -> VideoMaskFormer:
    """The tiny model around ``backbone`` (default: :class:`TinyBackbone`), seeded by ``seed``."""
    torch.manual_seed(seed)
    backbone = backbone if backbone is not None else TinyBackbone()
    pixel_decoder = MSDeformAttnPixelDecoder(
        input_shape=backbone.output_shape(),
        transformer_nheads=4,
        transformer_dim_feedforward=64,
        transformer_enc_layers=1,
        conv_dim=HIDDEN,
        mask_dim=HIDDEN,
    )
    predictor = VideoMultiScaleMaskedTransformerDecoder(
        in_channels=HIDDEN,
        num_classes=NUM_CLASSES,
        hidden_dim=HIDDEN,
        num_queries=NUM_QUERIES,
        nheads=4,
        dim_feedforward=64,
        dec_layers=dec_layers,
        mask_dim=HIDDEN,
    )
    criterion = build_criterion(
        num_classes=NUM_CLASSES, num_aux_outputs=dec_layers, train_num_points=64
    )
    return VideoMaskFormer(
        backbone=backbone,
        sem_seg_head=MaskFormerHead(
            pixel_decoder=pixel_decoder, predictor=predictor, num_classes=NUM_CLASSES
        ),
        criterion=criterion,
        num_queries=NUM_QUERIES,
        size_divisibility=32,
        pixel_mean=(123.675, 116.28, 103.53),
        pixel_std=(58.395, 57.12, 57.375),
        num_frames=2,
        test_topk=test_topk,
        inference_chunk_size=inference_chunk_size,
    )


def random_video(num_frames: int = 2, height: int = 32, width: int = 32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.randint(0, 256, (3, height, width), generator=generator, dtype=torch.uint8)
        for _ in range(num_frames)
    ]

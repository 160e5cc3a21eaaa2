"""Build the official YouTube-VIS 2019 Video Mask2Former configurations without detectron2.

Each keyword default is the value of the official configs (``configs/youtubevis_2019/*.yaml`` and
the defaults of ``mask2former/config.py`` / ``mask2former_video/config.py``). The resulting
``state_dict`` has exactly the official keys, so released checkpoints load with
``model.load_state_dict(...)``.
"""

from typing import Dict, Optional, Sequence

from torch import nn

from .backbone.resnet import ResNet
from .backbone.swin import SWIN_VARIANTS, SwinTransformer
from .criterion import VideoSetCriterion
from .head import MaskFormerHead
from .matcher import VideoHungarianMatcher
from .pixel_decoder import MSDeformAttnPixelDecoder
from .transformer_decoder import VideoMultiScaleMaskedTransformerDecoder
from .video_maskformer import VideoMaskFormer

# MODEL.PIXEL_MEAN / PIXEL_STD of the official configs (RGB, 0..255).
PIXEL_MEAN = (123.675, 116.280, 103.530)
PIXEL_STD = (58.395, 57.120, 57.375)

RESNET_DEPTHS = {"R50": 50, "R101": 101}
# Backbone name -> key of backbone.swin.SWIN_VARIANTS (the per-variant MODEL.SWIN values of
# configs/youtubevis_2019/swin/*.yaml); the other arguments are the official MODEL.SWIN defaults.
SWIN_CONFIGS: Dict[str, str] = {
    "swin_tiny": "T",
    "swin_small": "S",
    "swin_base_384": "B",
    "swin_large_384": "L",
}
# MODEL.MASK_FORMER.NUM_OBJECT_QUERIES: 100, except 200 for Swin-L.
DEFAULT_NUM_QUERIES = {"swin_large_384": 200}
BACKBONES = tuple(RESNET_DEPTHS) + tuple(SWIN_CONFIGS)


def build_backbone(
    backbone: str, *, freeze_at: int = 0, drop_path_rate: float = 0.3, use_checkpoint=False
) -> nn.Module:
    """The backbone of an official configuration.

    Args:
        backbone (str): one of :data:`BACKBONES`.
        freeze_at (int): ResNet stages to freeze (MODEL.BACKBONE.FREEZE_AT, 0 officially).
        drop_path_rate (float): Swin stochastic depth (0.3 officially).
        use_checkpoint (bool): Swin activation checkpointing.

    Returns:
        nn.Module: returning ``res2``..``res5``.
    """
    if backbone in RESNET_DEPTHS:
        return ResNet(
            depth=RESNET_DEPTHS[backbone],
            norm="FrozenBN",
            stem_out_channels=64,
            res2_out_channels=256,
            width_per_group=64,
            stride_in_1x1=False,
            res5_dilation=1,
            out_features=("res2", "res3", "res4", "res5"),
            freeze_at=freeze_at,
        )
    if backbone in SWIN_CONFIGS:
        return SwinTransformer(
            **SWIN_VARIANTS[SWIN_CONFIGS[backbone]],
            patch_size=4,
            mlp_ratio=4.0,
            qkv_bias=True,
            qk_scale=None,
            drop_rate=0.0,
            attn_drop_rate=0.0,
            drop_path_rate=drop_path_rate,
            ape=False,
            patch_norm=True,
            out_features=("res2", "res3", "res4", "res5"),
            use_checkpoint=use_checkpoint,
        )
    raise ValueError(f"build_backbone: unknown backbone {backbone!r}; expected one of {BACKBONES}")


def build_criterion(
    *,
    num_classes: int,
    class_weight: float = 2.0,
    mask_weight: float = 5.0,
    dice_weight: float = 5.0,
    no_object_weight: float = 0.1,
    num_aux_outputs: int = 9,
    train_num_points: int = 12544,
    oversample_ratio: float = 3.0,
    importance_sample_ratio: float = 0.75,
) -> VideoSetCriterion:
    """The Hungarian matcher and set criterion of Mask2Former (the loss weights are also the
    matching costs, as in the official code).

    Args:
        num_classes (int): K.
        class_weight, mask_weight, dice_weight (float): weights of the class, mask sigmoid-CE
            and dice losses.
        no_object_weight (float): class weight of "no object".
        num_aux_outputs (int): deep-supervision outputs whose losses (suffix ``_i``) get the same
            weights (DEC_LAYERS - 1 with deep supervision, else 0).
        train_num_points, oversample_ratio, importance_sample_ratio: point sampling of the
            mask losses.
    """
    weights = {"loss_ce": class_weight, "loss_mask": mask_weight, "loss_dice": dice_weight}
    weight_dict = dict(weights)
    for i in range(num_aux_outputs):
        weight_dict.update({f"{name}_{i}": w for name, w in weights.items()})
    matcher = VideoHungarianMatcher(
        cost_class=class_weight,
        cost_mask=mask_weight,
        cost_dice=dice_weight,
        num_points=train_num_points,
    )
    return VideoSetCriterion(
        num_classes=num_classes,
        matcher=matcher,
        weight_dict=weight_dict,
        eos_coef=no_object_weight,
        losses=("labels", "masks"),
        num_points=train_num_points,
        oversample_ratio=oversample_ratio,
        importance_sample_ratio=importance_sample_ratio,
    )


def build_video_maskformer(
    backbone: str = "R50",
    *,
    num_classes: int = 40,
    num_queries: Optional[int] = None,
    hidden_dim: int = 256,
    nheads: int = 8,
    dim_feedforward: int = 2048,
    dec_layers: int = 10,
    pre_norm: bool = False,
    enforce_input_project: bool = False,
    conv_dim: int = 256,
    mask_dim: int = 256,
    pixel_decoder_norm: str = "GN",
    transformer_enc_layers: int = 6,
    transformer_dropout: float = 0.0,
    transformer_dim_feedforward: int = 1024,
    transformer_in_features: Sequence[str] = ("res3", "res4", "res5"),
    common_stride: int = 4,
    class_weight: float = 2.0,
    mask_weight: float = 5.0,
    dice_weight: float = 5.0,
    no_object_weight: float = 0.1,
    deep_supervision: bool = True,
    train_num_points: int = 12544,
    oversample_ratio: float = 3.0,
    importance_sample_ratio: float = 0.75,
    size_divisibility: int = 32,
    num_frames: int = 2,
    test_topk: int = 10,
    inference_chunk_size: Optional[int] = 8,
    window_size: int = 0,
    freeze_at: int = 0,
    drop_path_rate: float = 0.3,
    channels_last: bool = True,
    allow_slow_low_precision: bool = False,
    compile_network: bool = False,
    cache_cpu_blocks: bool = True,
) -> VideoMaskFormer:
    """An official YouTube-VIS 2019 Video Mask2Former.

    Args:
        backbone (str): "R50", "R101", "swin_tiny", "swin_small", "swin_base_384" or
            "swin_large_384".
        num_classes (int): K (40 for YouTube-VIS 2019 and 2021).
        num_queries (int, optional): Q; default 100 (200 for "swin_large_384").
        hidden_dim, nheads, dim_feedforward, pre_norm, enforce_input_project: transformer decoder
            (MODEL.MASK_FORMER.*).
        dec_layers (int): MODEL.MASK_FORMER.DEC_LAYERS, counting the prediction from the
            learnable queries (10 = 9 decoder layers + 1).
        conv_dim, mask_dim, pixel_decoder_norm, transformer_enc_layers, transformer_in_features,
            common_stride: pixel decoder (MODEL.SEM_SEG_HEAD.*).
        transformer_dropout (float): MODEL.MASK_FORMER.DROPOUT (pixel-decoder encoder).
        transformer_dim_feedforward (int): pixel-decoder encoder FFN width (1024, fixed
            officially).
        class_weight, mask_weight, dice_weight, no_object_weight, deep_supervision,
            train_num_points, oversample_ratio, importance_sample_ratio: losses and matching.
        size_divisibility (int): MODEL.MASK_FORMER.SIZE_DIVISIBILITY.
        num_frames (int): INPUT.SAMPLING_FRAME_NUM (2).
        test_topk (int): instances per video at inference (10).
        inference_chunk_size (int, optional): frames upsampled at a time at inference.
        window_size (int): 0 for whole-video inference, W > 0 for windowed inference of long
            videos (MODEL.MASK_FORMER.TEST.WINDOW_SIZE).
        freeze_at (int): MODEL.BACKBONE.FREEZE_AT (0).
        drop_path_rate (float): MODEL.SWIN.DROP_PATH_RATE (0.3).
        channels_last, allow_slow_low_precision, compile_network, cache_cpu_blocks (bool): how
            inference runs (see :class:`VideoMaskFormer`): channels-last frames on the CPU
            (True), low precision on a CPU that emulates it (False: float32 with a warning),
            ``torch.compile`` of the network (False), large CPU tensors from the block cache
            (True).

    Returns:
        VideoMaskFormer
    """
    if backbone not in BACKBONES:
        raise ValueError(
            f"build_video_maskformer: unknown backbone {backbone!r}; expected one of {BACKBONES}"
        )
    if dec_layers < 1:
        raise ValueError(f"build_video_maskformer: dec_layers must be >= 1, got {dec_layers}")
    if num_queries is None:
        num_queries = DEFAULT_NUM_QUERIES.get(backbone, 100)
    body = build_backbone(backbone, freeze_at=freeze_at, drop_path_rate=drop_path_rate)
    pixel_decoder = MSDeformAttnPixelDecoder(
        input_shape=body.output_shape(),
        transformer_dropout=transformer_dropout,
        transformer_nheads=nheads,
        transformer_dim_feedforward=transformer_dim_feedforward,
        transformer_enc_layers=transformer_enc_layers,
        conv_dim=conv_dim,
        mask_dim=mask_dim,
        norm=pixel_decoder_norm,
        transformer_in_features=transformer_in_features,
        common_stride=common_stride,
    )
    predictor = VideoMultiScaleMaskedTransformerDecoder(
        in_channels=conv_dim,
        num_classes=num_classes,
        hidden_dim=hidden_dim,
        num_queries=num_queries,
        nheads=nheads,
        dim_feedforward=dim_feedforward,
        dec_layers=dec_layers - 1,
        pre_norm=pre_norm,
        mask_dim=mask_dim,
        enforce_input_project=enforce_input_project,
    )
    head = MaskFormerHead(pixel_decoder=pixel_decoder, predictor=predictor, num_classes=num_classes)

    criterion = build_criterion(
        num_classes=num_classes,
        class_weight=class_weight,
        mask_weight=mask_weight,
        dice_weight=dice_weight,
        no_object_weight=no_object_weight,
        num_aux_outputs=dec_layers - 1 if deep_supervision else 0,
        train_num_points=train_num_points,
        oversample_ratio=oversample_ratio,
        importance_sample_ratio=importance_sample_ratio,
    )
    return VideoMaskFormer(
        backbone=body,
        sem_seg_head=head,
        criterion=criterion,
        num_queries=num_queries,
        size_divisibility=size_divisibility,
        pixel_mean=PIXEL_MEAN,
        pixel_std=PIXEL_STD,
        num_frames=num_frames,
        test_topk=test_topk,
        inference_chunk_size=inference_chunk_size,
        window_size=window_size,
        channels_last=channels_last,
        allow_slow_low_precision=allow_slow_low_precision,
        compile_network=compile_network,
        cache_cpu_blocks=cache_cpu_blocks,
    )

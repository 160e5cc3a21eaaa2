"""detectron2 registry entries over the core modules of ``video_mask2former.modeling``.

Each entry subclasses a core module under the official registry name and adds ``from_config``,
the only code that reads ``cfg``; the modules themselves (and their state-dict keys) are the
core ones. Entries:

* ``META_ARCH_REGISTRY``: ``VideoMaskFormer``;
* ``SEM_SEG_HEADS_REGISTRY``: ``MaskFormerHead`` and the pixel decoder ``MSDeformAttnPixelDecoder``
  (the official code also keeps its pixel decoders in this registry, looked up by
  ``MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME``);
* :data:`TRANSFORMER_DECODER_REGISTRY`: ``VideoMultiScaleMaskedTransformerDecoder``
  (``MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME``);
* ``BACKBONE_REGISTRY``: ``D2SwinTransformer``. ResNets use detectron2's own
  ``build_resnet_backbone``, whose keys are those of the core ResNet.

The video task (instances, panoptic or semantic segmentation) is chosen by
``MODEL.MASK_FORMER.TEST.{INSTANCE_ON, PANOPTIC_ON, SEMANTIC_ON}`` (:func:`video_task`) and
becomes the model's ``segmentation_task`` (:func:`build_segmentation_task`).
"""

from typing import Dict, List, Optional, Tuple

from detectron2.config import configurable
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.layers import ShapeSpec
from detectron2.modeling import (
    BACKBONE_REGISTRY,
    META_ARCH_REGISTRY,
    SEM_SEG_HEADS_REGISTRY,
    Backbone,
    build_backbone,
    build_sem_seg_head,
)
from detectron2.utils.registry import Registry
from torch import nn

from ..modeling import build as core_build
from ..modeling import head as core_head
from ..modeling import pixel_decoder as core_pixel_decoder
from ..modeling import transformer_decoder as core_transformer_decoder
from ..modeling import video_maskformer as core_video_maskformer
from ..modeling.backbone.swin import SwinTransformer
from ..inference.segment_windows import SegmentationTask
from ..modeling.criterion import VideoSetCriterion
from .config import ConfigError

__all__ = [
    "TASK_KEYS",
    "TRANSFORMER_DECODER_REGISTRY",
    "build_segmentation_task",
    "video_task",
    "build_pixel_decoder",
    "build_transformer_decoder",
    "build_criterion",
    "VideoMaskFormer",
    "MaskFormerHead",
    "MSDeformAttnPixelDecoder",
    "VideoMultiScaleMaskedTransformerDecoder",
    "D2SwinTransformer",
]

TRANSFORMER_DECODER_REGISTRY = Registry("TRANSFORMER_MODULE")
TRANSFORMER_DECODER_REGISTRY.__doc__ = """
Transformer decoders of the mask-classification head, called as ``(cfg, in_channels,
mask_classification)``; selected by ``MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME``.
"""

# The predictor reads the pixel decoder's multi-scale features (the only input of Mask2Former).
MULTI_SCALE_FEATURE = "multi_scale_pixel_decoder"


def build_pixel_decoder(cfg, input_shape: Dict[str, ShapeSpec]) -> nn.Module:
    """The pixel decoder named by ``MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME``."""
    name = cfg.MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME
    model = SEM_SEG_HEADS_REGISTRY.get(name)(cfg, input_shape)
    if not callable(getattr(model, "forward_features", None)):
        raise ValueError(
            f"MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME={name!r} has no forward_features method; "
            "a pixel decoder must return (mask_features, encoder_features, multi_scale_features)."
        )
    return model


def build_transformer_decoder(cfg, in_channels: int, mask_classification: bool = True):
    """The transformer decoder named by ``MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME``."""
    name = cfg.MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME
    return TRANSFORMER_DECODER_REGISTRY.get(name)(cfg, in_channels, mask_classification)


def build_criterion(cfg, num_classes: int) -> VideoSetCriterion:
    """Matcher and set criterion from ``MODEL.MASK_FORMER``; weights also set the matching costs.

    With ``DEEP_SUPERVISION`` the weights are repeated for the ``DEC_LAYERS - 1`` auxiliary
    outputs (suffix ``_i``); losses missing from ``weight_dict`` are dropped by the model.
    """
    mf = cfg.MODEL.MASK_FORMER
    return core_build.build_criterion(
        num_classes=num_classes,
        class_weight=mf.CLASS_WEIGHT,
        mask_weight=mf.MASK_WEIGHT,
        dice_weight=mf.DICE_WEIGHT,
        no_object_weight=mf.NO_OBJECT_WEIGHT,
        num_aux_outputs=mf.DEC_LAYERS - 1 if mf.DEEP_SUPERVISION else 0,
        train_num_points=mf.TRAIN_NUM_POINTS,
        oversample_ratio=mf.OVERSAMPLE_RATIO,
        importance_sample_ratio=mf.IMPORTANCE_SAMPLE_RATIO,
    )


# The config keys that select the video task, and the task each selects.
TASK_KEYS = {
    "MODEL.MASK_FORMER.TEST.INSTANCE_ON": "instance",
    "MODEL.MASK_FORMER.TEST.PANOPTIC_ON": "panoptic",
    "MODEL.MASK_FORMER.TEST.SEMANTIC_ON": "semantic",
}
# MetadataCatalog evaluator_type of the datasets that say which classes are things.
_PANOPTIC_EVALUATOR_TYPE = "vps"


def video_task(cfg) -> str:
    """The video task ``cfg`` selects: "instance", "panoptic" or "semantic".

    Unlike the image Mask2Former, which can return several outputs at once, the video model
    returns one: exactly one of ``MODEL.MASK_FORMER.TEST.{INSTANCE_ON, PANOPTIC_ON,
    SEMANTIC_ON}`` must be True.

    Raises:
        ConfigError: none or several of the three keys are True (naming them and their values).
    """
    test = cfg.MODEL.MASK_FORMER.TEST
    values = {key: bool(getattr(test, key.rsplit(".", 1)[1])) for key in TASK_KEYS}
    selected = [TASK_KEYS[key] for key, on in values.items() if on]
    if len(selected) != 1:
        listed = ", ".join(f"{key}={on}" for key, on in values.items())
        raise ConfigError(
            f"Exactly one of {', '.join(TASK_KEYS)} must be True (the video task the model "
            f"returns), got {listed}."
        )
    return selected[0]


def _thing_classes(name: str) -> Optional[Tuple[int, ...]]:
    """The class indices that are things in the video panoptic dataset ``name`` (None: not a
    video panoptic dataset). A dataset registered without categories is loaded once to fill
    them in from its file."""
    meta = MetadataCatalog.get(name)
    if meta.get("evaluator_type", None) != _PANOPTIC_EVALUATOR_TYPE:
        return None
    if meta.get("thing_dataset_id_to_contiguous_id", None) is None:
        DatasetCatalog.get(name)  # register_vps_video: loading sets the file's categories
    return tuple(sorted(int(c) for c in meta.thing_dataset_id_to_contiguous_id.values()))


def _panoptic_thing_classes(cfg) -> Tuple[int, ...]:
    """The thing classes of the video panoptic datasets of DATASETS.TEST and DATASETS.TRAIN
    (which must agree)."""
    names: List[str] = list(dict.fromkeys(list(cfg.DATASETS.TEST) + list(cfg.DATASETS.TRAIN)))
    found = {}
    for name in names:
        if name in DatasetCatalog.list():
            things = _thing_classes(name)
            if things is not None:
                found[name] = things
    if not found:
        raise ConfigError(
            f"MODEL.MASK_FORMER.TEST.PANOPTIC_ON is True, but DATASETS.TEST / DATASETS.TRAIN "
            f"({names}) name no registered video panoptic dataset (register_vps_video, e.g. "
            f"'vipseg_val'), whose metadata says which classes are things."
        )
    if len(set(found.values())) > 1:
        listed = "; ".join(f"{n}: {list(t)}" for n, t in found.items())
        raise ConfigError(
            f"The video panoptic datasets of DATASETS.TEST / DATASETS.TRAIN disagree on which "
            f"classes are things ({listed}); use datasets with one category table."
        )
    return next(iter(found.values()))


def build_segmentation_task(cfg) -> Optional[SegmentationTask]:
    """The model's ``segmentation_task`` from ``cfg``: None for instances (:func:`video_task`);
    for panoptic segmentation the thing classes come from the metadata of the video panoptic
    datasets of ``DATASETS.TEST`` / ``DATASETS.TRAIN``, the thresholds from
    ``MODEL.MASK_FORMER.TEST.{OBJECT_MASK_THRESHOLD, OVERLAP_THRESHOLD}``.

    Raises:
        ConfigError: see :func:`video_task`; a panoptic task without a video panoptic dataset
            or with datasets that disagree; a threshold outside [0, 1].
    """
    kind = video_task(cfg)
    if kind == "instance":
        return None
    test = cfg.MODEL.MASK_FORMER.TEST
    for key in ("OBJECT_MASK_THRESHOLD", "OVERLAP_THRESHOLD"):
        value = getattr(test, key)
        if not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"MODEL.MASK_FORMER.TEST.{key} must be in [0, 1], got {value!r}.")
    return SegmentationTask(
        kind=kind,
        thing_classes=_panoptic_thing_classes(cfg) if kind == "panoptic" else (),
        object_mask_threshold=float(test.OBJECT_MASK_THRESHOLD),
        overlap_threshold=float(test.OVERLAP_THRESHOLD),
    )


@META_ARCH_REGISTRY.register()
class VideoMaskFormer(core_video_maskformer.VideoMaskFormer):
    """:class:`video_mask2former.modeling.video_maskformer.VideoMaskFormer`, built from a cfg."""

    @configurable
    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        test = cfg.MODEL.MASK_FORMER.TEST
        backbone = build_backbone(cfg)
        sem_seg_head = build_sem_seg_head(cfg, backbone.output_shape())
        return {
            "backbone": backbone,
            "sem_seg_head": sem_seg_head,
            "criterion": build_criterion(cfg, sem_seg_head.num_classes),
            "num_queries": cfg.MODEL.MASK_FORMER.NUM_OBJECT_QUERIES,
            "size_divisibility": cfg.MODEL.MASK_FORMER.SIZE_DIVISIBILITY,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "num_frames": cfg.INPUT.SAMPLING_FRAME_NUM,
            "test_topk": test.TOPK,
            "inference_chunk_size": test.CHUNK_SIZE or None,  # 0: all frames at once
            "window_size": test.WINDOW_SIZE,  # 0: the whole video in one pass
            "segmentation_task": build_segmentation_task(cfg),  # None: video instances
            "compile_network": cfg.MODEL.COMPILE,  # at inference only
            "cache_cpu_blocks": cfg.MODEL.CPU_BLOCK_CACHE,  # at CPU inference only
        }


@SEM_SEG_HEADS_REGISTRY.register()
class MaskFormerHead(core_head.MaskFormerHead):
    """:class:`video_mask2former.modeling.head.MaskFormerHead`, built from a cfg."""

    @configurable
    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        in_feature = cfg.MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE
        if in_feature != MULTI_SCALE_FEATURE:
            raise ValueError(
                f"MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE={in_feature!r} is not supported; "
                f"the video decoder reads {MULTI_SCALE_FEATURE!r}."
            )
        return {
            "pixel_decoder": build_pixel_decoder(cfg, input_shape),
            # The multi-scale features have CONVS_DIM channels.
            "predictor": build_transformer_decoder(cfg, cfg.MODEL.SEM_SEG_HEAD.CONVS_DIM),
            "num_classes": cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
        }


@SEM_SEG_HEADS_REGISTRY.register()
class MSDeformAttnPixelDecoder(core_pixel_decoder.MSDeformAttnPixelDecoder):
    """:class:`video_mask2former.modeling.pixel_decoder.MSDeformAttnPixelDecoder` from a cfg."""

    # Width of the deformable encoder's FFN: fixed (not DIM_FEEDFORWARD) in the official models.
    TRANSFORMER_DIM_FEEDFORWARD = 1024

    @configurable
    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> dict:
        head = cfg.MODEL.SEM_SEG_HEAD
        return {
            "input_shape": {k: v for k, v in input_shape.items() if k in head.IN_FEATURES},
            "transformer_dropout": cfg.MODEL.MASK_FORMER.DROPOUT,
            "transformer_nheads": cfg.MODEL.MASK_FORMER.NHEADS,
            "transformer_dim_feedforward": cls.TRANSFORMER_DIM_FEEDFORWARD,
            "transformer_enc_layers": head.TRANSFORMER_ENC_LAYERS,
            "conv_dim": head.CONVS_DIM,
            "mask_dim": head.MASK_DIM,
            "norm": head.NORM,
            "transformer_in_features": head.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES,
            "common_stride": head.COMMON_STRIDE,
            "fp32": head.PIXEL_DECODER_FP32,
        }


@TRANSFORMER_DECODER_REGISTRY.register()
class VideoMultiScaleMaskedTransformerDecoder(
    core_transformer_decoder.VideoMultiScaleMaskedTransformerDecoder
):
    """The core video masked-attention decoder, built from a cfg."""

    @configurable
    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    @classmethod
    def from_config(cls, cfg, in_channels: int, mask_classification: bool = True) -> dict:
        if not mask_classification:
            raise ValueError("VideoMultiScaleMaskedTransformerDecoder always classifies masks.")
        mf = cfg.MODEL.MASK_FORMER
        if mf.DEC_LAYERS < 1:
            raise ValueError(f"MODEL.MASK_FORMER.DEC_LAYERS must be >= 1, got {mf.DEC_LAYERS}.")
        return {
            "in_channels": in_channels,
            "num_classes": cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
            "hidden_dim": mf.HIDDEN_DIM,
            "num_queries": mf.NUM_OBJECT_QUERIES,
            "nheads": mf.NHEADS,
            "dim_feedforward": mf.DIM_FEEDFORWARD,
            # DEC_LAYERS counts the prediction from the learnable queries as a layer.
            "dec_layers": mf.DEC_LAYERS - 1,
            "pre_norm": mf.PRE_NORM,
            "mask_dim": cfg.MODEL.SEM_SEG_HEAD.MASK_DIM,
            "enforce_input_project": mf.ENFORCE_INPUT_PROJ,
        }


@BACKBONE_REGISTRY.register()
class D2SwinTransformer(SwinTransformer, Backbone):
    """The core Swin Transformer as a detectron2 ``Backbone`` (same state-dict keys)."""

    @configurable
    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec) -> dict:
        swin = cfg.MODEL.SWIN
        return {
            "pretrain_img_size": swin.PRETRAIN_IMG_SIZE,
            "patch_size": swin.PATCH_SIZE,
            "in_chans": input_shape.channels,
            "embed_dim": swin.EMBED_DIM,
            "depths": swin.DEPTHS,
            "num_heads": swin.NUM_HEADS,
            "window_size": swin.WINDOW_SIZE,
            "mlp_ratio": swin.MLP_RATIO,
            "qkv_bias": swin.QKV_BIAS,
            "qk_scale": swin.QK_SCALE,
            "drop_rate": swin.DROP_RATE,
            "attn_drop_rate": swin.ATTN_DROP_RATE,
            "drop_path_rate": swin.DROP_PATH_RATE,
            "ape": swin.APE,
            "patch_norm": swin.PATCH_NORM,
            "out_features": swin.OUT_FEATURES,
            "use_checkpoint": swin.USE_CHECKPOINT,
        }

    def output_shape(self) -> Dict[str, ShapeSpec]:
        """detectron2 ``ShapeSpec`` (channels, stride) of every output feature."""
        return {
            name: ShapeSpec(channels=spec.channels, stride=spec.stride)
            for name, spec in super().output_shape().items()
        }

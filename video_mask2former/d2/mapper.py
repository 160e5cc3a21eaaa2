"""The core clip mappers with detectron2's config and structures: ``YTVISDatasetMapper``
(video instances) and ``VideoSegDatasetMapper`` (video panoptic / semantic records, one target
tube per thing segment and per stuff class); :func:`build_video_mapper` picks one by the
datasets' ``evaluator_type``.

Shapes: T frames of a clip, N instances (tubes) of the clip, H x W the augmented frame size.
"""

from typing import List, Sequence

from detectron2.config import configurable
from detectron2.data import MetadataCatalog
from detectron2.structures import BitMasks, Boxes, Instances

from ..data.augmentation import ClipAugmentationList, build_clip_augmentation
from ..data.clip_mapper import ClipDatasetMapper
from ..data.segment_targets import SegmentClipDatasetMapper
from ..structures import FrameInstances
from .config import ConfigError

__all__ = [
    "SEGMENTATION_EVALUATOR_TYPES",
    "VideoSegDatasetMapper",
    "YTVISDatasetMapper",
    "build_clip_augmentation_from_cfg",
    "build_video_mapper",
    "to_d2_instances",
]

# MetadataCatalog evaluator_type of the video panoptic ("vps") and semantic ("vss") datasets
# (video_mask2former.d2.datasets), whose records VideoSegDatasetMapper reads.
SEGMENTATION_EVALUATOR_TYPES = ("vps", "vss")


def build_clip_augmentation_from_cfg(cfg, is_train: bool) -> ClipAugmentationList:
    """The clip augmentations described by ``cfg.INPUT``."""
    return build_clip_augmentation(
        is_train=is_train,
        min_size_train=cfg.INPUT.MIN_SIZE_TRAIN,
        max_size_train=cfg.INPUT.MAX_SIZE_TRAIN,
        min_size_train_sampling=cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING,
        random_flip=cfg.INPUT.RANDOM_FLIP,
        crop_enabled=cfg.INPUT.CROP.ENABLED,
        crop_type=cfg.INPUT.CROP.TYPE,
        crop_size=cfg.INPUT.CROP.SIZE,
        augmentations=cfg.INPUT.AUGMENTATIONS,
        min_size_test=cfg.INPUT.MIN_SIZE_TEST,
        max_size_test=cfg.INPUT.MAX_SIZE_TEST,
    )


def to_d2_instances(frame: FrameInstances) -> Instances:
    """One frame's targets as detectron2 ``Instances``.

    Returns:
        Instances: of ``frame.image_size`` with ``gt_classes`` (N,), ``gt_ids`` (N,),
        ``gt_masks`` (BitMasks of (N, H, W)) and ``gt_boxes`` (Boxes of (N, 4) XYXY).
    """
    instances = Instances(tuple(frame.image_size))
    instances.gt_classes = frame.gt_classes
    instances.gt_ids = frame.gt_ids
    instances.gt_masks = BitMasks(frame.gt_masks)
    if frame.gt_boxes is not None:
        instances.gt_boxes = Boxes(frame.gt_boxes)
    else:
        instances.gt_boxes = instances.gt_masks.get_bounding_boxes()
    return instances


def _clip_mapper_args(cfg, is_train: bool) -> dict:
    """Clip sampling and augmentation arguments of both mappers (the same keys)."""
    return {
        "is_train": is_train,
        "augmentations": build_clip_augmentation_from_cfg(cfg, is_train),
        "sampling_frame_num": cfg.INPUT.SAMPLING_FRAME_NUM,
        "sampling_frame_range": cfg.INPUT.SAMPLING_FRAME_RANGE,
        "sampling_frame_shuffle": cfg.INPUT.SAMPLING_FRAME_SHUFFLE,
        "image_format": cfg.INPUT.FORMAT,
    }


class YTVISDatasetMapper(ClipDatasetMapper):
    """Maps a video record to the model input; targets are detectron2 ``Instances``.

    Takes the arguments of :class:`~video_mask2former.data.clip_mapper.ClipDatasetMapper`, or
    ``(cfg, is_train)``.
    """

    @configurable
    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> dict:
        return _clip_mapper_args(cfg, is_train)

    def __call__(self, record: dict, rng=None) -> dict:
        """Map one record; ``instances`` becomes a list of T detectron2 ``Instances``."""
        out = super().__call__(record, rng)
        instances: List[Instances] = [to_d2_instances(f) for f in out["instances"]]
        out["instances"] = instances
        return out


class VideoSegDatasetMapper(SegmentClipDatasetMapper):
    """Maps a video panoptic or semantic record to the model input (training: a sampled clip
    with one target tube per thing segment and per stuff class, as detectron2 ``Instances``;
    test: every frame). Same sampling and augmentation keys as :class:`YTVISDatasetMapper`;
    void and crowd pixels belong to no tube, and padding is added by the model.

    Takes the arguments of
    :class:`~video_mask2former.data.segment_targets.SegmentClipDatasetMapper`, or
    ``(cfg, is_train)`` (``num_classes``: ``MODEL.SEM_SEG_HEAD.NUM_CLASSES``).
    """

    @configurable
    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> dict:
        return dict(
            _clip_mapper_args(cfg, is_train), num_classes=cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
        )

    def __call__(self, record: dict, rng=None) -> dict:
        """Map one record; ``instances`` becomes a list of T detectron2 ``Instances``."""
        out = super().__call__(record, rng)
        out["instances"] = [to_d2_instances(f) for f in out["instances"]]
        return out


def build_video_mapper(cfg, dataset_names: Sequence[str], is_train: bool):
    """The mapper of the datasets ``dataset_names``: :class:`VideoSegDatasetMapper` for video
    panoptic / semantic datasets (``evaluator_type`` "vps" / "vss"), else
    :class:`YTVISDatasetMapper`.

    Raises:
        ConfigError: the datasets mix video instance and video panoptic / semantic data (one
            loader has one kind of target).
    """
    segmentation = {
        name: MetadataCatalog.get(name).get("evaluator_type", None) in SEGMENTATION_EVALUATOR_TYPES
        for name in dataset_names
    }
    if len(set(segmentation.values())) > 1:
        kinds = ", ".join(
            f"{n}: {'panoptic/semantic' if seg else 'instances'}" for n, seg in segmentation.items()
        )
        raise ConfigError(
            f"The datasets {list(dataset_names)} mix video instance and video panoptic / "
            f"semantic data ({kinds}); one loader takes one kind: use one kind at a time."
        )
    if any(segmentation.values()):
        return VideoSegDatasetMapper(cfg, is_train=is_train)
    return YTVISDatasetMapper(cfg, is_train=is_train)

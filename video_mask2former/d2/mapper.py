"""``YTVISDatasetMapper``: the core clip mapper with detectron2's config and structures.

Shapes: T frames of a clip, N instances of the clip, H x W the augmented frame size.
"""

from typing import List

from detectron2.config import configurable
from detectron2.structures import BitMasks, Boxes, Instances

from ..data.augmentation import ClipAugmentationList, build_clip_augmentation
from ..data.clip_mapper import ClipDatasetMapper
from ..structures import FrameInstances

__all__ = ["YTVISDatasetMapper", "build_clip_augmentation_from_cfg", "to_d2_instances"]


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
        return {
            "is_train": is_train,
            "augmentations": build_clip_augmentation_from_cfg(cfg, is_train),
            "sampling_frame_num": cfg.INPUT.SAMPLING_FRAME_NUM,
            "sampling_frame_range": cfg.INPUT.SAMPLING_FRAME_RANGE,
            "sampling_frame_shuffle": cfg.INPUT.SAMPLING_FRAME_SHUFFLE,
            "image_format": cfg.INPUT.FORMAT,
        }

    def __call__(self, record: dict, rng=None) -> dict:
        """Map one record; ``instances`` becomes a list of T detectron2 ``Instances``."""
        out = super().__call__(record, rng)
        instances: List[Instances] = [to_d2_instances(f) for f in out["instances"]]
        out["instances"] = instances
        return out

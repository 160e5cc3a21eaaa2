"""Video data pipeline without detectron2: YouTube-VIS loading, clip sampling, augmentation, the
clip mapper, built-in dataset metadata and the synthetic dataset; for joint training, COCO-format
image sets as pseudo-videos and dataset mixing by ratio; video panoptic (VIPSeg layout) and video
semantic (VSPW layout) data, their clip targets and synthetic sets."""

from .augmentation import ClipAugmentationList, build_clip_augmentation
from .builtin_meta import BUILTIN_SPLITS, BuiltinSplit, datasets_root, metadata_for
from .category_maps import BUILTIN_IMAGE_SPLITS, CATEGORY_MAPS
from .clip_mapper import ClipDatasetMapper, read_frame
from .coco_images import ImageDatasetFormatError, load_coco_image_dataset
from .mixing import MixedDataset, RatioSampler
from .pseudo_video import PseudoVideoMapper, build_pseudo_video_augmentation
from .sampling import sample_clip_frames
from .synthetic import generate_synthetic_ytvis, write_synthetic_ytvis
from .synthetic_images import generate_synthetic_coco, write_synthetic_coco
from .segment_targets import SegmentClipDatasetMapper, clip_segment_targets
from .synthetic_video_seg import write_synthetic_vps, write_synthetic_vss
from .vps import VideoSegFormatError, load_vps_video_dicts
from .vss import load_vss_video_dicts
from .ytvis import YTVISFormatError, decode_segmentation, load_ytvis_dataset, load_ytvis_json

__all__ = [
    "BUILTIN_IMAGE_SPLITS",
    "BUILTIN_SPLITS",
    "BuiltinSplit",
    "CATEGORY_MAPS",
    "ClipAugmentationList",
    "ClipDatasetMapper",
    "ImageDatasetFormatError",
    "MixedDataset",
    "PseudoVideoMapper",
    "RatioSampler",
    "SegmentClipDatasetMapper",
    "VideoSegFormatError",
    "YTVISFormatError",
    "build_clip_augmentation",
    "build_pseudo_video_augmentation",
    "clip_segment_targets",
    "datasets_root",
    "decode_segmentation",
    "generate_synthetic_coco",
    "generate_synthetic_ytvis",
    "load_coco_image_dataset",
    "load_vps_video_dicts",
    "load_vss_video_dicts",
    "load_ytvis_dataset",
    "load_ytvis_json",
    "metadata_for",
    "read_frame",
    "sample_clip_frames",
    "write_synthetic_coco",
    "write_synthetic_vps",
    "write_synthetic_vss",
    "write_synthetic_ytvis",
]

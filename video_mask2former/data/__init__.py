"""Video data pipeline without detectron2: YouTube-VIS loading, clip sampling, augmentation, the
clip mapper, built-in dataset metadata and the synthetic dataset."""

from .augmentation import ClipAugmentationList, build_clip_augmentation
from .builtin_meta import BUILTIN_SPLITS, BuiltinSplit, datasets_root, metadata_for
from .clip_mapper import ClipDatasetMapper, read_frame
from .sampling import sample_clip_frames
from .synthetic import generate_synthetic_ytvis, write_synthetic_ytvis
from .ytvis import YTVISFormatError, decode_segmentation, load_ytvis_dataset, load_ytvis_json

__all__ = [
    "BUILTIN_SPLITS",
    "BuiltinSplit",
    "ClipAugmentationList",
    "ClipDatasetMapper",
    "YTVISFormatError",
    "build_clip_augmentation",
    "datasets_root",
    "decode_segmentation",
    "generate_synthetic_ytvis",
    "load_ytvis_dataset",
    "load_ytvis_json",
    "metadata_for",
    "read_frame",
    "sample_clip_frames",
    "write_synthetic_ytvis",
]

"""The detectron2 layer: registry entries, dataset registration, dataset mapper, evaluator, and
``build_inference_model(cfg)`` (a model ready for inference from a config).

Importing this package registers the model parts (``registration``) and the built-in datasets
(``datasets``, and the image sets of joint training, ``joint``, under ``$DETECTRON2_DATASETS``)
with detectron2; it needs detectron2.
"""

from . import registration  # noqa: F401  (registers the model parts)
from .build import build_inference_model
from .datasets import (
    get_video_dataset_dicts,
    register_all_builtin,
    register_all_builtin_video_seg,
    register_vps_video,
    register_vss_video,
    register_ytvis_instances,
)
from .evaluator import YTVISEvaluator
from .joint import (
    build_joint_train_loader,
    register_all_builtin_images,
    register_image_pseudo_video,
)
from .mapper import YTVISDatasetMapper

register_all_builtin()
register_all_builtin_images()
register_all_builtin_video_seg()

__all__ = [
    "build_inference_model",
    "build_joint_train_loader",
    "get_video_dataset_dicts",
    "register_all_builtin",
    "register_all_builtin_images",
    "register_all_builtin_video_seg",
    "register_image_pseudo_video",
    "register_vps_video",
    "register_vss_video",
    "register_ytvis_instances",
    "YTVISDatasetMapper",
    "YTVISEvaluator",
]

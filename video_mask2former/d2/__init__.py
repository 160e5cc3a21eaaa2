"""The detectron2 layer: registry entries, dataset registration, dataset mapper, evaluator.

Importing this package registers the model parts (``registration``) and the built-in datasets
(``datasets``, under ``$DETECTRON2_DATASETS``) with detectron2; it needs detectron2.
"""

from . import registration  # noqa: F401  (registers the model parts)
from .datasets import get_video_dataset_dicts, register_all_builtin, register_ytvis_instances
from .evaluator import YTVISEvaluator
from .mapper import YTVISDatasetMapper

register_all_builtin()

__all__ = [
    "get_video_dataset_dicts",
    "register_all_builtin",
    "register_ytvis_instances",
    "YTVISDatasetMapper",
    "YTVISEvaluator",
]

"""Video Mask2Former: video instance segmentation with masked-attention mask transformers.

The core (``modeling``, ``data``, ``evaluation``, ``config``) runs without detectron2. When
detectron2 is importable, importing this package also registers the model parts and the built-in
datasets with it (``video_mask2former.d2``); otherwise detectron2 is never imported.
"""

import importlib.util

from .config import add_maskformer2_config, add_maskformer2_video_config

__all__ = ["add_maskformer2_config", "add_maskformer2_video_config", "HAS_DETECTRON2"]

# Whether detectron2 is installed (checked without importing it).
HAS_DETECTRON2 = importlib.util.find_spec("detectron2") is not None

if HAS_DETECTRON2:
    from . import d2  # noqa: F401  (registration with detectron2)

"""transformers' Mask2Former layout, under its short name: ``from video_mask2former import hf``.

The code is in :mod:`video_mask2former.checkpoint.layouts.hf` (key rules, backbone spec,
conversion, ``config.json``, files and the Hub); this module re-exports its public API.
"""

from .checkpoint.layouts.hf import (  # noqa: F401
    HF_CONFIG_FILE,
    HF_MODEL_TYPE,
    HF_SCHEME,
    HF_WEIGHT_FILES,
    BackboneSpec,
    HFCheckpointError,
    backbone_spec,
    from_hf_state_dict,
    has_hf_backbone,
    hf_config,
    is_hf_checkpoint,
    is_hf_location,
    load_hf_state_dict,
    save_hf_checkpoint,
    to_hf_state_dict,
)
from .checkpoint.layouts.hf import __all__  # noqa: F401

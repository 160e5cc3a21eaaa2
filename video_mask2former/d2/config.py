"""detectron2's config with this project's keys: the one place the scripts build their cfg."""

from typing import Optional, Sequence

from detectron2.config import CfgNode, get_cfg

from ..config import add_maskformer2_config, add_maskformer2_video_config

__all__ = ["get_video_cfg"]


def get_video_cfg(config_file: Optional[str] = None, opts: Sequence = ()) -> CfgNode:
    """``get_cfg()`` with every Mask2Former and video key, merged with ``config_file`` (a YAML)
    and ``opts`` (``[KEY, VALUE, ...]``); not frozen."""
    cfg = get_cfg()
    add_maskformer2_config(cfg)
    add_maskformer2_video_config(cfg)
    if config_file is not None:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    return cfg

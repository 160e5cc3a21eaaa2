"""Shared helpers of the detectron2 tests (imported only when detectron2 is installed)."""

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_DIR = os.path.join(REPO_ROOT, "configs")
SMOKE_CONFIG = os.path.join(
    CONFIG_DIR, "quick_schedules", "video_maskformer2_R18_synthetic_smoke.yaml"
)


def video_cfg(config_file=None, opts=()):
    """detectron2 config with this project's keys, merged with ``config_file`` and ``opts``."""
    from detectron2.config import get_cfg

    from video_mask2former import add_maskformer2_config, add_maskformer2_video_config

    cfg = get_cfg()
    add_maskformer2_config(cfg)
    add_maskformer2_video_config(cfg)
    if config_file is not None:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    cfg.MODEL.DEVICE = "cpu"
    return cfg

"""Shared helpers of the detectron2 tests (imported only when detectron2 is installed)."""

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_DIR = os.path.join(REPO_ROOT, "configs")
SMOKE_CONFIG = os.path.join(
    CONFIG_DIR, "quick_schedules", "video_maskformer2_R18_synthetic_smoke.yaml"
)


def video_cfg(config_file=None, opts=()):
    """detectron2 config with this project's keys, merged with ``config_file`` and ``opts``."""
    from video_mask2former.d2.config import get_video_cfg

    cfg = get_video_cfg(config_file, opts)
    cfg.MODEL.DEVICE = "cpu"
    return cfg

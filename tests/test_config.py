"""Config keys without detectron2: the add_* functions extend any node with the sections they need,
and every official config file is there. tests/d2/test_config.py merges the files into
detectron2's get_cfg()."""

import glob
import os

from fvcore.common.config import CfgNode

from video_mask2former.config import add_maskformer2_config, add_maskformer2_video_config

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs")
ALL_YAMLS = sorted(glob.glob(os.path.join(CONFIG_DIR, "**", "*.yaml"), recursive=True))


def test_keys_without_detectron2():
    """The functions only need a node with the sections they extend (no detectron2 import)."""
    cfg = CfgNode(
        {
            "INPUT": {"CROP": {}},
            "SOLVER": {},
            "MODEL": {"RESNETS": {}, "SEM_SEG_HEAD": {}},
        }
    )
    add_maskformer2_config(cfg)
    add_maskformer2_video_config(cfg)
    assert cfg.MODEL.MASK_FORMER.TEST.TOPK == 10
    assert cfg.MODEL.MASK_FORMER.TEST.WINDOW_SIZE == 0
    assert cfg.MODEL.MASK_FORMER.TEST.CHUNK_SIZE >= 0
    assert cfg.INPUT.SAMPLING_FRAME_NUM == 2
    assert cfg.MODEL.SWIN.DEPTHS == [2, 2, 6, 2]
    assert cfg.SOLVER.BACKBONE_MULTIPLIER == 0.1


def test_config_files_found():
    names = {os.path.relpath(p, CONFIG_DIR) for p in ALL_YAMLS}
    for year in ("2019", "2021"):
        for name in (
            "Base-YouTubeVIS-VideoInstanceSegmentation.yaml",
            "video_maskformer2_R50_bs16_8ep.yaml",
            "video_maskformer2_R101_bs16_8ep.yaml",
            "swin/video_maskformer2_swin_tiny_bs16_8ep.yaml",
            "swin/video_maskformer2_swin_small_bs16_8ep.yaml",
            "swin/video_maskformer2_swin_base_IN21k_384_bs16_8ep.yaml",
            "swin/video_maskformer2_swin_large_IN21k_384_bs16_8ep.yaml",
        ):
            assert os.path.join(f"youtubevis_{year}", name) in names


def test_joint_training_keys_without_detectron2():
    cfg = CfgNode(
        {"INPUT": {"CROP": {}}, "SOLVER": {}, "MODEL": {"RESNETS": {}, "SEM_SEG_HEAD": {}}}
    )
    add_maskformer2_config(cfg)
    add_maskformer2_video_config(cfg)
    assert cfg.DATASETS.DATASET_RATIO == []
    assert cfg.INPUT.PSEUDO.AUGMENTATIONS == ["rotation"]
    assert cfg.INPUT.PSEUDO.CROP.ENABLED and cfg.INPUT.PSEUDO.MIN_SIZE_TRAIN_SAMPLING == "choice"


def test_checkpoint_max_to_keep_key():
    """The last 3 periodic checkpoints are kept by default (0 keeps all)."""
    cfg = CfgNode(
        {"INPUT": {"CROP": {}}, "SOLVER": {}, "MODEL": {"RESNETS": {}, "SEM_SEG_HEAD": {}}}
    )
    add_maskformer2_config(cfg)
    assert cfg.SOLVER.CHECKPOINT_MAX_TO_KEEP == 3


def test_video_task_defaults_without_detectron2():
    """The video defaults select instances (the image model's would select semantic
    segmentation); the VPQ windows default to VIPSeg's 1, 2, 4, 6, 8."""
    cfg = CfgNode(
        {"INPUT": {"CROP": {}}, "SOLVER": {}, "MODEL": {"RESNETS": {}, "SEM_SEG_HEAD": {}}}
    )
    add_maskformer2_config(cfg)
    add_maskformer2_video_config(cfg)
    test = cfg.MODEL.MASK_FORMER.TEST
    assert (test.INSTANCE_ON, test.PANOPTIC_ON, test.SEMANTIC_ON) == (True, False, False)
    assert (test.OBJECT_MASK_THRESHOLD, test.OVERLAP_THRESHOLD) == (0.0, 0.0)
    assert cfg.TEST.VPQ_WINDOW_SIZES == [1, 2, 4, 6, 8]

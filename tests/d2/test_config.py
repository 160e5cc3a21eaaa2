"""Config keys: every YAML under configs/ merges into detectron2's get_cfg() after both add_*, with
the official values; get_video_cfg checks the keys it reads."""

import glob
import os

import pytest

from tests.conftest import requires_detectron2
from tests.d2.helpers import CONFIG_DIR
from video_mask2former.config import add_maskformer2_config, add_maskformer2_video_config

pytestmark = requires_detectron2

ALL_YAMLS = sorted(glob.glob(os.path.join(CONFIG_DIR, "**", "*.yaml"), recursive=True))


def _video_cfg():
    from detectron2.config import get_cfg

    cfg = get_cfg()
    add_maskformer2_config(cfg)
    add_maskformer2_video_config(cfg)
    return cfg


@pytest.mark.parametrize("path", ALL_YAMLS, ids=lambda p: os.path.relpath(p, CONFIG_DIR))
def test_yaml_merges(path):
    cfg = _video_cfg()
    cfg.merge_from_file(path)  # raises KeyError on any key the add_* functions do not define
    cfg.freeze()
    if "Base-" not in os.path.basename(path):
        assert cfg.MODEL.META_ARCHITECTURE == "VideoMaskFormer"
        assert cfg.MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME == (
            "VideoMultiScaleMaskedTransformerDecoder"
        )


@pytest.mark.parametrize(
    "year, max_iter, steps", [("2019", 6000, (4000,)), ("2021", 8000, (5500,))]
)
def test_official_values(year, max_iter, steps):
    def load(name):
        cfg = _video_cfg()
        cfg.merge_from_file(os.path.join(CONFIG_DIR, f"youtubevis_{year}", name))
        return cfg

    r50 = load("video_maskformer2_R50_bs16_8ep.yaml")
    assert (r50.SOLVER.MAX_ITER, tuple(r50.SOLVER.STEPS)) == (max_iter, steps)
    assert r50.SOLVER.IMS_PER_BATCH == 16
    assert r50.MODEL.SEM_SEG_HEAD.NUM_CLASSES == 40
    assert r50.INPUT.MIN_SIZE_TEST == 360
    assert r50.MODEL.MASK_FORMER.DEC_LAYERS == 10
    assert r50.MODEL.WEIGHTS == "model_final_3c8ec9.pkl"
    assert r50.DATASETS.TRAIN == (f"ytvis_{year}_train",)
    assert load("video_maskformer2_R101_bs16_8ep.yaml").MODEL.RESNETS.DEPTH == 101
    swin_l = load("swin/video_maskformer2_swin_large_IN21k_384_bs16_8ep.yaml")
    assert swin_l.MODEL.MASK_FORMER.NUM_OBJECT_QUERIES == 200
    assert swin_l.MODEL.SWIN.EMBED_DIM == 192
    # 2019 tests Swin at 480; the official 2021 Swin-L keeps 360 (out of memory at 480).
    assert swin_l.INPUT.MIN_SIZE_TEST == (480 if year == "2019" else 360)
    assert load("swin/video_maskformer2_swin_tiny_bs16_8ep.yaml").INPUT.MIN_SIZE_TEST == 480


@pytest.mark.parametrize(
    "folder, datasets, ratio, steps, max_iter",
    [  # VITA's configs/{youtubevis_2019,youtubevis_2021,ovis}/vita_*_bs8.yaml
        (
            "youtubevis_2019",
            ("coco2ytvis2019_train", "ytvis_2019_train"),
            [1.0, 0.75],
            (75000,),
            140000,
        ),
        (
            "youtubevis_2021",
            ("coco2ytvis2021_train", "ytvis_2021_train"),
            [1.0, 0.8],
            (100000,),
            187500,
        ),
        ("ovis", ("coco2ovis_train", "ovis_train"), [1.0, 0.25], (50000, 125000), 150000),
    ],
)
def test_joint_configs(folder, datasets, ratio, steps, max_iter):
    for name in (
        "video_maskformer2_R50_bs8_coco_joint.yaml",
        "swin/video_maskformer2_swin_large_IN21k_384_bs8_coco_joint.yaml",
    ):
        cfg = _video_cfg()
        cfg.merge_from_file(os.path.join(CONFIG_DIR, folder, name))
        assert cfg.DATASETS.TRAIN == datasets and cfg.DATASETS.DATASET_RATIO == ratio
        assert (tuple(cfg.SOLVER.STEPS), cfg.SOLVER.MAX_ITER) == (steps, max_iter)
        assert (cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR) == (8, 5e-5)
        assert cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES == (25 if folder == "ovis" else 40)
        assert cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
        if "swin" in name:
            assert (
                cfg.MODEL.SWIN.EMBED_DIM == 192 and cfg.MODEL.MASK_FORMER.NUM_OBJECT_QUERIES == 200
            )


@pytest.mark.parametrize("value, ok", [("0", True), ("5", True), ("-1", False)])
def test_checkpoint_max_to_keep_is_checked(value, ok):
    from video_mask2former.d2.config import ConfigError, get_video_cfg

    if ok:
        assert get_video_cfg(None, ["SOLVER.CHECKPOINT_MAX_TO_KEEP", value])
    else:
        with pytest.raises(ConfigError, match="SOLVER.CHECKPOINT_MAX_TO_KEEP must be >= 0"):
            get_video_cfg(None, ["SOLVER.CHECKPOINT_MAX_TO_KEEP", value])

"""Registry entries: official configs build the official network through detectron2."""

import json
import os

import pytest
import torch

from tests.conftest import FIXTURES_DIR, requires_detectron2

pytestmark = requires_detectron2

PARITY_DIR = os.path.join(FIXTURES_DIR, "parity")

OFFICIAL = {
    "video_maskformer2_R50_bs16_8ep.yaml": "keys_r50.json",
    "video_maskformer2_R101_bs16_8ep.yaml": "keys_r101.json",
    "swin/video_maskformer2_swin_tiny_bs16_8ep.yaml": "keys_swint.json",
    "swin/video_maskformer2_swin_small_bs16_8ep.yaml": "keys_swins.json",
    "swin/video_maskformer2_swin_base_IN21k_384_bs16_8ep.yaml": "keys_swinb.json",
    "swin/video_maskformer2_swin_large_IN21k_384_bs16_8ep.yaml": "keys_swinl.json",
}
CASES = [(f"youtubevis_2019/{c}", k) for c, k in OFFICIAL.items()] + [
    ("youtubevis_2021/video_maskformer2_R50_bs16_8ep.yaml", "keys_r50.json"),
    (
        "youtubevis_2021/swin/video_maskformer2_swin_large_IN21k_384_bs16_8ep.yaml",
        "keys_swinl.json",
    ),
]


def _build(config, opts=(), meta=True):
    """The model of ``config``; on the meta device (structure, names and shapes, no weights) unless
    ``meta`` is False."""
    from detectron2.modeling import build_model

    from tests.d2.helpers import CONFIG_DIR, video_cfg

    cfg = video_cfg(os.path.join(CONFIG_DIR, config), opts)
    if not meta:
        return build_model(cfg)
    cfg.MODEL.DEVICE = "meta"  # build_model moves the model there
    with torch.device("meta"):
        return build_model(cfg)


def _rows(model):
    return [
        [k, list(v.shape), str(v.dtype).replace("torch.", "")]
        for k, v in model.state_dict().items()
    ]


@pytest.mark.parametrize("config, keys", CASES, ids=[c for c, _ in CASES])
def test_official_state_dict_keys(config, keys):
    with open(os.path.join(PARITY_DIR, keys)) as f:
        expected = json.load(f)["state_dict"]
    got = _rows(_build(config))
    missing = sorted({r[0] for r in expected} - {r[0] for r in got})
    extra = sorted({r[0] for r in got} - {r[0] for r in expected})
    assert not missing and not extra, f"missing {missing[:5]}, unexpected {extra[:5]}"
    assert got == expected  # same order, shapes and dtypes


def test_ovis_has_25_classes():
    model = _build("ovis/video_maskformer2_R50_bs16_8ep.yaml")
    assert model.sem_seg_head.predictor.class_embed.out_features == 26  # 25 + no object
    assert model.criterion.empty_weight.shape == (26,)


def test_registered_classes_are_the_core_modules():
    from detectron2.modeling import Backbone

    from video_mask2former.modeling.backbone.swin import SwinTransformer
    from video_mask2former.modeling.head import MaskFormerHead
    from video_mask2former.modeling.video_maskformer import VideoMaskFormer

    model = _build("youtubevis_2019/swin/video_maskformer2_swin_tiny_bs16_8ep.yaml")
    assert isinstance(model, VideoMaskFormer)
    assert isinstance(model.sem_seg_head, MaskFormerHead)
    assert isinstance(model.backbone, SwinTransformer) and isinstance(model.backbone, Backbone)
    assert model.size_divisibility == 32
    shapes = model.backbone.output_shape()
    assert [shapes[k].stride for k in ("res2", "res3", "res4", "res5")] == [4, 8, 16, 32]
    assert shapes["res5"].channels == 768
    # Config values that reach the modules
    assert model.test_topk == 10 and model.inference_chunk_size == 8 and model.window_size == 0
    assert model.criterion.weight_dict["loss_ce"] == 2.0
    assert model.criterion.weight_dict["loss_dice_8"] == 5.0  # 9 auxiliary outputs
    assert "loss_ce_9" not in model.criterion.weight_dict


def test_test_options_reach_the_model():
    model = _build(
        "youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml",
        [
            "MODEL.MASK_FORMER.TEST.TOPK",
            5,
            "MODEL.MASK_FORMER.TEST.CHUNK_SIZE",
            0,
            "MODEL.MASK_FORMER.DEEP_SUPERVISION",
            False,
        ],
    )
    assert model.test_topk == 5
    assert model.inference_chunk_size is None  # 0: all frames at once
    assert set(model.criterion.weight_dict) == {"loss_ce", "loss_mask", "loss_dice"}


def test_window_size_reaches_the_model():
    model = _build(
        "youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml",
        ["MODEL.MASK_FORMER.TEST.WINDOW_SIZE", 8],
    )
    assert model.window_size == 8


def test_r50_parity_through_build_model():
    from tests.parity_weights import check_r50_raw_outputs, deterministic_state_dict

    fixture = torch.load(os.path.join(PARITY_DIR, "r50_T3_96x128_seed2024.pt"), weights_only=True)
    model = _build(os.path.relpath(fixture["config"], "configs"), meta=False)
    model.load_state_dict(deterministic_state_dict(model))
    check_r50_raw_outputs(model.eval(), fixture)
    height, width = fixture["output_size"]
    video = {"image": [f.float() for f in fixture["video"]], "height": height, "width": width}
    with torch.no_grad():
        result = model([video])
    # Final result: the same top-10 (score, label) set, masks at the requested size.
    assert result["image_size"] == (height, width)
    expected_labels = sorted(int(x) for x in fixture["labels"])
    assert sorted(result["pred_labels"]) == expected_labels
    assert torch.allclose(
        torch.tensor(sorted(result["pred_scores"])),
        fixture["scores"].float().sort().values,
        atol=1e-4,
    )
    for mask in result["pred_masks"]:
        assert mask.shape == (3, height, width) and mask.dtype == torch.bool

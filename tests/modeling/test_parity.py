"""Parity with the official Video Mask2Former (data: tests/fixtures/parity, see its README)."""

import json
import os

import pytest
import torch

from tests.conftest import FIXTURES_DIR, requires_cuda
from tests.parity_weights import (
    KEY_FILES,
    OUTPUT_ATOL,
    check_r50_raw_outputs,
    deterministic_state_dict,
)
from video_mask2former.inference import network_outputs
from video_mask2former.modeling.build import build_video_maskformer
from video_mask2former.inference.postprocess import video_inference, video_inference_reference

PARITY_DIR = os.path.join(FIXTURES_DIR, "parity")

CONFIGS = KEY_FILES


@pytest.mark.parametrize("backbone", list(CONFIGS))
def test_state_dict_matches_official(backbone):
    with open(os.path.join(PARITY_DIR, CONFIGS[backbone])) as f:
        expected = json.load(f)["state_dict"]
    with torch.device("meta"):  # names, shapes and dtypes only: no memory, no initialisation
        model = build_video_maskformer(backbone)
    got = [
        [key, list(value.shape), str(value.dtype).replace("torch.", "")]
        for key, value in model.state_dict().items()
    ]
    missing = sorted({row[0] for row in expected} - {row[0] for row in got})
    extra = sorted({row[0] for row in got} - {row[0] for row in expected})
    assert not missing and not extra, f"missing {missing[:5]}, unexpected {extra[:5]}"
    assert got == expected  # same order, shapes and dtypes
    assert "pixel_mean" not in model.state_dict()


@pytest.fixture(scope="module")
def fixture_r50():
    return torch.load(os.path.join(PARITY_DIR, "r50_T3_96x128_seed2024.pt"), weights_only=True)


def test_r50_outputs_match_official(fixture_r50):
    model = build_video_maskformer("R50")
    model.load_state_dict(deterministic_state_dict(model))
    check_r50_raw_outputs(model.eval(), fixture_r50)


def test_r50_inference_outputs_match_official(fixture_r50):
    """The inference path (no deep supervision: attention masks from resized mask features; on
    the CPU folded batch norm and channels-last) gives the official final outputs too."""
    model = build_video_maskformer("R50")
    model.load_state_dict(deterministic_state_dict(model))
    height, width = fixture_r50["output_size"]
    video = {"image": [f.float() for f in fixture_r50["video"]], "height": height, "width": width}
    with torch.no_grad():
        outputs, _, _ = network_outputs(model.eval(), [video], keep_aux=False)
    assert "aux_outputs" not in outputs
    for name in ("pred_logits", "pred_masks"):
        difference = (outputs[name][0] - fixture_r50[name]).abs().max().item()
        assert difference < OUTPUT_ATOL, f"{name}: max abs diff {difference}"


@requires_cuda
def test_r50_outputs_match_official_on_cuda(fixture_r50, monkeypatch):
    """The same fixture on the GPU (CUDA deformable-attention kernels), within the CPU tolerance.
    TF32 is off: it is a precision choice of the GPU, not part of the network's definition."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    model = build_video_maskformer("R50")
    model.load_state_dict(deterministic_state_dict(model))
    diffs = check_r50_raw_outputs(model.cuda().eval(), fixture_r50)
    print(f"R50 parity on {torch.cuda.get_device_name()}: {diffs}")


@pytest.mark.parametrize("lean", [True, False])
def test_postprocessing_of_official_outputs(fixture_r50, lean):
    """Our post-processing on the fixture's raw outputs gives exactly its top-10."""
    height, width = fixture_r50["output_size"]
    args = (fixture_r50["pred_logits"], fixture_r50["pred_masks"], (96, 128), (96, 128))
    if lean:
        result = video_inference(*args, (height, width), topk=10, chunk_size=2)
    else:
        result = video_inference_reference(*args, (height, width), topk=10)
    # The official top-10 is unordered (topk(sorted=False)): compare both sorted by score. The
    # softmax may differ by one float32 ulp between CPU kernels (vector widths, PyTorch builds),
    # so scores are compared within 1e-6; labels and masks exactly.
    ours = sorted(
        zip(result["pred_scores"], result["pred_labels"], result["pred_masks"]),
        key=lambda x: -x[0],
    )
    expected = sorted(
        zip(fixture_r50["scores"].tolist(), fixture_r50["labels"].tolist(), fixture_r50["masks"]),
        key=lambda x: -x[0],
    )
    assert len(ours) == len(expected) == 10
    for (score, label, mask), (ref_score, ref_label, ref_mask) in zip(ours, expected):
        assert score == pytest.approx(ref_score, rel=1e-6, abs=1e-7) and label == ref_label
        assert mask.dtype == torch.bool and mask.shape == (3, height, width)
        assert torch.equal(mask, ref_mask.bool()), (ref_score, ref_label)
    assert result["image_size"] == (height, width)
    assert result["pred_scores"] == sorted(result["pred_scores"], reverse=True)


def test_state_dict_records_the_official_module_versions():
    """The official head and decoder convert state dicts of version < 2 (pre-release key names);
    ours record version 2, so a checkpoint saved here loads into the official code unchanged."""
    with torch.device("meta"):
        metadata = build_video_maskformer("R50").state_dict()._metadata
    assert metadata["sem_seg_head"]["version"] == 2
    assert metadata["sem_seg_head.predictor"]["version"] == 2

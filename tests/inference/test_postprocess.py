"""Video post-processing: top-k selection, mask resizing, lean == straightforward."""

import pytest
import torch
from torch.nn import functional as F

from video_mask2former.inference.postprocess import (
    resize_mask_logits,
    select_topk,
    video_inference,
    video_inference_reference,
)


def _raw(num_queries=5, num_classes=3, num_frames=3, h=8, w=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_queries, num_classes + 1, generator=g)
    masks = torch.randn(num_queries, num_frames, h, w, generator=g) * 3
    return logits, masks


def test_select_topk_matches_bruteforce():
    logits, _ = _raw()
    scores, labels, queries = select_topk(logits, 4)
    probs = logits.softmax(-1)[:, :-1]
    assert torch.allclose(scores, probs[queries, labels])
    assert torch.allclose(scores, probs.flatten().sort(descending=True).values[:4])
    assert labels.max() < 3  # no-object never selected


def test_topk_larger_than_candidates_is_clamped():
    logits, masks = _raw(num_queries=2, num_classes=3)
    result = video_inference(logits, masks, (32, 40), (32, 40), (32, 40), topk=50)
    assert len(result["pred_scores"]) == 6 == len(result["pred_masks"])
    assert sorted(zip(result["pred_labels"], result["pred_scores"])) == sorted(
        (c, float(logits.softmax(-1)[q, c])) for q in range(2) for c in range(3)
    )


@pytest.mark.parametrize("chunk_size", [None, 1, 2, 5])
@pytest.mark.parametrize("sizes", [((32, 40), (32, 40), (32, 40)), ((32, 64), (27, 51), (41, 77))])
def test_lean_equals_reference_exactly(chunk_size, sizes):
    logits, masks = _raw(num_queries=7, num_frames=5, h=8, w=16)
    padded, image, output = sizes
    lean = video_inference(logits, masks, padded, image, output, topk=6, chunk_size=chunk_size)
    ref = video_inference_reference(logits, masks, padded, image, output, topk=6)
    assert lean["pred_scores"] == ref["pred_scores"]
    assert lean["pred_labels"] == ref["pred_labels"]
    for a, b in zip(lean["pred_masks"], ref["pred_masks"]):
        assert a.dtype == torch.bool and a.shape == (5, *output)
        assert torch.equal(a, b)


def test_odd_sizes_crop_then_resize():
    """Masks are upsampled to the padded size, cropped to the image, resized to the output."""
    logits, masks = _raw(num_queries=1, num_classes=1, num_frames=2, h=8, w=8)
    result = video_inference(logits, masks, (32, 32), (23, 19), (47, 39), topk=1)
    assert result["image_size"] == (47, 39)
    assert result["pred_masks"][0].shape == (2, 47, 39)
    expected = F.interpolate(masks, size=(32, 32), mode="bilinear", align_corners=False)
    expected = F.interpolate(
        expected[:, :, :23, :19], size=(47, 39), mode="bilinear", align_corners=False
    )
    assert torch.equal(result["pred_masks"][0], expected[0] > 0)
    # Not the same as resizing the whole padded mask (the crop matters).
    uncropped = F.interpolate(masks, size=(47, 39), mode="bilinear", align_corners=False)
    uncropped = uncropped[0] > 0
    assert not torch.equal(result["pred_masks"][0], uncropped)


def test_resize_mask_logits_shape_and_dtype():
    logits = torch.randn(2, 3, 8, 8, dtype=torch.bfloat16)
    out = resize_mask_logits(logits, (32, 32), (30, 31), (15, 17))
    assert out.shape == (2, 3, 15, 17) and out.dtype == torch.float32


def test_no_queries_gives_empty_result():
    logits, masks = torch.zeros(0, 4), torch.zeros(0, 2, 8, 8)
    result = video_inference(logits, masks, (32, 32), (32, 32), (20, 20))
    assert result["image_size"] == (20, 20)
    assert result["pred_scores"] == result["pred_labels"] == result["pred_masks"] == []

"""Video semantic / panoptic post-processing on hand-set logits, and chunked == whole volume."""

import math

import pytest
import torch

from video_mask2former.inference.segmentation import (
    VOID_ID,
    video_panoptic_inference,
    video_panoptic_inference_reference,
    video_semantic_inference,
)

BIG = 20.0  # a logit whose sigmoid is 1 - 2e-9: "inside"
SIZE = (2, 3)  # h x w of the hand-set masks; padded = image = output size, so no resizing


def _class_logits(probabilities):
    """(Q, K+1) logits whose softmax is the given rows (each row sums to 1)."""
    return torch.tensor(probabilities, dtype=torch.float64).log().float()


def _masks(*frames_per_query):
    """(Q, T, 2, 3) mask logits: +BIG where the given 0/1 pattern is 1, -BIG where 0."""
    pattern = torch.tensor(frames_per_query, dtype=torch.float32)
    return torch.where(pattern > 0, torch.tensor(BIG), torch.tensor(-BIG))


def _panoptic(logits, masks, things, **kwargs):
    kwargs.setdefault("object_mask_threshold", 0.5)
    kwargs.setdefault("overlap_threshold", 0.8)
    result = video_panoptic_inference(logits, masks, SIZE, SIZE, SIZE, things, **kwargs)
    reference = video_panoptic_inference_reference(
        logits,
        masks,
        SIZE,
        SIZE,
        SIZE,
        things,
        object_mask_threshold=kwargs["object_mask_threshold"],
        overlap_threshold=kwargs["overlap_threshold"],
    )
    assert torch.equal(result["panoptic_seg"], reference["panoptic_seg"])
    assert result["segments_info"] == reference["segments_info"]
    return result


def test_semantic_sums_class_probabilities_weighted_by_masks():
    # Two queries, two classes: query 0 is class 0 (0.6) / class 1 (0.3), query 1 is class 1
    # (0.9) / class 0 (0.05). Per pixel, class c scores sum_q p_q(c) * sigmoid(mask_q):
    #   only query 0 inside            -> 0.6 vs 0.3: class 0
    #   both inside                    -> 0.65 vs 1.2: class 1
    #   query 1 at logit 0 (sigmoid .5) -> 0.025 vs 0.45: class 1
    #   neither inside (both ~2e-9)    -> 0.65 s vs 1.2 s: class 1 (weights, not just inside)
    logits = _class_logits([[0.6, 0.3, 0.1], [0.05, 0.9, 0.05]])
    masks = torch.tensor(
        [
            [[[BIG, BIG, -BIG], [BIG, -BIG, -BIG]]],
            [[[-BIG, BIG, 0.0], [-BIG, -BIG, BIG]]],
        ]
    )
    result = video_semantic_inference(logits, masks, SIZE, SIZE, SIZE)
    assert torch.equal(result["sem_seg"], torch.tensor([[[0, 1, 1], [0, 1, 1]]]))
    assert result["sem_seg"].dtype == torch.int64
    assert result["image_size"] == SIZE


@pytest.mark.parametrize("chunk_size", [None, 1, 2, 3])
def test_semantic_chunks_equal_whole_volume(chunk_size):
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(6, 5, generator=g)
    masks = torch.randn(6, 5, 4, 5, generator=g) * 3
    whole = video_semantic_inference(logits, masks, (16, 20), (14, 17), (9, 11), chunk_size=None)
    chunked = video_semantic_inference(
        logits, masks, (16, 20), (14, 17), (9, 11), chunk_size=chunk_size
    )
    assert torch.equal(whole["sem_seg"], chunked["sem_seg"])
    assert whole["sem_seg"].shape == (5, 9, 11)


def test_panoptic_drops_no_object_and_low_score_queries():
    # Query 0: "no object" is its best class; query 1: best class 0 at 0.45 < 0.5; query 2: kept.
    logits = _class_logits([[0.2, 0.1, 0.7], [0.45, 0.35, 0.2], [0.1, 0.8, 0.1]])
    full = [[[1, 1, 1], [1, 1, 1]]]
    masks = _masks(full, full, [[[0, 1, 1], [0, 0, 0]]])
    result = _panoptic(logits, masks, things=[0, 1])
    # Thing query 2 is segment 3 (query + 1), whatever was dropped before it.
    assert result["segments_info"] == [
        {"id": 3, "category_id": 1, "isthing": True, "score": pytest.approx(0.8), "area": 2}
    ]
    assert torch.equal(
        result["panoptic_seg"], torch.tensor([[[0, 3, 3], [0, 0, 0]]], dtype=torch.int32)
    )


def test_panoptic_nothing_kept_is_all_void():
    logits = _class_logits([[0.1, 0.1, 0.8]])
    result = _panoptic(logits, _masks([[[1, 1, 1], [1, 1, 1]]]), things=[0])
    assert result["segments_info"] == []
    assert int(result["panoptic_seg"].abs().sum()) == 0


def test_panoptic_overlap_threshold_uses_won_area_over_own_area():
    # Query 0 (score 0.9) covers the top row; query 1 (score 0.6) covers all 6 pixels but wins
    # only the bottom 3: 3/6 = 0.5. Dropped at overlap 0.8, kept at 0.5 (not below).
    logits = _class_logits([[0.9, 0.05, 0.05], [0.3, 0.6, 0.1]])
    masks = _masks([[[1, 1, 1], [0, 0, 0]]], [[[1, 1, 1], [1, 1, 1]]])
    strict = _panoptic(logits, masks, things=[0, 1], overlap_threshold=0.8)
    assert [s["category_id"] for s in strict["segments_info"]] == [0]
    assert torch.equal(strict["panoptic_seg"][0, 1], torch.tensor([VOID_ID] * 3, dtype=torch.int32))
    loose = _panoptic(logits, masks, things=[0, 1], overlap_threshold=0.5)
    assert [s["category_id"] for s in loose["segments_info"]] == [0, 1]
    assert torch.equal(
        loose["panoptic_seg"], torch.tensor([[[1, 1, 1], [2, 2, 2]]], dtype=torch.int32)
    )


def test_panoptic_pixel_outside_the_winners_own_mask_is_void():
    # One query, inside on 2 pixels: the 4 others are won by it (argmax over one query) but
    # outside its mask, so they stay void; won area 6 / own 2 >= 0.8: kept.
    logits = _class_logits([[0.9, 0.1]])
    result = _panoptic(logits, _masks([[[1, 1, 0], [0, 0, 0]]]), things=[0])
    assert torch.equal(
        result["panoptic_seg"], torch.tensor([[[1, 1, 0], [0, 0, 0]]], dtype=torch.int32)
    )
    assert result["segments_info"][0]["area"] == 2


def test_panoptic_stuff_queries_of_one_class_merge_things_do_not():
    # Classes: 0 thing, 1 stuff. Queries 0 and 1: stuff class 1 on disjoint halves -> one
    # segment; queries 2 and 3: thing class 0 on disjoint pixels -> two segments.
    logits = _class_logits(
        [[0.05, 0.9, 0.05], [0.05, 0.85, 0.1], [0.95, 0.03, 0.02], [0.9, 0.05, 0.05]]
    )
    masks = _masks(
        [[[1, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]],
        [[[0, 0, 0], [0, 0, 0]], [[1, 1, 1], [0, 0, 0]]],
        [[[0, 1, 0], [0, 0, 0]], [[0, 0, 0], [0, 1, 0]]],
        [[[0, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 1]]],
    )
    result = _panoptic(logits, masks, things=[0])
    info = result["segments_info"]
    assert [(s["id"], s["category_id"], s["isthing"], s["area"]) for s in info] == [
        (6, 1, False, 4),  # stuff class 1 of Q = 4 queries: 4 + 1 + 1
        (3, 0, True, 2),  # thing queries 2 and 3: query + 1
        (4, 0, True, 2),
    ]
    # One id per thing through the video (frames 0 and 1), stuff merged across queries.
    seg = result["panoptic_seg"]
    assert seg[0, 0].tolist() == [6, 3, 4] and seg[1, 0].tolist() == [6, 6, 6]
    assert seg[1, 1].tolist() == [0, 3, 4]


@pytest.mark.parametrize("chunk_size", [None, 1, 2, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_panoptic_chunks_equal_whole_volume_reference(chunk_size, seed):
    g = torch.Generator().manual_seed(seed)
    num_queries, num_classes = 8, 4
    logits = torch.randn(num_queries, num_classes + 1, generator=g) * 2
    masks = torch.randn(num_queries, 4, 5, 6, generator=g) * 4
    args = (logits, masks, (20, 24), (18, 21), (11, 13), [0, 1])
    kwargs = dict(object_mask_threshold=0.3, overlap_threshold=0.6)
    result = video_panoptic_inference(*args, chunk_size=chunk_size, **kwargs)
    reference = video_panoptic_inference_reference(*args, **kwargs)
    assert torch.equal(result["panoptic_seg"], reference["panoptic_seg"])
    assert result["segments_info"] == reference["segments_info"]
    ids = set(result["panoptic_seg"].unique().tolist()) - {VOID_ID}
    assert ids == {s["id"] for s in result["segments_info"]}
    for segment in result["segments_info"]:
        assert segment["area"] == int((result["panoptic_seg"] == segment["id"]).sum())
        assert math.isfinite(segment["score"])


def test_panoptic_overlap_counts_won_pixels_outside_the_own_mask():
    # The image Mask2Former compares the WON area (argmax, inside the own mask or not) with the
    # own mask area. Query 0 (0.95) owns (0, 0); query 1 (0.9) owns the top row, loses (0, 0) and
    # wins the whole bottom row outside its mask (logit -1: sigmoid 0.27 beats ~0): won 5 / own 3
    # >= 0.8 -> kept, although only 2 of its own 3 pixels end up in its segment (2 / 3 < 0.8).
    logits = _class_logits([[0.95, 0.05], [0.9, 0.1]])
    masks = torch.tensor(
        [
            [[[BIG, -BIG, -BIG], [-BIG, -BIG, -BIG]]],
            [[[BIG, BIG, BIG], [-1.0, -1.0, -1.0]]],
        ]
    )
    result = _panoptic(logits, masks, things=[0])
    assert [s["area"] for s in result["segments_info"]] == [1, 2]
    assert torch.equal(
        result["panoptic_seg"], torch.tensor([[[1, 2, 2], [0, 0, 0]]], dtype=torch.int32)
    )


def test_panoptic_query_winning_only_outside_its_mask_is_dropped():
    # Query 1 owns only (0, 0), which query 0 wins; elsewhere its logit is -1 (sigmoid 0.27, not
    # inside) and beats query 0's ~0, so it wins 5 pixels, none inside: dropped (no pixel both
    # won and own), even though won / own = 5 is far above the overlap threshold.
    logits = _class_logits([[0.95, 0.05], [0.9, 0.1]])
    masks = torch.tensor(
        [
            [[[BIG, -BIG, -BIG], [-BIG, -BIG, -BIG]]],
            [[[BIG, -1.0, -1.0], [-1.0, -1.0, -1.0]]],
        ]
    )
    result = _panoptic(logits, masks, things=[0])
    assert [s["area"] for s in result["segments_info"]] == [1]
    assert int((result["panoptic_seg"] != VOID_ID).sum()) == 1

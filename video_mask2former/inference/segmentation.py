"""Video semantic and video panoptic post-processing: one id map per frame from the queries.

Shapes: Q queries, K classes (+1 no-object), T frames, h x w the mask-logit size (stride 4),
Hp x Wp the padded input size, Hi x Wi the un-padded input size, H x W the output size.

The rules are the image Mask2Former's (Cheng et al. 2022, ``semantic_inference`` and
``panoptic_inference``) applied to the whole (T, H, W) volume of a video, so that one query is one
segment through the video:

* **semantic**: per pixel, the class maximising ``sum_q softmax(class)_q[c] * sigmoid(mask)_q``
  (the no-object column dropped before the sum);
* **panoptic**: queries whose best class is not "no object" and whose score exceeds
  ``object_mask_threshold`` are kept; each pixel goes to the kept query maximising
  ``score * sigmoid(mask)`` and stays void unless that query's own mask is >= 0.5 there; a query
  whose winning area (over the whole video) is below ``overlap_threshold`` of its own mask area
  (``sigmoid >= 0.5``) is dropped and its pixels become void; the kept queries of one stuff class
  merge into one segment; each thing query is one segment with one id through the video.

Segment ids are fixed by the query, not by the order segments are found: thing query ``q`` (of
Q) is segment ``q + 1`` and stuff class ``c`` is segment ``Q + 1 + c``. The windowed and the
streaming inference pass each window's queries in track order, so a thing keeps its id from
window to window and a stuff class always has the same id.

Both work a few frames at a time (``chunk_size``): the masks are upsampled only for the frames at
hand, so memory is bounded in T; the panoptic areas are summed over the chunks before the overlap
test, which is what the whole-volume computation gives (:func:`video_panoptic_inference_reference`
is that computation, the oracle of the tests).
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch.nn import functional as F

from ..precision import float32_island
from .postprocess import DEFAULT_CHUNK_SIZE, resize_mask_logits

__all__ = [
    "DEFAULT_OBJECT_MASK_THRESHOLD",
    "DEFAULT_OVERLAP_THRESHOLD",
    "VOID_ID",
    "video_panoptic_inference",
    "video_panoptic_inference_reference",
    "video_semantic_inference",
    "stuff_segment_id",
    "thing_segment_id",
]

# The image Mask2Former's panoptic defaults (its COCO-panoptic configs).
DEFAULT_OBJECT_MASK_THRESHOLD = 0.8
DEFAULT_OVERLAP_THRESHOLD = 0.8
# Segment id of pixels that belong to no segment (VIPSeg and COCO panoptic: 0).
VOID_ID = 0
# A pixel belongs to a query's own mask when sigmoid(logit) >= this.
MASK_PROBABILITY_THRESHOLD = 0.5


def _frame_chunks(num_frames: int, chunk_size: Optional[int]):
    step = num_frames if not chunk_size else max(int(chunk_size), 1)
    for start in range(0, num_frames, max(step, 1)):
        yield slice(start, min(start + step, num_frames))


def video_semantic_inference(
    pred_logits: torch.Tensor,
    pred_masks: torch.Tensor,
    padded_size: Tuple[int, int],
    image_size: Tuple[int, int],
    output_size: Tuple[int, int],
    chunk_size: Optional[int] = DEFAULT_CHUNK_SIZE,
    output_device: torch.device = torch.device("cpu"),
) -> Dict[str, object]:
    """Per-pixel classes of one video.

    Args:
        pred_logits (Tensor): (Q, K+1) class logits, the last column "no object".
        pred_masks (Tensor): (Q, T, h, w) mask logits.
        padded_size (tuple): (Hp, Wp); image_size (tuple): (Hi, Wi); output_size (tuple): (H, W).
        chunk_size (int, optional): frames upsampled at a time; None for all at once.
        output_device (torch.device): where the class map is returned.

    Returns:
        dict: ``image_size`` (H, W) and ``sem_seg``: (T, H, W) int64 class indices in [0, K).
    """
    classes = F.softmax(pred_logits.float(), dim=-1)[:, :-1]  # (Q, K)
    num_frames = pred_masks.shape[1]
    sem_seg = torch.empty((num_frames, *output_size), dtype=torch.int64, device=output_device)
    for frames in _frame_chunks(num_frames, chunk_size):
        masks = resize_mask_logits(pred_masks[:, frames], padded_size, image_size, output_size)
        with float32_island(masks.device):  # also under the caller's autocast
            scores = torch.einsum("qk,qthw->kthw", classes, masks.sigmoid())  # (K, t, H, W)
        sem_seg[frames] = scores.argmax(0).to(output_device)
    return {"image_size": tuple(output_size), "sem_seg": sem_seg}


def _kept_queries(
    pred_logits: torch.Tensor, object_mask_threshold: float
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(query indices, scores, labels) of the kept queries: best class an object, score above."""
    probabilities = F.softmax(pred_logits.float(), dim=-1)  # (Q, K+1)
    scores, labels = probabilities.max(-1)
    num_classes = pred_logits.shape[-1] - 1
    keep = labels.ne(num_classes) & (scores > object_mask_threshold)
    queries = keep.nonzero().flatten()
    return queries, scores[queries], labels[queries]


def thing_segment_id(query: int) -> int:
    """Segment id of thing query (or track) ``query``."""
    return query + 1


def stuff_segment_id(num_queries: int, category: int) -> int:
    """Segment id of stuff class ``category`` when there are ``num_queries`` queries."""
    return num_queries + 1 + category


def _assign_segments(
    queries: Sequence[int],
    num_queries: int,
    labels: Sequence[int],
    scores: Sequence[float],
    won_area: Sequence[int],
    final_area: Sequence[int],
    own_area: Sequence[int],
    is_thing: Sequence[bool],
    overlap_threshold: float,
) -> Tuple[List[int], List[Dict[str, object]]]:
    """Segment id of each kept query (VOID_ID when dropped) and the segments, in query order.

    The image Mask2Former's rules: a query that wins no pixel, has no own mask (sigmoid >= 0.5)
    or no pixel both won and own is dropped, and so is one whose won area is below
    ``overlap_threshold`` of its own mask area; stuff queries of one class share a segment.
    """
    segment_of_query: List[int] = []
    segments: List[Dict[str, object]] = []
    stuff_segment: Dict[int, Dict[str, object]] = {}
    areas = zip(won_area, final_area, own_area)
    for query, label, score, (won, area, own), thing in zip(
        queries, labels, scores, areas, is_thing
    ):
        if won == 0 or own == 0 or area == 0 or won / own < overlap_threshold:
            segment_of_query.append(VOID_ID)
            continue
        if not thing and label in stuff_segment:
            segment = stuff_segment[label]
            segment["area"] += area
            segment_of_query.append(segment["id"])
            continue
        segment_id = thing_segment_id(query) if thing else stuff_segment_id(num_queries, label)
        segment = {
            "id": segment_id,
            "category_id": int(label),
            "isthing": bool(thing),
            "score": float(score),
            "area": int(area),
        }
        segments.append(segment)
        if not thing:
            stuff_segment[label] = segment
        segment_of_query.append(segment["id"])
    return segment_of_query, segments


def _thing_flags(labels: torch.Tensor, thing_classes: Sequence[int]) -> List[bool]:
    things = set(int(c) for c in thing_classes)
    return [int(label) in things for label in labels.tolist()]


def video_panoptic_inference(
    pred_logits: torch.Tensor,
    pred_masks: torch.Tensor,
    padded_size: Tuple[int, int],
    image_size: Tuple[int, int],
    output_size: Tuple[int, int],
    thing_classes: Sequence[int],
    object_mask_threshold: float = DEFAULT_OBJECT_MASK_THRESHOLD,
    overlap_threshold: float = DEFAULT_OVERLAP_THRESHOLD,
    chunk_size: Optional[int] = DEFAULT_CHUNK_SIZE,
    output_device: torch.device = torch.device("cpu"),
) -> Dict[str, object]:
    """Video panoptic segmentation of one video, memory bounded in T.

    One pass over frame chunks finds each pixel's winning kept query and sums the areas the
    overlap test needs; the winners are kept as a (T, H, W) index map and turned into segment ids
    once the segments are known.

    Args:
        pred_logits (Tensor): (Q, K+1) class logits, the last column "no object".
        pred_masks (Tensor): (Q, T, h, w) mask logits.
        padded_size (tuple): (Hp, Wp); image_size (tuple): (Hi, Wi); output_size (tuple): (H, W).
        thing_classes (sequence of int): the class indices in [0, K) that are things.
        object_mask_threshold (float): a query is kept when its best class probability is above.
        overlap_threshold (float): a kept query whose final area is below this share of its own
            mask area is dropped.
        chunk_size (int, optional): frames upsampled at a time; None for all at once.
        output_device (torch.device): where the id map is returned.

    Returns:
        dict: ``image_size`` (H, W); ``panoptic_seg``: (T, H, W) int32 segment ids, 0 = void;
        ``segments_info``: list of dicts with ``id`` (``q + 1`` for thing query q, ``Q + 1 + c``
        for stuff class c), ``category_id`` (class index in [0, K)), ``isthing``, ``score`` (the
        query's class probability; for merged stuff, the first query's) and ``area`` (pixels
        over the video), in query order.
    """
    queries, scores, labels = _kept_queries(pred_logits, object_mask_threshold)
    num_frames = pred_masks.shape[1]
    panoptic = torch.zeros((num_frames, *output_size), dtype=torch.int32, device=output_device)
    if len(queries) == 0:
        return {"image_size": tuple(output_size), "panoptic_seg": panoptic, "segments_info": []}
    num_kept = len(queries)
    selected = pred_masks[queries]  # (n, T, h, w)
    # Winning kept query per pixel, num_kept where the winner's own mask is below 0.5.
    winners = torch.empty((num_frames, *output_size), dtype=torch.int64)
    won_area = torch.zeros(num_kept, dtype=torch.int64)
    final_area = torch.zeros(num_kept + 1, dtype=torch.int64)
    own_area = torch.zeros(num_kept, dtype=torch.int64)
    for frames in _frame_chunks(num_frames, chunk_size):
        probs = resize_mask_logits(selected[:, frames], padded_size, image_size, output_size)
        probs = probs.sigmoid()  # (n, t, H, W)
        own = probs >= MASK_PROBABILITY_THRESHOLD
        own_area += own.flatten(1).sum(1).cpu()
        winner = (scores.view(-1, 1, 1, 1) * probs).argmax(0)  # (t, H, W)
        won_area += torch.bincount(winner.flatten().cpu(), minlength=num_kept)
        inside = own.gather(0, winner.unsqueeze(0))[0]
        winner = torch.where(inside, winner, torch.full_like(winner, num_kept)).cpu()
        final_area += torch.bincount(winner.flatten(), minlength=num_kept + 1)
        winners[frames] = winner
    segment_of_query, segments = _assign_segments(
        queries.tolist(),
        pred_logits.shape[0],
        labels.tolist(),
        scores.tolist(),
        won_area.tolist(),
        final_area[:num_kept].tolist(),
        own_area.tolist(),
        _thing_flags(labels, thing_classes),
        overlap_threshold,
    )
    lookup = torch.tensor(segment_of_query + [VOID_ID], dtype=torch.int32)
    panoptic = lookup[winners].to(output_device)
    return {"image_size": tuple(output_size), "panoptic_seg": panoptic, "segments_info": segments}


def video_panoptic_inference_reference(
    pred_logits: torch.Tensor,
    pred_masks: torch.Tensor,
    padded_size: Tuple[int, int],
    image_size: Tuple[int, int],
    output_size: Tuple[int, int],
    thing_classes: Sequence[int],
    object_mask_threshold: float = DEFAULT_OBJECT_MASK_THRESHOLD,
    overlap_threshold: float = DEFAULT_OVERLAP_THRESHOLD,
) -> Dict[str, object]:
    """Same as :func:`video_panoptic_inference`, the straightforward way: the image
    Mask2Former's loop over kept queries on the whole upsampled volume. The oracle of the tests.
    """
    queries, scores, labels = _kept_queries(pred_logits, object_mask_threshold)
    num_frames = pred_masks.shape[1]
    panoptic = torch.zeros((num_frames, *output_size), dtype=torch.int32)
    segments: List[Dict[str, object]] = []
    if len(queries) == 0:
        return {"image_size": tuple(output_size), "panoptic_seg": panoptic, "segments_info": []}
    masks = resize_mask_logits(pred_masks[queries], padded_size, image_size, output_size)
    masks = masks.sigmoid()
    winner = (scores.view(-1, 1, 1, 1) * masks).argmax(0)
    things = _thing_flags(labels, thing_classes)
    stuff_ids: Dict[int, int] = {}
    for k in range(len(queries)):
        label = int(labels[k])
        mask_area = int((winner == k).sum())  # won, whether or not inside its own mask
        own_area = int((masks[k] >= MASK_PROBABILITY_THRESHOLD).sum())
        mask = (winner == k) & (masks[k] >= MASK_PROBABILITY_THRESHOLD)
        if mask_area == 0 or own_area == 0 or int(mask.sum()) == 0:
            continue
        if mask_area / own_area < overlap_threshold:
            continue
        if not things[k] and label in stuff_ids:
            panoptic[mask] = stuff_ids[label]
            segment = next(s for s in segments if s["id"] == stuff_ids[label])
            segment["area"] += int(mask.sum())
            continue
        if things[k]:
            segment_id = thing_segment_id(int(queries[k]))
        else:
            segment_id = stuff_segment_id(pred_logits.shape[0], label)
        panoptic[mask] = segment_id
        segments.append(
            {
                "id": segment_id,
                "category_id": label,
                "isthing": things[k],
                "score": float(scores[k]),
                "area": int(mask.sum()),
            }
        )
        if not things[k]:
            stuff_ids[label] = segment_id
    return {"image_size": tuple(output_size), "panoptic_seg": panoptic, "segments_info": segments}

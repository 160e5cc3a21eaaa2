"""Video-level post-processing: top-k (query, class) pairs and their full-resolution 3-D masks.

Shapes: Q queries, K classes (+1 no-object), T frames, h x w the mask-logit size (stride 4),
Hp x Wp the padded input size, Hi x Wi the un-padded input size, H x W the output size.

As in the paper and the official code: class probabilities are the softmax over K+1 logits with
the no-object column dropped; the k best (query, class) pairs over all Q*K are kept; their mask
logits are upsampled (bilinear, align_corners=False) to the padded input size, cropped to the
un-padded size, resized to the output size and thresholded at logit 0.

:func:`video_inference` selects the top k before upsampling and upsamples a few frames at a time,
so its memory does not grow with Q and is bounded in T; :func:`video_inference_reference`
upsamples every query first, like the official code. Both give identical results (bilinear
interpolation treats every (query, frame) map on its own).
"""

from typing import Dict, Optional, Tuple

import torch
from torch.nn import functional as F

# Number of (query, class) pairs kept per video (official: 10).
DEFAULT_TOPK = 10
# A mask pixel is foreground when its logit is above this (sigmoid > 0.5).
MASK_LOGIT_THRESHOLD = 0.0
# Frames upsampled at a time by the lean inference.
DEFAULT_CHUNK_SIZE = 8


def topk_pairs(scores: torch.Tensor, topk: int) -> Tuple[torch.Tensor, ...]:
    """The ``topk`` best (row, class) pairs of a score matrix.

    Args:
        scores (Tensor): (R, K) scores of R queries (or tracks) for K classes.
        topk (int): k; clamped to R*K.

    Returns:
        tuple: scores (k,) float, labels (k,) int64 in [0, K), row indices (k,) int64, sorted
        by decreasing score (ties in ``torch.topk`` order).
    """
    num_classes = scores.shape[-1]
    flat = scores.flatten()  # (R*K,)
    k = min(topk, flat.numel())
    top_scores, top_indices = flat.topk(k, sorted=True)
    labels = top_indices % num_classes
    rows = torch.div(top_indices, num_classes, rounding_mode="floor")
    return top_scores, labels, rows


def select_topk(pred_logits: torch.Tensor, topk: int) -> Tuple[torch.Tensor, ...]:
    """The ``topk`` best (query, class) pairs by class probability.

    Args:
        pred_logits (Tensor): (Q, K+1) class logits, the last column "no object".
        topk (int): k; clamped to Q*K.

    Returns:
        tuple: scores (k,) float, labels (k,) int64 in [0, K), query indices (k,) int64, sorted
        by decreasing score (ties in ``torch.topk`` order).
    """
    return topk_pairs(F.softmax(pred_logits.float(), dim=-1)[:, :-1], topk)


def resize_mask_logits(
    mask_logits: torch.Tensor,
    padded_size: Tuple[int, int],
    image_size: Tuple[int, int],
    output_size: Tuple[int, int],
) -> torch.Tensor:
    """Mask logits at the output resolution, the official way.

    Args:
        mask_logits (Tensor): (N, T, h, w).
        padded_size (tuple): (Hp, Wp) of the padded network input.
        image_size (tuple): (Hi, Wi) of the frames before padding.
        output_size (tuple): (H, W) requested.

    Returns:
        Tensor: (N, T, H, W) float32 logits.
    """
    x = F.interpolate(mask_logits.float(), size=padded_size, mode="bilinear", align_corners=False)
    x = x[:, :, : image_size[0], : image_size[1]]
    return F.interpolate(x, size=output_size, mode="bilinear", align_corners=False)


def _video_result(
    output_size: Tuple[int, int], scores: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor
) -> Dict[str, object]:
    return {
        "image_size": tuple(output_size),
        "pred_scores": scores.tolist(),
        "pred_labels": labels.tolist(),
        "pred_masks": list(masks.unbind(0)),
    }


def video_inference(
    pred_logits: torch.Tensor,
    pred_masks: torch.Tensor,
    padded_size: Tuple[int, int],
    image_size: Tuple[int, int],
    output_size: Tuple[int, int],
    topk: int = DEFAULT_TOPK,
    chunk_size: Optional[int] = DEFAULT_CHUNK_SIZE,
    output_device: torch.device = torch.device("cpu"),
) -> Dict[str, object]:
    """Top-k video instances with their masks, memory-lean.

    Args:
        pred_logits (Tensor): (Q, K+1) class logits of one video.
        pred_masks (Tensor): (Q, T, h, w) mask logits.
        padded_size (tuple): (Hp, Wp).
        image_size (tuple): (Hi, Wi).
        output_size (tuple): (H, W).
        topk (int): instances kept (clamped to Q*K).
        chunk_size (int, optional): frames upsampled at a time; None for all at once.
        output_device (torch.device): where the boolean masks are returned.

    Returns:
        dict: ``image_size`` (H, W), ``pred_scores`` list of k floats, ``pred_labels`` list of k
        ints, ``pred_masks`` list of k (T, H, W) bool tensors on ``output_device``; sorted by
        decreasing score.
    """
    scores, labels, queries = select_topk(pred_logits, topk)
    selected = pred_masks[queries]  # (k, T, h, w)
    num_frames = pred_masks.shape[1]
    step = num_frames if not chunk_size else chunk_size
    masks = torch.empty(
        (len(queries), num_frames, *output_size), dtype=torch.bool, device=output_device
    )
    for start in range(0, num_frames, max(step, 1)):
        logits = resize_mask_logits(
            selected[:, start : start + step], padded_size, image_size, output_size
        )
        masks[:, start : start + step] = (logits > MASK_LOGIT_THRESHOLD).to(output_device)
    return _video_result(output_size, scores, labels, masks)


def video_inference_reference(
    pred_logits: torch.Tensor,
    pred_masks: torch.Tensor,
    padded_size: Tuple[int, int],
    image_size: Tuple[int, int],
    output_size: Tuple[int, int],
    topk: int = DEFAULT_TOPK,
) -> Dict[str, object]:
    """Same as :func:`video_inference`, the straightforward way (upsample all Q, then select).

    Used as the oracle in tests and as the baseline of ``benchmarks/benchmark_inference.py``.
    """
    upsampled = F.interpolate(
        pred_masks.float(), size=padded_size, mode="bilinear", align_corners=False
    )  # (Q, T, Hp, Wp)
    scores, labels, queries = select_topk(pred_logits, topk)
    selected = upsampled[queries][:, :, : image_size[0], : image_size[1]]
    selected = F.interpolate(selected, size=output_size, mode="bilinear", align_corners=False)
    masks = (selected > MASK_LOGIT_THRESHOLD).cpu()
    return _video_result(output_size, scores, labels, masks)

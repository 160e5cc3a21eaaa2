"""Small data structures shared by the model, the data pipeline and the detectron2 layer.

They mirror the parts of detectron2's structures that the core needs, so the core runs without
detectron2. The model reads targets by attribute, so detectron2's ``Instances`` (with the same
fields) works wherever a :class:`FrameInstances` does.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch


@dataclass(frozen=True)
class ShapeSpec:
    """What a backbone or decoder level produces: channels and stride w.r.t. the input image.

    Field names match ``detectron2.layers.ShapeSpec`` so either can be passed to the modules.
    """

    channels: Optional[int] = None
    height: Optional[int] = None
    width: Optional[int] = None
    stride: Optional[int] = None


@dataclass
class FrameInstances:
    """Ground-truth instances of one frame of a clip.

    Attributes:
        image_size (tuple): (H, W) of the frame after augmentation.
        gt_classes (Tensor): (N,) int64 contiguous class ids.
        gt_ids (Tensor): (N,) int64 instance ids, consistent across the frames of a clip; -1 marks
            an instance that is absent from this frame (its mask is then empty).
        gt_masks (Tensor): (N, H, W) bool masks.
        gt_boxes (Tensor, optional): (N, 4) float XYXY boxes in pixels (all zero when absent).
        ignore_mask (Tensor, optional): (H, W) bool, pixels that no mask loss looks at (void and
            crowd regions of panoptic / semantic data); None for instance data (every pixel
            counts, as in the official code).
    """

    image_size: Tuple[int, int]
    gt_classes: torch.Tensor
    gt_ids: torch.Tensor
    gt_masks: torch.Tensor
    gt_boxes: Optional[torch.Tensor] = None
    ignore_mask: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return int(self.gt_classes.shape[0])


def encode_masks(masks: torch.Tensor) -> List[Dict]:
    """Compressed COCO RLEs of binary masks.

    CPU masks are encoded by pycocotools (faster there than the torch ops of the other path:
    ``benchmarks/benchmark_rle.py``); masks on another device (CUDA) by
    :func:`encode_masks_by_runs`, which computes the run lengths on that device and copies only
    them to the host, not the masks. Both give identical RLEs.

    Args:
        masks (Tensor): (N, H, W) bool, any device.

    Returns:
        list[dict]: N RLEs ``{"size": [H, W], "counts": bytes}`` (pycocotools' format).
    """
    if masks.device.type != "cpu":
        return encode_masks_by_runs(masks)
    if masks.shape[0] == 0:
        return []
    # pycocotools wants (H, W, N) in Fortran order, which is the memory layout of a C-ordered
    # (N, W, H) array: transpose once on the torch side, then only re-view in numpy.
    by_column = masks.to(dtype=torch.bool).transpose(1, 2).contiguous()
    fortran = by_column.numpy().view(np.uint8).transpose(2, 1, 0)
    return mask_util.encode(fortran)


def encode_masks_by_runs(masks: torch.Tensor) -> List[Dict]:
    """Compressed COCO RLEs of binary masks, run lengths computed on the masks' device.

    The same RLEs as pycocotools' ``encode``, byte for byte; only the run lengths cross to the
    host, not the (N, H, W) masks.

    Args:
        masks (Tensor): (N, H, W) bool, any device.

    Returns:
        list[dict]: N RLEs ``{"size": [H, W], "counts": bytes}``.
    """
    counts, lengths = rle_counts(masks)
    return rles_from_counts(counts.cpu(), lengths.cpu(), tuple(masks.shape[1:]))


def rle_counts(masks: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Uncompressed COCO run lengths of binary masks, computed with torch ops on their device.

    A mask's runs are taken over its pixels in column-major order (its transpose flattened),
    alternating background and foreground and starting with background: the first count is
    the number of leading background pixels, 0 when the first pixel is foreground. One host
    sync (the data-dependent ``nonzero``).

    Args:
        masks (Tensor): (N, H, W) bool.

    Returns:
        tuple: ``counts`` (M,) the run lengths of all masks one after the other, and
        ``lengths`` (N,) how many of them belong to each mask (>= 1); both int32 (int64 for
        masks of more than 2**31 - 1 pixels), on the masks' device.
    """
    num_masks, height, width = masks.shape
    num_pixels = height * width
    row_size = num_pixels + 1
    by_column = masks.bool().transpose(1, 2).reshape(num_masks, num_pixels)  # (N, H*W)
    # closes[n, p]: pixel p - 1 ends a run of mask n, i.e. p == H*W or pixel p differs from
    # pixel p - 1 (pixel -1 counts as background, so a foreground first pixel closes an empty
    # first run).
    closes = torch.ones((num_masks, row_size), dtype=torch.bool, device=masks.device)
    if num_pixels > 0:
        closes[:, 0] = by_column[:, 0]
        torch.ne(by_column[:, 1:], by_column[:, :-1], out=closes[:, 1:num_pixels])
    ends = closes.flatten().nonzero()[:, 0]  # (M,) n * (H*W + 1) + p, by mask then pixel
    row_starts = torch.arange(num_masks + 1, device=masks.device) * row_size
    lengths = torch.searchsorted(ends, row_starts).diff()  # (N,) (bincount would sync on CUDA)
    ends = torch.remainder(ends, row_size)  # (M,) p
    # A run's length is its end minus the previous run's end; a mask's first run starts at 0
    # (the entry before it is the previous mask's last end, p == H*W).
    previous = ends.roll(1)
    previous[:1] = num_pixels
    previous.masked_fill_(previous == num_pixels, 0)
    counts = ends - previous
    index_dtype = torch.int32 if num_pixels <= torch.iinfo(torch.int32).max else torch.int64
    return counts.to(index_dtype), lengths.to(index_dtype)


def rles_from_counts(
    counts: torch.Tensor, lengths: torch.Tensor, size: Tuple[int, int]
) -> List[Dict]:
    """Compressed COCO RLEs from uncompressed run lengths (pycocotools compresses them in C).

    Args:
        counts (Tensor): (M,) CPU run lengths of the masks one after the other, as returned by
            :func:`rle_counts`.
        lengths (Tensor): (N,) CPU, how many counts belong to each mask.
        size (tuple): (H, W) of the masks.

    Returns:
        list[dict]: N RLEs ``{"size": [H, W], "counts": bytes}``.
    """
    if lengths.numel() == 0:
        return []
    height, width = int(size[0]), int(size[1])
    ends = np.cumsum(lengths.numpy())
    per_mask = np.split(counts.numpy(), ends[:-1])
    return mask_util.frPyObjects(
        [{"size": [height, width], "counts": c} for c in per_mask], height, width
    )


class RLEVideoMask(Sequence):
    """The mask of one instance through a video, one compressed RLE per frame.

    A compact stand-in for a (T, H, W) bool tensor: the windowed inference returns these so that
    the memory of its results grows with the masks' outlines, not with T*H*W. Indexing decodes
    one frame; :meth:`to_tensor` decodes all.

    Args:
        rles (list[dict]): T RLEs ``{"size": [H, W], "counts": bytes or str}``.
    """

    def __init__(self, rles: List[Dict]):
        self.rles = list(rles)

    def __len__(self) -> int:
        return len(self.rles)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return RLEVideoMask(self.rles[index])
        return torch.from_numpy(mask_util.decode(self.rles[index])).bool()

    @property
    def shape(self) -> Tuple[int, int, int]:
        """(T, H, W), like the tensor it stands for."""
        height, width = self.rles[0]["size"] if self.rles else (0, 0)
        return (len(self.rles), int(height), int(width))

    def to_tensor(self) -> torch.Tensor:
        """All frames decoded: (T, H, W) bool."""
        if not self.rles:
            return torch.zeros(self.shape, dtype=torch.bool)
        decoded = mask_util.decode(self.rles)  # (H, W, T)
        return torch.from_numpy(decoded).permute(2, 0, 1).bool()

    def areas(self) -> List[int]:
        """Foreground pixels per frame."""
        return [int(a) for a in mask_util.area(self.rles)] if self.rles else []

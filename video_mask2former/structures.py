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
    """

    image_size: Tuple[int, int]
    gt_classes: torch.Tensor
    gt_ids: torch.Tensor
    gt_masks: torch.Tensor
    gt_boxes: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return int(self.gt_classes.shape[0])


def encode_masks(masks: torch.Tensor) -> List[Dict]:
    """Compressed COCO RLEs of binary masks.

    Args:
        masks (Tensor): (N, H, W) bool, any device.

    Returns:
        list[dict]: N RLEs ``{"size": [H, W], "counts": bytes}`` (pycocotools' format).
    """
    if masks.shape[0] == 0:
        return []
    # pycocotools wants (H, W, N) in Fortran order, which is the memory layout of a C-ordered
    # (N, W, H) array: transpose once on the torch side, then only re-view in numpy.
    by_column = masks.to(device="cpu", dtype=torch.bool).transpose(1, 2).contiguous()
    fortran = by_column.numpy().view(np.uint8).transpose(2, 1, 0)
    return mask_util.encode(fortran)


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

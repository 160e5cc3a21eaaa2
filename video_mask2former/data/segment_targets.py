"""Training targets of video panoptic and video semantic data: one target tube per segment.

Shapes: T frames of the clip, N target tubes, H0 x W0 the frame size, H x W after augmentation.

As the image Mask2Former builds panoptic targets per image (one target per non-crowd segment),
but per clip: every thing segment (one segment id through the clip's frames) is one tube with its
class, and every stuff class present in the clip is one tube (its segments of all frames merged);
for semantic data every class present is one tube. Crowd segments and void pixels (segment id 0,
or label 255 of semantic data) belong to no tube and are the frame's ``ignore_mask``: the mask
losses do not look at them (nor at the padding the model adds), so the model is neither taught to
cover them nor to leave them empty (every other pixel of panoptic / semantic ground truth is in a
tube). A tube absent from a frame has an empty mask and id -1 there, as for video instances, so
the same model, matcher and criterion train on it.

The mapper reads a panoptic record of :func:`~video_mask2former.data.vps.load_vps_video_dicts`
(``pan_seg_file_names`` + ``segments_info``) or a semantic record (``sem_seg_file_names``: VSPW
mask PNGs, remapped by :func:`~video_mask2former.data.vss.read_vss_label`).
"""

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..structures import FrameInstances
from .augmentation import TransformList
from .clip_mapper import ClipDatasetMapper, masks_to_boxes
from .vps import image_size, read_vps_frame
from .vss import IGNORE_LABEL, read_vss_label

__all__ = [
    "STUFF_TUBE_ID_BASE",
    "SegmentClipDatasetMapper",
    "clip_segment_targets",
    "semantic_frame_segments",
]

# Tube ids of stuff classes: STUFF_TUBE_ID_BASE + class, above every VIPSeg segment id (< 256^3).
STUFF_TUBE_ID_BASE = 1 << 32

FrameSegments = Tuple[np.ndarray, List[dict]]


def semantic_frame_segments(labels: np.ndarray) -> FrameSegments:
    """A semantic label map as panoptic segments: class c is segment c + 1, 255 is void (0).

    Args:
        labels (ndarray): (H, W) uint8 class indices, 255 ignored.

    Returns:
        tuple: (H, W) int64 segment ids and their ``segments_info`` (stuff, not crowd).
    """
    ids = labels.astype(np.int64) + 1
    ids[labels == IGNORE_LABEL] = 0
    classes = sorted(set(np.unique(labels).tolist()) - {IGNORE_LABEL})
    segments = [{"id": c + 1, "category_id": c, "iscrowd": 0, "isthing": False} for c in classes]
    return ids, segments


def _tube_keys(frames: Sequence[FrameSegments]) -> Dict[Tuple[int, int], int]:
    """(kind, key) -> class of every tube of the clip: (0, segment id) for things, (1, class)
    for stuff; crowd segments have none."""
    tubes: Dict[Tuple[int, int], int] = {}
    for _, segments in frames:
        for segment in segments:
            if segment.get("iscrowd", 0):
                continue
            category = int(segment["category_id"])
            if segment["isthing"]:
                tubes[(0, int(segment["id"]))] = category
            else:
                tubes[(1, category)] = category
    return dict(sorted(tubes.items()))


def clip_segment_targets(
    frames: Sequence[FrameSegments], transforms: Sequence[TransformList]
) -> List[FrameInstances]:
    """FrameInstances of the T frames of a clip, the same N tubes in every frame.

    Args:
        frames (sequence): T (id map (H0, W0) int, segments_info) pairs; each segment a dict with
            ``id``, ``category_id`` (class index), ``isthing``, optional ``iscrowd``.
        transforms (sequence of TransformList): the clip's T augmentations (``apply_masks``).

    Returns:
        list[FrameInstances]: per frame, N tubes: things first (by segment id), then stuff (by
        class); ``gt_ids`` the segment id of a thing, ``STUFF_TUBE_ID_BASE + class`` for stuff,
        -1 where the tube's augmented mask is empty; ``ignore_mask`` the void and crowd pixels.
    """
    tubes = _tube_keys(frames)
    keys = list(tubes)
    classes = torch.tensor([tubes[k] for k in keys], dtype=torch.int64)
    tube_ids = [key if kind == 0 else STUFF_TUBE_ID_BASE + key for kind, key in keys]
    slot = {k: n for n, k in enumerate(keys)}
    out = []
    for (ids, segments), transform in zip(frames, transforms):
        # Segment id -> tube slot for this frame (crowd segments map to no slot).
        slot_of_segment = np.full(len(segments), -1, dtype=np.int64)
        for n, segment in enumerate(segments):
            if segment.get("iscrowd", 0):
                continue
            key = (
                (0, int(segment["id"])) if segment["isthing"] else (1, int(segment["category_id"]))
            )
            slot_of_segment[n] = slot[key]
        masks = np.zeros((len(keys), *ids.shape), dtype=bool)  # (N, H0, W0)
        for n, segment in enumerate(segments):
            if slot_of_segment[n] >= 0:
                masks[slot_of_segment[n]] |= ids == int(segment["id"])
        masks = transform.apply_masks(masks)  # (N, H, W)
        # Void, crowd, and what the augmentation brought in from outside the frame (a rotation's
        # corners): the pixels of no tube (masks are resized and warped by nearest neighbour, so
        # the union of the augmented masks is the augmented union).
        ignore = ~masks.any(axis=0)
        present = masks.any(axis=(1, 2))
        out.append(
            FrameInstances(
                image_size=tuple(masks.shape[1:]),
                gt_classes=classes.clone(),
                gt_ids=torch.tensor(
                    [tube if ok else -1 for tube, ok in zip(tube_ids, present)], dtype=torch.int64
                ),
                gt_masks=torch.from_numpy(np.ascontiguousarray(masks)),
                gt_boxes=torch.from_numpy(masks_to_boxes(masks)),
                ignore_mask=torch.from_numpy(np.ascontiguousarray(ignore)),
            )
        )
    return out


class SegmentClipDatasetMapper(ClipDatasetMapper):
    """:class:`ClipDatasetMapper` for video panoptic and video semantic records.

    Same clip sampling and clip-consistent augmentation as for instances; the targets are
    :func:`clip_segment_targets` of the clip's id maps (panoptic) or label maps (semantic).
    Arguments as :class:`ClipDatasetMapper`, plus ``num_classes`` (K of semantic label maps).
    """

    def __init__(self, *, num_classes: int = 124, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes

    def has_annotations(self, record: dict) -> bool:
        return "pan_seg_file_names" in record or "sem_seg_file_names" in record

    def __call__(self, record: dict, rng: Optional[np.random.Generator] = None) -> dict:
        if record.get("height") is None or record.get("width") is None:
            # VIPSeg JSONs may omit the frame size: take it from the first frame's header.
            height, width = image_size(record["file_names"][0], video_id=record["video_id"])
            record = dict(record, height=height, width=width)
        return super().__call__(record, rng)

    def frame_segments(self, record: dict, index: int) -> FrameSegments:
        """(id map, segments_info) of frame ``index`` of a panoptic or semantic record."""
        if "pan_seg_file_names" in record:
            return read_vps_frame(record, index), record["segments_info"][index]
        path = record["sem_seg_file_names"][index]
        labels = read_vss_label(
            path,
            num_classes=self.num_classes,
            video_id=record["video_id"],
            frame=os.path.basename(path),
        )
        if labels.shape != (record["height"], record["width"]):
            raise ValueError(
                f"Mask {path!r} of video {record['video_id']} is {labels.shape[1]}x"
                f"{labels.shape[0]} (WxH), but its frame is {record['width']}x{record['height']}."
            )
        return semantic_frame_segments(labels)

    def _clip_instances(self, record, frame_idx, images, transforms) -> List[FrameInstances]:
        frames = [self.frame_segments(record, i) for i in frame_idx]
        return clip_segment_targets(frames, transforms)

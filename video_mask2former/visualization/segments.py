"""Drawing video panoptic and video semantic results on frames (OpenCV / NumPy, no detectron2).

Shapes: H x W the frame size, K classes. Frames are (H, W, 3) uint8 RGB; a frame's result is an
(H, W) integer map:

* **panoptic**: segment ids (0 = void) and the frame's ``segments_info`` (``id``,
  ``category_id`` = class index in [0, K), ``isthing``). A thing segment is drawn in the colour of
  its id (:func:`~.draw.track_color`, the instance demo's colour of a track: a thing keeps its id
  and so its colour through the video) and labelled ``name #id``; a stuff segment in its class
  colour, labelled with the class name; void is not drawn.
* **semantic**: class indices in [0, K), each class in its colour, labelled with its name.

Class colours are the dataset's (metadata ``stuff_colors``) when given, else a fixed palette
(:func:`class_color`). :class:`SegmentClasses` holds the names and colours, checked once; the
per-frame functions (:func:`draw_panoptic_frame`, :func:`draw_semantic_frame`,
:func:`draw_frame_segmentation`) are what the offline and the online demo both call.
"""

import colorsys
from typing import List, Optional, Sequence

import numpy as np

from .draw import MASK_ALPHA, draw_instances, track_color

__all__ = [
    "SEGMENTATION_KINDS",
    "SegmentClasses",
    "class_color",
    "draw_frame_segmentation",
    "draw_panoptic_frame",
    "draw_semantic_frame",
]

# Kinds of segmentation results drawn here (those of inference.segment_windows.SegmentationTask).
SEGMENTATION_KINDS = ("panoptic", "semantic")
# Golden-ratio hue step between consecutive classes, offset from the tracks' hues (which start at
# 0) and paler, so that a stuff region and a thing rarely share a colour.
_CLASS_HUE_STEP = 0.618033988749895
_CLASS_HUE_OFFSET = 0.3
_CLASS_SATURATION, _CLASS_VALUE = 0.45, 0.8


def class_color(index: int) -> tuple:
    """The palette's RGB colour (uint8 tuple) of class ``index``: the same for the same index,
    well apart from those of nearby indices."""
    hue = (_CLASS_HUE_OFFSET + index * _CLASS_HUE_STEP) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, _CLASS_SATURATION, _CLASS_VALUE)
    return (int(r * 255), int(g * 255), int(b * 255))


def _check_color(color, where: str) -> tuple:
    if not (
        isinstance(color, (list, tuple))
        and len(color) == 3
        and all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in color)
    ):
        raise ValueError(
            f"{where}: expected an [r, g, b] colour of integers in 0..255, got {color!r}"
        )
    return tuple(int(c) for c in color)


class SegmentClasses:
    """The names and colours of the K classes of a segmentation model, checked once.

    Args:
        names (sequence of str): K class names (contiguous class ids 0..K-1).
        colors (sequence, optional): K RGB colours (``[r, g, b]`` integers in 0..255), an entry
            may be None; None (or a None entry): the palette's :func:`class_color`.

    Raises:
        ValueError: no names, or colours that are not K valid colours.
    """

    def __init__(self, names: Sequence[str], colors: Optional[Sequence] = None):
        self.names: List[str] = [str(n) for n in names]
        if not self.names:
            raise ValueError("SegmentClasses: expected at least one class name")
        if colors is not None and len(colors) != len(self.names):
            raise ValueError(
                f"SegmentClasses: {len(colors)} colours for {len(self.names)} classes; expected "
                "one per class"
            )
        colors = colors if colors is not None else [None] * len(self.names)
        self.colors: List[tuple] = [
            class_color(i) if c is None else _check_color(c, f"SegmentClasses: colour {i}")
            for i, c in enumerate(colors)
        ]

    def __len__(self) -> int:
        return len(self.names)

    def check(self, label: int, where: str) -> int:
        """``label`` as an int, or a ValueError naming ``where`` when it is not in [0, K)."""
        label = int(label)
        if not 0 <= label < len(self.names):
            raise ValueError(f"{where}: class {label}, expected 0..{len(self.names) - 1}")
        return label


def _as_map(seg, frame: np.ndarray, where: str) -> np.ndarray:
    """The (H, W) integer map ``seg`` (tensor or array) as an int64 array of the frame's size."""
    if hasattr(seg, "cpu"):
        seg = seg.cpu().numpy()
    seg = np.asarray(seg)
    if seg.ndim != 2 or not np.issubdtype(seg.dtype, np.integer):
        raise ValueError(f"{where}: expected an (H, W) integer map, got {seg.dtype} {seg.shape}")
    if seg.shape != frame.shape[:2]:
        raise ValueError(f"{where}: the map is {seg.shape}, the frame {frame.shape[:2]}")
    return seg.astype(np.int64, copy=False)


def draw_panoptic_frame(
    frame: np.ndarray,
    panoptic_seg,
    segments_info: Sequence[dict],
    classes: SegmentClasses,
    alpha: float = MASK_ALPHA,
    where: str = "panoptic frame",
) -> np.ndarray:
    """Draw one frame's panoptic segments (see the module docstring).

    Labels are placed things first (by decreasing score), then stuff (by decreasing area).

    Args:
        frame (ndarray): (H, W, 3) uint8 RGB.
        panoptic_seg: (H, W) segment ids (tensor or array), 0 = void.
        segments_info (sequence of dict): the frame's segments: ``id``, ``category_id`` (class
            index), ``isthing``; ``score`` optional. Listed segments absent from the map are
            skipped.
        classes (SegmentClasses): names and colours.
        alpha (float): overlay opacity.
        where (str): names the frame in errors.

    Returns:
        ndarray: a new (H, W, 3) uint8 RGB frame.

    Raises:
        ValueError: a map of another size, an id of the map absent from ``segments_info``, a
            class outside [0, K).
    """
    ids = _as_map(panoptic_seg, frame, where)
    present = set(np.unique(ids).tolist()) - {0}
    listed = {int(s["id"]): s for s in segments_info}
    unlisted = sorted(present - set(listed))
    if unlisted:
        raise ValueError(
            f"{where}: segment ids {unlisted[:10]} are in the map, not in segments_info"
        )
    segments = [listed[i] for i in sorted(present)]
    things = sorted(
        (s for s in segments if s["isthing"]), key=lambda s: -float(s.get("score", 0.0))
    )
    areas = {i: int((ids == i).sum()) for i in present}
    stuff = sorted((s for s in segments if not s["isthing"]), key=lambda s: -areas[int(s["id"])])
    masks, colors, labels = [], [], []
    for segment in things + stuff:
        sid = int(segment["id"])
        label = classes.check(segment["category_id"], f"{where}, segment {sid}")
        masks.append(ids == sid)
        if segment["isthing"]:
            colors.append(track_color(sid))
            labels.append(f"{classes.names[label]} #{sid}")
        else:
            colors.append(classes.colors[label])
            labels.append(classes.names[label])
    return _draw(frame, masks, colors, labels, alpha)


def draw_semantic_frame(
    frame: np.ndarray,
    sem_seg,
    classes: SegmentClasses,
    alpha: float = MASK_ALPHA,
    where: str = "semantic frame",
) -> np.ndarray:
    """Draw one frame's class map: each class present in its colour, labelled with its name
    (labels placed by decreasing area).

    Args:
        frame (ndarray): (H, W, 3) uint8 RGB.
        sem_seg: (H, W) class indices in [0, K) (tensor or array).
        classes (SegmentClasses): names and colours.
        alpha (float): overlay opacity.
        where (str): names the frame in errors.

    Returns:
        ndarray: a new (H, W, 3) uint8 RGB frame.

    Raises:
        ValueError: a map of another size or a class outside [0, K).
    """
    labels_map = _as_map(sem_seg, frame, where)
    values, counts = np.unique(labels_map, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    masks, colors, labels = [], [], []
    for value in values[order].tolist():
        label = classes.check(value, where)
        masks.append(labels_map == label)
        colors.append(classes.colors[label])
        labels.append(classes.names[label])
    return _draw(frame, masks, colors, labels, alpha)


def draw_frame_segmentation(
    frame: np.ndarray, result, kind: str, classes: SegmentClasses, alpha: float = MASK_ALPHA
) -> np.ndarray:
    """Draw one frame's segmentation result, panoptic or semantic.

    Args:
        frame (ndarray): (H, W, 3) uint8 RGB.
        result: a :class:`~video_mask2former.inference.segment_windows.FrameSegmentation` (or
            any object with ``index``, ``seg`` (H, W) and ``segments_info``).
        kind (str): "panoptic" or "semantic".
        classes (SegmentClasses): names and colours.
        alpha (float): overlay opacity.

    Returns:
        ndarray: a new (H, W, 3) uint8 RGB frame.
    """
    where = f"{kind} result of frame {result.index}"
    if kind == "panoptic":
        return draw_panoptic_frame(frame, result.seg, result.segments_info, classes, alpha, where)
    if kind == "semantic":
        return draw_semantic_frame(frame, result.seg, classes, alpha, where)
    raise ValueError(f"kind must be one of {SEGMENTATION_KINDS}, got {kind!r}")


def _draw(frame, masks, colors, labels, alpha) -> np.ndarray:
    if not masks:
        return frame.copy()
    return draw_instances(frame, np.stack(masks), colors, labels, alpha)

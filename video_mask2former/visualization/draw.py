"""Drawing video instance predictions on frames (OpenCV / NumPy only, no detectron2).

Shapes: T frames, N instances, H x W the frame size. Frames are (H, W, 3) uint8 RGB.
Every instance keeps one colour through the whole video.

Labels (:func:`label_layout`) are drawn above the top-left corner of their mask's box, moved the
least needed to lie inside the frame and clear of the labels placed before them (instances in
order, the highest score first); a text wider than the frame is shortened, and a label with no
free room left is not drawn (its mask and outline are).
"""

import colorsys
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = [
    "instance_colors",
    "track_color",
    "draw_instances",
    "label_layout",
    "LabelBox",
    "draw_frame_result",
    "VideoVisualizer",
]

# Opacity of the mask overlay.
MASK_ALPHA = 0.5
# Golden-ratio step of the hue between consecutive instances (well separated colours).
_HUE_STEP = 0.618033988749895
# Label text: OpenCV font scale per pixel of the frame's shorter side, and its minimum.
_FONT_SCALE_PER_PIXEL = 1.0 / 600
_MIN_FONT_SCALE = 0.35
# Pixels between a label's text and the edges of its box.
_LABEL_PADDING = 1
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _frame_mask(track, t: int) -> np.ndarray:
    """Frame ``t`` of one instance's (T, H, W) masks as an (H, W) bool array.

    ``track`` is a tensor (any device), an array, or any sequence of frames with a ``shape``
    (e.g. the windowed inference's RLE masks, decoded here one frame at a time).
    """
    frame = track[t]
    if hasattr(frame, "cpu"):
        frame = frame.cpu().numpy()
    return np.asarray(frame, dtype=bool)


def track_color(index: int) -> tuple:
    """The RGB colour (uint8 tuple) of instance or track ``index``: saturated, well apart from
    those of nearby indices, the same for the same index."""
    r, g, b = colorsys.hsv_to_rgb((index * _HUE_STEP) % 1.0, 0.75, 0.95)
    return (int(r * 255), int(g * 255), int(b * 255))


def instance_colors(num: int) -> List[tuple]:
    """``num`` distinct, saturated RGB colours (uint8 tuples), the same for the same index."""
    return [track_color(i) for i in range(num)]


def _text_anchor(mask: np.ndarray) -> Optional[tuple]:
    """(x, y) of the top-left corner of the mask's box, or None for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0])


class LabelBox(NamedTuple):
    """A label as drawn: its (possibly shortened) text and its box ``x0 <= x < x1``,
    ``y0 <= y < y1`` in pixels, inside the frame."""

    text: str
    x0: int
    y0: int
    x1: int
    y1: int


def label_font_scale(frame_size: Tuple[int, int]) -> float:
    """OpenCV font scale of the labels on an (H, W) frame."""
    return max(_MIN_FONT_SCALE, min(frame_size) * _FONT_SCALE_PER_PIXEL)


def _box_size(text: str, font_scale: float) -> Tuple[int, int]:
    """(width, height) of the box of ``text``: the text, its descent and the padding."""
    (width, height), baseline = cv2.getTextSize(text, _FONT, font_scale, 1)
    return width + 2 * _LABEL_PADDING, height + baseline + 2 * _LABEL_PADDING


def _fit_text(text: str, font_scale: float, max_width: int) -> str:
    """``text`` shortened from its end until its box is at most ``max_width`` wide ("" if even
    its first character is wider)."""
    while text and _box_size(text, font_scale)[0] > max_width:
        text = text[:-1]
    return text


def _disjoint(a: tuple, b: tuple) -> bool:
    """Whether boxes (x0, y0, x1, y1), ends excluded, share no pixel."""
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def _place(preferred, size, frame_size, placed) -> Optional[tuple]:
    """The box of ``size`` (w, h) nearest (L1) to the ``preferred`` top-left (x, y) that lies
    inside the (H, W) frame and shares no pixel with the ``placed`` boxes; None if none does.

    The nearest free box touches an edge of the frame or of a placed box, or keeps a preferred
    coordinate, in each axis: only those candidates are tried."""
    (width, height), (frame_h, frame_w) = size, frame_size
    if width > frame_w or height > frame_h:
        return None
    x = min(max(preferred[0], 0), frame_w - width)
    y = min(max(preferred[1], 0), frame_h - height)
    xs = {x, 0, frame_w - width} | {v for b in placed for v in (b[2], b[0] - width)}
    ys = {y, 0, frame_h - height} | {v for b in placed for v in (b[3], b[1] - height)}
    candidates = [
        (cx, cy)
        for cx in xs
        if 0 <= cx <= frame_w - width
        for cy in ys
        if 0 <= cy <= frame_h - height
    ]
    candidates.sort(key=lambda c: (abs(c[0] - x) + abs(c[1] - y), c[1], c[0]))
    for cx, cy in candidates:
        box = (cx, cy, cx + width, cy + height)
        if all(_disjoint(box, other) for other in placed):
            return box
    return None


def label_layout(masks: np.ndarray, labels: Sequence[str]) -> List[Optional[LabelBox]]:
    """Where the labels of the masks are drawn: inside the frame and pairwise disjoint.

    Each label's box preferably sits just above the top-left corner of its mask's box; labels
    are placed in order, each moved the least needed (L1 distance) to lie inside the frame and
    clear of those placed before it. A text wider than the frame is shortened from its end.

    Args:
        masks (ndarray): (N, H, W) bool.
        labels (sequence of str): N texts.

    Returns:
        list: N :class:`LabelBox`, or None for an empty mask or a label with no free room.
    """
    frame_size = masks.shape[1:]
    font_scale = label_font_scale(frame_size)
    layout, placed = [], []
    for mask, text in zip(masks, labels):
        anchor = _text_anchor(mask)
        text = _fit_text(text, font_scale, frame_size[1])
        box = None
        if anchor is not None and text:
            width, height = _box_size(text, font_scale)
            box = _place((anchor[0], anchor[1] - height), (width, height), frame_size, placed)
        if box is None:
            layout.append(None)
            continue
        placed.append(box)
        layout.append(LabelBox(text, *box))
    return layout


def _draw_label(out: np.ndarray, label: LabelBox, color: tuple, font_scale: float) -> None:
    """Fill the label's box with ``color`` and write its text in white, nothing outside it."""
    box = out[label.y0 : label.y1, label.x0 : label.x1].copy()
    box[:] = color
    (_, _), baseline = cv2.getTextSize(label.text, _FONT, font_scale, 1)
    origin = (_LABEL_PADDING, box.shape[0] - _LABEL_PADDING - baseline)
    cv2.putText(box, label.text, origin, _FONT, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    out[label.y0 : label.y1, label.x0 : label.x1] = box


def draw_instances(
    frame: np.ndarray,
    masks: np.ndarray,
    colors: Sequence[tuple],
    labels: Optional[Sequence[str]] = None,
    alpha: float = MASK_ALPHA,
) -> np.ndarray:
    """Overlay instance masks, their outlines and labels on one frame.

    Args:
        frame (ndarray): (H, W, 3) uint8 RGB.
        masks (ndarray): (N, H, W) bool.
        colors (sequence): N RGB tuples.
        labels (sequence of str, optional): N texts, placed by :func:`label_layout`.
        alpha (float): mask opacity.

    Returns:
        ndarray: a new (H, W, 3) uint8 RGB frame.
    """
    if masks.shape[1:] != frame.shape[:2]:
        raise ValueError(
            f"masks of size {masks.shape[1:]} do not match the frame {frame.shape[:2]}"
        )
    out = frame.astype(np.float32)
    for mask, color in zip(masks, colors):
        out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color, dtype=np.float32)
    out = out.round().clip(0, 255).astype(np.uint8)
    for mask, color in zip(masks, colors):
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        cv2.drawContours(out, contours, -1, color, 1)
    if labels is not None:
        font_scale = label_font_scale(frame.shape[:2])
        for label, color in zip(label_layout(masks, labels), colors):
            if label is not None:
                _draw_label(out, label, color, font_scale)
    return out


class VideoVisualizer:
    """Draws the predictions of one video, one colour per instance for all its frames.

    Args:
        class_names (sequence of str): name of every contiguous class id.
        confidence_threshold (float): instances scoring below are not drawn.
    """

    def __init__(self, class_names: Sequence[str], confidence_threshold: float = 0.5):
        self.class_names = list(class_names)
        self.confidence_threshold = confidence_threshold

    def select(self, prediction: dict) -> dict:
        """The prediction restricted to instances scoring at least the threshold.

        Args:
            prediction (dict): ``pred_scores`` (N floats), ``pred_labels`` (N ints),
                ``pred_masks`` (N (T, H, W) bool tensors or arrays), ``image_size``.

        Returns:
            dict: same keys, the kept instances in the original order.
        """
        scores = prediction["pred_scores"]
        keep = [i for i, s in enumerate(scores) if s >= self.confidence_threshold]
        return {
            "image_size": prediction.get("image_size"),
            "pred_scores": [prediction["pred_scores"][i] for i in keep],
            "pred_labels": [prediction["pred_labels"][i] for i in keep],
            "pred_masks": [prediction["pred_masks"][i] for i in keep],
        }

    def _label(self, label: int, score: float) -> str:
        name = self.class_names[label] if 0 <= label < len(self.class_names) else str(label)
        return f"{name} {score * 100:.0f}%"

    def draw(
        self, frames: Sequence[np.ndarray], prediction: dict, progress=None
    ) -> List[np.ndarray]:
        """Visualised frames, all at once (see :meth:`iter_draw`).

        Returns:
            list of ndarray: T new frames.
        """
        return list(self.iter_draw(frames, prediction, progress))

    def iter_draw(self, frames: Iterable[np.ndarray], prediction: dict, progress=None):
        """Visualised frames, one at a time (the frames may be streamed from disk).

        Args:
            frames (iterable of ndarray): T (H, W, 3) uint8 RGB frames.
            prediction (dict): the model's result for the video (see :meth:`select`); masks of
                (T, H, W) (tensors, arrays or RLE masks, decoded one frame at a time).
            progress (callable, optional): wraps the frame iterable (e.g. ``tqdm``).

        Yields:
            ndarray: the T drawn frames.
        """
        kept = self.select(prediction)
        masks = kept["pred_masks"]  # N (T, H, W), decoded frame by frame below
        colors = instance_colors(len(masks))
        labels = [
            self._label(int(label), float(score))
            for label, score in zip(kept["pred_labels"], kept["pred_scores"])
        ]
        iterator = progress(frames) if progress is not None else frames
        count = 0
        for t, frame in enumerate(iterator):
            height, width = frame.shape[:2]
            if masks and (t >= masks[0].shape[0] or tuple(masks[0].shape[1:]) != (height, width)):
                raise ValueError(
                    f"masks of shape {tuple(masks[0].shape)} do not match frame {t} of "
                    f"{height}x{width}"
                )
            if masks:
                frame_masks = np.stack([_frame_mask(m, t) for m in masks])  # (N, H, W)
            else:
                frame_masks = np.zeros((0, height, width), dtype=bool)
            count += 1
            yield draw_instances(frame, frame_masks, colors, labels)
        if masks and count != masks[0].shape[0]:
            raise ValueError(
                f"masks of shape {tuple(masks[0].shape)} do not match the {count} frames given"
            )


def draw_frame_result(frame: np.ndarray, result, class_names: Sequence[str]) -> np.ndarray:
    """Draw one frame of a stream (online inference): each instance in its track's colour,
    labelled with its class, track id and score.

    Args:
        frame (ndarray): (H, W, 3) uint8 RGB.
        result: a :class:`~video_mask2former.inference.streaming.FrameResult` of that frame.
        class_names (sequence of str): name of every contiguous class id.

    Returns:
        ndarray: a new (H, W, 3) uint8 RGB frame.
    """
    labels = []
    for instance in result.instances:
        label = instance.label
        name = class_names[label] if 0 <= label < len(class_names) else str(label)
        labels.append(f"{name} #{instance.track_id} {instance.score * 100:.0f}%")
    colors = [track_color(instance.track_id) for instance in result.instances]
    return draw_instances(frame, result.masks(), colors, labels)

"""Drawing video instance predictions on frames (OpenCV / NumPy only, no detectron2).

Shapes: T frames, N instances, H x W the frame size. Frames are (H, W, 3) uint8 RGB.
Every instance keeps one colour through the whole video.
"""

import colorsys
from typing import Iterable, List, Optional, Sequence

import cv2
import numpy as np

__all__ = [
    "instance_colors",
    "track_color",
    "draw_instances",
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
        labels (sequence of str, optional): N texts drawn at each mask's top-left corner.
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
    font_scale = max(_MIN_FONT_SCALE, min(frame.shape[:2]) * _FONT_SCALE_PER_PIXEL)
    for i, (mask, color) in enumerate(zip(masks, colors)):
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        cv2.drawContours(out, contours, -1, color, 1)
        anchor = _text_anchor(mask)
        if labels is not None and anchor is not None:
            x, y = anchor
            (w, h), base = cv2.getTextSize(labels[i], cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
            y = max(y, h + base)
            cv2.rectangle(out, (x, y - h - base), (x + w, y), color, thickness=-1)
            cv2.putText(
                out,
                labels[i],
                (x, y - base),
                cv2.FONT_HERSHEY_SIMPLEX,
                font_scale,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
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
        result: a :class:`~video_mask2former.modeling.streaming.FrameResult` of that frame.
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

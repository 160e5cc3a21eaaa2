"""Drawing ground truth: a loaded video record, or a training clip as the mapper produced it.

Shapes: T frames, N instances (tracks), H x W the frame size; frames are (H, W, 3) uint8 RGB.
Colours are the demo's (:func:`~.draw.track_color`): the n-th track of a video (annotation ids in
increasing order; for a mapped clip, its instance slots) has ``track_color(n)`` in every frame.
Labels are ``"<category> #<annotation id>"``; crowd annotations are drawn, labelled ``crowd``.

A pseudo-video clip made from one image (joint training) has frames of different sizes, each the
image under its own crop and resize; :func:`pad_frames` brings them to one size (a video file
needs one), as the model's batch padding does: zeros below and to the right.
"""

from typing import Iterator, List, Sequence

import numpy as np

from ..data.frames import read_frame
from ..data.ytvis import decode_segmentation
from .draw import draw_instances, track_color

__all__ = ["draw_clip", "draw_record", "pad_frames"]


def _name(class_names: Sequence[str], label: int) -> str:
    return class_names[label] if 0 <= label < len(class_names) else str(label)


def draw_record(record: dict, class_names: Sequence[str]) -> Iterator[np.ndarray]:
    """The T frames of a loaded record (:func:`~video_mask2former.data.ytvis.load_ytvis_dataset`)
    with its annotations drawn, one at a time.

    Args:
        record (dict): ``file_names``, ``height``, ``width``, ``annotations`` (T lists of objs
            with ``id``, ``category_id`` (contiguous), ``segmentation``, ``iscrowd``).
        class_names (sequence of str): the name of every contiguous category id.

    Yields:
        ndarray: (H, W, 3) uint8 RGB frames.
    """
    frames = record.get("annotations") or [[] for _ in record["file_names"]]
    track_ids = sorted({obj["id"] for objs in frames for obj in objs})
    slot = {ann_id: n for n, ann_id in enumerate(track_ids)}
    height, width = record["height"], record["width"]
    for file_name, objs in zip(record["file_names"], frames):
        image = read_frame(file_name)
        if image.shape[:2] != (height, width):
            raise ValueError(
                f"Frame {file_name!r} of video {record.get('video_id')} is "
                f"{image.shape[1]}x{image.shape[0]} (WxH), but the annotation file says "
                f"{width}x{height}."
            )
        masks = np.zeros((len(objs), height, width), dtype=bool)  # (N_t, H, W)
        colors, labels = [], []
        for i, obj in enumerate(objs):
            masks[i] = decode_segmentation(obj["segmentation"], height, width)
            colors.append(track_color(slot[obj["id"]]))
            crowd = " crowd" if obj.get("iscrowd", 0) else ""
            labels.append(f"{_name(class_names, obj['category_id'])} #{obj['id']}{crowd}")
        yield draw_instances(image, masks, colors, labels)


def draw_clip(
    mapped: dict, class_names: Sequence[str], image_format: str = "RGB"
) -> List[np.ndarray]:
    """The T frames of a mapped training clip (the clip mapper's or the pseudo-video mapper's
    output) with its targets drawn: what the model is trained on, after augmentation.

    Args:
        mapped (dict): ``image`` (T (3, H, W) uint8 tensors in ``image_format`` order) and
            ``instances`` (T FrameInstances or detectron2 Instances: ``gt_masks`` (N, H, W)
            tensor or BitMasks, ``gt_classes`` (N,),
            ``gt_ids`` (N,), -1 where the instance is absent from the frame).
        class_names (sequence of str): the name of every contiguous class id.
        image_format (str): "RGB" or "BGR" (``INPUT.FORMAT``).

    Returns:
        list of ndarray: T (H, W, 3) uint8 RGB frames.
    """
    out = []
    instances = mapped.get("instances") or [None] * len(mapped["image"])
    for image, inst in zip(mapped["image"], instances):
        frame = np.ascontiguousarray(image.cpu().numpy().transpose(1, 2, 0))  # (H, W, 3)
        if image_format == "BGR":
            frame = np.ascontiguousarray(frame[:, :, ::-1])
        if inst is None:
            out.append(frame)
            continue
        ids = [int(i) for i in inst.gt_ids]
        present = [n for n, i in enumerate(ids) if i >= 0]
        masks = getattr(inst.gt_masks, "tensor", inst.gt_masks)  # detectron2's BitMasks too
        masks = masks.cpu().numpy().astype(bool)[present]  # (N_t, H, W)
        colors = [track_color(n) for n in present]
        labels = [f"{_name(class_names, int(inst.gt_classes[n]))} #{ids[n]}" for n in present]
        out.append(draw_instances(frame, masks, colors, labels))
    return out


def pad_frames(frames: Sequence[np.ndarray]) -> List[np.ndarray]:
    """The frames padded with black below and to the right to the largest height and width
    among them (frames of that size are returned as they are).

    Args:
        frames (sequence of ndarray): T (H_t, W_t, 3) uint8 frames.

    Returns:
        list of ndarray: T (H, W, 3) uint8 frames, H = max H_t, W = max W_t.
    """
    if not frames:
        return []
    height = max(f.shape[0] for f in frames)
    width = max(f.shape[1] for f in frames)
    out = []
    for frame in frames:
        pad = ((0, height - frame.shape[0]), (0, width - frame.shape[1]), (0, 0))
        out.append(np.pad(frame, pad) if any(p[1] for p in pad) else frame)
    return out

"""Video semantic segmentation data in the VSPW layout.

The layout of the VSPW release (and of its 480p copy, ``VSPW_480p``, written by the VSPW
authors' ``change2_480p.py``)::

    <root>/train.txt, val.txt, test.txt     one video name a line
    <root>/data/<video>/origin/<frame>.jpg  frames
    <root>/data/<video>/mask/<frame>.png    8-bit single-channel (palette or grey) labels

Mask values: 0 is "others", 1..124 the 124 classes (in VIPSeg's category order), 255 unlabelled.
Training and evaluation use the labels remapped as the VSPW authors' code does (their
``segm_transform``: 0 -> 255, then ``v - 1``, then 254 -> 255): 0 and 255 become the ignore label
255 and class ``v`` becomes index ``v - 1`` (0..123). Predictions are PNGs of those indices.

Shapes: H x W frames; labels uint8 (H, W).
"""

import os
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
from PIL import Image

from .vps import MissingVideoSegFileError, VideoSegFormatError, locate, check_frame_size

__all__ = [
    "IGNORE_LABEL",
    "VSPW_NUM_CLASSES",
    "VssVideo",
    "check_vss_frame",
    "load_vss_split",
    "load_vss_video_dicts",
    "read_vss_label",
    "read_vss_prediction",
    "read_vss_split_file",
]

# Label of pixels that are not scored ("others" and unlabelled after the remapping).
IGNORE_LABEL = 255
# Classes of VSPW (mask values 1..124).
VSPW_NUM_CLASSES = 124
# Value of the "others" class in a VSPW mask (ignored after the remapping).
OTHERS_VALUE = 0
FRAME_EXT = ".jpg"
MASK_EXT = ".png"


def _read_single_channel(path: str, what: str, video_id, frame) -> np.ndarray:
    """The values of an 8-bit single-channel PNG (palette indices or grey levels)."""
    where = locate(path, video_id, frame)
    if not os.path.isfile(path):
        raise MissingVideoSegFileError(f"Missing {what} {where}.")
    try:
        with Image.open(path) as image:
            image_format, mode = image.format, image.mode
            if image_format == "PNG" and mode in ("P", "L"):
                values = np.array(image)  # palette PNGs give the indices
    except (OSError, ValueError, SyntaxError) as e:
        raise VideoSegFormatError(f"Cannot read {what} {where}: {e}") from None
    if image_format != "PNG" or mode not in ("P", "L"):
        raise VideoSegFormatError(
            f"{what.capitalize()} {where} is a {image_format} image of mode {mode!r}; expected "
            f"an 8-bit single-channel PNG (mode 'P' or 'L') of class values."
        )
    return values.astype(np.uint8, copy=False)


def read_vss_mask(
    path: str,
    *,
    num_classes: int = VSPW_NUM_CLASSES,
    video_id: Optional[str] = None,
    frame: Optional[str] = None,
) -> np.ndarray:
    """A VSPW mask PNG's values as stored, checked: 0 ("others"), 1..K (classes), 255
    (unlabelled). The video-consistency metric compares these (see ``evaluation/vss_metrics``).

    Args:
        path (str): the mask PNG.
        num_classes (int): K; values above K other than 255 are an error.
        video_id, frame (str, optional): named by the errors.

    Returns:
        ndarray: (H, W) uint8.

    Raises:
        MissingVideoSegFileError, VideoSegFormatError: naming the file, video and frame.
    """
    raw = _read_single_channel(path, "mask PNG", video_id, frame)
    bad = (raw > num_classes) & (raw != IGNORE_LABEL)
    if bad.any():
        values = sorted(set(np.unique(raw[bad]).tolist()))
        raise VideoSegFormatError(
            f"Mask PNG {locate(path, video_id, frame)} holds values {values[:10]}; expected 0 "
            f"(others), 1..{num_classes} (classes) or {IGNORE_LABEL} (unlabelled)."
        )
    return raw


def remap_vss_mask(raw: np.ndarray) -> np.ndarray:
    """Stored VSPW mask values to labels as the VSPW authors remap them: 0 ("others") and 255 ->
    255 (ignore), ``v`` -> ``v - 1`` otherwise. (H, W) uint8 -> (H, W) uint8."""
    label = raw.astype(np.int16) - 1
    label[(raw == OTHERS_VALUE) | (raw == IGNORE_LABEL)] = IGNORE_LABEL
    return label.astype(np.uint8)


def read_vss_label(
    path: str,
    *,
    num_classes: int = VSPW_NUM_CLASSES,
    video_id: Optional[str] = None,
    frame: Optional[str] = None,
) -> np.ndarray:
    """A VSPW mask PNG remapped as the VSPW authors do (:func:`read_vss_mask`, then
    :func:`remap_vss_mask`): class indices 0..K-1, 255 ignored.

    Returns:
        ndarray: (H, W) uint8, class indices 0..K-1 or 255.

    Raises:
        MissingVideoSegFileError, VideoSegFormatError: naming the file, video and frame.
    """
    return remap_vss_mask(
        read_vss_mask(path, num_classes=num_classes, video_id=video_id, frame=frame)
    )


def read_vss_prediction(
    path: str, num_classes: int, *, video_id: Optional[str] = None, frame: Optional[str] = None
) -> np.ndarray:
    """A predicted label PNG: class indices 0..K-1 (the remapped labels).

    Returns:
        ndarray: (H, W) uint8.

    Raises:
        MissingVideoSegFileError, VideoSegFormatError: a missing file, a PNG that is not 8-bit
            single-channel, or a value outside 0..K-1; naming the file, video and frame.
    """
    pred = _read_single_channel(path, "prediction PNG", video_id, frame)
    if pred.size and int(pred.max()) >= num_classes:
        values = sorted(set(np.unique(pred[pred >= num_classes]).tolist()))
        raise VideoSegFormatError(
            f"Prediction PNG {locate(path, video_id, frame)} holds values {values[:10]}; "
            f"expected class indices 0..{num_classes - 1}."
        )
    return pred


@dataclass
class VssVideo:
    """One video of a VSPW split.

    Attributes:
        name (str): the video's folder name.
        frame_names (list[str]): frame stems, sorted.
        image_paths (list[str]): ``data/<video>/origin/<stem>.jpg``, in the same order.
        mask_paths (list[str]): ``data/<video>/mask/<stem>.png``, in the same order; empty for
            a split without masks.
    """

    name: str
    frame_names: List[str] = field(default_factory=list)
    image_paths: List[str] = field(default_factory=list)
    mask_paths: List[str] = field(default_factory=list)


def read_vss_split_file(root: str, split_file: str) -> List[str]:
    """Video names of a split file (one a line; blank lines skipped). A bare file name such as
    ``"val.txt"`` is looked up in ``root``.

    Raises:
        MissingVideoSegFileError: no such file. VideoSegFormatError: no video, or one twice.
    """
    path = split_file if os.path.dirname(split_file) else os.path.join(root, split_file)
    if not os.path.isfile(path):
        raise MissingVideoSegFileError(f"Missing split file {path} (one video name a line).")
    with open(path, "r", encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise VideoSegFormatError(f"Split file {path} lists no video.")
    seen = set()
    for name in names:
        if name in seen:
            raise VideoSegFormatError(f"Split file {path} lists video {name!r} twice.")
        seen.add(name)
    return names


def _stems(folder: str, ext: str) -> List[str]:
    return sorted(
        os.path.splitext(n)[0]
        for n in os.listdir(folder)
        if n.lower().endswith(ext) and not n.startswith(".")
    )


def load_vss_split(root: str, split_file: str, *, with_masks: bool = True) -> List[VssVideo]:
    """The videos of a VSPW split.

    Args:
        root (str): the dataset root (holding ``data/``).
        split_file (str): the split's video list (a bare name is looked up in ``root``).
        with_masks (bool): whether every frame must have a mask (False for ``test.txt``).

    Returns:
        list[VssVideo]: in the split file's order, frames sorted by name.

    Raises:
        MissingVideoSegFileError: a missing video folder, ``origin/`` or ``mask/`` folder, or a
            frame without its mask. VideoSegFormatError: a video without frames, or a mask
            without its frame; naming the video and the frame.
    """
    videos = []
    for name in read_vss_split_file(root, split_file):
        origin = os.path.join(root, "data", name, "origin")
        if not os.path.isdir(origin):
            raise MissingVideoSegFileError(f"Missing frame folder {locate(origin, name)}.")
        stems = _stems(origin, FRAME_EXT)
        if not stems:
            raise VideoSegFormatError(f"Frame folder {locate(origin, name)} holds no {FRAME_EXT}.")
        video = VssVideo(
            name, stems, [os.path.join(origin, s + FRAME_EXT) for s in stems], mask_paths=[]
        )
        if with_masks:
            video.mask_paths = _mask_paths(root, name, stems)
        videos.append(video)
    return videos


def _mask_paths(root: str, name: str, stems: List[str]) -> List[str]:
    folder = os.path.join(root, "data", name, "mask")
    if not os.path.isdir(folder):
        raise MissingVideoSegFileError(f"Missing mask folder {locate(folder, name)}.")
    masks = _stems(folder, MASK_EXT)
    missing = sorted(set(stems) - set(masks))
    if missing:
        raise MissingVideoSegFileError(
            f"Missing mask {locate(os.path.join(folder, missing[0] + MASK_EXT), name, missing[0])}"
            f" ({len(missing)} frame(s) of the video have no mask)."
        )
    extra = sorted(set(masks) - set(stems))
    if extra:
        raise VideoSegFormatError(
            f"Mask {locate(os.path.join(folder, extra[0] + MASK_EXT), name, extra[0])} has no "
            f"frame in {os.path.join(root, 'data', name, 'origin')}."
        )
    return [os.path.join(folder, s + MASK_EXT) for s in stems]


def read_vss_frame_mask(
    video: VssVideo, index: int, *, num_classes: int = VSPW_NUM_CLASSES
) -> np.ndarray:
    """The stored mask values of frame ``index`` of ``video`` (:func:`read_vss_mask`), checked
    against its frame's size.

    Returns:
        ndarray: (H, W) uint8 stored values.
    """
    frame = video.frame_names[index]
    raw = read_vss_mask(
        video.mask_paths[index], num_classes=num_classes, video_id=video.name, frame=frame
    )
    check_frame_size(
        raw.shape,
        video.image_paths[index],
        png_path=video.mask_paths[index],
        video_id=video.name,
        frame=frame,
    )
    return raw


def check_vss_frame(
    video: VssVideo, index: int, *, num_classes: int = VSPW_NUM_CLASSES
) -> np.ndarray:
    """The remapped label of frame ``index`` of ``video``, checked against its frame's size.

    Returns:
        ndarray: (H, W) uint8 (:func:`read_vss_label`).
    """
    return remap_vss_mask(read_vss_frame_mask(video, index, num_classes=num_classes))


def load_vss_video_dicts(root: str, split_file: str, *, with_masks: bool = True) -> List[dict]:
    """Per-video records of a VSPW-layout split (detectron2-style plain dicts).

    Args:
        root, split_file, with_masks: as :func:`load_vss_split`.

    Returns:
        list[dict]: one per video, in the split file's order: ``video_id``, ``length`` (T),
        ``file_names`` (T frame paths), ``frame_names`` (T stems); with masks also
        ``sem_seg_file_names`` (T mask paths, read with :func:`read_vss_label`).
    """
    records = []
    for video in load_vss_split(root, split_file, with_masks=with_masks):
        record = {
            "video_id": video.name,
            "length": len(video.frame_names),
            "file_names": list(video.image_paths),
            "frame_names": list(video.frame_names),
        }
        if with_masks:
            record["sem_seg_file_names"] = list(video.mask_paths)
        records.append(record)
    return records

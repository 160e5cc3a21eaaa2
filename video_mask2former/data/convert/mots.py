"""MOTS txt (KITTI-MOTS, MOTSChallenge) → converted videos.

One text file per sequence, one line per object and frame::

    <frame> <object id> <class id> <image height> <image width> <rle>

``rle`` is a COCO compressed RLE string of an ``image height`` x ``image width`` mask. The class
of an object is ``object id // 1000`` (1 car, 2 pedestrian); object id 10000 (class 10) marks an
ignore region, which YouTube-VIS cannot express: its pixels belong to no object (they are not
written). The format forbids overlapping masks in one frame, and so does this reader.

Layouts of ``txt`` (a file or a folder):

* a file: one sequence, named after the file (``0002.txt`` → ``0002``; ``.../MOTS20-02/gt/gt.txt``
  → ``MOTS20-02``);
* a folder of ``*.txt`` files (KITTI-MOTS ``instances_txt``), or of ``<sequence>/gt/gt.txt``
  (MOTSChallenge).

The frames of a sequence are in ``frames/<sequence>/`` (KITTI-MOTS ``image_02/<sequence>``) or
``frames/<sequence>/img1/`` (MOTSChallenge); frame number ``f`` is the image whose name is the
number ``f`` (``000005.png``, ``000005.jpg``: KITTI counts from 0, MOTSChallenge from 1). A
video's frames are all the images of its folder.
"""

import logging
import os
from typing import Dict, List, Tuple

import numpy as np
import pycocotools.mask as mask_util

from ..rle import parse_compressed_rle
from .ytvis_writer import (
    ConversionError,
    Track,
    VideoAnnotations,
    check_frame_size,
    frame_size,
    list_frames,
)

__all__ = ["MOTS_CATEGORIES", "IGNORE_OBJECT_ID", "convert_mots", "read_mots_txt"]

logger = logging.getLogger(__name__)

# MOTS class ids and names (KITTI-MOTS; MOTSChallenge has pedestrians only).
MOTS_CATEGORIES: List[Tuple[int, str]] = [(1, "car"), (2, "pedestrian")]
IGNORE_OBJECT_ID = 10000
IGNORE_CLASS_ID = 10
CLASS_DIVISOR = 1000  # class id = object id // 1000
_FIELDS = 6
_CLASS_NAMES = dict(MOTS_CATEGORIES)


def _parse_line(line: str, where: str) -> Tuple[int, int, int, Tuple[int, int], str]:
    fields = line.split()
    if len(fields) != _FIELDS:
        raise ConversionError(
            f"{where}: {len(fields)} fields, expected 6: frame obj_id class_id height width rle"
        )
    try:
        frame, obj_id, class_id, height, width = (int(v) for v in fields[:5])
    except ValueError:
        raise ConversionError(f"{where}: the first five fields must be integers") from None
    if obj_id != IGNORE_OBJECT_ID and class_id != obj_id // CLASS_DIVISOR:
        raise ConversionError(
            f"{where}: class id {class_id} is not object id {obj_id} // {CLASS_DIVISOR}"
        )
    rle = fields[5]
    try:
        total = sum(parse_compressed_rle(rle))
    except ValueError as e:
        raise ConversionError(
            f"{where}: the RLE is not a COCO compressed RLE string: {e}"
        ) from None
    if total != height * width:
        raise ConversionError(
            f"{where}: the RLE covers {total} pixels, expected height x width = {height} x "
            f"{width} = {height * width}"
        )
    return frame, obj_id, class_id, (height, width), rle


def _frame_files(frames_dir: str, video: str) -> Dict[int, str]:
    """Frame number -> image file of a sequence (module docstring)."""
    folder = os.path.join(frames_dir, video)
    if os.path.isdir(os.path.join(folder, "img1")):
        folder = os.path.join(folder, "img1")
    by_number: Dict[int, str] = {}
    for path in list_frames(folder):
        stem = os.path.splitext(os.path.basename(path))[0]
        if not stem.isdigit():
            raise ConversionError(
                f"frame {path}: its name is not a frame number (MOTS frames are named by number, "
                f"e.g. 000005.png)"
            )
        by_number[int(stem)] = path
    return by_number


def read_mots_txt(path: str, video: str, frames_dir: str) -> VideoAnnotations:
    """One MOTS sequence file and its frames (see the module docstring).

    Raises:
        ConversionError: naming the file, the line, the video and the frame of a bad line: wrong
            fields, a class id that is not object id // 1000, a bad RLE, a mask of another size
            than its frame, an object twice in a frame, overlapping masks, a frame without image.
    """
    frames = _frame_files(frames_dir, video)
    numbers = sorted(frames)
    index = {n: t for t, n in enumerate(numbers)}
    tracks: Dict[int, Track] = {}
    occupied: Dict[int, Tuple[np.ndarray, Dict[int, int]]] = {}  # frame -> (owner ids, lines)
    ignored = 0
    with open(path) as f:
        for line_num, line in enumerate(f, start=1):
            if not line.strip():
                continue
            frame, obj_id, class_id, size, rle = _parse_line(
                line, f"{path}, line {line_num} (video {video!r})"
            )
            where = f"{path}, line {line_num} (video {video!r}, frame {frame})"
            if frame not in frames:
                raise ConversionError(
                    f"{where}: no image for frame {frame} in the frames of {video!r} (frames "
                    f"missing for an annotated frame)"
                )
            if frame not in occupied:  # the first line of this frame: its size, once
                check_frame_size(
                    size, frames[frame], f"{path}, line {line_num}: the mask", video, frame
                )
            elif occupied[frame][0].shape != size:
                raise ConversionError(
                    f"{where}: the mask is {size[1]}x{size[0]} (WxH), other lines of this frame "
                    f"say {occupied[frame][0].shape[1]}x{occupied[frame][0].shape[0]}"
                )
            mask = mask_util.decode({"size": list(size), "counts": rle.encode("ascii")}) > 0
            owners, lines = occupied.setdefault(frame, (np.zeros(size, dtype=np.int64), {}))
            if obj_id in lines:
                raise ConversionError(
                    f"{where}: object {obj_id} is already in this frame (line {lines[obj_id]})"
                )
            clash = np.unique(owners[mask])
            clash = clash[clash > 0]
            if len(clash):
                other = int(clash[0])
                raise ConversionError(
                    f"{where}: the mask of object {obj_id} overlaps object {other} (line "
                    f"{lines[other]}); MOTS masks of one frame must not overlap"
                )
            owners[mask] = obj_id
            lines[obj_id] = line_num
            if obj_id == IGNORE_OBJECT_ID:
                ignored += 1
                continue
            if class_id not in _CLASS_NAMES:
                raise ConversionError(
                    f"{where}: class id {class_id} is not a MOTS class ({MOTS_CATEGORIES})"
                )
            track = tracks.setdefault(
                obj_id, Track(_CLASS_NAMES[class_id], [None] * len(numbers), f"object {obj_id}")
            )
            track.segmentations[index[frame]] = {"size": list(size), "counts": rle}
    if ignored:
        logger.info(f"{path}: {ignored} ignore regions (object id {IGNORE_OBJECT_ID}) not written.")
    height, width = frame_size(frames[numbers[0]])
    for track in tracks.values():
        track.segmentations = [
            s if s is None or _nonempty(s) else None for s in track.segmentations
        ]
    kept = [
        tracks[k] for k in sorted(tracks) if any(s is not None for s in tracks[k].segmentations)
    ]
    return VideoAnnotations(video, [frames[n] for n in numbers], height, width, kept)


def _nonempty(segm: dict) -> bool:
    return mask_util.area({"size": segm["size"], "counts": segm["counts"].encode("ascii")}) > 0


def _sequence_files(txt: str) -> List[Tuple[str, str]]:
    """(file, sequence name) of a file or a folder (module docstring)."""
    if os.path.isfile(txt):
        return [(txt, _sequence_name(txt))]
    if not os.path.isdir(txt):
        raise ConversionError(f"MOTS input {txt} does not exist")
    files = sorted(os.path.join(txt, n) for n in os.listdir(txt) if n.endswith(".txt"))
    if not files:
        files = sorted(
            os.path.join(txt, n, "gt", "gt.txt")
            for n in os.listdir(txt)
            if os.path.isfile(os.path.join(txt, n, "gt", "gt.txt"))
        )
    if not files:
        raise ConversionError(
            f"MOTS folder {txt} holds no .txt file nor <sequence>/gt/gt.txt (MOTSChallenge)"
        )
    return [(f, _sequence_name(f)) for f in files]


def _sequence_name(path: str) -> str:
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    if parts[-1] == "gt.txt" and len(parts) >= 3 and parts[-2] == "gt":
        return parts[-3]
    return os.path.splitext(parts[-1])[0]


def convert_mots(txt: str, frames_dir: str) -> Tuple[List[VideoAnnotations], List[Tuple[int, str]]]:
    """Read MOTS sequences (see the module docstring).

    Args:
        txt (str): a sequence file, or a folder of them.
        frames_dir (str): one sub-folder of frames per sequence.

    Returns:
        (videos, categories): the sequences in name order and the MOTS categories (1 car,
        2 pedestrian).
    """
    if not os.path.isdir(frames_dir):
        raise ConversionError(f"frames folder {frames_dir} does not exist")
    videos = [read_mots_txt(path, name, frames_dir) for path, name in _sequence_files(txt)]
    return videos, list(MOTS_CATEGORIES)

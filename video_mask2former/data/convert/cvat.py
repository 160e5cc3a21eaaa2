"""CVAT "for video 1.1" XML → converted videos (one XML file per video, i.e. per CVAT task).

The parts of the format read here (CVAT's XML annotation format, version 1.1, interpolation
mode)::

    <annotations>
      <meta><task>                        # or <job>, for a job's export
        <name>task name</name>
        <start_frame>0</start_frame>      # optional; frame numbers below are video frame numbers:
        <frame_filter>step=2</frame_filter>   # frame f is the ((f - start) / step)-th task frame
        <labels><label><name>car</name><type>polygon</type></label>...</labels>
        <original_size><width>W</width><height>H</height></original_size>
      </task></meta>
      <track id="0" label="car">
        <polygon frame="3" outside="0" occluded="0" keyframe="1" points="x0,y0;x1,y1;..."/>
        <mask frame="4" outside="0" occluded="1" keyframe="0" rle="12, 5, 3, ..." left="10"
              top="20" width="7" height="4"/>
        ...
      </track>
    </annotations>

* A ``<mask>``'s ``rle`` is CVAT's own run-length code: run lengths (comma-separated) of 0 and 1
  pixels, starting with 0, in row-major order over the ``width`` x ``height`` box whose top-left
  pixel is (``left``, ``top``); they must sum to ``width * height`` and the box must lie in the
  frame.
* A ``<polygon>`` is rasterised by pycocotools, exactly as the YouTube-VIS loader rasterises a
  polygon, and written as RLE.
* ``outside="1"``: the object is not in that frame (null), and stays out until its track's next
  shape. ``occluded="1"``: the object is still there (its visible part is what was drawn), so
  the shape is kept.
* ``keyframe``: CVAT writes a shape for every frame a track spans (the interpolated ones with
  ``keyframe="0"``), so each shape is taken as it is and no interpolation is done here. A frame
  that a track skips between two shapes (an XML written by another tool) is left empty (null)
  and counted in one warning.
* Tracks of boxes (and of polylines, points, cuboids, ellipses, skeletons) have no mask: they are
  ignored, with one warning per file saying how many.

Categories are the file's declared labels of a type that can hold a mask (``any``, ``mask``,
``polygon`` or no type), plus any other label a polygon / mask track uses, numbered 1..K in
name order. The frames of the video are the image files of its folder in name order (CVAT's
export names them ``frame_000000.png``, ...).
"""

import logging
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util

from .ytvis_writer import (
    ConversionError,
    Track,
    VideoAnnotations,
    check_frame_size,
    encode_mask,
    frame_size,
    list_frames,
)

__all__ = ["convert_cvat", "decode_cvat_mask", "read_cvat_video"]

logger = logging.getLogger(__name__)

MASK_SHAPES = ("polygon", "mask")
# Track shapes without a mask, ignored with a warning.
OTHER_SHAPES = ("box", "polyline", "points", "cuboid", "ellipse", "skeleton")
# Label types whose labels become categories (besides those used by polygon / mask tracks).
_MASK_LABEL_TYPES = ("", "any", "mask", "polygon")
_STEP = re.compile(r"step\s*=\s*(\d+)")


def decode_cvat_mask(rle: str, left: int, top: int, width: int, height: int, size, where: str):
    """The (H, W) bool mask of a CVAT ``<mask>`` in a frame of ``size`` (H, W).

    Raises:
        ConversionError: prefixed with ``where`` when the run lengths are not integers, do not
            sum to ``width * height``, or the box leaves the frame.
    """
    try:
        runs = [int(v) for v in rle.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise ConversionError(
            f"{where}: rle {rle[:40]!r} is not comma-separated integers"
        ) from None
    if any(r < 0 for r in runs) or sum(runs) != width * height:
        raise ConversionError(
            f"{where}: rle run lengths sum to {sum(runs)}, expected width x height = "
            f"{width} x {height} = {width * height} (non-negative)"
        )
    if left < 0 or top < 0 or left + width > size[1] or top + height > size[0]:
        raise ConversionError(
            f"{where}: the mask box (left {left}, top {top}, {width}x{height}) leaves the "
            f"{size[1]}x{size[0]} frame"
        )
    values = np.zeros(len(runs), dtype=bool)
    values[1::2] = True  # runs alternate 0, 1, 0, ... starting with 0
    box = np.repeat(values, runs).reshape(height, width)
    mask = np.zeros(size, dtype=bool)
    mask[top : top + height, left : left + width] = box
    return mask


def _polygon_mask(points: str, size, where: str) -> np.ndarray:
    try:
        coords = [float(v) for pair in points.split(";") for v in pair.split(",")]
    except ValueError:
        raise ConversionError(f"{where}: points {points[:40]!r} are not x,y;x,y;...") from None
    if len(coords) < 6 or len(coords) % 2:
        return np.zeros(size, dtype=bool)  # fewer than 3 points: no area
    rles = mask_util.frPyObjects([coords], size[0], size[1])
    return mask_util.decode(mask_util.merge(rles)).astype(bool)


def _int(element: ET.Element, name: str, where: str, default: Optional[int] = None) -> int:
    value = element.get(name)
    if value is None:
        if default is not None:
            return default
        raise ConversionError(f"{where}: <{element.tag}> has no {name!r} attribute")
    try:
        return int(float(value))
    except ValueError:
        raise ConversionError(f"{where}: {name}={value!r} is not a number") from None


def _meta(root: ET.Element, path: str) -> dict:
    """Task name, size, frame numbering and mask labels of the file's ``<meta>``."""
    task = root.find("meta/task")
    if task is None:
        task = root.find("meta/job")
    if root.find("image") is not None:
        raise ConversionError(
            f"{path} is a CVAT 'for images' export (<image> elements): export the task as "
            f"'CVAT for video 1.1'"
        )
    info = {"name": None, "start": 0, "step": 1, "size": None, "labels": []}
    if task is None:
        return info
    info["name"] = (task.findtext("name") or "").strip() or None
    info["start"] = int(task.findtext("start_frame") or 0)
    step = _STEP.search(task.findtext("frame_filter") or "")
    info["step"] = int(step.group(1)) if step else 1
    width, height = task.findtext("original_size/width"), task.findtext("original_size/height")
    if width and height:
        info["size"] = (int(height), int(width))
    for label in task.iter("label"):
        name = (label.findtext("name") or "").strip()
        if name and (label.findtext("type") or "").strip() in _MASK_LABEL_TYPES:
            info["labels"].append(name)
    return info


def _frames_folder(frames_dir: str, task_name: Optional[str], xml_path: str) -> Tuple[str, str]:
    """(video name, frames folder): ``frames_dir/<task name>``, ``frames_dir/<XML stem>``, or
    ``frames_dir`` itself when it holds the frames."""
    stem = os.path.splitext(os.path.basename(xml_path))[0]
    candidates = [n for n in (task_name, stem) if n and "/" not in n and os.sep not in n]
    for name in candidates:
        if os.path.isdir(os.path.join(frames_dir, name)):
            return name, os.path.join(frames_dir, name)
    if os.path.isdir(frames_dir) and any(
        os.path.isfile(os.path.join(frames_dir, n)) for n in os.listdir(frames_dir)
    ):
        list_frames(frames_dir)  # raises when it holds no image
        return candidates[0], frames_dir
    wanted = " or ".join(os.path.join(frames_dir, n) for n in candidates)
    raise ConversionError(f"{xml_path}: no frames folder for it: expected {wanted}")


def _frame_index(frame: int, meta: dict, num_frames: int, where: str) -> int:
    offset = frame - meta["start"]
    if offset < 0 or offset % meta["step"]:
        raise ConversionError(
            f"{where}: frame {frame} is not a frame of the task (start_frame {meta['start']}, "
            f"step {meta['step']})"
        )
    index = offset // meta["step"]
    if index >= num_frames:
        raise ConversionError(
            f"{where}: frame {frame} is annotated but the frames folder has only {num_frames} "
            f"frames (frames missing for an annotated frame)"
        )
    return index


def _read_track(track, frames, meta, size, path, video) -> Tuple[Optional[Track], int]:
    """The Track of a polygon / mask ``<track>`` (None for other shapes), and its skipped
    frames."""
    where_track = f"{path}: track {track.get('id', '?')} (label {track.get('label')!r}"
    shapes = [s for s in track if s.tag in MASK_SHAPES]
    if not shapes:
        return None, 0
    segms: List[Optional[dict]] = [None] * len(frames)
    listed: Dict[int, bool] = {}  # frame index -> outside
    for shape in shapes:
        frame = _int(shape, "frame", where_track)
        where = f"{where_track}, video {video!r}, frame {frame})"
        t = _frame_index(frame, meta, len(frames), where)
        if t in listed:
            raise ConversionError(f"{where}: the track has two shapes in this frame")
        outside = shape.get("outside", "0") == "1"
        listed[t] = outside
        if outside:
            continue
        if shape.tag == "polygon":
            mask = _polygon_mask(shape.get("points", ""), size, where)
        else:
            box = [_int(shape, k, where) for k in ("left", "top", "width", "height")]
            mask = decode_cvat_mask(shape.get("rle", ""), *box, size, where)
        segms[t] = encode_mask(mask)
    if all(s is None for s in segms):
        raise ConversionError(
            f"{where_track}, video {video!r}): the track has no frame where its object is "
            f"visible (every shape outside or empty): a track without frames"
        )
    order = sorted(listed)
    skipped = sum(b - a - 1 for a, b in zip(order, order[1:]) if not listed[a])
    return Track(track.get("label", ""), segms, f"track {track.get('id', '?')} of {path}"), skipped


def read_cvat_video(xml_path: str, frames_dir: str) -> Tuple[VideoAnnotations, List[str]]:
    """One CVAT for video 1.1 XML file and its frames (see the module docstring).

    Args:
        xml_path (str): the XML file.
        frames_dir (str): holds the task's frames: in ``frames_dir/<task name>``,
            ``frames_dir/<XML file name without .xml>`` or ``frames_dir`` itself.

    Returns:
        (video, labels): the video, and the labels that can be categories.
    """
    if not os.path.isfile(xml_path):
        raise FileNotFoundError(f"CVAT XML file {xml_path} does not exist")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        raise ConversionError(f"{xml_path}: not valid XML ({e})") from None
    if root.tag != "annotations":
        raise ConversionError(
            f"{xml_path}: the root element is <{root.tag}>, expected <annotations>"
        )
    meta = _meta(root, xml_path)
    video, folder = _frames_folder(frames_dir, meta["name"], xml_path)
    frames = list_frames(folder)
    size = frame_size(frames[0])
    if meta["size"] is not None:
        check_frame_size(meta["size"], frames[0], f"{xml_path}'s original_size", video, 0)
    tracks, ignored, skipped = [], Counter(), 0
    for element in root.findall("track"):
        track, gaps = _read_track(element, frames, meta, size, xml_path, video)
        if track is None:
            kinds = {s.tag for s in element} & set(OTHER_SHAPES)
            ignored.update(kinds or {"empty"})
            if not kinds:
                raise ConversionError(
                    f"{xml_path}: track {element.get('id', '?')} (label {element.get('label')!r},"
                    f" video {video!r}) has no shape: a track without frames"
                )
            continue
        tracks.append(track)
        skipped += gaps
    if ignored:
        counts = ", ".join(f"{n} of {k}" for k, n in sorted(ignored.items()))
        logger.warning(f"{xml_path}: ignored the tracks without a mask ({counts}).")
    if skipped:
        logger.warning(
            f"{xml_path}: {skipped} frames inside tracks have no shape (left empty; CVAT's own "
            f"export lists every frame of a track)."
        )
    labels = list(meta["labels"]) + [t.category for t in tracks]
    return VideoAnnotations(video, frames, size[0], size[1], tracks), labels


def convert_cvat(
    xml_files: Sequence[str], frames_dir: str
) -> Tuple[List[VideoAnnotations], List[Tuple[int, str]]]:
    """Read CVAT for video 1.1 XML files, one video each (see :func:`read_cvat_video`).

    Returns:
        (videos, categories): the videos in the order of the files, and the (id, name)
        categories (module docstring).
    """
    videos, labels = [], set()
    for path in xml_files:
        video, video_labels = read_cvat_video(path, frames_dir)
        videos.append(video)
        labels.update(video_labels)
    return videos, list(enumerate(sorted(labels), start=1))

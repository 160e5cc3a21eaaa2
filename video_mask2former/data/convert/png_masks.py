"""Instance-id PNG masks per frame (DAVIS 2017, YouTube-VOS) → converted videos.

Layout::

    FRAMES/<video>/<frame>.jpg       # the frames (any image type)
    MASKS/<video>/<frame>.png        # one mask per annotated frame, same <frame> name

A mask is a palette (mode P) or grey (L, or 16-bit) PNG whose pixel value is the object id: 0 is
background, 255 is "ignored" (DAVIS's void border; YouTube-VIS has no ignore label, so those
pixels belong to no object). An object is the set of pixels of one id in one video, across its
frames. The videos are the sub-folders of ``MASKS``; a video's frames are its annotated frames
(YouTube-VOS annotates every 5th frame: the frames without a mask are left out, and counted in one
log line).

Classes come from one name for every object (``class_name``) or from a mapping file (``classes``):

* CSV with the header ``video,object_id,category`` and one row per object::

      video,object_id,category
      bear,1,bear
      bmx-trees,1,bicycle
      bmx-trees,2,person

* JSON, either YouTube-VOS's ``meta.json`` (``{"videos": {video: {"objects": {id: {"category":
  name, ...}}}}}``) or the plain ``{video: {id: name}}``.

Category ids are 1..K in the order of the sorted category names.
"""

import csv
import json
import logging
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from .ytvis_writer import (
    ConversionError,
    Track,
    VideoAnnotations,
    check_frame_size,
    encode_mask,
    list_frames,
)

__all__ = ["BACKGROUND_ID", "IGNORE_ID", "convert_png_masks", "read_class_map", "read_id_mask"]

logger = logging.getLogger(__name__)

BACKGROUND_ID = 0
IGNORE_ID = 255  # DAVIS's void label; also the largest 8-bit value
_CSV_COLUMNS = ("video", "object_id", "category")
# Pillow modes of masks whose values are ids: palette, grey, 16/32-bit grey.
_ID_MODES = ("P", "L", "I;16", "I;16L", "I;16B", "I")

ClassMap = Dict[Tuple[str, int], str]


def read_class_map(path: str) -> ClassMap:
    """The (video, object id) → category name mapping of a CSV or JSON file (module docstring).

    Raises:
        FileNotFoundError, ConversionError: naming the file (and the row) when it is missing or
            not in one of the layouts.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"class mapping file {path} does not exist")
    if path.lower().endswith(".csv"):
        return _read_csv(path)
    if path.lower().endswith(".json"):
        return _read_json(path)
    raise ConversionError(f"class mapping file {path}: expected a .csv or a .json file")


def _read_csv(path: str) -> ClassMap:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != _CSV_COLUMNS:
            raise ConversionError(
                f"{path}: the header is {reader.fieldnames}, expected {','.join(_CSV_COLUMNS)}"
            )
        mapping: ClassMap = {}
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            mapping[_key(row["video"], row["object_id"], where)] = _name(row["category"], where)
    return mapping


def _read_json(path: str) -> ClassMap:
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ConversionError(f"{path}: not valid JSON ({e})") from None
    if isinstance(data, dict) and isinstance(data.get("videos"), dict):  # YouTube-VOS meta.json
        data = {
            video: {
                oid: (obj or {}).get("category") if isinstance(obj, dict) else None
                for oid, obj in (entry or {}).get("objects", {}).items()
            }
            for video, entry in data["videos"].items()
        }
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConversionError(
            f"{path}: expected {{video: {{object id: category}}}} or YouTube-VOS's meta.json "
            f"({{'videos': {{video: {{'objects': {{id: {{'category': name}}}}}}}}}})"
        )
    mapping: ClassMap = {}
    for video, objects in data.items():
        for oid, name in objects.items():
            where = f"{path}, video {video!r}, object {oid}"
            mapping[_key(video, oid, where)] = _name(name, where)
    return mapping


def _key(video, object_id, where: str) -> Tuple[str, int]:
    try:
        oid = int(object_id)
    except (TypeError, ValueError):
        raise ConversionError(f"{where}: object id {object_id!r} is not an integer") from None
    if oid <= BACKGROUND_ID or oid == IGNORE_ID:
        raise ConversionError(
            f"{where}: object id {oid} is the background ({BACKGROUND_ID}) or ignore "
            f"({IGNORE_ID}) value"
        )
    return str(video), oid


def _name(name, where: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConversionError(f"{where}: category {name!r} is not a name")
    return name.strip()


def read_id_mask(path: str) -> np.ndarray:
    """The (H, W) int64 object ids of a palette or grey PNG mask.

    Raises:
        ConversionError: naming the file when it is not an image or holds colours (RGB).
    """
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            ids = np.asarray(img).astype(np.int64) if mode in _ID_MODES else None
    except (OSError, SyntaxError, ValueError) as e:
        raise ConversionError(f"mask {path} cannot be read as an image ({e})") from None
    if ids is None:
        raise ConversionError(
            f"mask {path} has pixels of mode {mode}, expected a palette or grey PNG whose value "
            f"is the object id (0 background, {IGNORE_ID} ignored)"
        )
    return ids


def _pair_frames(video: str, frames: List[str], masks: List[str]) -> List[Tuple[str, str]]:
    """(frame, mask) of each mask, matched by file name without extension."""
    by_stem = {os.path.splitext(os.path.basename(f))[0]: f for f in frames}
    pairs = []
    for mask in masks:
        stem = os.path.splitext(os.path.basename(mask))[0]
        if stem not in by_stem:
            raise ConversionError(
                f"mask {mask} (video {video!r}, frame {stem}) has no frame: expected an image "
                f"named {stem}.* in {os.path.dirname(frames[0])}"
            )
        pairs.append((by_stem[stem], mask))
    skipped = len(frames) - len(pairs)
    if skipped:
        logger.info(f"Video {video!r}: {skipped} of {len(frames)} frames have no mask: left out.")
    return pairs


def _convert_video(
    video: str,
    frames_dir: str,
    masks_dir: str,
    classes: Optional[ClassMap],
    class_name: Optional[str],
    classes_file: str,
) -> VideoAnnotations:
    pairs = _pair_frames(
        video,
        list_frames(os.path.join(frames_dir, video)),
        list_frames(os.path.join(masks_dir, video), "masks"),
    )
    ids_per_frame = []
    for t, (frame, mask) in enumerate(pairs):
        ids = read_id_mask(mask)
        check_frame_size(ids.shape, frame, f"mask {mask}", video, t)
        ids_per_frame.append(ids)
    height, width = ids_per_frame[0].shape
    object_ids = sorted(
        set(np.unique(np.stack(ids_per_frame)).tolist()) - {BACKGROUND_ID, IGNORE_ID}
    )
    tracks = []
    for oid in object_ids:
        category = class_name
        if category is None:
            category = classes.get((video, oid))
            if category is None:
                first = next(t for t, ids in enumerate(ids_per_frame) if (ids == oid).any())
                raise ConversionError(
                    f"object id {oid} of video {video!r} (first in frame {first}, "
                    f"{pairs[first][1]}) has no class in {classes_file}"
                )
        segms = [encode_mask(ids == oid) for ids in ids_per_frame]
        tracks.append(Track(category, segms, f"object {oid}"))
    return VideoAnnotations(video, [f for f, _ in pairs], height, width, tracks)


def convert_png_masks(
    frames_dir: str,
    masks_dir: str,
    *,
    classes: Optional[str] = None,
    class_name: Optional[str] = None,
) -> Tuple[List[VideoAnnotations], List[Tuple[int, str]]]:
    """Read a DAVIS / YouTube-VOS-style dataset (see the module docstring).

    Args:
        frames_dir (str): one sub-folder of frames per video.
        masks_dir (str): one sub-folder of PNG masks per video (its videos are converted).
        classes (str): the class mapping file (CSV or JSON); exactly one of it and
            ``class_name``.
        class_name (str): the category of every object.

    Returns:
        (videos, categories): the videos in name order and the (id, name) categories.

    Raises:
        ConversionError: naming the file, the video and the frame of a bad input (a mask of
            another size than its frame, a mask without a frame, an object id without a class).
    """
    if (classes is None) == (class_name is None):
        raise ConversionError("give exactly one of a class mapping file and one class name")
    mapping = read_class_map(classes) if classes is not None else None
    if not os.path.isdir(masks_dir):
        raise ConversionError(f"masks folder {masks_dir} does not exist")
    if not os.path.isdir(frames_dir):
        raise ConversionError(f"frames folder {frames_dir} does not exist")
    names = sorted(n for n in os.listdir(masks_dir) if os.path.isdir(os.path.join(masks_dir, n)))
    if not names:
        raise ConversionError(f"masks folder {masks_dir} has no sub-folder (one per video)")
    videos = [
        _convert_video(name, frames_dir, masks_dir, mapping, class_name, classes or "")
        for name in names
    ]
    if class_name is not None:
        return videos, [(1, class_name)]
    used = sorted({track.category for video in videos for track in video.tracks})
    return videos, list(enumerate(used, start=1))

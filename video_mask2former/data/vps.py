"""Video panoptic segmentation data in the VIPSeg "720P / COCO format" layout.

The layout is the one VIPSeg's own conversion scripts (``change2_720p.py``,
``create_panoptic_video_labels.py``, ``splitjson.py``) write::

    VIPSeg_720P/images/<video_id>/<frame>.jpg           frames
    VIPSeg_720P/panomasksRGB/<video_id>/<frame>.png     RGB id PNGs: id = R + 256 G + 256^2 B
    VIPSeg_720P/panoptic_gt_VIPSeg_{train,val}.json

and the JSON holds::

    {"videos": [{"video_id", "images": [{"id", "file_name", "width", "height"}]}],
     "annotations": [{"video_id", "annotations": [{"image_id", "file_name",
                                                   "segments_info": [{"id", "category_id",
                                                                      "iscrowd", "area"}]}]}],
     "categories": [{"id", "name", "isthing", "color"}]}

Segment id 0 (black) is void. ``file_name`` is the PNG's name; the frame is the JPEG of the same
stem under the image root. Predictions use the same PNG encoding plus a ``pred.json`` whose
``annotations`` have the same shape (``segments_info`` with ``id`` and ``category_id`` only).

Every input is checked where it enters, by one function per input kind: :func:`read_id_png` (a PNG),
:func:`parse_vps_json` (a JSON's structure and categories), :func:`check_frame_segments` (a PNG's
ids against its JSON entry), :func:`check_frame_size` (a PNG against its frame). Errors are
:class:`VideoSegFormatError` naming the file, the video and the frame.

Shapes: H x W frames; ``ids`` int64 (H, W) segment ids; ``rgb`` uint8 (H, W, 3).
"""

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

__all__ = [
    "MAX_SEGMENT_ID",
    "MissingVideoSegFileError",
    "Segment",
    "VideoSegFormatError",
    "VpsFrame",
    "VpsVideo",
    "check_categories",
    "check_frame_segments",
    "check_frame_size",
    "locate",
    "id_to_rgb",
    "image_size",
    "load_vps_dataset",
    "load_vps_ground_truth",
    "load_vps_predictions",
    "load_vps_video_dicts",
    "parse_vps_categories",
    "parse_vps_json",
    "read_id_png",
    "read_json",
    "read_vps_frame",
    "rgb_to_id",
    "write_id_png",
]

# The largest id three 8-bit channels hold.
MAX_SEGMENT_ID = 256**3 - 1
# The frame of a PNG ``<stem>.png``: ``<stem><FRAME_EXT>`` under the image root (VIPSeg: JPEG).
FRAME_EXT = ".jpg"


class VideoSegFormatError(ValueError):
    """A video segmentation file (JSON, PNG, frame) is not in the expected format; the message
    names the file, the video and the frame."""


class MissingVideoSegFileError(VideoSegFormatError, FileNotFoundError):
    """A file that the dataset lists is missing (both a ValueError and a FileNotFoundError)."""


def locate(path: Optional[str], video_id: Optional[str] = None, frame: Optional[str] = None) -> str:
    """``"<path> (video V, frame F)"`` for an error message; parts that are None are left out."""
    parts = []
    if video_id is not None:
        parts.append(f"video {video_id!r}")
    if frame is not None:
        parts.append(f"frame {frame!r}")
    context = f" ({', '.join(parts)})" if parts else ""
    return f"{path}{context}" if path is not None else context.strip(" ()") or "input"


# --------------------------------------------------------------------------------------------
# id PNGs
# --------------------------------------------------------------------------------------------


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """Segment ids of an RGB id image.

    Args:
        rgb (ndarray): (H, W, 3) uint8.

    Returns:
        ndarray: (H, W) int64, ``R + 256 G + 256^2 B``.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb_to_id expects (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}.")
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """The RGB id image of segment ids; inverse of :func:`rgb_to_id`.

    Args:
        ids (ndarray): (H, W) integers in [0, 256^3 - 1].

    Returns:
        ndarray: (H, W, 3) uint8.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"id_to_rgb expects (H, W) integers, got {ids.shape} {ids.dtype}.")
    if ids.size and (ids.min() < 0 or ids.max() > MAX_SEGMENT_ID):
        raise ValueError(
            f"id_to_rgb: ids must lie in [0, {MAX_SEGMENT_ID}], got [{ids.min()}, {ids.max()}]."
        )
    ids = ids.astype(np.int64)
    rgb = np.stack([ids % 256, (ids // 256) % 256, ids // (256 * 256)], axis=-1)
    return rgb.astype(np.uint8)


def read_id_png(
    path: str, *, video_id: Optional[str] = None, frame: Optional[str] = None
) -> np.ndarray:
    """Segment ids of an RGB id PNG (8 bits per channel; no alpha, palette or grey).

    Args:
        path (str): the PNG.
        video_id, frame (str, optional): named by the errors.

    Returns:
        ndarray: (H, W) int64.

    Raises:
        MissingVideoSegFileError: the file does not exist.
        VideoSegFormatError: it is not a readable 8-bit RGB PNG.
    """
    where = locate(path, video_id, frame)
    if not os.path.isfile(path):
        raise MissingVideoSegFileError(f"Missing id PNG {where}.")
    try:
        with Image.open(path) as image:
            image_format, mode = image.format, image.mode
            if image_format == "PNG" and mode == "RGB":
                rgb = np.asarray(image.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as e:
        raise VideoSegFormatError(f"Cannot read id PNG {where}: {e}") from None
    if image_format != "PNG" or mode != "RGB":
        raise VideoSegFormatError(
            f"Id PNG {where} is a {image_format} image of mode {mode!r}; expected an 8-bit RGB "
            f"PNG (segment id = R + 256 G + 256^2 B)."
        )
    return rgb_to_id(rgb)


def write_id_png(path: str, ids: np.ndarray) -> None:
    """Write segment ids as an RGB id PNG, atomically (a temporary file in the same folder,
    then ``os.replace``).

    Args:
        path (str): output PNG; its folder must exist.
        ids (ndarray): (H, W) integers in [0, 256^3 - 1].
    """
    rgb = id_to_rgb(ids)  # checks before anything is written
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".png", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(rgb, mode="RGB").save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def image_size(path: str, *, video_id: Optional[str] = None, frame: Optional[str] = None):
    """``(height, width)`` of an image file, reading only its header.

    Raises:
        MissingVideoSegFileError / VideoSegFormatError: naming the file, video and frame.
    """
    where = locate(path, video_id, frame)
    if not os.path.isfile(path):
        raise MissingVideoSegFileError(f"Missing frame {where}.")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError, SyntaxError) as e:
        raise VideoSegFormatError(f"Cannot read frame {where}: {e}") from None
    return height, width


def check_frame_size(
    shape: Sequence[int],
    image_path: str,
    *,
    png_path: str,
    video_id: Optional[str] = None,
    frame: Optional[str] = None,
) -> None:
    """Check that a label/id PNG of ``shape`` (H, W, ...) has the size of its frame.

    Raises:
        VideoSegFormatError: naming both files, the video and the frame.
    """
    height, width = image_size(image_path, video_id=video_id, frame=frame)
    if tuple(shape[:2]) != (height, width):
        raise VideoSegFormatError(
            f"PNG {locate(png_path, video_id, frame)} is {shape[0]}x{shape[1]} (HxW) but its "
            f"frame {image_path} is {height}x{width}; they must have the same size."
        )


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One segment of one frame: its id in the PNG, its category, whether it is a crowd."""

    id: int
    category_id: int
    iscrowd: bool = False


@dataclass
class VpsFrame:
    """One annotated (or predicted) frame.

    Attributes:
        file_name (str): the PNG's name, e.g. ``"00001.png"``.
        image_id (str): the frame's id (VIPSeg: the file stem).
        segments (dict): segment id -> :class:`Segment`.
        height, width (int, optional): the frame size, when the JSON gives it.
    """

    file_name: str
    image_id: str
    segments: Dict[int, Segment] = field(default_factory=dict)
    height: Optional[int] = None
    width: Optional[int] = None

    @property
    def stem(self) -> str:
        """The file name without its extension (the frame's JPEG has this stem)."""
        return os.path.splitext(self.file_name)[0]


@dataclass
class VpsVideo:
    """A video: its id and its frames in order."""

    video_id: str
    frames: List[VpsFrame] = field(default_factory=list)


def read_json(json_file: str, what: str = "annotation file"):
    """Load a JSON file; a missing or unparsable file is an error naming it."""
    if not os.path.isfile(json_file):
        raise MissingVideoSegFileError(f"Missing {what} {json_file}.")
    try:
        with open(json_file, "r", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise VideoSegFormatError(f"Cannot read {what} {json_file} as JSON: {e}") from None


def _require(obj, key: str, kind, where: str, what: str):
    """``obj[key]``, checked to be a ``kind``."""
    if not isinstance(obj, dict):
        raise VideoSegFormatError(
            f"{where}: {what} must be a JSON object, got {type(obj).__name__}."
        )
    if key not in obj:
        raise VideoSegFormatError(f"{where}: {what} lacks the key {key!r}.")
    value = obj[key]
    if not _is(value, kind):
        raise VideoSegFormatError(
            f"{where}: {what}'s {key!r} must be {_kind_name(kind)}, got {value!r:.60}."
        )
    return value


def _is(value, kind) -> bool:
    if kind is int:  # bool is an int in Python, never a valid id
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if kind == "id":
        return isinstance(value, str) or _is(value, int)
    return isinstance(value, kind)


def _kind_name(kind) -> str:
    if kind == "id":
        return "a string or an integer"
    return {int: "an integer", str: "a string", list: "a list", dict: "an object"}.get(
        kind, str(kind)
    )


def parse_vps_categories(categories, json_file: str) -> List[dict]:
    """Check a ``categories`` list: ``{id: int, name: str, isthing: 0/1, color: [r, g, b]
    (optional)}``, ids unique. Returns copies with ``isthing`` as int and ``color`` a tuple
    (None when absent)."""
    if not isinstance(categories, list) or not categories:
        raise VideoSegFormatError(f"{json_file}: 'categories' must be a non-empty list.")
    parsed, seen = [], set()
    for i, cat in enumerate(categories):
        what = f"categories[{i}]"
        cid = _require(cat, "id", int, json_file, what)
        name = _require(cat, "name", str, json_file, what)
        isthing = cat.get("isthing")
        if isthing not in (0, 1):  # True/False compare equal to 1/0
            raise VideoSegFormatError(
                f"{json_file}: {what} ({name!r}) has isthing {isthing!r}; expected 0 or 1."
            )
        color = cat.get("color")
        if color is not None and not (
            isinstance(color, (list, tuple))
            and len(color) == 3
            and all(_is(c, int) and 0 <= c <= 255 for c in color)
        ):
            raise VideoSegFormatError(
                f"{json_file}: {what} ({name!r}) has color {color!r}; expected [r, g, b] in 0..255."
            )
        if cid in seen:
            raise VideoSegFormatError(f"{json_file}: category id {cid} appears twice.")
        seen.add(cid)
        parsed.append(
            {
                "id": int(cid),
                "name": name,
                "isthing": int(isthing),
                "color": tuple(int(c) for c in color) if color is not None else None,
            }
        )
    return parsed


def _parse_frame(entry, json_file: str, video_id: str, index: int, ground_truth: bool) -> VpsFrame:
    """One ``annotations[].annotations[]`` entry."""
    where = locate(json_file, video_id)
    what = f"frame {index}"
    file_name = _require(entry, "file_name", str, where, what)
    frame_where = locate(json_file, video_id, file_name)
    image_id = entry.get("image_id", os.path.splitext(file_name)[0])
    if not _is(image_id, "id"):
        raise VideoSegFormatError(f"{frame_where}: image_id must be a string, got {image_id!r}.")
    infos = _require(entry, "segments_info", list, frame_where, "the frame")
    segments: Dict[int, Segment] = {}
    for info in infos:
        sid = _require(info, "id", int, frame_where, "a segments_info entry")
        cid = _require(info, "category_id", int, frame_where, f"segment {sid}")
        crowd = info.get("iscrowd", 0) if ground_truth else 0
        if crowd not in (0, 1):
            raise VideoSegFormatError(
                f"{frame_where}: segment {sid} has iscrowd {crowd!r}; expected 0 or 1."
            )
        if not 0 < sid <= MAX_SEGMENT_ID:
            raise VideoSegFormatError(
                f"{frame_where}: segment id {sid} is outside 1..{MAX_SEGMENT_ID} (0 is void)."
            )
        if sid in segments:
            raise VideoSegFormatError(f"{frame_where}: segment id {sid} is listed twice.")
        segments[int(sid)] = Segment(int(sid), int(cid), bool(crowd))
    return VpsFrame(file_name=file_name, image_id=str(image_id), segments=segments)


def _parse_videos_list(videos, json_file: str) -> Dict[str, List[dict]]:
    """``videos[{video_id, images[{id, file_name, width?, height?}]}]`` -> video_id -> images."""
    if not isinstance(videos, list):
        raise VideoSegFormatError(f"{json_file}: 'videos' must be a list.")
    parsed: Dict[str, List[dict]] = {}
    for i, video in enumerate(videos):
        video_id = str(_require(video, "video_id", "id", json_file, f"videos[{i}]"))
        images = _require(video, "images", list, locate(json_file, video_id), "the video")
        for j, image in enumerate(images):
            name = _require(image, "file_name", str, locate(json_file, video_id), f"image {j}")
            for key in ("width", "height"):
                if key in image and not (_is(image[key], int) and image[key] > 0):
                    raise VideoSegFormatError(
                        f"{locate(json_file, video_id, name)}: {key} must be a positive integer."
                    )
        if video_id in parsed:
            raise VideoSegFormatError(f"{json_file}: video {video_id!r} is listed twice.")
        parsed[video_id] = images
    return parsed


def _frames_from_images(images: List[dict]) -> List[VpsFrame]:
    return [
        VpsFrame(
            file_name=image["file_name"],
            image_id=str(image.get("id", os.path.splitext(image["file_name"])[0])),
            height=image.get("height"),
            width=image.get("width"),
        )
        for image in images
    ]


def _merge_sizes(video: VpsVideo, images: List[dict], json_file: str) -> None:
    """Check that ``videos[].images`` and ``annotations[].annotations`` list the same frames in
    the same order, and copy the frame sizes into ``video``."""
    listed = [image["file_name"] for image in images]
    annotated = [frame.file_name for frame in video.frames]
    if [os.path.splitext(n)[0] for n in listed] != [os.path.splitext(n)[0] for n in annotated]:
        raise VideoSegFormatError(
            f"{locate(json_file, video.video_id)}: 'videos' lists the frames {listed[:5]}... "
            f"({len(listed)}) but 'annotations' has {annotated[:5]}... ({len(annotated)}); "
            f"they must be the same frames in the same order."
        )
    for frame, image in zip(video.frames, images):
        frame.height, frame.width = image.get("height"), image.get("width")


def parse_vps_json(
    data, json_file: str, *, ground_truth: bool = True, require_annotations: bool = True
) -> Tuple[List[VpsVideo], Optional[List[dict]]]:
    """Check and parse the contents of a VIPSeg-format JSON (ground truth or ``pred.json``).

    Args:
        data: the loaded JSON.
        json_file (str): its path, for the messages.
        ground_truth (bool): a ground truth (needs ``categories``; ``iscrowd`` is read) or a
            prediction file (``categories`` optional and ignored, ``iscrowd`` ignored).
        require_annotations (bool): False for a split without annotations (a test set), whose
            frames come from ``videos`` alone (every frame has no segments).

    Returns:
        (videos, categories): videos in file order; categories (ground truth) or None.

    Raises:
        VideoSegFormatError: naming the file, the video and the frame of the first problem:
            a missing or mistyped key, a duplicate video / segment id, a segment id outside
            1..2^24-1, an unknown category, ``videos`` and ``annotations`` that disagree.
    """
    if not isinstance(data, dict):
        raise VideoSegFormatError(f"{json_file}: expected a JSON object at the top level.")
    categories = None
    if ground_truth:
        categories = parse_vps_categories(data.get("categories"), json_file)
    images_of = _parse_videos_list(data["videos"], json_file) if "videos" in data else None
    if not require_annotations and not data.get("annotations"):
        if images_of is None:
            raise VideoSegFormatError(f"{json_file}: needs a 'videos' or 'annotations' list.")
        videos = [VpsVideo(vid, _frames_from_images(images)) for vid, images in images_of.items()]
        return videos, categories
    annotations = _require(data, "annotations", list, json_file, "the file")
    videos, seen = [], set()
    for i, entry in enumerate(annotations):
        video_id = str(_require(entry, "video_id", "id", json_file, f"annotations[{i}]"))
        frames = _require(entry, "annotations", list, locate(json_file, video_id), "the video")
        if video_id in seen:
            raise VideoSegFormatError(f"{json_file}: video {video_id!r} is annotated twice.")
        seen.add(video_id)
        video = VpsVideo(
            video_id,
            [_parse_frame(f, json_file, video_id, j, ground_truth) for j, f in enumerate(frames)],
        )
        if images_of is not None:
            if video_id not in images_of:
                raise VideoSegFormatError(
                    f"{json_file}: video {video_id!r} is annotated but not in 'videos'."
                )
            _merge_sizes(video, images_of[video_id], json_file)
        videos.append(video)
    if images_of is not None and set(images_of) - seen:
        missing = sorted(set(images_of) - seen)
        raise VideoSegFormatError(
            f"{json_file}: videos {missing[:5]} are in 'videos' but have no annotations."
        )
    if categories is not None:
        check_categories(videos, {c["id"] for c in categories}, json_file)
    return videos, categories


def check_categories(videos: Iterable[VpsVideo], known: Iterable[int], json_file: str) -> None:
    """Check that every segment's category is in ``known``.

    Raises:
        VideoSegFormatError: naming the file, video, frame, segment and category.
    """
    known = set(known)
    for video in videos:
        for frame in video.frames:
            for segment in frame.segments.values():
                if segment.category_id not in known:
                    raise VideoSegFormatError(
                        f"{locate(json_file, video.video_id, frame.file_name)}: segment "
                        f"{segment.id} has unknown category_id {segment.category_id} (known: "
                        f"{min(known)}..{max(known)}, {len(known)} categories)."
                    )


def load_vps_ground_truth(
    json_file: str, *, require_annotations: bool = True
) -> Tuple[List[VpsVideo], List[dict]]:
    """Load a VIPSeg-format ground truth (``panoptic_gt_VIPSeg_val.json``).

    Args:
        json_file (str): the JSON file.
        require_annotations (bool): False for a split without annotations (frames come from
            ``videos``).

    Returns:
        (videos, categories): ``list[VpsVideo]`` in file order, and the categories
        ``[{id, name, isthing (0/1), color (tuple or None)}]`` in file order.

    Raises:
        MissingVideoSegFileError, VideoSegFormatError: see :func:`parse_vps_json`.
    """
    data = read_json(json_file, "ground-truth file")
    return parse_vps_json(
        data, json_file, ground_truth=True, require_annotations=require_annotations
    )


def load_vps_predictions(
    json_file: str, *, categories: Optional[Iterable[int]] = None
) -> Dict[str, VpsVideo]:
    """Load a ``pred.json``: ``annotations[{video_id, annotations[{file_name, segments_info[{id,
    category_id}]}]}]``.

    Args:
        json_file (str): the JSON file.
        categories (iterable of int, optional): the known category ids; when given, a segment of
            another category is an error.

    Returns:
        dict: video_id -> :class:`VpsVideo` (no segment is a crowd).
    """
    data = read_json(json_file, "prediction file")
    videos, _ = parse_vps_json(data, json_file, ground_truth=False)
    if categories is not None:
        check_categories(videos, categories, json_file)
    return {video.video_id: video for video in videos}


def check_frame_segments(
    ids: np.ndarray, frame: VpsFrame, *, png_path: str, json_file: str, video_id: str
) -> None:
    """Check that the non-void ids of a PNG are exactly the segments its JSON entry lists.

    Args:
        ids (ndarray): (H, W) segment ids of the PNG (:func:`read_id_png`).
        frame (VpsFrame): the frame's JSON entry.
        png_path, json_file, video_id (str): named by the errors.

    Raises:
        VideoSegFormatError: naming the PNG, the JSON, the video, the frame and the ids found on
            one side only.
    """
    in_png = set(np.unique(ids).tolist()) - {0}
    in_json = set(frame.segments)
    if in_png == in_json:
        return
    where = locate(png_path, video_id, frame.file_name)
    problems = []
    if in_png - in_json:
        problems.append(
            f"ids {sorted(in_png - in_json)[:10]} are in the PNG but not in {json_file}"
        )
    if in_json - in_png:
        problems.append(
            f"segments {sorted(in_json - in_png)[:10]} of {json_file} do not occur in the PNG"
        )
    raise VideoSegFormatError(f"PNG {where}: {'; '.join(problems)}.")


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


def _frame_paths(image_root: str, gt_root: Optional[str], video_id: str, frame: VpsFrame):
    image = os.path.join(image_root, video_id, frame.stem + FRAME_EXT)
    png = os.path.join(gt_root, video_id, frame.file_name) if gt_root is not None else None
    return image, png


def load_vps_video_dicts(
    json_file: str,
    image_root: str,
    gt_root: Optional[str],
    *,
    dataset_id_to_contiguous_id: Optional[Dict[int, int]] = None,
    require_annotations: bool = True,
    check_files: bool = True,
) -> List[dict]:
    """Per-video records of a VIPSeg-format split (detectron2-style plain dicts).

    Args:
        json_file (str): the ground-truth JSON.
        image_root (str): frames are ``<image_root>/<video_id>/<stem>.jpg``.
        gt_root (str or None): id PNGs are ``<gt_root>/<video_id>/<file_name>``; None for a split
            without annotations.
        dataset_id_to_contiguous_id (dict, optional): category id -> class index; default: the
            file's categories sorted by id, numbered from 0.
        require_annotations (bool): False for a split without annotations.
        check_files (bool): check that every frame and PNG exists.

    Returns:
        list[dict]: one per video, in file order: ``video_id``, ``json_file``, ``length`` (T),
        ``file_names`` (T frame paths), ``image_ids``, ``height`` / ``width`` (from the JSON, or
        None); with annotations also ``pan_seg_file_names`` (T PNG paths) and ``segments_info``
        (T lists of ``{id, category_id (contiguous), iscrowd (0/1), isthing (bool)}``).

    Raises:
        MissingVideoSegFileError, VideoSegFormatError: naming the file, the video and the frame.
    """
    return load_vps_dataset(
        json_file,
        image_root,
        gt_root,
        dataset_id_to_contiguous_id=dataset_id_to_contiguous_id,
        require_annotations=require_annotations,
        check_files=check_files,
    )[0]


def load_vps_dataset(
    json_file: str,
    image_root: str,
    gt_root: Optional[str],
    *,
    dataset_id_to_contiguous_id: Optional[Dict[int, int]] = None,
    require_annotations: bool = True,
    check_files: bool = True,
) -> Tuple[List[dict], List[dict]]:
    """:func:`load_vps_video_dicts` and the file's categories (as :func:`load_vps_ground_truth`).

    Returns:
        (records, categories)
    """
    videos, categories = load_vps_ground_truth(json_file, require_annotations=require_annotations)
    if dataset_id_to_contiguous_id is None:
        dataset_id_to_contiguous_id = {
            c["id"]: i for i, c in enumerate(sorted(categories, key=lambda c: c["id"]))
        }
    unmapped = {c["id"] for c in categories} - set(dataset_id_to_contiguous_id)
    if unmapped:
        raise VideoSegFormatError(
            f"{json_file}: categories {sorted(unmapped)[:10]} have no class in the dataset's "
            f"category table (dataset_id_to_contiguous_id)."
        )
    isthing = {c["id"]: bool(c["isthing"]) for c in categories}
    annotated = require_annotations or any(f.segments for v in videos for f in v.frames)
    records = []
    for video in videos:
        records.append(
            _video_record(
                video,
                json_file,
                image_root,
                gt_root if annotated else None,
                dataset_id_to_contiguous_id,
                isthing,
                check_files,
            )
        )
    return records, categories


def _video_record(video, json_file, image_root, gt_root, id_map, isthing, check_files) -> dict:
    if not video.frames:
        raise VideoSegFormatError(f"Video {video.video_id!r} has no frames.")
    file_names, png_names = [], []
    for frame in video.frames:
        image, png = _frame_paths(image_root, gt_root, video.video_id, frame)
        if check_files:
            for path, what in ((image, "frame"), (png, "id PNG")):
                if path is not None and not os.path.isfile(path):
                    raise MissingVideoSegFileError(
                        f"Missing {what} {locate(path, video.video_id, frame.file_name)}."
                    )
        file_names.append(image)
        png_names.append(png)
    record = {
        "video_id": video.video_id,
        "json_file": json_file,
        "length": len(video.frames),
        "file_names": file_names,
        "image_ids": [frame.image_id for frame in video.frames],
        "height": video.frames[0].height,
        "width": video.frames[0].width,
    }
    if gt_root is not None:
        record["pan_seg_file_names"] = png_names
        record["segments_info"] = [
            [
                {
                    "id": s.id,
                    "category_id": id_map[s.category_id],
                    "iscrowd": int(s.iscrowd),
                    "isthing": isthing[s.category_id],
                }
                for s in frame.segments.values()
            ]
            for frame in video.frames
        ]
    return record


def read_vps_frame(record: dict, index: int) -> np.ndarray:
    """The checked id map of frame ``index`` of a record of :func:`load_vps_video_dicts`: the
    PNG is read (:func:`read_id_png`), its size checked against its frame
    (:func:`check_frame_size`) and its ids against ``segments_info``.

    Returns:
        ndarray: (H, W) int64 segment ids.
    """
    video_id = record["video_id"]
    png = record["pan_seg_file_names"][index]
    frame_name = os.path.basename(png)
    ids = read_id_png(png, video_id=video_id, frame=frame_name)
    check_frame_size(
        ids.shape, record["file_names"][index], png_path=png, video_id=video_id, frame=frame_name
    )
    listed = {s["id"] for s in record["segments_info"][index]}
    in_png = set(np.unique(ids).tolist()) - {0}
    if listed != in_png:
        frame = VpsFrame(
            file_name=frame_name,
            image_id=record["image_ids"][index],
            segments={sid: Segment(sid, 0) for sid in listed},
        )
        check_frame_segments(
            ids,
            frame,
            png_path=png,
            json_file=record.get("json_file", "the annotation file"),
            video_id=video_id,
        )
    return ids

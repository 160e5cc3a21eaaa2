"""Checking a parsed YouTube-VIS-format file: structure, JSON types, ids and every RLE.

:func:`check_ytvis_dataset` is the one check of the format, called by every reader of it (the
loader in :mod:`.ytvis` and the evaluation's ground truth); the COCO image loader shares its field
checks (:func:`check_iscrowd`, :func:`polygons_problem`). Each problem raises
:class:`YTVISFormatError` naming the file, the video or annotation id (and the frame) and what
was expected. :func:`valid_polygons` is the one rule for which polygons outline an area.
"""

import math
from typing import Dict, List, Optional

import numpy as np

from .rle import RLEValidator

__all__ = [
    "YTVISFormatError",
    "check_categories",
    "check_iscrowd",
    "check_ytvis_dataset",
    "is_int",
    "polygons_problem",
    "valid_polygons",
    "video_length",
]

# A polygon needs at least 3 (x, y) points.
MIN_POLYGON_COORDS = 6


class YTVISFormatError(ValueError):
    """An annotation file does not follow the YouTube-VIS format."""


_NUMBER_TYPES = (int, float, np.integer, np.floating)
_SHOWN_CHARS = 60  # of a wrong value's repr in an error message
_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


def is_int(value) -> bool:
    """Whether ``value`` is an integer (a JSON number without a fraction; not a boolean)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _describe(value) -> str:
    """``value`` for an error message: its JSON type and the start of its repr."""
    if value is None:
        return "null"
    name = _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{name} ({text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 3] + '...'})"


def _expect_int(value, where: str, field: str) -> None:
    if not is_int(value):
        raise YTVISFormatError(f"{where}: {field!r} is {_describe(value)}, expected an integer.")


def video_length(video: dict) -> int:
    """T of a video checked by :func:`check_ytvis_dataset`: its number of file names, else its
    ``length``."""
    file_names = video.get("file_names")
    return len(file_names) if file_names is not None else video["length"]


def _check_videos(videos: list, source: str, require_file_names: bool) -> Dict[int, dict]:
    """Check the ``videos`` list; returns the videos by id."""
    by_id: Dict[int, dict] = {}
    for index, video in enumerate(videos):
        _check_video(video, index, source, require_file_names)
        if video["id"] in by_id:
            raise YTVISFormatError(f"{source}: video id {video['id']} appears more than once.")
        by_id[video["id"]] = video
    return by_id


def _check_video(video, index: int, source: str, require_file_names: bool) -> None:
    if not isinstance(video, dict):
        raise YTVISFormatError(
            f"{source}: videos[{index}] is {_describe(video)}, expected an object."
        )
    required = ("id", "height", "width") + (("file_names",) if require_file_names else ())
    for key in required:
        if key not in video:
            raise YTVISFormatError(f"{source}: video {video.get('id')!r} has no {key!r} field.")
    _expect_int(video["id"], f"{source}: videos[{index}]", "id")
    where = f"{source}: video {video['id']}"
    for key in ("height", "width"):
        if not is_int(video[key]) or video[key] <= 0:
            raise YTVISFormatError(
                f"{where}: {key!r} is {_describe(video[key])}, expected a positive integer."
            )
    file_names = video.get("file_names")
    if "file_names" in video and (
        not isinstance(file_names, list) or not all(isinstance(f, str) for f in file_names)
    ):
        raise YTVISFormatError(
            f"{where}: 'file_names' is {_describe(file_names)}, expected a list of frame paths "
            f"(strings)."
        )
    if file_names is None and "length" not in video:
        raise YTVISFormatError(f"{where} has neither 'file_names' nor 'length'.")
    length = video.get("length", len(file_names or ()))
    if not is_int(length) or length < 0:
        raise YTVISFormatError(
            f"{where}: 'length' is {_describe(length)}, expected a non-negative integer."
        )
    if length == 0 or file_names == []:
        raise YTVISFormatError(f"{where} has no frames; expected at least one frame.")
    if file_names is not None and len(file_names) != length:
        raise YTVISFormatError(
            f"{where} has length {length} but {len(file_names)} file_names; expected one file "
            f"name per frame."
        )


def check_categories(categories: list, source: str) -> set:
    """Check the ``categories`` list; returns the category ids."""
    ids = set()
    for index, cat in enumerate(categories):
        if not isinstance(cat, dict) or "id" not in cat:
            raise YTVISFormatError(
                f"{source}: categories[{index}] is {_describe(cat)}, expected an object with an "
                f"integer 'id' and a 'name'."
            )
        _expect_int(cat["id"], f"{source}: categories[{index}]", "id")
        if cat["id"] in ids:
            # a repeated id would shift every later class of the contiguous class table
            raise YTVISFormatError(
                f"{source}: category id {cat['id']} appears more than once in 'categories' "
                f"(categories[{index}], {cat.get('name')!r}); expected each id once."
            )
        ids.add(cat["id"])
    return ids


def _check_annotation_fields(
    ann, index: int, videos: Dict[int, dict], category_ids: set, seen_ids: set, source: str
) -> dict:
    """Check an annotation's ids; returns its video."""
    if not isinstance(ann, dict):
        raise YTVISFormatError(
            f"{source}: annotations[{index}] is {_describe(ann)}, expected an object."
        )
    ann_id = ann.get("id")
    for key in ("id", "video_id", "category_id", "segmentations"):
        if key not in ann:
            raise YTVISFormatError(f"{source}: annotation {ann_id!r} has no {key!r} field.")
    _expect_int(ann_id, f"{source}: annotations[{index}]", "id")
    if ann_id in seen_ids:
        raise YTVISFormatError(f"{source}: annotation id {ann_id} appears more than once.")
    seen_ids.add(ann_id)
    where = f"{source}: annotation {ann_id}"
    _expect_int(ann["video_id"], where, "video_id")
    if ann["video_id"] not in videos:
        raise YTVISFormatError(
            f"{where} refers to video {ann['video_id']}, which is not in 'videos'."
        )
    where = f"{where} of video {ann['video_id']}"
    _expect_int(ann["category_id"], where, "category_id")
    if ann["category_id"] not in category_ids:
        raise YTVISFormatError(
            f"{where} has category_id {ann['category_id']}, which is not in 'categories' "
            f"({sorted(category_ids)})."
        )
    check_iscrowd(ann.get("iscrowd", 0), where)
    return videos[ann["video_id"]]


def _rle_problem(segm: dict, size: List[int], validator: RLEValidator, owner) -> Optional[str]:
    """What is wrong with one RLE's keys, size or (uncompressed) counts; compressed counts go to
    ``validator``, which checks them all at the end."""
    if "counts" not in segm or "size" not in segm:
        return f"an RLE needs 'counts' and 'size', got keys {sorted(segm)}"
    rle_size = segm["size"]
    if rle_size != size and not (isinstance(rle_size, tuple) and list(rle_size) == size):
        return f"RLE size {rle_size!r:.60} does not match the video's [height, width] = {size}"
    problem = validator.add(segm["counts"], size, owner)
    return None if problem is None else f"RLE 'counts' {problem}"


def check_iscrowd(value, where: str) -> None:
    """Raise ``YTVISFormatError`` (naming ``where``) unless ``value`` is 0 or 1 (or a boolean):
    a string such as ``"0"`` would otherwise count as a crowd."""
    if not (isinstance(value, (bool, np.bool_)) or (is_int(value) and value in (0, 1))):
        raise YTVISFormatError(f"{where}: 'iscrowd' is {_describe(value)}, expected 0 or 1.")


def polygons_problem(segm) -> Optional[str]:
    """What is wrong with the JSON types of a polygon segmentation (None if nothing): it must be
    a list of flat ``[x0, y0, x1, y1, ...]`` lists of finite numbers. Geometry (too few points,
    zero area) is not checked here: :func:`valid_polygons` drops such polygons."""
    if not isinstance(segm, list):
        return f"expected polygons (a list of [x0, y0, x1, y1, ...] lists), got {_describe(segm)}"
    for i, polygon in enumerate(segm):
        if not isinstance(polygon, list):
            return f"polygon {i} is {_describe(polygon)}, expected a list of coordinates"
        for v in polygon:
            if isinstance(v, bool) or not isinstance(v, _NUMBER_TYPES) or not math.isfinite(v):
                return f"polygon {i} holds {_describe(v)}, expected finite numbers (x, y, ...)"
    return None


def _polygon_area(polygon: list) -> float:
    """Area of one polygon of checked coordinates (shoelace formula)."""
    xy = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def valid_polygons(polygons: list) -> list:
    """The polygons of a checked segmentation that outline an area; the one rule of every reader
    (YouTube-VIS videos, COCO images, the evaluation's ground truth).

    A polygon is kept when it has an even number >= 6 of coordinates (3 points; detectron2's
    rule) and a non-zero area (a line or a point rasterises to an empty mask). A segmentation
    left without a polygon is dropped by the loaders and reported
    (:func:`warn_dropped_segmentations`).
    """
    return [
        p
        for p in polygons
        if len(p) % 2 == 0 and len(p) >= MIN_POLYGON_COORDS and _polygon_area(p) > 0
    ]


def _check_frames(ann: dict, video: dict, validator: RLEValidator, source: str) -> None:
    """Check an annotation's per-frame lists (segmentations, bboxes, areas) against its video."""
    length = video_length(video)
    where = f"{source}: annotation {ann['id']} of video {video['id']}"
    for name in ("segmentations", "bboxes", "areas"):
        values = ann.get(name)
        if name != "segmentations" and values is None:
            continue
        if not isinstance(values, list) or len(values) != length:
            if isinstance(values, list):
                got = f"has {len(values)} entries"
            else:
                got = f"is {_describe(values)}"
            raise YTVISFormatError(
                f"{where}: {name!r} {got}, expected a list with one entry per frame ({length}, "
                f"null where absent)."
            )
    size = [video["height"], video["width"]]
    for t, segm in enumerate(ann["segmentations"]):
        if segm is None:
            continue
        if isinstance(segm, dict):
            problem = _rle_problem(segm, size, validator, (ann["id"], video["id"], t))
        elif isinstance(segm, list):
            problem = polygons_problem(segm)
        else:
            problem = (
                f"expected polygons (a list of [x0, y0, x1, y1, ...] lists of numbers), an RLE "
                f"object or null, got {_describe(segm)}"
            )
        if problem is not None:
            raise YTVISFormatError(f"{where}, frame {t}: {problem}.")
    _check_boxes_and_areas(ann, where)


def _check_boxes_and_areas(ann: dict, where: str) -> None:
    """The optional per-frame ``bboxes`` ([x, y, w, h] or null) and ``areas`` (number or null)."""
    for t, box in enumerate(ann.get("bboxes") or ()):
        if box is not None and not (isinstance(box, list) and len(box) == 4):
            raise YTVISFormatError(
                f"{where}, frame {t}: bbox is {_describe(box)}, expected [x, y, w, h] or null."
            )
    for t, area in enumerate(ann.get("areas") or ()):
        if area is not None and not isinstance(area, _NUMBER_TYPES):
            raise YTVISFormatError(
                f"{where}, frame {t}: area is {_describe(area)}, expected a number or null."
            )


def check_ytvis_dataset(
    dataset, source: str, *, require_file_names: bool = True
) -> Dict[int, dict]:
    """Check a parsed YouTube-VIS annotation file: its structure, JSON types and every RLE.

    RLE counts must be non-negative integers summing to exactly H x W (:mod:`.rle`; compressed
    strings are checked together at the end, in one vectorised pass).

    Args:
        dataset: the parsed JSON.
        source (str): the file name used in error messages.
        require_file_names (bool): every video must list its frames (needed to load images); when
            False a video may give only its ``length`` (enough to evaluate against).

    Returns:
        dict[int, dict]: the videos by id.

    Raises:
        YTVISFormatError: naming the file, the video / annotation id (and frame) and what was
            expected.
    """
    if not isinstance(dataset, dict):
        raise YTVISFormatError(
            f"{source}: holds {_describe(dataset)}, expected a JSON object with 'videos', "
            f"'categories' and 'annotations'."
        )
    for key in ("videos", "categories"):
        if not isinstance(dataset.get(key), list):
            got = _describe(dataset[key]) if key in dataset else "nothing"
            raise YTVISFormatError(f"{source}: expected a {key!r} list, got {got}.")
    annotations = dataset.get("annotations")
    if annotations is not None and not isinstance(annotations, list):
        raise YTVISFormatError(
            f"{source}: 'annotations' is {_describe(annotations)}, expected a list (null or "
            f"absent for a test split)."
        )
    videos = _check_videos(dataset["videos"], source, require_file_names)
    category_ids = check_categories(dataset["categories"], source)
    validator, seen_ids = RLEValidator(), set()
    for index, ann in enumerate(annotations or ()):
        video = _check_annotation_fields(ann, index, videos, category_ids, seen_ids, source)
        _check_frames(ann, video, validator, source)
    bad = validator.first_problem()
    if bad is not None:
        (ann_id, video_id, t), problem = bad
        raise YTVISFormatError(
            f"{source}: annotation {ann_id} of video {video_id}, frame {t}: RLE 'counts' "
            f"{problem}."
        )
    return videos

"""YouTube-VIS-format annotation files → per-video records (detectron2's video dataset format).

A record describes one video of T frames::

    {
        "file_names": [T paths],  "height": H,  "width": W,  "length": T,  "video_id": int,
        "annotations": [T lists of objs],   # one list per frame, instances present in that frame
    }
    obj = {"id": instance id, "category_id": contiguous id, "iscrowd": 0/1,
           "segmentation": polygons | RLE dict (counts str or list), "bbox": [x, y, w, h],
           "bbox_mode": BOX_MODE_XYWH_ABS}

Segmentations are kept as they are in the file (polygons, uncompressed or compressed RLE) and
decoded only when a clip is mapped (:func:`decode_segmentation`), so loading a 2021-train-sized
file costs little more than parsing its JSON. A frame where an instance is absent (``null``) has no
obj for it. Every structural problem raises :class:`YTVISFormatError` naming the file, the video or
annotation id (and the frame) and what was expected: wrong JSON types (a list where an id belongs,
an object where a list belongs, null where a list is needed, a string in a polygon or as
``iscrowd``), a category id listed twice (it would shift the class table), a video without
frames, and RLEs whose run lengths do not cover exactly H x W pixels (checked without decoding,
see :mod:`.rle`), which pycocotools would otherwise turn into garbage masks. Polygons with fewer
than 3 points, an odd number of coordinates or a zero area are dropped (:func:`valid_polygons`,
the rule of every reader), and a frame left without a polygon is dropped and reported in one
warning. :func:`check_ytvis_dataset` holds these checks for every reader
of the format (this loader and the evaluation's ground truth).
"""

import json
import logging
import math
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_util

from .rle import RLEValidator

logger = logging.getLogger(__name__)

__all__ = [
    "BOX_MODE_XYWH_ABS",
    "YTVISFormatError",
    "category_mapping",
    "check_categories",
    "check_ytvis_dataset",
    "is_int",
    "video_length",
    "load_ytvis_json",
    "load_ytvis_dataset",
    "decode_segmentation",
    "segmentation_bbox",
    "check_iscrowd",
    "polygons_problem",
    "valid_polygons",
    "warn_dropped_segmentations",
]

# Value of ``detectron2.structures.BoxMode.XYWH_ABS`` (an IntEnum), so records read the same with
# or without detectron2.
BOX_MODE_XYWH_ABS = 1

# A polygon needs at least 3 (x, y) points.
_MIN_POLYGON_COORDS = 6
# Places (annotation, frame) named in the warning about dropped degenerate segmentations.
_DROPPED_SHOWN = 3

JsonSource = Union[str, os.PathLike, dict]


class YTVISFormatError(ValueError):
    """An annotation file does not follow the YouTube-VIS format."""


def read_json(
    json_file: JsonSource, kind: str = "YouTube-VIS", error: type = None
) -> Tuple[dict, str]:
    """Return the parsed dataset and a name for error messages (the path, or ``<in-memory>``).

    Args:
        json_file: a path, or an already parsed dict.
        kind (str): the format, named when the file is missing.
        error (type): raised for a file that is not JSON (default :class:`YTVISFormatError`).
    """
    if isinstance(json_file, dict):
        return json_file, "<in-memory dataset>"
    path = os.fspath(json_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind} annotation file {path!r} does not exist.")
    with open(path, "r") as f:
        try:
            return json.load(f), path
        except json.JSONDecodeError as e:
            raise (error or YTVISFormatError)(f"{path}: not valid JSON ({e}).") from e


def category_mapping(
    dataset: dict, source: str, dataset_id_to_contiguous_id: Optional[Dict[int, int]]
) -> Tuple[Dict[int, int], List[str]]:
    """Contiguous category mapping and class names (in contiguous order) of checked categories."""
    categories = dataset["categories"]
    for cat in categories:
        if "name" not in cat:
            raise YTVISFormatError(f"{source}: each category needs 'id' and 'name', got {cat!r}.")
    ordered = sorted(categories, key=lambda c: c["id"])
    names = {c["id"]: c["name"] for c in ordered}
    if dataset_id_to_contiguous_id is None:
        mapping = {c["id"]: i for i, c in enumerate(ordered)}
        return mapping, [c["name"] for c in ordered]
    mapping = {int(k): int(v) for k, v in dataset_id_to_contiguous_id.items()}
    unknown = sorted(set(names) - set(mapping))
    if unknown:
        raise YTVISFormatError(
            f"{source}: categories {unknown} are not in the given dataset_id_to_contiguous_id "
            f"(known dataset ids: {sorted(mapping)})."
        )
    classes = [""] * len(mapping)
    for cid, contiguous in mapping.items():
        if 0 <= contiguous < len(classes):
            classes[contiguous] = names.get(cid, str(cid))
    return mapping, classes


# ---------------------------------------------------------------------------------------------
# Checking the format
# ---------------------------------------------------------------------------------------------

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
        if len(p) % 2 == 0 and len(p) >= _MIN_POLYGON_COORDS and _polygon_area(p) > 0
    ]


def warn_dropped_segmentations(source: str, places: List[str]) -> None:
    """Log the segmentations dropped by :func:`valid_polygons` (how many, and the first few)."""
    if not places:
        return
    shown = "; ".join(places[:_DROPPED_SHOWN]) + ("; ..." if len(places) > _DROPPED_SHOWN else "")
    logger.warning(
        f"{source}: dropped {len(places)} segmentations without a valid polygon (a polygon needs "
        f"an even number >= {_MIN_POLYGON_COORDS} of coordinates and a non-zero area): {shown}."
    )


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


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def segmentation_bbox(segm, height: int, width: int) -> List[float]:
    """XYWH box in pixels of a polygon list or RLE dict (the box of its decoded mask for RLEs)."""
    if isinstance(segm, dict):
        rle = segm
        if isinstance(segm["counts"], list):
            rle = mask_util.frPyObjects(segm, height, width)
        return [float(v) for v in mask_util.toBbox(rle)]
    coords = np.concatenate([np.asarray(p, dtype=np.float64) for p in segm]).reshape(-1, 2)
    x0, y0 = coords.min(axis=0)
    x1, y1 = coords.max(axis=0)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def decode_segmentation(segm, height: int, width: int) -> np.ndarray:
    """Decode one frame's segmentation at the original size.

    Args:
        segm: polygons (list of flat [x0, y0, x1, y1, ...] lists), an RLE dict with ``counts`` as a
            list (uncompressed) or a str/bytes (compressed), or None (absent: empty mask).
        height, width (int): size of the frame.

    Returns:
        ndarray: (H, W) bool mask.
    """
    if segm is None:
        return np.zeros((height, width), dtype=bool)
    if isinstance(segm, dict):
        rle = segm
        if isinstance(segm["counts"], list):
            rle = mask_util.frPyObjects(segm, height, width)
        mask = mask_util.decode(rle)
    else:
        polygons = valid_polygons(segm)
        if not polygons:
            return np.zeros((height, width), dtype=bool)
        rles = mask_util.frPyObjects([list(map(float, p)) for p in polygons], height, width)
        mask = mask_util.decode(mask_util.merge(rles))
    return mask.astype(bool)


def _per_video_annotations(
    annotations: Iterable[dict], videos: Dict[int, dict]
) -> Dict[int, List[dict]]:
    """The (checked) annotations grouped by video id."""
    by_video: Dict[int, List[dict]] = {vid: [] for vid in videos}
    for ann in annotations:
        by_video[ann["video_id"]].append(ann)
    return by_video


def _frame_objs(
    anns: Sequence[dict],
    video: dict,
    id_map: Dict[int, int],
    extra_keys: Sequence[str],
) -> Tuple[List[List[dict]], List[str]]:
    """Per-frame obj lists of one checked video, and the places ("annotation A of video V, frame
    t") of the segmentations dropped for having no valid polygon (:func:`valid_polygons`)."""
    length = len(video["file_names"])
    height, width = video["height"], video["width"]
    frames: List[List[dict]] = [[] for _ in range(length)]
    dropped = []
    for ann in anns:
        ann_id = ann["id"]
        segms, bboxes = ann["segmentations"], ann.get("bboxes")
        base = {"id": ann_id, "category_id": id_map[ann["category_id"]]}
        base["iscrowd"] = int(ann.get("iscrowd", 0))
        base.update({k: ann[k] for k in extra_keys if k in ann})
        for frame_idx, segm in enumerate(segms):
            if segm is None:
                continue
            if isinstance(segm, list):
                segm = valid_polygons(segm)
                if not segm:
                    dropped.append(f"annotation {ann_id} of video {video['id']}, frame {frame_idx}")
                    continue
            bbox = bboxes[frame_idx] if bboxes is not None else None
            if bbox is None:
                bbox = segmentation_bbox(segm, height, width)
            obj = dict(base)
            obj.update(segmentation=segm, bbox=bbox, bbox_mode=BOX_MODE_XYWH_ABS)
            frames[frame_idx].append(obj)
    return frames, dropped


def load_ytvis_dataset(
    json_file: JsonSource,
    image_root: Union[str, os.PathLike],
    *,
    dataset_id_to_contiguous_id: Optional[Dict[int, int]] = None,
    extra_annotation_keys: Optional[Sequence[str]] = None,
) -> Tuple[List[dict], dict]:
    """Load a YouTube-VIS-format file into per-video records, plus the file's category metadata.

    Args:
        json_file: path of the annotation file, or the already parsed dict (e.g. from
            :func:`video_mask2former.data.synthetic.generate_synthetic_ytvis`).
        image_root: folder the videos' ``file_names`` are relative to.
        dataset_id_to_contiguous_id: category id mapping to use (e.g. a built-in split's); by
            default the file's categories sorted by id are numbered 0..K-1.
        extra_annotation_keys: further per-annotation keys to copy into every obj.

    Returns:
        (records, metadata): records sorted by video id (see the module docstring); metadata has
        ``thing_classes`` and ``thing_dataset_id_to_contiguous_id``.
    """
    dataset, source = read_json(json_file)
    videos = check_ytvis_dataset(dataset, source)
    id_map, thing_classes = category_mapping(dataset, source, dataset_id_to_contiguous_id)
    # Test splits have no annotations (missing or null): records then have empty frames.
    by_video = _per_video_annotations(dataset.get("annotations") or [], videos)

    image_root = os.fspath(image_root)
    extra_keys = list(extra_annotation_keys or [])
    records, dropped = [], []
    for video_id in sorted(videos):
        video = videos[video_id]
        frames, video_dropped = _frame_objs(by_video[video_id], video, id_map, extra_keys)
        dropped.extend(video_dropped)
        records.append(
            {
                "file_names": [os.path.join(image_root, f) for f in video["file_names"]],
                "height": video["height"],
                "width": video["width"],
                "length": len(video["file_names"]),
                "video_id": video_id,
                "annotations": frames,
            }
        )
    warn_dropped_segmentations(source, dropped)
    logger.info(f"Loaded {len(records)} videos in YouTube-VIS format from {source}.")
    metadata = {
        "thing_classes": thing_classes,
        "thing_dataset_id_to_contiguous_id": id_map,
    }
    return records, metadata


def load_ytvis_json(
    json_file: JsonSource,
    image_root: Union[str, os.PathLike],
    *,
    dataset_id_to_contiguous_id: Optional[Dict[int, int]] = None,
    extra_annotation_keys: Optional[Sequence[str]] = None,
) -> List[dict]:
    """Records of a YouTube-VIS-format file; see :func:`load_ytvis_dataset` for the arguments."""
    records, _ = load_ytvis_dataset(
        json_file,
        image_root,
        dataset_id_to_contiguous_id=dataset_id_to_contiguous_id,
        extra_annotation_keys=extra_annotation_keys,
    )
    return records

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
warning. The checks live in :mod:`.ytvis_checks` (:func:`check_ytvis_dataset`, shared by every
reader of the format: this loader and the evaluation's ground truth); their names are re-exported
here.
"""

import json
import logging
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_util

from .ytvis_checks import (
    MIN_POLYGON_COORDS,
    YTVISFormatError,
    check_categories,
    check_iscrowd,
    check_ytvis_dataset,
    is_int,
    polygons_problem,
    valid_polygons,
    video_length,
)

logger = logging.getLogger(__name__)

__all__ = [
    "BOX_MODE_XYWH_ABS",
    "YTVISFormatError",
    "add_dataset_argument",
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

# Places (annotation, frame) named in the warning about dropped degenerate segmentations.
_DROPPED_SHOWN = 3

JsonSource = Union[str, os.PathLike, dict]


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


def warn_dropped_segmentations(source: str, places: List[str]) -> None:
    """Log the segmentations dropped by :func:`valid_polygons` (how many, and the first few)."""
    if not places:
        return
    shown = "; ".join(places[:_DROPPED_SHOWN]) + ("; ..." if len(places) > _DROPPED_SHOWN else "")
    logger.warning(
        f"{source}: dropped {len(places)} segmentations without a valid polygon (a polygon needs "
        f"an even number >= {MIN_POLYGON_COORDS} of coordinates and a non-zero area): {shown}."
    )


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


def add_dataset_argument(parser, note: str = "") -> None:
    """Add the repeatable ``--dataset NAME JSON IMAGE_ROOT`` option of the command lines that
    register a user's YouTube-VIS-format file for one run (``train_net_video.py``,
    ``tools/visualize_data.py``; ``video_mask2former.d2.datasets.register_user_datasets`` reads
    it) to an ``argparse`` parser; ``note`` ends its help."""
    parser.add_argument(
        "--dataset",
        nargs=3,
        action="append",
        default=[],
        metavar=("NAME", "JSON", "IMAGE_ROOT"),
        help="register a YouTube-VIS-format dataset under NAME (its categories come from JSON; "
        "frames are IMAGE_ROOT/<file_names>), to use in DATASETS.TRAIN / DATASETS.TEST; "
        "repeatable" + note,
    )

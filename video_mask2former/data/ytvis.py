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
annotation id and what was expected.
"""

import json
import logging
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_util

logger = logging.getLogger(__name__)

__all__ = [
    "BOX_MODE_XYWH_ABS",
    "YTVISFormatError",
    "load_ytvis_json",
    "load_ytvis_dataset",
    "decode_segmentation",
    "segmentation_bbox",
]

# Value of ``detectron2.structures.BoxMode.XYWH_ABS`` (an IntEnum), so records read the same with
# or without detectron2.
BOX_MODE_XYWH_ABS = 1

# A polygon needs at least 3 (x, y) points.
_MIN_POLYGON_COORDS = 6

JsonSource = Union[str, os.PathLike, dict]


class YTVISFormatError(ValueError):
    """An annotation file does not follow the YouTube-VIS format."""


def _read_json(json_file: JsonSource) -> Tuple[dict, str]:
    """Return the parsed dataset and a name for error messages (the path, or ``<in-memory>``)."""
    if isinstance(json_file, dict):
        return json_file, "<in-memory dataset>"
    path = os.fspath(json_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"YouTube-VIS annotation file {path!r} does not exist.")
    with open(path, "r") as f:
        try:
            return json.load(f), path
        except json.JSONDecodeError as e:
            raise YTVISFormatError(f"{path}: not valid JSON ({e}).") from e


def _category_mapping(
    dataset: dict, source: str, dataset_id_to_contiguous_id: Optional[Dict[int, int]]
) -> Tuple[Dict[int, int], List[str]]:
    """Contiguous category mapping and class names (in contiguous order)."""
    categories = dataset.get("categories")
    if not isinstance(categories, list):
        raise YTVISFormatError(f"{source}: expected a 'categories' list, got {type(categories)}.")
    for cat in categories:
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
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


def _check_video(video: dict, source: str) -> None:
    for key in ("id", "file_names", "height", "width"):
        if key not in video:
            raise YTVISFormatError(f"{source}: video {video.get('id')!r} has no {key!r} field.")
    length = video.get("length", len(video["file_names"]))
    if not isinstance(video["file_names"], list) or len(video["file_names"]) != length:
        raise YTVISFormatError(
            f"{source}: video {video['id']} has length {length} but "
            f"{len(video['file_names'])} file_names; expected one file name per frame."
        )


def _check_segmentation(segm, ann_id, frame_idx: int, size: Tuple[int, int], source: str) -> None:
    """Raise when a non-null per-frame segmentation is neither polygons nor an RLE of ``size``."""
    if isinstance(segm, dict):
        if "counts" not in segm or "size" not in segm:
            raise YTVISFormatError(
                f"{source}: annotation {ann_id} frame {frame_idx}: an RLE needs 'counts' and "
                f"'size', got keys {sorted(segm)}."
            )
        if list(segm["size"]) != list(size):
            raise YTVISFormatError(
                f"{source}: annotation {ann_id} frame {frame_idx}: RLE size {segm['size']} does "
                f"not match the video's [height, width] = {list(size)}."
            )
    elif not isinstance(segm, list):
        raise YTVISFormatError(
            f"{source}: annotation {ann_id} frame {frame_idx}: expected polygons (list of lists), "
            f"an RLE dict or null, got {type(segm).__name__}."
        )


def _valid_polygons(polygons: list) -> list:
    # Like detectron2, drop polygons with fewer than 3 points or an odd number of coordinates.
    return [p for p in polygons if len(p) % 2 == 0 and len(p) >= _MIN_POLYGON_COORDS]


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
        polygons = _valid_polygons(segm)
        if not polygons:
            return np.zeros((height, width), dtype=bool)
        rles = mask_util.frPyObjects([list(map(float, p)) for p in polygons], height, width)
        mask = mask_util.decode(mask_util.merge(rles))
    return mask.astype(bool)


def _per_video_annotations(
    annotations: Iterable[dict], videos: Dict[int, dict], source: str
) -> Dict[int, List[dict]]:
    by_video: Dict[int, List[dict]] = {vid: [] for vid in videos}
    seen_ids = set()
    for ann in annotations:
        ann_id = ann.get("id")
        for key in ("id", "video_id", "category_id", "segmentations"):
            if key not in ann:
                raise YTVISFormatError(f"{source}: annotation {ann_id!r} has no {key!r} field.")
        if ann_id in seen_ids:
            raise YTVISFormatError(f"{source}: annotation id {ann_id} appears more than once.")
        seen_ids.add(ann_id)
        if ann["video_id"] not in by_video:
            raise YTVISFormatError(
                f"{source}: annotation {ann_id} refers to video {ann['video_id']}, which is not "
                f"in 'videos'."
            )
        by_video[ann["video_id"]].append(ann)
    return by_video


def _frame_objs(
    anns: Sequence[dict],
    video: dict,
    id_map: Dict[int, int],
    extra_keys: Sequence[str],
    source: str,
) -> Tuple[List[List[dict]], int]:
    """Per-frame obj lists of one video, and the number of frames dropped for bad polygons."""
    length = len(video["file_names"])
    height, width = video["height"], video["width"]
    frames: List[List[dict]] = [[] for _ in range(length)]
    num_dropped = 0
    for ann in anns:
        ann_id = ann["id"]
        segms, bboxes = ann["segmentations"], ann.get("bboxes")
        for name, values in (("segmentations", segms), ("bboxes", bboxes)):
            if values is not None and (not isinstance(values, list) or len(values) != length):
                got = len(values) if isinstance(values, list) else type(values).__name__
                raise YTVISFormatError(
                    f"{source}: annotation {ann_id} of video {video['id']}: {name!r} has {got} "
                    f"entries, expected one per frame ({length}, null where absent)."
                )
        if ann["category_id"] not in id_map:
            raise YTVISFormatError(
                f"{source}: annotation {ann_id} of video {video['id']} has category_id "
                f"{ann['category_id']}, which is not in 'categories' ({sorted(id_map)})."
            )
        base = {"id": ann_id, "category_id": id_map[ann["category_id"]]}
        base["iscrowd"] = ann.get("iscrowd", 0)
        base.update({k: ann[k] for k in extra_keys if k in ann})
        for frame_idx, segm in enumerate(segms):
            if segm is None:
                continue
            _check_segmentation(segm, ann_id, frame_idx, (height, width), source)
            if isinstance(segm, list):
                segm = _valid_polygons(segm)
                if not segm:
                    num_dropped += 1
                    continue
            bbox = bboxes[frame_idx] if bboxes is not None else None
            if bbox is None:
                bbox = segmentation_bbox(segm, height, width)
            obj = dict(base)
            obj.update(segmentation=segm, bbox=bbox, bbox_mode=BOX_MODE_XYWH_ABS)
            frames[frame_idx].append(obj)
    return frames, num_dropped


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
    dataset, source = _read_json(json_file)
    if not isinstance(dataset, dict) or not isinstance(dataset.get("videos"), list):
        raise YTVISFormatError(f"{source}: expected a JSON object with a 'videos' list.")
    id_map, thing_classes = _category_mapping(dataset, source, dataset_id_to_contiguous_id)

    videos: Dict[int, dict] = {}
    for video in dataset["videos"]:
        _check_video(video, source)
        if video["id"] in videos:
            raise YTVISFormatError(f"{source}: video id {video['id']} appears more than once.")
        videos[video["id"]] = video
    # Test splits have no annotations (missing or null): records then have empty frames.
    by_video = _per_video_annotations(dataset.get("annotations") or [], videos, source)

    image_root = os.fspath(image_root)
    extra_keys = list(extra_annotation_keys or [])
    records, num_dropped = [], 0
    for video_id in sorted(videos):
        video = videos[video_id]
        frames, dropped = _frame_objs(by_video[video_id], video, id_map, extra_keys, source)
        num_dropped += dropped
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
    if num_dropped:
        logger.warning(
            f"{source}: dropped {num_dropped} per-frame segmentations without a valid polygon "
            f"(a polygon is a flat list of an even number >= {_MIN_POLYGON_COORDS} of coordinates)."
        )
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

"""COCO-format image annotation files -> per-image records, relabelled to a video dataset.

A record describes one annotated image (detectron2's image dataset format)::

    {
        "file_name": path,  "height": H,  "width": W,  "image_id": int,
        "annotations": [obj, ...],
    }
    obj = {"id": instance id, "category_id": contiguous id, "iscrowd": 0/1,
           "segmentation": polygons | RLE dict (counts str or list), "bbox": [x, y, w, h],
           "bbox_mode": BOX_MODE_XYWH_ABS}

``category_map`` maps the file's category ids (any ids, not necessarily contiguous) to the ids of
the video dataset the images are trained with (``category_maps.py`` has the COCO tables);
annotations of unmapped categories are dropped, and the kept ones get the video dataset's
contiguous ids. Segmentations stay as they are in the file and are decoded when an image is
mapped to a pseudo-video (``pseudo_video.py``).

Problems raise :class:`ImageDatasetFormatError` naming the file, the image or annotation id and
what was expected (polygons of finite numbers, ``iscrowd`` 0 or 1, RLEs covering H x W); image
files are checked to exist when loading (one ``stat`` per image), so a wrong ``image_root`` fails
before training starts. Polygons follow the rule of the YouTube-VIS loader
(:func:`~video_mask2former.data.ytvis.valid_polygons`): those with fewer than 3 points, an odd
number of coordinates or a zero area are dropped, an annotation left without a polygon is dropped,
and the drops are reported in one warning naming the first few annotations.
"""

import logging
import os
from typing import Dict, List, Optional, Tuple, Union

from .rle import RLEValidator
from .ytvis import (
    BOX_MODE_XYWH_ABS,
    JsonSource,
    YTVISFormatError,
    check_iscrowd,
    is_int,
    polygons_problem,
    read_json,
    segmentation_bbox,
    valid_polygons,
    warn_dropped_segmentations,
)

__all__ = ["ImageDatasetFormatError", "load_coco_image_dataset"]

logger = logging.getLogger(__name__)

# Missing image files listed in the error message (the count is always given).
_MISSING_FILES_SHOWN = 3


class ImageDatasetFormatError(ValueError):
    """A COCO-format image annotation file is malformed or has nothing to train on."""


def _check_top_level(dataset, source: str) -> None:
    if not isinstance(dataset, dict):
        raise ImageDatasetFormatError(
            f"{source}: expected a COCO-format object with 'images', 'annotations' and "
            f"'categories', got {type(dataset).__name__}."
        )
    for key in ("images", "annotations", "categories"):
        if not isinstance(dataset.get(key), list):
            raise ImageDatasetFormatError(
                f"{source}: {key!r} is missing or not a list; a COCO-format file has lists "
                f"'images', 'annotations' and 'categories'."
            )


def _check_images(images: list, source: str) -> Dict[int, dict]:
    by_id = {}
    for index, image in enumerate(images):
        if not isinstance(image, dict):
            raise ImageDatasetFormatError(f"{source}: images[{index}] is not an object.")
        for key in ("id", "height", "width"):
            if not is_int(image.get(key)):
                raise ImageDatasetFormatError(
                    f"{source}: images[{index}] (id {image.get('id')!r}) needs an integer "
                    f"{key!r}, got {image.get(key)!r}."
                )
        if not isinstance(image.get("file_name"), str):
            raise ImageDatasetFormatError(
                f"{source}: image {image['id']} needs a 'file_name' string."
            )
        if image["id"] in by_id:
            raise ImageDatasetFormatError(f"{source}: image id {image['id']} appears twice.")
        by_id[image["id"]] = image
    return by_id


def _resolve_category_map(
    dataset: dict,
    source: str,
    category_map: Optional[Dict[int, int]],
    dataset_id_to_contiguous_id: Optional[Dict[int, int]],
) -> Tuple[Dict[int, int], Dict[int, int], List[str]]:
    """(file category id -> contiguous id, target id -> contiguous id, class names)."""
    names = {}
    for cat in dataset["categories"]:
        if not isinstance(cat, dict) or not is_int(cat.get("id")):
            raise ImageDatasetFormatError(f"{source}: each category needs an integer 'id'.")
        names[cat["id"]] = str(cat.get("name", cat["id"]))
    if category_map is None:  # identity: the file already uses the target categories
        category_map = {cid: cid for cid in names}
    # Entries for categories the file lacks are fine (a subset of COCO with the COCO table); a map
    # that fits none of the file's annotations is caught by load_coco_image_dataset.
    category_map = {int(k): int(v) for k, v in category_map.items()}
    if dataset_id_to_contiguous_id is None:
        targets = sorted(set(category_map.values()))
        dataset_id_to_contiguous_id = {t: i for i, t in enumerate(targets)}
        classes = [names.get(t, str(t)) for t in targets]
    else:
        dataset_id_to_contiguous_id = {
            int(k): int(v) for k, v in dataset_id_to_contiguous_id.items()
        }
        classes = []
    missing = sorted(set(category_map.values()) - set(dataset_id_to_contiguous_id))
    if missing:
        raise ImageDatasetFormatError(
            f"{source}: the category map sends categories to target ids {missing}, which are not "
            f"in the target metadata's thing_dataset_id_to_contiguous_id "
            f"({sorted(dataset_id_to_contiguous_id)})."
        )
    to_contiguous = {src: dataset_id_to_contiguous_id[dst] for src, dst in category_map.items()}
    return to_contiguous, dataset_id_to_contiguous_id, classes


def _segmentation_problem(segm, size: List[int], validator: RLEValidator, owner) -> Optional[str]:
    if isinstance(segm, dict):
        if "counts" not in segm or "size" not in segm:
            return f"an RLE needs 'counts' and 'size', got keys {sorted(segm)}"
        if not isinstance(segm["size"], (list, tuple)) or list(segm["size"]) != size:
            return f"RLE size {segm['size']} does not match the image's [height, width] {size}"
        problem = validator.add(segm["counts"], tuple(size), owner)
        return None if problem is None else f"RLE 'counts' {problem}"
    return polygons_problem(segm)


def _image_obj(ann: dict, image: dict, category_id: int, validator, where: str) -> Optional[dict]:
    """The record obj (without its id) of one mapped annotation; None when its polygons outline
    no area (the rule of :func:`~video_mask2former.data.ytvis.valid_polygons`, as for videos)."""
    if "segmentation" not in ann:
        raise ImageDatasetFormatError(f"{where}: no 'segmentation' (polygons or RLE).")
    try:
        check_iscrowd(ann.get("iscrowd", 0), where)
    except YTVISFormatError as e:
        raise ImageDatasetFormatError(str(e)) from None
    size = [image["height"], image["width"]]
    segm = ann["segmentation"]
    problem = _segmentation_problem(segm, size, validator, where)
    if problem is not None:
        raise ImageDatasetFormatError(f"{where}: {problem}.")
    if isinstance(segm, list):
        segm = valid_polygons(segm)
        if not segm:
            return None
    bbox = ann.get("bbox") or segmentation_bbox(segm, *size)
    return {
        "category_id": category_id,
        "iscrowd": int(ann.get("iscrowd", 0)),
        "segmentation": segm,
        "bbox": bbox,
        "bbox_mode": BOX_MODE_XYWH_ABS,
    }


def _image_objs(
    dataset: dict, images: Dict[int, dict], to_contiguous: Dict[int, int], source: str
) -> Tuple[Dict[int, List[dict]], int, List[str]]:
    """Kept annotations grouped by image id, the number of dropped (unmapped) ones, and the
    annotations dropped for having no valid polygon ("annotation A of image I")."""
    by_image: Dict[int, List[dict]] = {image_id: [] for image_id in images}
    validator, num_unmapped, degenerate = RLEValidator(), 0, []
    for index, ann in enumerate(dataset["annotations"]):
        if not isinstance(ann, dict) or not is_int(ann.get("image_id")):
            raise ImageDatasetFormatError(
                f"{source}: annotations[{index}] needs an integer 'image_id'."
            )
        ann_id = ann.get("id", index)
        where = f"{source}: annotation {ann_id} of image {ann['image_id']}"
        if ann["image_id"] not in images:
            raise ImageDatasetFormatError(f"{where}: the image is not in 'images'.")
        if ann.get("category_id") not in to_contiguous:
            num_unmapped += 1
            continue
        image = images[ann["image_id"]]
        obj = _image_obj(ann, image, to_contiguous[ann["category_id"]], validator, where)
        if obj is None:
            degenerate.append(f"annotation {ann_id} of image {ann['image_id']}")
            continue
        by_image[ann["image_id"]].append({"id": ann_id, **obj})
    bad = validator.first_problem()
    if bad is not None:
        raise ImageDatasetFormatError(f"{bad[0]}: RLE 'counts' {bad[1]}.")
    return by_image, num_unmapped, degenerate


def _check_files_exist(records: List[dict], source: str, image_root: str) -> None:
    missing = [r["file_name"] for r in records if not os.path.isfile(r["file_name"])]
    if missing:
        shown = ", ".join(repr(f) for f in missing[:_MISSING_FILES_SHOWN])
        raise FileNotFoundError(
            f"{source}: {len(missing)} of {len(records)} image files do not exist under "
            f"image_root {image_root!r}, e.g. {shown}. Check the image folder of the dataset."
        )


def load_coco_image_dataset(
    json_file: JsonSource,
    image_root: Union[str, os.PathLike],
    *,
    category_map: Optional[Dict[int, int]] = None,
    dataset_id_to_contiguous_id: Optional[Dict[int, int]] = None,
    filter_empty: bool = True,
    check_files: bool = True,
) -> Tuple[List[dict], dict]:
    """Load a COCO-format image set into per-image records relabelled to a video dataset.

    Args:
        json_file: path of the annotation file, or the parsed dict.
        image_root: folder the images' ``file_name`` are relative to.
        category_map: file category id -> target (video dataset) category id; unmapped
            annotations are dropped. None keeps every category of the file under its own id.
        dataset_id_to_contiguous_id: target category id -> contiguous id (the video dataset's
            metadata); by default the mapped target ids, sorted, are numbered 0..K-1.
        filter_empty: drop images left without a non-crowd annotation.
        check_files: check that every kept image file exists.

    Returns:
        (records, metadata): records sorted by image id (module docstring); metadata has
        ``thing_dataset_id_to_contiguous_id`` and, when it was derived from the file,
        ``thing_classes``.

    Raises:
        ImageDatasetFormatError: a malformed file, a category map onto ids that the target
            metadata lacks, or no annotation of a mapped category at all.
        FileNotFoundError: the annotation file or image files do not exist.
    """
    dataset, source = read_json(json_file, "COCO-format", ImageDatasetFormatError)
    _check_top_level(dataset, source)
    images = _check_images(dataset["images"], source)
    to_contiguous, id_map, classes = _resolve_category_map(
        dataset, source, category_map, dataset_id_to_contiguous_id
    )
    by_image, num_unmapped, degenerate = _image_objs(dataset, images, to_contiguous, source)
    warn_dropped_segmentations(source, degenerate)
    num_kept = sum(len(objs) for objs in by_image.values())
    if num_kept == 0 and degenerate:
        raise ImageDatasetFormatError(
            f"{source}: none of the {len(degenerate)} annotations of a mapped category has a "
            f"valid polygon (an even number >= 6 of coordinates and a non-zero area), e.g. "
            f"{degenerate[0]}. Nothing to train on."
        )
    if num_kept == 0:
        present = sorted({a.get("category_id") for a in dataset["annotations"]}, key=str)
        raise ImageDatasetFormatError(
            f"{source}: no annotation has a mapped category (the map's categories: "
            f"{sorted(to_contiguous)}; the annotations' categories: {present}). Nothing to train "
            f"on: check that the category map is the one for this file."
        )
    image_root = os.fspath(image_root)
    records = []
    for image_id in sorted(images):
        objs = by_image[image_id]
        if filter_empty and not any(not obj["iscrowd"] for obj in objs):
            continue
        image = images[image_id]
        records.append(
            {
                "file_name": os.path.join(image_root, image["file_name"]),
                "height": image["height"],
                "width": image["width"],
                "image_id": image_id,
                "annotations": objs,
            }
        )
    if check_files:
        _check_files_exist(records, source, image_root)
    logger.info(
        f"Loaded {len(records)} of {len(images)} images from {source} ({num_kept} annotations "
        f"kept, {num_unmapped} of unmapped categories and {len(degenerate)} without a valid "
        f"polygon dropped)."
    )
    metadata = {"thing_dataset_id_to_contiguous_id": id_map}
    if classes:
        metadata["thing_classes"] = classes
    return records, metadata

"""A synthetic COCO-format image set: the synthetic videos' shapes and classes, one frame each.

Each image is a one-frame video of ``synthetic.py`` (same shapes, colours, backgrounds and
categories; no late entries or early exits, which need several frames), written in COCO format::

    out_dir/annotations.json     images / annotations / categories
    out_dir/images/000001.jpg ...

so joint training (images as pseudo-videos + videos) is tested end to end without downloading
COCO. Segmentations are compressed RLEs, or polygons (the masks' outer contours) with
``segmentation_format="polygon"``. The default seed differs from the video generator's, so the
images show other scenes than the videos of a default synthetic YouTube-VIS set.
"""

import dataclasses
import json
import os
from typing import List, Optional, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_util
from PIL import Image

from .builtin_meta import SYNTHETIC_CATEGORIES
from .synthetic import DEFAULT_HEIGHT as DEFAULT_VIDEO_HEIGHT
from .synthetic import DEFAULT_WIDTH as DEFAULT_VIDEO_WIDTH
from .synthetic import SyntheticConfig, generate_synthetic_ytvis

__all__ = ["generate_synthetic_coco", "write_synthetic_coco", "IMAGE_FOLDER", "ANNOTATION_FILE"]

IMAGE_FOLDER = "images"
ANNOTATION_FILE = "annotations.json"
SEGMENTATION_FORMATS = ("rle", "polygon")
# Default seed: not the video generator's (0), so the images are new scenes.
DEFAULT_SEED = 1000
# Defaults of write_synthetic_coco and datasets/prepare_synthetic_coco.py (the set written on
# first use by train_net_video.py): the synthetic videos' frame size.
DEFAULT_IMAGES = 256
DEFAULT_HEIGHT = DEFAULT_VIDEO_HEIGHT
DEFAULT_WIDTH = DEFAULT_VIDEO_WIDTH
# A polygon needs at least 3 (x, y) points.
_MIN_POLYGON_POINTS = 3


def _polygons(rle: dict) -> List[List[float]]:
    """Outer contours of an RLE's mask as COCO polygons (flat [x0, y0, x1, y1, ...] lists)."""
    mask = mask_util.decode(rle).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= _MIN_POLYGON_POINTS]


def generate_synthetic_coco(
    *,
    num_images: int,
    height: int = 128,
    width: int = 160,
    seed: int = DEFAULT_SEED,
    config: SyntheticConfig = SyntheticConfig(),
    segmentation_format: str = "rle",
    with_images: bool = False,
) -> Tuple[dict, Optional[List[np.ndarray]]]:
    """Generate the image set in memory.

    Args:
        num_images, height, width: set size (images are ``height x width``).
        seed (int): the set is a pure function of its arguments.
        config (SyntheticConfig): appearance (its late-start / early-end probabilities are unused).
        segmentation_format (str): ``"rle"`` (compressed) or ``"polygon"``.
        with_images (bool): also paint the images.

    Returns:
        (dataset, images): the COCO-format dict and, with ``with_images``, the (H, W, 3) uint8 RGB
        images in image id order, else None.
    """
    if segmentation_format not in SEGMENTATION_FORMATS:
        raise ValueError(
            f"segmentation_format must be one of {SEGMENTATION_FORMATS}, "
            f"got {segmentation_format!r}."
        )
    one_frame = dataclasses.replace(config, late_start_prob=0.0, early_end_prob=0.0)
    videos, frames = generate_synthetic_ytvis(
        num_videos=num_images, num_frames=1, height=height, width=width, seed=seed,
        config=one_frame, with_images=with_images,
    )  # fmt: skip
    images = [
        {"id": v["id"], "file_name": f"{v['id']:06d}.jpg", "height": height, "width": width}
        for v in videos["videos"]
    ]
    annotations = []
    for ann in videos["annotations"]:
        rle = ann["segmentations"][0]
        segm = _polygons(rle) if segmentation_format == "polygon" else rle
        if not segm:
            continue  # a sliver without a 3-point contour
        annotations.append(
            {
                "id": ann["id"],
                "image_id": ann["video_id"],
                "category_id": ann["category_id"],
                "iscrowd": 0,
                "segmentation": segm,
                "bbox": ann["bboxes"][0],
                "area": ann["areas"][0],
            }
        )
    dataset = {
        "info": {"description": f"synthetic COCO-format images (seed {seed})"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": cid, "name": name, "supercategory": "shape"}
            for cid, name, _ in SYNTHETIC_CATEGORIES
        ],
    }
    return dataset, ([f[0] for f in frames] if with_images else None)


def write_synthetic_coco(
    out_dir: str,
    *,
    num_images: int = DEFAULT_IMAGES,
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    seed: int = DEFAULT_SEED,
    config: SyntheticConfig = SyntheticConfig(),
    segmentation_format: str = "rle",
) -> Tuple[str, str]:
    """Write the image set under ``out_dir`` (``$DETECTRON2_DATASETS/coco_synthetic`` for the
    built-in ``coco_synthetic_train`` split).

    Returns:
        (image_root, json_file).
    """
    dataset, images = generate_synthetic_coco(
        num_images=num_images, height=height, width=width, seed=seed, config=config,
        segmentation_format=segmentation_format, with_images=True,
    )  # fmt: skip
    image_root = os.path.join(out_dir, IMAGE_FOLDER)
    os.makedirs(image_root, exist_ok=True)
    for info, image in zip(dataset["images"], images):
        path = os.path.join(image_root, info["file_name"])
        Image.fromarray(image).save(path, quality=config.jpeg_quality)
    json_file = os.path.join(out_dir, ANNOTATION_FILE)
    with open(json_file, "w") as f:
        json.dump(dataset, f)
    return image_root, json_file

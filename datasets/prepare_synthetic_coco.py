#!/usr/bin/env python
"""Write a synthetic COCO-format image set (the synthetic videos' shapes and classes).

    python datasets/prepare_synthetic_coco.py --out $DETECTRON2_DATASETS/coco_synthetic

writes annotations.json + images/ and registers as ``coco_synthetic_train`` (joint training with
``ytvis_synthetic_train``: configs/quick_schedules/*_joint_quick.yaml; see datasets/README.md).
"""

import argparse
import os

from video_mask2former.data import synthetic_images
from video_mask2former.data.synthetic_images import (
    DEFAULT_SEED,
    SEGMENTATION_FORMATS,
    write_synthetic_coco,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = os.path.join(os.getenv("DETECTRON2_DATASETS", "datasets"), "coco_synthetic")
    parser.add_argument("--out", type=str, default=default_out, help="output folder")
    parser.add_argument(
        "--images", type=int, default=synthetic_images.DEFAULT_IMAGES, help="number of images"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument(
        "--height", type=int, default=synthetic_images.DEFAULT_HEIGHT, help="image height"
    )
    parser.add_argument(
        "--width", type=int, default=synthetic_images.DEFAULT_WIDTH, help="image width"
    )
    parser.add_argument(
        "--segmentation-format",
        type=str,
        choices=SEGMENTATION_FORMATS,
        default="rle",
        help="compressed RLE or polygons",
    )
    args = parser.parse_args(argv)
    image_root, json_file = write_synthetic_coco(
        args.out,
        num_images=args.images,
        height=args.height,
        width=args.width,
        seed=args.seed,
        segmentation_format=args.segmentation_format,
    )
    print(f"{json_file} (images under {image_root})")


if __name__ == "__main__":
    main()

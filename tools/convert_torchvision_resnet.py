#!/usr/bin/env python
"""Convert a torchvision ImageNet ResNet-50/101 checkpoint to this project's backbone weights.

Usage::

    python tools/convert_torchvision_resnet.py resnet50-0676ba61.pth R-50-torchvision.pkl

The output is a detectron2-style pickle ``{"model": {key: numpy array}, "__author__":
"torchvision", "matching_heuristics": True}`` with detectron2 ResNet key names; pass
``--prefix backbone.`` to store full model keys. The conversion and the training settings it
needs (RGB input, stride in the 3x3 convolution, ImageNet mean/std) are described in
:mod:`video_mask2former.checkpoint.layouts.imagenet`.
"""

import argparse
import sys
from typing import List, Optional

from video_mask2former.checkpoint.layouts.imagenet import convert_imagenet_file


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=str, help="torchvision ResNet checkpoint (.pth)")
    parser.add_argument("output", type=str, help="output detectron2-style pickle (.pkl)")
    parser.add_argument("--prefix", type=str, default="", help="prepended to every key")
    args = parser.parse_args(argv)
    try:
        count = convert_imagenet_file(
            args.input, args.output, "torchvision_resnet", prefix=args.prefix
        )
    except (ValueError, OSError) as e:  # CheckpointFileError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Wrote {count} arrays to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

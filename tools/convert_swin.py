#!/usr/bin/env python
"""Convert an official Swin Transformer ImageNet checkpoint to this project's backbone weights.

Usage::

    python tools/convert_swin.py swin_tiny_patch4_window7_224.pth swin_tiny_patch4_window7_224.pkl

Input: a checkpoint of github.com/microsoft/Swin-Transformer (``{"model": state_dict}``). The
output is a detectron2-style pickle ``{"model": {key: numpy array}, "__author__": "third_party",
"matching_heuristics": True}``; pass ``--prefix backbone.`` to store full model keys. What is kept
and dropped is described in :mod:`video_mask2former.checkpoint.layouts.imagenet`.
"""

import argparse
import sys
from typing import List, Optional

from video_mask2former.checkpoint.layouts.imagenet import convert_imagenet_file


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=str, help="official Swin checkpoint (.pth)")
    parser.add_argument("output", type=str, help="output detectron2-style pickle (.pkl)")
    parser.add_argument("--prefix", type=str, default="", help="prepended to every key")
    args = parser.parse_args(argv)
    try:
        count = convert_imagenet_file(args.input, args.output, "swin", prefix=args.prefix)
    except (ValueError, OSError) as e:  # CheckpointFileError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Wrote {count} arrays to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

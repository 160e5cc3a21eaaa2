#!/usr/bin/env python
"""Write the synthetic YouTube-VIS dataset (train + annotated val) in the YouTube-VIS layout.

    python datasets/prepare_synthetic_ytvis.py --out $DETECTRON2_DATASETS/ytvis_synthetic

registers as ``ytvis_synthetic_train`` / ``ytvis_synthetic_val`` (see datasets/README.md).
"""

import argparse
import os

from video_mask2former.data import synthetic
from video_mask2former.data.synthetic import write_synthetic_ytvis


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = os.path.join(os.getenv("DETECTRON2_DATASETS", "datasets"), "ytvis_synthetic")
    parser.add_argument("--out", type=str, default=default_out, help="output folder")
    parser.add_argument(
        "--videos", type=int, default=synthetic.DEFAULT_TRAIN_VIDEOS, help="number of train videos"
    )
    parser.add_argument(
        "--val-videos", type=int, default=synthetic.DEFAULT_VAL_VIDEOS, help="number of val videos"
    )
    parser.add_argument(
        "--frames", type=int, default=synthetic.DEFAULT_FRAMES, help="frames per video"
    )
    parser.add_argument("--seed", type=int, default=synthetic.DEFAULT_SEED, help="random seed")
    parser.add_argument("--height", type=int, default=synthetic.DEFAULT_HEIGHT, help="frame height")
    parser.add_argument("--width", type=int, default=synthetic.DEFAULT_WIDTH, help="frame width")
    args = parser.parse_args(argv)
    written = write_synthetic_ytvis(
        args.out,
        num_train_videos=args.videos,
        num_val_videos=args.val_videos,
        num_frames=args.frames,
        height=args.height,
        width=args.width,
        seed=args.seed,
    )
    for split, (image_root, json_file) in written.items():
        print(f"{split}: {json_file} (frames under {image_root})")


if __name__ == "__main__":
    main()

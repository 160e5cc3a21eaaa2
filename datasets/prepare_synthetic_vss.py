#!/usr/bin/env python
"""Write the synthetic video VSS dataset (train + annotated val) in the VSPW layout.

    python datasets/prepare_synthetic_vss.py --out $DETECTRON2_DATASETS/vss_synthetic

registers as ``vss_synthetic_train`` / ``vss_synthetic_val`` (see datasets/README.md). The
files are a pure function of the arguments; running it again rewrites the same files.
"""

import argparse
import os

from video_mask2former.data import synthetic_video_seg as synthetic
from video_mask2former.data.builtin_meta import VSS_SYNTHETIC_DIR


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = os.path.join(os.getenv("DETECTRON2_DATASETS", "datasets"), VSS_SYNTHETIC_DIR)
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
    try:
        written = synthetic.write_synthetic_vss(
            args.out,
            num_train_videos=args.videos,
            num_val_videos=args.val_videos,
            num_frames=args.frames,
            height=args.height,
            width=args.width,
            seed=args.seed,
        )
    except ValueError as e:
        parser.error(str(e))
    for split, paths in written.items():
        print(f"vss_synthetic_{split}: {', '.join(paths)}")


if __name__ == "__main__":
    main()

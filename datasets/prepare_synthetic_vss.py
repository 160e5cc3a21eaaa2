#!/usr/bin/env python
"""Write the synthetic video VSS dataset (train + annotated val) in the VSPW layout.

    python datasets/prepare_synthetic_vss.py --out $DETECTRON2_DATASETS/vss_synthetic

registers as ``vss_synthetic_train`` / ``vss_synthetic_val`` (see datasets/README.md). The
files are a pure function of the arguments; running it again rewrites the same files. Options:
``video_mask2former.data.synthetic_video_seg.prepare_main``.
"""

from video_mask2former.data.synthetic_video_seg import prepare_main


def main(argv=None):
    prepare_main("vss", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()

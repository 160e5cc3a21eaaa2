#!/usr/bin/env python
"""Video instance segmentation demo: predict a video and draw / save its instances.

    python demo_video/demo.py \
        --config-file configs/youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml \
        --input path/to/frames/ --output out.mp4 --save-masks results.json \
        --opts MODEL.WEIGHTS model_final.pth MODEL.DEVICE cpu

The options, the checks and the exit statuses are described in
:mod:`video_mask2former.d2.demo.cli` (``--help`` lists the options); the library code is
``video_mask2former.d2.demo`` and ``video_mask2former.visualization`` (installed with
``pip install -e .``).
"""

from video_mask2former.d2.demo.cli import run

if __name__ == "__main__":
    run()

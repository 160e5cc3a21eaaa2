#!/usr/bin/env python
"""Video segmentation demo: predict a video and draw / save its instances, or its panoptic or
semantic segmentation (a config with MODEL.MASK_FORMER.TEST.PANOPTIC_ON / SEMANTIC_ON).

    python demo_video/demo.py \
        --config-file configs/youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml \
        --input path/to/frames/ --output out.mp4 --save-masks results.json \
        --opts MODEL.WEIGHTS model_final.pth MODEL.DEVICE cpu

    python demo_video/demo.py \
        --config-file configs/quick_schedules/video_maskformer2_R18_vps_synthetic_quick.yaml \
        --input path/to/<video>/ --output out.mp4 --save-masks pred/ \
        --opts MODEL.WEIGHTS model_final.pth
    python tools/evaluate_vps.py --gt-json ... --gt-dir ... \
        --pred-json pred/pred.json --pred-dir pred/pan_pred

The options, the checks and the exit statuses are described in
:mod:`video_mask2former.d2.demo.cli` (``--help`` lists the options); the library code is
``video_mask2former.d2.demo`` and ``video_mask2former.visualization`` (installed with
``pip install -e .``).
"""

from video_mask2former.d2.demo.cli import run

if __name__ == "__main__":
    run()

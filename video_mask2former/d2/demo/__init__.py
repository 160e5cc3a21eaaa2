"""The demo's library code on detectron2 (``demo_video/demo.py`` runs :func:`.cli.run`).

* :mod:`.cli`: the command line (arguments, checks, the offline mode, exit statuses);
* :mod:`.predictor`: :class:`VideoPredictor`, a config's model (or its ONNX file) on RGB frames;
* :mod:`.categories`: the categories of the config's registered dataset.

The parts without detectron2 (the online loop, categories files) are in
:mod:`video_mask2former.demo`; drawing and writing frames in :mod:`video_mask2former.visualization`.
"""

"""The demo's library code that needs no detectron2 (``demo_video/demo.py`` is its command line).

* :mod:`.online`: the ``--online`` loop, results drawn and written frame by frame;
* :mod:`.segmentation`: the panoptic / semantic mode (offline and online): id maps drawn and
  written frame by frame, ``--save-masks`` in the scorers' formats;
* :mod:`.categories`: the class names and dataset ids the demo draws and saves
  (:class:`Categories`; a categories file);
* :mod:`.wording`: the wording of its messages.

The parts on detectron2 (the predictor of a config, the categories of a registered dataset, the
command line) are in :mod:`video_mask2former.d2.demo`; drawing and writing frames in
:mod:`video_mask2former.visualization`.
"""

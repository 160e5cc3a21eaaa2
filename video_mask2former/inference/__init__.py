"""Inference: the whole video, windows linked into tracks, streams; the post-processing.

Shapes: T frames, W frames per window, Q queries, K classes, H x W the output size.

The network lives in :mod:`video_mask2former.modeling`; this package turns its raw outputs into
video instances and never imports it (the model's inference API delegates here):

* :mod:`.postprocess`: top-k (query, class) pairs and their full-resolution masks
  (:func:`video_inference`, the paper's whole-video result);
* :mod:`.windowed`: consecutive windows of W frames linked by Hungarian matching of the query
  embeddings (:func:`windowed_inference`), memory bounded in T;
* :mod:`.streaming`: online / semi-online inference, per-frame results with stable track ids
  (:class:`VideoStream`);
* :mod:`.modes`: the three modes run on a model (what its methods call).

A model ready for inference (built, weights loaded under the inference loading policy, eval
mode) comes from :func:`video_mask2former.build.build_inference_model` (a backbone name and
weights) or ``video_mask2former.d2.build_inference_model(cfg)`` (a detectron2 config). Its
inference API::

    model([{"image": frames, "height": H, "width": W}])   # whole video (or windowed: window_size)
    model.inference_windowed(frames, (H, W), window_size=10)  # long videos, bounded memory
    model.stream(window_size=1).push(frame)                # online, per-frame results
    model.predict_window(frames)                           # the raw WindowOutput of one window
"""

from .modes import infer_video, network_outputs, predict_window, run_windowed, window_predictor
from .postprocess import (
    DEFAULT_TOPK,
    MASK_LOGIT_THRESHOLD,
    resize_mask_logits,
    select_topk,
    video_inference,
    video_inference_reference,
)
from .streaming import FrameResult, StreamInstance, StreamPolicy, VideoStream, collect_video_result
from .windowed import WindowOutput, windowed_inference

__all__ = [
    "DEFAULT_TOPK",
    "MASK_LOGIT_THRESHOLD",
    "FrameResult",
    "StreamInstance",
    "StreamPolicy",
    "VideoStream",
    "WindowOutput",
    "collect_video_result",
    "infer_video",
    "network_outputs",
    "predict_window",
    "resize_mask_logits",
    "run_windowed",
    "select_topk",
    "video_inference",
    "video_inference_reference",
    "window_predictor",
    "windowed_inference",
]

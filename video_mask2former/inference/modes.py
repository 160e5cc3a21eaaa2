"""The inference modes run on a model: the whole video, one window, windows linked into tracks.

Shapes: T frames, W frames per window, Q queries, K classes, C query channels, Hp x Wp the padded
input size, H x W the output size.

These functions drive a :class:`~video_mask2former.modeling.video_maskformer.VideoMaskFormer`
through its network steps only (``preprocess``: frames to a normalised, padded batch;
``predict``: the batch to raw outputs) and its inference settings (``test_topk``,
``inference_chunk_size``, ``window_size``); they do not import the model, which delegates its
inference API (``forward`` in eval mode, ``predict_window``, ``inference_windowed``, ``stream``)
to them. Every mode checks its frames with
:func:`~video_mask2former.data.frame_checks.check_video_frames` before the network sees them.
"""

import functools
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.profiler import record_function

from mask2former_ops.cpu_cache import cpu_block_cache

from ..data.frame_checks import as_chw_tensor, check_video_frames, frame_size
from .postprocess import video_inference
from .segment_windows import (
    collect_segmentation,
    iter_video_segmentation,
    iter_windowed_segmentation,
)
from .windowed import WindowOutput, check_output_size, check_window_size, windowed_inference

__all__ = [
    "infer_video",
    "inference_memory",
    "network_outputs",
    "predict_window",
    "run_windowed",
    "window_predictor",
]


def network_outputs(
    model: nn.Module, batched_inputs: List[Dict], keep_aux: bool = False
) -> Tuple[Dict[str, object], Tuple[int, int], List[Tuple[int, int]]]:
    """The network's raw outputs for a batch of videos, without post-processing (no checks).

    Args:
        model (nn.Module): a VideoMaskFormer.
        batched_inputs (list[dict]): B videos with ``"image"``: T (3, H, W) tensors each.
        keep_aux (bool): also return the deep-supervision outputs.

    Returns:
        tuple: outputs (``pred_logits`` (B, Q, K+1), ``pred_masks`` (B, Q, T, Hp/4, Wp/4),
        ``pred_embeds`` (B, Q, C) [, ``aux_outputs``]), the padded size (Hp, Wp) and the B*T
        un-padded sizes.
    """
    with record_function("preprocess"):
        images, sizes, num_frames = model.preprocess(batched_inputs)
    outputs = model.predict(images, num_frames, keep_aux=keep_aux)
    return outputs, tuple(images.shape[-2:]), sizes


def _predict_checked_window(model: nn.Module, frames: Sequence) -> WindowOutput:
    """:func:`predict_window` of frames already checked (by the windowed mode or a stream)."""
    outputs, padded_size, sizes = network_outputs(
        model, [{"image": [as_chw_tensor(frame) for frame in frames]}]
    )
    return WindowOutput(
        pred_logits=outputs["pred_logits"][0],
        pred_masks=outputs["pred_masks"][0],
        pred_embeds=outputs["pred_embeds"][0],
        padded_size=padded_size,
        image_size=sizes[0],
    )


def window_predictor(model: nn.Module):
    """``predict_window(frames) -> WindowOutput`` of ``model`` for frames that the caller has
    already checked: what :func:`~.windowed.windowed_inference` and
    :class:`~.streaming.VideoStream` run (they check each frame as it is read or pushed)."""
    return functools.partial(_predict_checked_window, model)


def predict_window(model: nn.Module, frames: Sequence) -> WindowOutput:
    """The network's prediction for one window of W frames of one size (checked here).

    Returns:
        WindowOutput: logits (Q, K+1), mask logits (Q, W, Hp/4, Wp/4), embeddings (Q, C).

    Raises:
        FrameError: a frame the model cannot take, or of another size than the first.
    """
    return _predict_checked_window(model, list(check_video_frames(frames, "the window")))


@torch.no_grad()
def run_windowed(
    model: nn.Module,
    frames: Iterable,
    output_size: Tuple[int, int],
    window_size: Optional[int] = None,
) -> Dict[str, object]:
    """Windowed inference of one video (see ``VideoMaskFormer.inference_windowed``).

    Args:
        model (nn.Module): a VideoMaskFormer in eval mode.
        frames (iterable): the video's frames, consumed one window at a time.
        output_size (tuple): (H, W) of the returned masks.
        window_size (int, optional): W; None (or 0): the model's ``window_size``, or the whole
            video in one window when that is 0.

    Returns:
        dict: ``image_size``, ``pred_scores``, ``pred_labels``, ``pred_masks`` (k RLE masks) and
        ``pred_track_ids`` (see :func:`~.windowed.windowed_inference`).
    """
    if window_size is not None:
        window_size = check_window_size(window_size, "inference_windowed", minimum=0)
    size = window_size or model.window_size
    if not size:
        frames = list(frames)
        size = max(1, len(frames))
    with inference_memory(model):
        return windowed_inference(
            window_predictor(model), frames, size, output_size, topk=model.test_topk
        )


def inference_memory(model: nn.Module):
    """The CPU block cache (``model.cache_cpu_blocks``, see
    :mod:`mask2former_ops.cpu_cache`) around a whole inference call — network, linking and
    post-processing — so that they reuse the same cached blocks: with the network alone in it,
    the post-processing's peak came on top of the cache's reserved memory (windowed R50 inference
    at 360x640 peaked 0.8 GB higher). A no-op off the CPU, in training, or when switched off."""
    enabled = (
        getattr(model, "cache_cpu_blocks", False)
        and not model.training
        and model.device.type == "cpu"
    )
    return cpu_block_cache(enabled)


@torch.no_grad()  # the result is post-processed (top-k, binary masks): no gradient to keep
def infer_video(model: nn.Module, batched_inputs: List[Dict]) -> Dict[str, object]:
    """The result of one video, whole (``model.window_size == 0``) or windowed; what
    ``VideoMaskFormer.forward`` returns in eval mode. Its frames are checked first. Runs without
    autograd, as the windowed path does, so both take the same (fast CPU) network path.

    Args:
        batched_inputs (list[dict]): one video: ``"image"`` T frames, optional ``"height"`` /
            ``"width"`` (the masks' size, default the frames').

    Returns:
        dict: ``image_size`` (H, W), ``pred_scores``, ``pred_labels``, ``pred_masks`` (k (T, H, W)
        bool tensors on the CPU; RLE masks when windowed).
    """
    if len(batched_inputs) != 1:
        raise ValueError(
            f"VideoMaskFormer inference takes one video per call, got {len(batched_inputs)}"
        )
    with inference_memory(model):
        return _infer_video(model, batched_inputs[0])


def _infer_video(model: nn.Module, video: Dict) -> Dict[str, object]:
    """:func:`infer_video` of one video dict."""
    frames = video.get("image")
    if frames is None or len(frames) == 0:
        raise ValueError("VideoMaskFormer inference: the video has no frames in 'image'")
    task = getattr(model, "segmentation_task", None)
    if model.window_size > 0:
        size = frame_size(frames[0], "frame 0 of the video (windowed inference)")
        if task is not None:
            output_size = _output_size(video, size)
            results = iter_windowed_segmentation(
                window_predictor(model),
                frames,
                model.window_size,
                output_size,
                task,
                chunk_size=model.inference_chunk_size,
            )
            return collect_segmentation(results, task, output_size)
        return run_windowed(model, frames, _output_size(video, size))
    checked = check_video_frames(frames, "the video (whole-video inference)")
    outputs, padded_size, sizes = network_outputs(
        model, [{"image": [as_chw_tensor(f) for f in checked]}]
    )
    with record_function("postprocess"):
        return _postprocess_video(model, video, task, outputs, padded_size, sizes)


def _postprocess_video(model, video, task, outputs, padded_size, sizes) -> Dict[str, object]:
    """The whole-video result of the network's ``outputs`` (see :func:`infer_video`)."""
    if task is not None:
        output_size = _output_size(video, sizes[0])
        results = iter_video_segmentation(
            task,
            outputs["pred_logits"][0],
            outputs["pred_masks"][0],
            padded_size,
            sizes[0],
            output_size,
            chunk_size=model.inference_chunk_size,
        )
        return collect_segmentation(results, task, output_size)
    return video_inference(
        outputs["pred_logits"][0],
        outputs["pred_masks"][0],
        padded_size=padded_size,
        image_size=sizes[0],
        output_size=_output_size(video, sizes[0]),
        topk=model.test_topk,
        chunk_size=model.inference_chunk_size,
    )


def _output_size(video: Dict, frame_size: Tuple[int, int]) -> Tuple[int, int]:
    """(H, W) of a video's masks: its ``"height"`` / ``"width"`` (each defaulting to the frames'),
    checked to be integers >= 1."""
    size = (video.get("height", frame_size[0]), video.get("width", frame_size[1]))
    return check_output_size(size, "the video's 'height' / 'width' (the masks' size)")

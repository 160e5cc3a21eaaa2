"""``VideoPredictor``: run a detectron2-configured video model on a list of RGB frames: video
instances, or with a segmentation task video panoptic / semantic id maps frame by frame."""

import contextlib
from typing import Callable, Iterable, Iterator, Optional, Tuple

import numpy as np
import torch

from ...demo.segmentation import frames_of_result
from ...export import OnnxWindowPredictor
from ...inference import VideoStream, windowed_inference
from ...inference.modes import inference_memory
from ...precision import inference_autocast
from ...inference.segment_windows import (
    FrameSegmentation,
    SegmentationStream,
    SegmentationTask,
    iter_windowed_segmentation,
)
from ..build import build_inference_model
from ..mapper import build_clip_augmentation_from_cfg
from ..registration import build_segmentation_task

__all__ = ["VideoPredictor"]


class VideoPredictor:
    """Builds the model of ``cfg``, loads ``cfg.MODEL.WEIGHTS`` and predicts whole videos.

    The frames are resized like the test loader does (``INPUT.MIN_SIZE_TEST`` /
    ``MAX_SIZE_TEST``) and the masks come back at the original frame size.

    Args:
        cfg (CfgNode): a config with this project's keys; ``MODEL.DEVICE`` picks CPU or GPU.
        onnx_model (str, optional): an ONNX file of the window network (tools/export_model.py)
            run in onnxruntime instead of the PyTorch model (``MODEL.WEIGHTS`` is then unused);
            it must predict ``MODEL.SEM_SEG_HEAD.NUM_CLASSES`` classes and, when
            ``MODEL.MASK_FORMER.SIZE_DIVISIBILITY`` >= 0, have been exported with that padding.

    Attributes:
        segmentation_task (SegmentationTask or None): the model's panoptic / semantic task
            (``model.segmentation_task``, or with ``onnx_model`` the config's:
            ``MODEL.MASK_FORMER.TEST.PANOPTIC_ON`` / ``SEMANTIC_ON``); :meth:`segment` and
            :meth:`stream` then give id maps. None: the model predicts video instances
            (:meth:`__call__`, :meth:`stream`).

    Raises:
        ValueError: when ``MODEL.WEIGHTS`` is empty (the demo needs trained weights).
        FileNotFoundError: when ``MODEL.WEIGHTS`` or ``onnx_model`` names a file that does not
            exist.
        CheckpointFileError: when ``MODEL.WEIGHTS`` is not a checkpoint.
        CheckpointMismatchError: when its weights do not fit the model exactly (unless
            ``MODEL.ALLOW_PARTIAL_WEIGHTS``).
        OnnxModelError: (a ``ValueError``) when ``onnx_model`` is not a window network or does
            not fit the config.
    """

    segmentation_task: Optional[SegmentationTask]

    def __init__(self, cfg, onnx_model: Optional[str] = None):
        self.cfg = cfg.clone()
        self.window_size = cfg.MODEL.MASK_FORMER.TEST.WINDOW_SIZE
        self.topk = cfg.MODEL.MASK_FORMER.TEST.TOPK
        self.chunk_size = cfg.MODEL.MASK_FORMER.TEST.CHUNK_SIZE or None  # 0: all frames at once
        if onnx_model:
            # The network runs in onnxruntime (tools/export_model.py wrote it, weights included);
            # the project's windowed post-processing runs on its outputs.
            self.model = None
            divisibility = cfg.MODEL.MASK_FORMER.SIZE_DIVISIBILITY  # < 0: the backbone's, unknown
            self.onnx = OnnxWindowPredictor(
                onnx_model,
                size_divisibility=divisibility if divisibility >= 0 else None,
                num_classes=cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
            )
            self.segmentation_task = build_segmentation_task(self.cfg)
        else:
            if not cfg.MODEL.WEIGHTS:
                raise ValueError(
                    "MODEL.WEIGHTS is empty: give trained weights, e.g. --opts MODEL.WEIGHTS "
                    "model.pth"
                )
            self.onnx = None
            self.model = build_inference_model(self.cfg)
            self.segmentation_task = self.model.segmentation_task
        self.augmentations = build_clip_augmentation_from_cfg(cfg, is_train=False)
        self.input_format = cfg.INPUT.FORMAT

    def check_frame_size(self, size: Tuple[int, int]) -> None:
        """Raise a ``ValueError`` when frames of (H, W) ``size`` cannot be predicted (the ONNX
        file was exported for another size of the resized frames); call it before inference."""
        if self.onnx is not None:
            self.onnx.check_frame_size(self._to_tensor(np.zeros((*size, 3), np.uint8)).shape[1:])

    def precision_context(self):
        """The context the network runs in: ``MODEL.INFERENCE_PRECISION`` on the model's device
        (see :mod:`video_mask2former.precision`); the online loop enters it around each step."""
        return self._autocast()

    def _autocast(self):
        """``MODEL.INFERENCE_PRECISION`` on the model's device (see video_mask2former.precision);
        nothing for an ONNX model (onnxruntime runs it as exported)."""
        if self.model is None:
            return contextlib.nullcontext()
        return inference_autocast(
            self.cfg.MODEL.INFERENCE_PRECISION,
            self.model.device,
            amp_enabled=self.cfg.SOLVER.AMP.ENABLED,
        )

    def _to_tensor(self, frame: np.ndarray) -> torch.Tensor:
        """One (H, W, 3) RGB frame resized like the test loader, as a (3, h, w) tensor."""
        (image,), _ = self.augmentations([np.asarray(frame)], np.random.default_rng(0))
        if self.input_format == "BGR":
            image = image[:, :, ::-1]
        return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))

    def __call__(
        self,
        frames: Iterable[np.ndarray],
        size: Tuple[int, int],
        progress: Optional[Callable[[int], None]] = None,
    ) -> dict:
        """Predict one video.

        Args:
            frames (iterable of ndarray): T (H, W, 3) uint8 RGB frames. With
                ``MODEL.MASK_FORMER.TEST.WINDOW_SIZE`` > 0 they are consumed one window at a
                time (a :class:`~video_mask2former.data.frames.FrameSource` streams them from
                disk); otherwise the whole video is run at once.
            size (tuple): (H, W) of the frames: the masks come back at this size.
            progress (callable, optional): called with the number of frames each time the
                network has predicted some (a window, or the whole video).

        Returns:
            dict: ``image_size`` (H, W), ``pred_scores`` (k floats), ``pred_labels`` (k contiguous
            class ids), ``pred_masks`` (k (T, H, W) masks: bool tensors, or ``RLEVideoMask`` in
            windowed mode or with ONNX), sorted by decreasing score.
        """
        tensors = (self._to_tensor(frame) for frame in frames)
        # The CPU block cache around the windows' linking and masks too, as the model's own modes
        # (a no-op for ONNX, on a GPU or when MODEL.CPU_BLOCK_CACHE is off).
        with torch.no_grad(), self._autocast(), inference_memory(self.model):
            if self.onnx is None and self.window_size == 0:
                video = list(tensors)
                result = self.model([{"image": video, "height": size[0], "width": size[1]}])
                if progress is not None:
                    progress(len(video))
                return result
            predict = self.onnx or self.model.predict_window
            window = self.window_size
            if window == 0:  # ONNX, whole video: one window of every frame
                tensors = list(tensors)
                window = max(1, len(tensors))

            def predict_window(window_frames):
                output = predict(window_frames)
                if progress is not None:
                    progress(len(window_frames))
                return output

            return windowed_inference(predict_window, tensors, window, size, topk=self.topk)

    def segment(
        self,
        frames: Iterable[np.ndarray],
        size: Tuple[int, int],
        progress: Optional[Callable[[int], None]] = None,
    ) -> Iterator[FrameSegmentation]:
        """Segment one video (a model with a :attr:`segmentation_task`), frame by frame.

        Args:
            frames (iterable of ndarray): T (H, W, 3) uint8 RGB frames. With
                ``MODEL.MASK_FORMER.TEST.WINDOW_SIZE`` = W > 0 they are read one window at a time
                and each window's results come as soon as it is done (thing ids linked across
                windows); otherwise the whole video is run at once.
            size (tuple): (H, W) of the frames: the maps come back at this size.
            progress (callable, optional): called with the number of frames each time the
                network has predicted some.

        Yields:
            FrameSegmentation: each frame's id map (panoptic, 0 = void, with its segments) or
            class map (semantic), in frame order.
        """
        if self.segmentation_task is None:
            raise ValueError(
                "VideoPredictor.segment: the model predicts video instances (it has no "
                "segmentation task)"
            )
        tensors = (self._to_tensor(frame) for frame in frames)
        if self.onnx is None and self.window_size == 0:
            video = list(tensors)
            with torch.no_grad(), self._autocast():
                result = self.model([{"image": video, "height": size[0], "width": size[1]}])
            if progress is not None:
                progress(len(video))
            yield from frames_of_result(result)
            return
        predict = self.onnx or self.model.predict_window
        window = self.window_size
        if window == 0:  # ONNX, whole video: one window of every frame
            tensors = list(tensors)
            window = max(1, len(tensors))

        def predict_window(window_frames):
            with torch.no_grad(), self._autocast():
                output = predict(window_frames)
            if progress is not None:
                progress(len(window_frames))
            return output

        yield from iter_windowed_segmentation(
            predict_window, tensors, window, size, self.segmentation_task, self.chunk_size
        )

    def stream(self, window_size: int, policy) -> VideoStream:
        """Online inference over this model or its ONNX file (see :meth:`VideoMaskFormer.stream`):
        push (H, W, 3) uint8 RGB frames one at a time; they are resized like the test loader and
        the masks come back at their size.

        Args:
            window_size (int): W, frames per window (1: per-frame online).
            policy (StreamPolicy): reporting thresholds and track ending; None (needed) with a
                :attr:`segmentation_task`.

        Returns:
            VideoStream, or with a :attr:`segmentation_task` a ``SegmentationStream`` (its
            results are :class:`FrameSegmentation`).
        """
        if self.onnx is None:
            return self.model.stream(window_size, transform=self._to_tensor, policy=policy)
        if self.segmentation_task is not None:
            return SegmentationStream(
                self.onnx,
                self.segmentation_task,
                window_size,
                transform=self._to_tensor,
                chunk_size=self.chunk_size,
            )
        return VideoStream(self.onnx, window_size, transform=self._to_tensor, policy=policy)

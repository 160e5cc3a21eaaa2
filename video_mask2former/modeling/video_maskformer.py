"""``VideoMaskFormer``: the Video Mask2Former meta-architecture as a plain ``nn.Module``.

Shapes: B videos, T frames, N = B*T images, Q queries, K classes, Hp x Wp the padded input size,
h x w = Hp/4 x Wp/4 the mask-logit size, M instances of a video.

Inputs are detectron2-style dicts, one per video: ``"image"`` a list of T frames, optional
``"height"``/``"width"`` (output size) and, for training, ``"instances"`` a list
of T per-frame objects with ``gt_classes`` (M,), ``gt_ids`` (M,) (-1: absent in that frame) and
``gt_masks`` ((M, H, W) tensor or an object with ``.tensor``), e.g.
:class:`video_mask2former.structures.FrameInstances` or detectron2's ``Instances``.

The attribute names ``backbone``, ``sem_seg_head`` and ``criterion`` give the official
state-dict keys; ``pixel_mean``/``pixel_std`` are non-persistent buffers (not in the state_dict).

**Frames at inference.** The three inference modes (the whole video, ``forward`` in eval mode;
windows, :meth:`VideoMaskFormer.inference_windowed` and :meth:`VideoMaskFormer.predict_window`;
streams, :meth:`VideoMaskFormer.stream`) accept the same frames, checked by
:func:`video_mask2former.data.frame_checks.check_frame` before they reach the network: RGB
(3, H, W) tensors or (H, W, 3) numpy arrays, ``uint8``, or float / signed-integer ones with finite
values in 0..255 (not a 0..1 image), all frames of a video of one size. Anything else is a
one-line :class:`~video_mask2former.data.frame_checks.FrameError` naming the frame's index
(:class:`~video_mask2former.data.frame_checks.FrameSizeError` for a frame of another size).
Training frames (tensors from the clip mapper) are not checked.
"""

import functools
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.profiler import record_function

from mask2former_ops.cpu_cache import empty_cpu_cache

from ..inference.modes import (
    infer_video,
    inference_memory,
    predict_window,
    run_windowed,
    window_predictor,
)
from ..inference.postprocess import DEFAULT_CHUNK_SIZE, DEFAULT_TOPK
from ..inference.streaming import StreamPolicy, VideoStream
from ..inference.segment_windows import SegmentationStream, SegmentationTask
from ..inference.windowed import WindowOutput, check_window_size
from ..precision import slow_precision_fallback


def pad_images(
    images: Sequence[torch.Tensor], size_divisibility: int, pad_value: float = 0.0
) -> Tuple[torch.Tensor, List[Tuple[int, int]]]:
    """Batch images of different sizes by padding bottom/right (like detectron2's ImageList).

    Args:
        images (sequence of Tensor): N tensors (C, H_i, W_i).
        size_divisibility (int): pad H and W up to a multiple of this (0 or 1: no rounding).
        pad_value (float): value of the padding.

    Returns:
        tuple: (N, C, Hp, Wp) tensor and the N un-padded sizes (H_i, W_i).
    """
    sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
    max_h = max(h for h, _ in sizes)
    max_w = max(w for _, w in sizes)
    if size_divisibility > 1:
        max_h = -(-max_h // size_divisibility) * size_divisibility
        max_w = -(-max_w // size_divisibility) * size_divisibility
    batch = images[0].new_full((len(images), images[0].shape[0], max_h, max_w), pad_value)
    for image, out in zip(images, batch):
        out[:, : image.shape[-2], : image.shape[-1]].copy_(image)
    return batch, sizes


def _mask_tensor(gt_masks) -> torch.Tensor:
    """The (M, H, W) tensor of ``gt_masks`` (a tensor or detectron2's BitMasks)."""
    return gt_masks.tensor if hasattr(gt_masks, "tensor") else gt_masks


class VideoMaskFormer(nn.Module):
    """Backbone + MaskFormerHead + criterion; normalises, pads, trains and infers on videos.

    Args:
        backbone (nn.Module): ``forward(N,3,H,W) -> {"res2".."res5"}``, ``size_divisibility``.
        sem_seg_head (nn.Module): :class:`MaskFormerHead`.
        criterion (nn.Module): ``criterion(outputs, targets) -> dict of unweighted losses`` with a
            ``weight_dict`` attribute; only used in training (may be None for inference only).
        num_queries (int): Q.
        size_divisibility (int): pad inputs to a multiple of this; negative: the backbone's.
        pixel_mean (sequence of float): per-channel mean (RGB, 0..255 scale).
        pixel_std (sequence of float): per-channel std.
        num_frames (int): frames per training clip (the official INPUT.SAMPLING_FRAME_NUM); the
            model itself reads T from its inputs.
        test_topk (int): video instances returned at inference.
        inference_chunk_size (int, optional): frames upsampled at a time at inference.
        window_size (int): 0 runs inference on the whole video at once (the paper); W > 0 runs
            it on consecutive windows of W frames linked into tracks, with memory that does not
            grow with the video's length (see :mod:`video_mask2former.inference.windowed`).
        segmentation_task (SegmentationTask, optional): None (default) returns video instances
            (the paper); a panoptic or semantic task returns one id map per frame instead (see
            :mod:`video_mask2former.inference.segmentation`), whole or windowed alike.
        channels_last (bool): at CPU inference (eval mode, no autograd), feed the network
            channels-last frames, so that the convolutions of the backbone and the pixel decoder
            run in oneDNN's fastest layout (see :class:`~.layers.Conv2d`); the outputs are the
            same within float32 rounding. Training, autograd and GPUs are unaffected.
        allow_slow_low_precision (bool): under CPU autocast to a dtype this CPU has no
            arithmetic for (bfloat16 without AVX512-BF16 / AMX), run it anyway (slowly) instead
            of warning and running float32 (see :mod:`video_mask2former.precision`).
        compile_network (bool): run the network (backbone and head) through ``torch.compile`` at
            inference, compiled on the first call (and again for a new input size).
        cache_cpu_blocks (bool): at CPU inference (eval mode, no autograd), allocate the large
            tensors of each inference call (network, linking, post-processing) from
            :func:`mask2former_ops.cpu_cache.cpu_block_cache`, which keeps freed blocks for the
            next layer and the next call instead of page-faulting fresh memory each time (11-16 %
            faster at R50 inference here); the memory stays reserved between calls and is
            returned by ``model.train()`` or :func:`mask2former_ops.cpu_cache.empty_cpu_cache`.
            Results are unchanged.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        sem_seg_head: nn.Module,
        criterion: Optional[nn.Module],
        num_queries: int,
        size_divisibility: int,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        num_frames: int = 2,
        test_topk: int = DEFAULT_TOPK,
        inference_chunk_size: Optional[int] = DEFAULT_CHUNK_SIZE,
        window_size: int = 0,
        segmentation_task: Optional[SegmentationTask] = None,
        channels_last: bool = True,
        allow_slow_low_precision: bool = False,
        compile_network: bool = False,
        cache_cpu_blocks: bool = True,
    ):
        super().__init__()
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        self.criterion = criterion
        self.num_queries = num_queries
        if size_divisibility < 0:
            size_divisibility = backbone.size_divisibility
        self.size_divisibility = size_divisibility
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self.num_frames = num_frames
        self.test_topk = test_topk
        self.inference_chunk_size = inference_chunk_size
        self.window_size = check_window_size(window_size, "VideoMaskFormer", minimum=0)
        if segmentation_task is not None and not isinstance(segmentation_task, SegmentationTask):
            raise TypeError(
                f"VideoMaskFormer: segmentation_task must be a SegmentationTask or None, got "
                f"{type(segmentation_task).__name__}"
            )
        self.segmentation_task = segmentation_task
        self.channels_last = channels_last
        self.allow_slow_low_precision = allow_slow_low_precision
        self.compile_network = compile_network
        self.cache_cpu_blocks = cache_cpu_blocks
        self._compiled_network = None  # torch.compile(self._network), made on first use

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess(
        self, batched_inputs: List[Dict]
    ) -> Tuple[torch.Tensor, List[Tuple[int, int]], int]:
        """Normalise and pad the frames of all videos.

        Args:
            batched_inputs (list[dict]): B videos with ``"image"``: T tensors (3, H, W).

        Returns:
            tuple: images (B*T, 3, Hp, Wp), their un-padded sizes (B*T pairs), and T.
        """
        lengths = [len(video["image"]) for video in batched_inputs]
        if not lengths or min(lengths) == 0 or len(set(lengths)) != 1:
            raise ValueError(
                f"VideoMaskFormer: every video of a batch needs the same number (> 0) of frames "
                f"in 'image', got {lengths}"
            )
        frames = [
            (frame.to(self.device).float() - self.pixel_mean) / self.pixel_std
            for video in batched_inputs
            for frame in video["image"]
        ]
        images, sizes = pad_images(frames, self.size_divisibility)
        return images, sizes, lengths[0]

    def predict(self, images: torch.Tensor, num_frames: int, keep_aux: bool) -> Dict[str, object]:
        """Raw predictions of the network for preprocessed frames.

        Args:
            images (Tensor): (B*T, 3, Hp, Wp) normalised, padded frames, each video's consecutive.
            num_frames (int): T.
            keep_aux (bool): also return the deep-supervision outputs.

        Returns:
            dict: ``pred_logits`` (B, Q, K+1), ``pred_masks`` (B, Q, T, Hp/4, Wp/4)
            [, ``aux_outputs``].
        """
        with slow_precision_fallback(images.device.type, self.allow_slow_low_precision):
            if self.training or torch.is_grad_enabled():
                return self._network(images, num_frames, keep_aux)
            on_cpu = images.device.type == "cpu"
            if self.channels_last and on_cpu:
                images = images.contiguous(memory_format=torch.channels_last)
            network = self._network
            if self.compile_network:
                if self._compiled_network is None:
                    self._compiled_network = torch.compile(self._network)
                network = self._compiled_network
            with inference_memory(self):  # for direct calls; nested in the modes' scopes
                return network(images, num_frames, keep_aux)

    def train(self, mode: bool = True):
        """Sets the training mode; entering it returns the CPU block cache's unused memory (see
        ``cache_cpu_blocks``), which only inference uses."""
        if mode:
            empty_cpu_cache()
        return super().train(mode)

    def _network(self, images: torch.Tensor, num_frames: int, keep_aux: bool) -> Dict[str, object]:
        with record_function("backbone"):
            features = self.backbone(images)
        return self.sem_seg_head(features, num_frames, keep_aux)

    def forward(self, batched_inputs: List[Dict]):
        """Training losses, or the inference result of one video.

        Args:
            batched_inputs (list[dict]): see the module docstring; one video at inference, its
                ``"image"`` a sequence of T frames: (3, H, W) RGB tensors or (H, W, 3) RGB numpy
                arrays, uint8 or float / signed-integer with finite values in 0..255, all of one
                size (checked: see the module docstring).

        Returns:
            In training, dict of weighted losses (``loss_ce``, ``loss_mask``, ``loss_dice`` and
            their ``_i`` deep-supervision copies). In eval, the official video result:
            ``image_size`` (H, W), ``pred_scores``, ``pred_labels``, ``pred_masks`` (k (T, H, W)
            bool tensors on the CPU; with ``window_size > 0``, k
            :class:`~video_mask2former.structures.RLEVideoMask`, see :meth:`inference_windowed`).
            With a ``segmentation_task``: ``image_size`` and ``panoptic_seg`` (T, H, W) int32 +
            ``segments_info`` (T lists), or ``sem_seg`` (T, H, W) int64 (see
            :func:`~video_mask2former.inference.segment_windows.collect_segmentation`).

        Raises:
            FrameError: at inference, a frame the model cannot take (see the module docstring).
        """
        if not self.training:
            return infer_video(self, batched_inputs)
        images, sizes, num_frames = self.preprocess(batched_inputs)
        outputs = self.predict(images, num_frames, keep_aux=True)
        if self.criterion is None:
            raise RuntimeError("VideoMaskFormer: training needs a criterion; none was given")
        targets = self.prepare_targets(batched_inputs, tuple(images.shape[-2:]))
        losses = self.criterion(outputs, targets)
        weights = self.criterion.weight_dict
        return {name: loss * weights[name] for name, loss in losses.items() if name in weights}

    def prepare_targets(
        self, batched_inputs: List[Dict], padded_size: Tuple[int, int]
    ) -> List[Dict[str, torch.Tensor]]:
        """Per-video targets for the criterion.

        An instance is kept when it is present (``gt_ids != -1``) in at least one frame. Its
        label is its ``gt_classes`` entry in the **last frame where it is present**.

        This differs from the official ``prepare_targets``, which takes every label from the last
        sampled frame. The official dataset mapper fills an instance that has no annotation in
        a frame with a dummy one whose ``category_id`` is ``num_classes`` (the no-object id) and
        whose id is -1; so an instance present in earlier frames but not annotated in the last
        one is trained with the no-object label as its class target while its masks are still
        supervised. (An instance whose mask only became empty through augmentation keeps its
        real class there, since the mapper then sets only its id to -1.) Here the class comes
        from a frame where the instance exists, so it is always a real class; both agree
        whenever every kept instance is present in the last frame.

        Args:
            batched_inputs (list[dict]): B videos with ``"instances"``: T per-frame objects with
                ``image_size`` (H, W), ``gt_classes`` (M,), ``gt_ids`` (M,), ``gt_masks``
                (M, H, W); the M instances are aligned across frames.
            padded_size (tuple): (Hp, Wp).

        Returns:
            list[dict]: per video ``labels`` (M',) int64, ``ids`` (M', T) int64, ``masks``
            (M', T, Hp, Wp) float, for the M' instances present in some frame; with panoptic /
            semantic targets (frames with an ``ignore_mask``) also ``ignore`` (T, Hp, Wp) bool.
        """
        targets = []
        for video_index, video in enumerate(batched_inputs):
            frames = video.get("instances")
            if frames is None or len(frames) != len(video["image"]):
                raise ValueError(
                    f"VideoMaskFormer.prepare_targets: video {video_index} needs 'instances' with "
                    f"one entry per frame ({len(video['image'])}), got "
                    f"{None if frames is None else len(frames)}"
                )
            num_instances = len(frames[0].gt_ids)
            masks = torch.zeros(
                (num_instances, len(frames), *padded_size), dtype=torch.bool, device=self.device
            )
            ids, classes = [], []
            for frame_index, frame in enumerate(frames):
                if len(frame.gt_ids) != num_instances:
                    raise ValueError(
                        f"VideoMaskFormer.prepare_targets: video {video_index} frame "
                        f"{frame_index} has {len(frame.gt_ids)} instances, frame 0 has "
                        f"{num_instances}; instances must be aligned across frames"
                    )
                frame_masks = _mask_tensor(frame.gt_masks).to(self.device)
                h, w = frame_masks.shape[-2:]
                masks[:, frame_index, :h, :w] = frame_masks.bool()
                ids.append(frame.gt_ids.to(self.device).long())
                classes.append(frame.gt_classes.to(self.device).long())
            ids = torch.stack(ids, dim=1)  # (M, T)
            classes = torch.stack(classes, dim=1)  # (M, T)
            present = ids != -1  # (M, T)
            valid = present.any(dim=1)
            frame_index = torch.arange(len(frames), device=self.device)
            last_present = torch.where(present, frame_index, -1).amax(dim=1).clamp(min=0)  # (M,)
            labels = classes.gather(1, last_present[:, None])[:, 0]
            target = {"labels": labels[valid], "ids": ids[valid], "masks": masks[valid].float()}
            ignore = self._ignore_mask(frames, padded_size)
            if ignore is not None:
                target["ignore"] = ignore
            targets.append(target)
        return targets

    def _ignore_mask(
        self, frames: Sequence, padded_size: Tuple[int, int]
    ) -> Optional[torch.Tensor]:
        """(T, Hp, Wp) bool pixels the mask losses skip: the frames' ``ignore_mask`` (void and
        crowd of panoptic / semantic data) and the padding; None when no frame has one
        (instance data: every pixel counts, padding included, as in the official code)."""
        if all(getattr(frame, "ignore_mask", None) is None for frame in frames):
            return None
        ignore = torch.ones((len(frames), *padded_size), dtype=torch.bool, device=self.device)
        for t, frame in enumerate(frames):
            h, w = frame.gt_masks.shape[-2:]
            if frame.ignore_mask is None:
                ignore[t, :h, :w] = False
            else:
                ignore[t, :h, :w] = frame.ignore_mask.to(self.device).bool()
        return ignore

    def predict_window(self, frames: Sequence) -> WindowOutput:
        """The network's prediction for one window of frames (one video, no post-processing).

        Args:
            frames (sequence): W frames of one size, each a (3, H, W) RGB tensor or an (H, W, 3)
                RGB array, uint8 or float / signed-integer with finite values in 0..255 (checked:
                see the module docstring).

        Returns:
            WindowOutput: logits (Q, K+1), mask logits (Q, W, Hp/4, Wp/4), embeddings (Q, C).

        Raises:
            FrameError: a frame the model cannot take, or of another size than the first.
        """
        return predict_window(self, frames)

    def inference_windowed(
        self, frames: Iterable, output_size: Tuple[int, int], window_size: Optional[int] = None
    ) -> Dict[str, object]:
        """Windowed inference of one video, streaming its frames.

        Args:
            frames (iterable): the video's frames, as :meth:`predict_window` takes them, all of
                one size (each checked as it is read; a bad one is a ``FrameError`` naming its
                index); consumed one window at a time, so a generator reading from disk keeps
                memory bounded.
            output_size (tuple): (H, W) of the returned masks.
            window_size (int, optional): W; None (or 0) defaults to the model's ``window_size``
                (or the whole video in one window when that is 0).

        Returns:
            dict: ``image_size``, ``pred_scores``, ``pred_labels``, ``pred_masks`` (k
            :class:`~video_mask2former.structures.RLEVideoMask`, compact (T, H, W) masks), and
            ``pred_track_ids``. With W >= T it equals whole-video inference exactly.
        """
        return run_windowed(self, frames, output_size, window_size)

    def stream(
        self,
        window_size: int = 1,
        *,
        output_size: Optional[Tuple[int, int]] = None,
        transform: Optional[Callable] = None,
        policy: Optional[StreamPolicy] = None,
    ) -> VideoStream:
        """Online (W = 1) or semi-online (W > 1) inference: per-frame results with stable ids.

        ``stream.push(frame)`` returns the results of a window's W frames once its last frame
        is pushed; ``stream.flush()`` runs the partial last window; ``stream.run(frames)``
        yields every frame's result. See :mod:`video_mask2former.inference.streaming` for the
        track management.

        Frames are checked when they are pushed (:meth:`VideoStream.push`), as the other modes
        check theirs: a frame the model cannot take is refused there, before it enters a window.

        Args:
            window_size (int): W >= 1, frames per window (the latency in frames).
            output_size (tuple, optional): (H, W) of the masks; default: the first frame's size.
            transform (callable, optional): applied to each pushed frame to make the model's
                input (e.g. resizing to the test size); pushed frames are (3, H, W) tensors or
                (H, W, 3) arrays, and the transform's outputs must be frames the model takes
                (see the module docstring).
            policy (StreamPolicy, optional): thresholds; default ``StreamPolicy(topk=test_topk)``.

        Returns:
            VideoStream, or with a ``segmentation_task`` a
            :class:`~video_mask2former.inference.segment_windows.SegmentationStream` (its
            results are per-frame id maps; ``policy`` must then be None).

        Raises:
            RuntimeError: the model is in training mode (call ``model.eval()`` first).
        """
        if self.training:
            raise RuntimeError(
                "VideoMaskFormer.stream: the model is in training mode; call " "model.eval() first"
            )
        if self.segmentation_task is not None:
            if policy is not None:
                raise ValueError(
                    "VideoMaskFormer.stream: a StreamPolicy applies to video instances; this "
                    f"model returns {self.segmentation_task.kind} segmentation"
                )
            return SegmentationStream(
                window_predictor(self),
                self.segmentation_task,
                window_size,
                output_size=output_size,
                transform=transform,
                chunk_size=self.inference_chunk_size,
                memory_scope=functools.partial(inference_memory, self),
            )
        return VideoStream(
            window_predictor(self),
            window_size,
            output_size=output_size,
            transform=transform,
            policy=policy if policy is not None else StreamPolicy(topk=self.test_topk),
            memory_scope=functools.partial(inference_memory, self),
        )

"""Video panoptic / semantic results of the whole video, of linked windows, frame by frame.

Shapes: T frames, W frames per window, Q queries, K classes, H x W the output size.

:mod:`.segmentation` turns one set of queries (a whole video, or one window) into id maps. This
module runs it on a video, whole or cut into windows, and hands out the result one frame at a
time (:class:`FrameSegmentation`) so that a long video never needs its (T, H, W) maps in memory:

* the whole video (W >= T) is :mod:`.segmentation` applied once;
* windows are linked as for instances (:func:`~.windowed.match_embeddings`: query slot ``j`` of
  every window continues track ``j``) and each window's queries are passed in track order, so a
  thing keeps its segment id (track + 1) across windows and a stuff class keeps ``Q + 1 + c``.
  With W >= T there is one window and the result equals the whole-video one exactly.

Per frame, ``segments_info`` lists the segments present in that frame with their area there;
that is the VIPSeg prediction format (``pred.json`` lists segments per frame), which lets a
thing's class differ between windows.
"""

from dataclasses import dataclass, field
from typing import (
    Callable,
    ContextManager,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
)

import torch

from ..data.frame_checks import check_video_frames
from .postprocess import DEFAULT_CHUNK_SIZE
from .segmentation import (
    DEFAULT_OBJECT_MASK_THRESHOLD,
    DEFAULT_OVERLAP_THRESHOLD,
    video_panoptic_inference,
    video_semantic_inference,
)
from .streaming import VideoStream
from .windowed import WindowOutput, check_window_size, iter_windows, match_embeddings

__all__ = [
    "SEGMENTATION_TASKS",
    "FrameSegmentation",
    "QueryLinker",
    "SegmentationStream",
    "SegmentationTask",
    "collect_segmentation",
    "iter_video_segmentation",
    "iter_windowed_segmentation",
    "window_segmentation",
]

SEGMENTATION_TASKS = ("panoptic", "semantic")


@dataclass(frozen=True)
class SegmentationTask:
    """What a segmentation result is made of.

    Attributes:
        kind (str): "panoptic" or "semantic".
        thing_classes (tuple of int): class indices in [0, K) that are things (panoptic).
        object_mask_threshold (float): panoptic: a query is kept when its best class
            probability is above this (``MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD``).
        overlap_threshold (float): panoptic: a kept query whose won area is below this share of
            its own mask is dropped (``MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD``).
    """

    kind: str
    thing_classes: Tuple[int, ...] = ()
    object_mask_threshold: float = DEFAULT_OBJECT_MASK_THRESHOLD
    overlap_threshold: float = DEFAULT_OVERLAP_THRESHOLD

    def __post_init__(self):
        if self.kind not in SEGMENTATION_TASKS:
            raise ValueError(
                f"SegmentationTask: kind must be one of {SEGMENTATION_TASKS}, got {self.kind!r}"
            )
        for name in ("object_mask_threshold", "overlap_threshold"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"SegmentationTask: {name} must be in [0, 1], got {value!r}")
        object.__setattr__(self, "thing_classes", tuple(int(c) for c in self.thing_classes))


@dataclass
class FrameSegmentation:
    """The result of one frame.

    Attributes:
        index (int): the frame's index in the video.
        seg (Tensor): (H, W) int32 segment ids (panoptic, 0 = void) or int64 class indices
            (semantic).
        segments_info (list[dict]): panoptic: the segments present in this frame: ``id``,
            ``category_id`` (class index), ``isthing``, ``score``, ``area`` (pixels in this
            frame); empty for semantic results.
    """

    index: int
    seg: torch.Tensor
    segments_info: List[Dict[str, object]] = field(default_factory=list)


def _window_frames(
    task: SegmentationTask,
    pred_logits: torch.Tensor,
    pred_masks: torch.Tensor,
    padded_size: Tuple[int, int],
    image_size: Tuple[int, int],
    output_size: Tuple[int, int],
    first_index: int,
    chunk_size: Optional[int],
) -> Iterator[FrameSegmentation]:
    """The frames of one set of queries (in track order), as FrameSegmentation."""
    if task.kind == "semantic":
        result = video_semantic_inference(
            pred_logits, pred_masks, padded_size, image_size, output_size, chunk_size=chunk_size
        )
        for t, seg in enumerate(result["sem_seg"]):
            yield FrameSegmentation(index=first_index + t, seg=seg)
        return
    result = video_panoptic_inference(
        pred_logits,
        pred_masks,
        padded_size,
        image_size,
        output_size,
        task.thing_classes,
        object_mask_threshold=task.object_mask_threshold,
        overlap_threshold=task.overlap_threshold,
        chunk_size=chunk_size,
    )
    segments = result["segments_info"]
    ids = torch.tensor([s["id"] for s in segments], dtype=torch.int64)
    size = int(ids.max()) + 1 if len(segments) else 1
    for t, seg in enumerate(result["panoptic_seg"]):
        present = []
        if len(segments):
            # Area of each segment in this frame (ids are small: at most Q + K).
            counts = torch.bincount(seg.flatten().to(torch.int64).cpu(), minlength=size)
            areas = counts[ids].tolist()
            present = [dict(s, area=int(a)) for s, a in zip(segments, areas) if a > 0]
        yield FrameSegmentation(index=first_index + t, seg=seg, segments_info=present)


class QueryLinker:
    """Puts each window's queries in track order (query slot ``j`` of every window continues
    track ``j``; :func:`~.windowed.match_embeddings` on the previous window's embeddings).

    :meth:`order` does not change the state; :meth:`commit` does, once the window's results are
    computed, so a window whose processing raises can be run again.
    """

    def __init__(self):
        self.tracks: Optional[torch.Tensor] = None  # (Q, C) of the last window, track order

    def order(self, window: WindowOutput, where: str) -> torch.Tensor:
        """(Q,) the query of ``window`` that continues each track."""
        num_queries = window.pred_logits.shape[0]
        if self.tracks is None:
            return torch.arange(num_queries)
        if num_queries != self.tracks.shape[0]:
            raise ValueError(
                f"{where} has {num_queries} queries, earlier windows had {self.tracks.shape[0]}"
            )
        return match_embeddings(self.tracks, window.pred_embeds)

    def commit(self, window: WindowOutput, order: torch.Tensor) -> None:
        self.tracks = window.pred_embeds[order.to(window.pred_embeds.device)].detach()


def window_segmentation(
    task: SegmentationTask,
    window: WindowOutput,
    order: torch.Tensor,
    output_size: Tuple[int, int],
    first_index: int,
    chunk_size: Optional[int] = DEFAULT_CHUNK_SIZE,
) -> List[FrameSegmentation]:
    """The frames of one window, its queries taken in track ``order``."""
    device_order = order.to(window.pred_logits.device)
    return list(
        _window_frames(
            task,
            window.pred_logits[device_order],
            window.pred_masks[device_order],
            window.padded_size,
            window.image_size,
            output_size,
            first_index,
            chunk_size,
        )
    )


def iter_video_segmentation(
    task: SegmentationTask,
    pred_logits: torch.Tensor,
    pred_masks: torch.Tensor,
    padded_size: Tuple[int, int],
    image_size: Tuple[int, int],
    output_size: Tuple[int, int],
    chunk_size: Optional[int] = DEFAULT_CHUNK_SIZE,
) -> Iterator[FrameSegmentation]:
    """The frames of a whole-video result (one set of Q queries over the T frames).

    Args:
        task (SegmentationTask): panoptic or semantic, and the thresholds.
        pred_logits (Tensor): (Q, K+1); pred_masks (Tensor): (Q, T, h, w).
        padded_size, image_size, output_size (tuple): as :mod:`.segmentation`.
        chunk_size (int, optional): frames upsampled at a time.
    """
    yield from _window_frames(
        task, pred_logits, pred_masks, padded_size, image_size, output_size, 0, chunk_size
    )


def iter_windowed_segmentation(
    predict_window: Callable[[List], WindowOutput],
    frames: Iterable,
    window_size: int,
    output_size: Tuple[int, int],
    task: SegmentationTask,
    chunk_size: Optional[int] = DEFAULT_CHUNK_SIZE,
) -> Iterator[FrameSegmentation]:
    """Run ``predict_window`` on consecutive windows of ``frames``, link their queries into
    tracks, and yield each frame's result as soon as its window is done.

    Args:
        predict_window (callable): list of W frames -> :class:`~.windowed.WindowOutput`.
        frames (iterable): the video's frames (checked as they are read, consumed lazily).
        window_size (int): W >= 1.
        output_size (tuple): (H, W) of the maps.
        task (SegmentationTask): panoptic or semantic, and the thresholds.
        chunk_size (int, optional): frames upsampled at a time.

    Raises:
        ValueError: a video without frames, windows with different numbers of queries.
    """
    window_size = check_window_size(window_size, "iter_windowed_segmentation")
    frames = check_video_frames(frames, "the video (windowed segmentation)")
    linker = QueryLinker()
    first = 0
    for window_frames in iter_windows(frames, window_size):
        with torch.no_grad():
            window = predict_window(window_frames)
        order = linker.order(window, f"iter_windowed_segmentation: the window at frame {first}")
        results = window_segmentation(task, window, order, output_size, first, chunk_size)
        linker.commit(window, order)
        yield from results
        first += len(window_frames)
    if first == 0:
        raise ValueError("iter_windowed_segmentation: the video has no frames")


def collect_segmentation(
    frames: Iterable[FrameSegmentation], task: SegmentationTask, output_size: Sequence[int]
) -> Dict[str, object]:
    """One dict for a whole video from its frames' results.

    Returns:
        dict: ``image_size`` (H, W) and, panoptic: ``panoptic_seg`` (T, H, W) int32 and
        ``segments_info`` (T lists, see :class:`FrameSegmentation`); semantic: ``sem_seg``
        (T, H, W) int64.
    """
    maps, infos = [], []
    for frame in frames:
        maps.append(frame.seg)
        infos.append(frame.segments_info)
    if not maps:
        raise ValueError("collect_segmentation: the video has no frames")
    stacked = torch.stack(maps)
    if task.kind == "semantic":
        return {"image_size": tuple(output_size), "sem_seg": stacked}
    return {"image_size": tuple(output_size), "panoptic_seg": stacked, "segments_info": infos}


class SegmentationStream(VideoStream):
    """Online / semi-online panoptic or semantic segmentation: :class:`~.streaming.VideoStream`'s
    input side (frames checked when pushed, windows of W frames, ``push`` / ``flush`` / ``run``,
    a failing window left to run again) with each window's frames returned as
    :class:`FrameSegmentation` (thing ids stable across windows, as :func:`iter_windowed_
    segmentation`, whose results it equals frame for frame).

    Args:
        predict_window (callable): list of W model inputs -> :class:`~.windowed.WindowOutput`.
        task (SegmentationTask): panoptic or semantic, and the thresholds.
        window_size (int): W >= 1.
        output_size (tuple, optional): (H, W) of the maps; default: the first frame's size.
        transform (callable, optional): applied to each pushed frame (see VideoStream).
        chunk_size (int, optional): frames upsampled at a time.
        memory_scope (callable, optional): see VideoStream.
    """

    def __init__(
        self,
        predict_window: Callable[[List], WindowOutput],
        task: SegmentationTask,
        window_size: int = 1,
        *,
        output_size: Optional[Tuple[int, int]] = None,
        transform: Optional[Callable] = None,
        chunk_size: Optional[int] = DEFAULT_CHUNK_SIZE,
        memory_scope: Optional[Callable[[], ContextManager]] = None,
    ):
        super().__init__(
            predict_window,
            window_size,
            output_size=output_size,
            transform=transform,
            memory_scope=memory_scope,
        )
        if not isinstance(task, SegmentationTask):
            raise TypeError(f"SegmentationStream: task must be a SegmentationTask, got {task!r}")
        self.task = task
        self.chunk_size = chunk_size
        self._queries = QueryLinker()

    def _process_window(self) -> List[FrameSegmentation]:
        pending = self._pending[: self.window_size]
        where = f"SegmentationStream: the window at frame {pending[0].index}"
        with torch.no_grad():
            window = self.predict_window([p.model_input for p in pending])
            order = self._queries.order(window, where)
            results = window_segmentation(
                self.task, window, order, self.output_size, pending[0].index, self.chunk_size
            )
        del self._pending[: len(pending)]
        self._queries.commit(window, order)
        self.num_windows += 1
        return results

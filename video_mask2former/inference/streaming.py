"""Online and semi-online (streaming) inference: each frame's instances as soon as it is known.

Shapes: W frames per window, Q queries (= track slots), K classes, C query channels, H x W the
output size.

A :class:`VideoStream` takes frames one at a time (:meth:`VideoStream.push`), runs the network on
every W buffered frames (the paper's joint attention inside the window), links the window to the
previous one and returns one :class:`FrameResult` per frame of the window: the frame's instances,
each with a track id that is stable through the video, a class, a score and its mask (a compressed
RLE, decoded on demand). W = 1 is per-frame online inference (MinVIS); W > 1 is semi-online, with a
latency of one window (the first frame of a window waits for the W - 1 next ones).
:meth:`VideoStream.flush` runs the partial last window. What a stream keeps is bounded: the <= W
frames waiting for their window, the Q query embeddings of the last window and a few numbers per
track slot; nothing per frame, so memory does not grow with the number of frames.

The linking and the masks are the windowed inference's (:class:`.windowed.WindowLinker`:
Hungarian matching of the query embeddings on cosine similarity, query slot ``j`` of every window
continuing slot ``j``; masks resized, thresholded at logit 0 and run-length encoded), so the
online and offline modes differ only in the track management below, which is decided from what
has been seen so far only. Every threshold is a field of :class:`StreamPolicy`.

- **Tracks.** A slot holds at most one track at a time. The first window starts a track in every
  slot (its id is the slot index, as the windowed mode's ``pred_track_ids``); a slot whose track
  has ended starts a new one, with the next unused id, in the first window where it is active.
  Ids are never reused, so an id names one object for the whole stream.
- **Active / present.** A track is *present* in a frame where its mask has a foreground pixel and
  *active* in a window where it is present in some frame (the windowed mode's definition).
- **Score and class** are running estimates: the track's softmax class probabilities averaged over
  its active windows so far (over all its windows while it has never been active), exactly the
  windowed mode's average restricted to the windows seen. A frame carries the estimate of the
  window it belongs to. Reason: the same evidence the offline mode averages, without looking
  ahead; averaging over active windows only keeps the score of an object from being diluted by
  the windows before it appeared.
- **Reported** in a frame: a (track, class) pair whose track is *confirmed* (active in at least
  ``confirm_windows`` windows), present in that frame (unless ``report_empty_masks``), among the
  frame's ``topk`` best pairs by running score, with a score of at least ``score_threshold``.
  Reason: a frame's top-k is over the objects in that frame (an object absent there is not a
  detection of it); with the default threshold of 0.5 a track has at most one class (its class
  probabilities sum to at most 1); lower thresholds report several classes of a track, as the
  offline top-k does, which helps AP. ``confirm_windows`` > 1 suppresses one-window flickers at
  the cost of not showing a new object's first ``confirm_windows - 1`` windows.
- **End.** A track ends when it has been absent for ``max_absent_frames`` consecutive frames
  (counted across windows); its slot is then free, and a later object in that slot gets a new id.
  Reason: short occlusions keep the id; an object that left for good does not lend its id and its
  class statistics to the next object the slot picks up.
- **Re-appearance.** While its track has not ended, an object that re-appears keeps its id when
  its query is matched to its slot again (as in the windowed mode, the slot's embedding is that of
  the query matched to it in the last window, present or not); after the track ended it gets a new
  id.
- **Equality with the windowed mode.** With ``StreamPolicy.report_everything(Q * K)`` (every pair
  of every track in every frame, no track ending), the masks of every (track, class) pair over the
  stream and the scores of the last window's frames equal the windowed result; with one window
  covering the video, :func:`collect_video_result` of the stream equals it exactly (tested).
- **Frames** are checked when pushed, by the check every inference mode uses
  (:func:`video_mask2former.data.frame_checks.check_frame`: RGB (3, H, W) tensors or (H, W, 3)
  arrays, uint8 or finite 0..255 values); a bad frame is refused by :meth:`VideoStream.push`
  (a one-line :class:`FrameError`) before it enters a window, and the stream goes on as if it had
  never been pushed.
- **Frame size.** All frames of a stream must have the first frame's size, as all frames of a
  video in the other modes; a frame of another size is an error (:class:`FrameSizeError`) rather
  than resized: masks are returned at one output size, and a resized frame would get masks that
  do not line up with the pixels the caller has.
- **Failures inside a window.** When ``predict_window`` (or the linking) raises, the exception
  reaches the caller of :meth:`VideoStream.push` / :meth:`VideoStream.flush` and the stream is
  left as it was before that window: its frames are still waiting, no track changed, and the
  next ``push`` or ``flush`` runs the window again (results already computed in that call are
  returned then, in order). Nothing pushed is lost.
"""

import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass
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

import numpy as np
import pycocotools.mask as mask_util
import torch

from ..data.frame_checks import (
    FrameError,
    FrameSizeError,
    check_frame,
    check_video_frame,
    frame_size,
    size_mismatch_error,
)
from ..structures import RLEVideoMask, encode_masks
from .postprocess import DEFAULT_TOPK, topk_pairs
from .windowed import (
    DEFAULT_MAPS_PER_CHUNK,
    LinkedWindow,
    WindowLinker,
    WindowOutput,
    average_track_scores,
    check_output_size,
    check_window_size,
)

__all__ = [
    "FrameError",
    "FrameResult",
    "FrameSizeError",
    "StreamInstance",
    "StreamPolicy",
    "VideoStream",
    "collect_video_result",
]

# Per frame, (track, class) pairs reported at most: the offline top-k (official: 10 per video).
DEFAULT_STREAM_TOPK = DEFAULT_TOPK
# A pair is reported when its running score is at least this; 0.5 keeps one class per track.
DEFAULT_SCORE_THRESHOLD = 0.5
# A track is reported once it has been active in this many windows (1: from its first one).
DEFAULT_CONFIRM_WINDOWS = 1
# A track ends after this many consecutive frames without a foreground pixel (5 s of
# YouTube-VIS footage at its 6 fps, 1 s of a 30 fps camera); None: tracks never end.
DEFAULT_MAX_ABSENT_FRAMES = 30
# Score given to the pairs of tracks that may not be reported, below any threshold in [0, 1].
_NOT_REPORTED = -1.0


@dataclass(frozen=True)
class StreamPolicy:
    """When a stream reports a track, and when a track ends (see the module docstring).

    Attributes:
        topk (int): (track, class) pairs reported per frame at most.
        score_threshold (float): in [0, 1]; pairs scoring less are not reported.
        confirm_windows (int): windows a track must have been active in before it is reported
            (0 also lets a never-active track through; it then shows only with
            ``report_empty_masks``, as its masks are empty).
        max_absent_frames (int, optional): consecutive frames without a foreground pixel after
            which a track ends; None: tracks never end.
        report_empty_masks (bool): also report a track in frames where its mask is empty.
    """

    topk: int = DEFAULT_STREAM_TOPK
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    confirm_windows: int = DEFAULT_CONFIRM_WINDOWS
    max_absent_frames: Optional[int] = DEFAULT_MAX_ABSENT_FRAMES
    report_empty_masks: bool = False

    def __post_init__(self):
        if self.topk < 1:
            raise ValueError(f"StreamPolicy: topk must be >= 1, got {self.topk}")
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(
                f"StreamPolicy: score_threshold must be in [0, 1], got {self.score_threshold}"
            )
        if self.confirm_windows < 0:
            raise ValueError(
                f"StreamPolicy: confirm_windows must be >= 0, got {self.confirm_windows}"
            )
        if self.max_absent_frames is not None and self.max_absent_frames < 1:
            raise ValueError(
                f"StreamPolicy: max_absent_frames must be >= 1 or None, got "
                f"{self.max_absent_frames}"
            )

    @classmethod
    def report_everything(cls, topk: int) -> "StreamPolicy":
        """Every pair of every track in every frame, tracks never ending: the offline decisions
        (with ``topk`` = Q * K, or one window covering the video)."""
        return cls(
            topk=topk,
            score_threshold=0.0,
            confirm_windows=0,
            max_absent_frames=None,
            report_empty_masks=True,
        )


@dataclass
class StreamInstance:
    """One reported instance of one frame.

    Attributes:
        track_id (int): stable through the stream.
        label (int): contiguous class id in [0, K).
        score (float): the running score of (track, label) after the frame's window.
        rle (dict): the frame's mask, a compressed RLE ``{"size": [H, W], "counts": bytes}``.
    """

    track_id: int
    label: int
    score: float
    rle: Dict

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool, decoded from the RLE."""
        return mask_util.decode(self.rle).astype(bool)


@dataclass
class FrameResult:
    """The instances of one frame.

    Attributes:
        frame_index (int): position of the frame in the stream (0-based).
        image_size (tuple): (H, W) of the masks.
        instances (list[StreamInstance]): by decreasing score.
        frame: the frame as it was pushed (not copied), e.g. for drawing.
        latency (float): seconds from the frame's push to its result.
    """

    frame_index: int
    image_size: Tuple[int, int]
    instances: List[StreamInstance]
    frame: object = None
    latency: float = 0.0

    def masks(self) -> np.ndarray:
        """(N, H, W) bool masks of the N instances."""
        if not self.instances:
            return np.zeros((0, *self.image_size), dtype=bool)
        return mask_util.decode([i.rle for i in self.instances]).transpose(2, 0, 1).astype(bool)


@dataclass
class _Pending:
    """A pushed frame waiting for its window."""

    index: int
    frame: object
    model_input: object
    arrival: float


class VideoStream:
    """Online (W = 1) or semi-online (W > 1) inference over a stream of frames.

    Args:
        predict_window (callable): list of W model inputs -> :class:`WindowOutput`, e.g.
            :meth:`VideoMaskFormer.predict_window`.
        window_size (int): W >= 1.
        output_size (tuple, optional): (H, W) of the masks; default: the first frame's size.
        transform (callable, optional): applied to each frame when it is pushed, giving the
            model input (e.g. resizing to the test size); the masks stay at ``output_size``.
        policy (StreamPolicy, optional): reporting and track ending; default ``StreamPolicy()``.
        maps_per_chunk (int): (query, frame) mask maps resized at a time.
        memory_scope (callable, optional): ``() -> context manager`` entered around the work of
            each push / flush that runs windows (network, linking, masks), e.g. the model's CPU
            block cache (:mod:`mask2former_ops.cpu_cache`); default none.

    Raises:
        ValueError: ``window_size`` is not an integer >= 1 or ``output_size`` not two integers
            >= 1 (a string, None, a float...).
    """

    def __init__(
        self,
        predict_window: Callable[[List], WindowOutput],
        window_size: int = 1,
        *,
        output_size: Optional[Tuple[int, int]] = None,
        transform: Optional[Callable] = None,
        policy: Optional[StreamPolicy] = None,
        maps_per_chunk: int = DEFAULT_MAPS_PER_CHUNK,
        memory_scope: Optional[Callable[[], ContextManager]] = None,
    ):
        self.window_size = check_window_size(window_size, "VideoStream")
        if output_size is not None:
            output_size = check_output_size(output_size, "VideoStream")
        self.predict_window = predict_window
        self.transform = transform
        self.policy = policy if policy is not None else StreamPolicy()
        self.output_size = output_size
        self.maps_per_chunk = maps_per_chunk
        self.memory_scope = memory_scope or contextlib.nullcontext
        self.num_frames = 0  # frames pushed
        self.num_windows = 0
        self._input_size: Optional[Tuple[int, int]] = None
        self._linker: Optional[WindowLinker] = None
        self._pending: List[_Pending] = []  # frames waiting for their window, oldest first
        # Results of windows run by a push / flush that then failed on a later window.
        self._ready: List[FrameResult] = []
        self._next_id = 0
        # Per slot (Q,): current track id (-1: none), running sums since the track started.
        self._track_ids: Optional[torch.Tensor] = None
        self._prob_sum_active: Optional[torch.Tensor] = None  # (Q, K)
        self._prob_sum_all: Optional[torch.Tensor] = None  # (Q, K)
        self._active_windows: Optional[torch.Tensor] = None  # (Q,) float
        self._windows: Optional[torch.Tensor] = None  # (Q,) float
        self._absent_frames: Optional[torch.Tensor] = None  # (Q,) int64, trailing absent frames

    # -- input --------------------------------------------------------------------------------

    def push(self, frame) -> List[FrameResult]:
        """Add one frame; returns the results of the W frames of its window once it is complete
        (else an empty list).

        The frame is checked first (see the module docstring); a refused frame changes nothing:
        the frames pushed before it keep waiting for their window, and the next frame pushed
        takes its index.

        Args:
            frame: an (H, W, 3) RGB numpy array or a (3, H, W) RGB tensor, uint8 or float /
                signed-integer with finite values in 0..255, of the first frame's size. With a
                ``transform``, any such array or tensor that the transform turns into one.

        Raises:
            FrameError: a frame the model cannot take (one line naming the frame's index).
            FrameSizeError: the frame's size differs from the first frame's.
            Exception: whatever ``predict_window`` raises; the stream stays usable (see the
                module docstring).
        """
        index, arrival = self.num_frames, time.perf_counter()
        if self.transform is None:
            size = check_video_frame(frame, index, self._input_size, "the stream")
            model_input = frame
        else:
            size = frame_size(frame, f"frame {index} of the stream")
            if self._input_size is not None and size != self._input_size:
                raise size_mismatch_error(index, size, self._input_size, "the stream")
            model_input = self.transform(frame)
            check_frame(model_input, f"frame {index} of the stream, after the transform,")
        if self._input_size is None:
            self._input_size = size
            if self.output_size is None:
                self.output_size = size
            self._linker = WindowLinker(self.output_size, self.maps_per_chunk)
        self._pending.append(_Pending(index, frame, model_input, arrival))
        self.num_frames += 1
        return self._run_windows(flush=False)

    def flush(self) -> List[FrameResult]:
        """Run the partial last window (if any frame waits) and return its frames' results."""
        return self._run_windows(flush=True)

    def _run_windows(self, flush: bool) -> List[FrameResult]:
        """Run every complete waiting window (and with ``flush`` the partial last one); returns
        their results, with those of windows run before an earlier failure first."""
        with self.memory_scope():
            while len(self._pending) >= self.window_size or (flush and self._pending):
                self._ready.extend(self._process_window())
        results, self._ready = self._ready, []
        return results

    def run(self, frames: Iterable) -> Iterator[FrameResult]:
        """Push every frame of ``frames`` and flush at the end, yielding each frame's result as
        soon as it is known."""
        for frame in frames:
            yield from self.push(frame)
        yield from self.flush()

    # -- tracks -------------------------------------------------------------------------------

    @property
    def track_ids(self) -> List[int]:
        """The current track id of every slot (-1: no track)."""
        return [] if self._track_ids is None else self._track_ids.tolist()

    def track_scores(self) -> torch.Tensor:
        """(Q, K) running class scores of the slots' current tracks (see the module docstring);
        zeros for a slot without a track."""
        if self._track_ids is None:
            raise RuntimeError("VideoStream: no window has been processed yet")
        return average_track_scores(
            self._prob_sum_active, self._prob_sum_all, self._active_windows, self._windows
        )

    def _process_window(self) -> List[FrameResult]:
        """Run the oldest waiting window. Its frames stop waiting only once the network and the
        linking succeeded (neither changes the stream's state when it raises)."""
        pending = self._pending[: self.window_size]
        with torch.no_grad():
            window = self.predict_window([p.model_input for p in pending])
            linked = self._linker.link(window)
        del self._pending[: len(pending)]
        self._update_tracks(linked)
        results = self._report(linked, pending)
        self._end_absent_tracks()
        self.num_windows += 1
        return results

    def _update_tracks(self, linked: LinkedWindow) -> None:
        """Start tracks in free slots that are active (every slot in the first window), then add
        the window to every current track's running sums."""
        active = linked.active  # (Q,)
        if self._track_ids is None:
            num_slots = linked.probs.shape[0]
            self._track_ids = torch.arange(num_slots)
            self._next_id = num_slots
            self._prob_sum_active = torch.zeros_like(linked.probs)
            self._prob_sum_all = torch.zeros_like(linked.probs)
            self._active_windows = torch.zeros(num_slots)
            self._windows = torch.zeros(num_slots)
            self._absent_frames = torch.zeros(num_slots, dtype=torch.long)
        born = (self._track_ids < 0) & active
        for slot in born.nonzero()[:, 0].tolist():
            self._track_ids[slot] = self._next_id
            self._next_id += 1
        # 1.0 where the slot has a track. A bool mask would give the same sums (bool * bool is
        # a logical and, float += bool adds 0 / 1): dropping .float() is an equivalent mutant.
        has_track = (self._track_ids >= 0).float()  # (Q,)
        self._prob_sum_all += linked.probs * has_track[:, None]
        self._prob_sum_active += linked.probs * (has_track * active)[:, None]
        self._active_windows += has_track * active
        self._windows += has_track
        # Trailing absent frames: those after the last present frame of the window, or all W
        # added to the count so far when the track is absent from the whole window.
        num_frames = linked.num_frames
        frame_index = torch.arange(1, num_frames + 1)
        # Absent frames count as 0, below every 1-based index, so the maximum is the last present
        # frame; any filler <= 1 gives the same (rows with no present frame are not used).
        last_present = torch.where(linked.present, frame_index, 0).amax(dim=1)  # (Q,) 1-based
        self._absent_frames = torch.where(
            active, num_frames - last_present, self._absent_frames + num_frames
        )

    def _report(self, linked: LinkedWindow, pending: Sequence[_Pending]) -> List[FrameResult]:
        policy = self.policy
        scores = self.track_scores()  # (Q, K), shared by the frames of the window
        reportable = (self._track_ids >= 0) & (self._active_windows >= policy.confirm_windows)
        done = time.perf_counter()
        results = []
        for f, item in enumerate(pending):
            eligible = reportable & (linked.present[:, f] | policy.report_empty_masks)  # (Q,)
            masked = torch.where(eligible[:, None], scores, torch.tensor(_NOT_REPORTED))
            top_scores, labels, slots = topk_pairs(masked, policy.topk)
            instances = [
                StreamInstance(
                    track_id=int(self._track_ids[slot]),
                    label=int(label),
                    score=float(score),  # already a float (.tolist()): float() states the type
                    rle=linked.rles[slot][f],
                )
                for score, label, slot in zip(top_scores.tolist(), labels.tolist(), slots.tolist())
                if eligible[slot] and score >= policy.score_threshold
            ]
            results.append(
                FrameResult(
                    frame_index=item.index,
                    image_size=self.output_size,
                    instances=instances,
                    frame=item.frame,
                    latency=done - item.arrival,
                )
            )
        return results

    def _end_absent_tracks(self) -> None:
        limit = self.policy.max_absent_frames
        if limit is None:
            return
        ended = (self._track_ids >= 0) & (self._absent_frames >= limit)
        if ended.any():
            self._track_ids[ended] = -1
            for state in (self._prob_sum_active, self._prob_sum_all):
                state[ended] = 0.0
            for state in (self._active_windows, self._windows, self._absent_frames):
                state[ended] = 0


def collect_video_result(frame_results: Iterable[FrameResult]) -> Dict[str, object]:
    """A stream's per-frame results as one video result in the offline format (for evaluation).

    Each (track, class) pair reported in some frame becomes one prediction: its masks in the
    frames where it was reported (empty elsewhere) and its last reported score (the stream's
    latest estimate). Keeps every RLE, so memory grows with the video, as the offline result's.

    Returns:
        dict: ``image_size``, ``pred_scores``, ``pred_labels``, ``pred_masks`` (RLEVideoMask of
        T frames), ``pred_track_ids``; by decreasing score (ties: first reported first).
    """
    masks: Dict[Tuple[int, int], Dict[int, Dict]] = defaultdict(dict)
    scores: Dict[Tuple[int, int], float] = {}
    num_frames, image_size = 0, None
    for result in frame_results:
        if result.frame_index != num_frames:
            raise ValueError(
                f"collect_video_result: expected frame {num_frames}, got frame "
                f"{result.frame_index} (results must be given in order, none missing)"
            )
        num_frames += 1
        image_size = tuple(result.image_size)
        for instance in result.instances:
            key = (instance.track_id, instance.label)
            masks[key][result.frame_index] = instance.rle
            scores[key] = instance.score
    if image_size is None:
        raise ValueError("collect_video_result: the stream gave no frame")
    # The RLE of one empty frame (encoding more and taking the first would give the same).
    empty = encode_masks(torch.zeros((1, *image_size), dtype=torch.bool))[0]
    keys = sorted(scores, key=lambda k: -scores[k])  # stable: insertion order breaks ties
    return {
        "image_size": image_size,
        "pred_scores": [scores[k] for k in keys],
        "pred_labels": [k[1] for k in keys],
        "pred_masks": [
            RLEVideoMask([masks[k].get(t, empty) for t in range(num_frames)]) for k in keys
        ],
        "pred_track_ids": [k[0] for k in keys],
    }

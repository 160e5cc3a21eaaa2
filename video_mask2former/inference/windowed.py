"""Windowed inference for long videos: bounded memory, one track per output instance.

Shapes: T frames in the video, W frames per window, Q queries, K classes (+1 no-object), C query
channels, h x w the mask-logit size, H x W the output size.

The paper runs the whole video through the network at once, so memory grows with T (the backbone
features, the T*h*w keys of the masked attention and the (Q, T, h, w) mask logits). Here the video
is cut into consecutive windows of W frames; inside a window the network is the paper's (joint
spatio-temporal attention over the window's frames). Windows are linked as online VIS methods built
on Mask2Former do (MinVIS): the Q query embeddings of a window are matched one-to-one to the
previous window's by Hungarian matching on cosine similarity, so query slot ``j`` of every window
continues **track** ``j``. There are always Q tracks.

What is kept of a finished window is small: per track, its class probabilities (summed), whether it
was active, and its masks resized to the output size, thresholded and run-length encoded (on a GPU
the run lengths are computed there and only they are copied to the host). Features, logits and
float masks of the window are dropped, so memory does not grow with T beyond the RLEs of the
results.

The linking (:class:`WindowLinker`) and the score average (:func:`average_track_scores`) are
shared with the online inference of :mod:`.streaming`, which reports every frame as soon as its
window is linked instead of the video's top-k at the end.

Decisions (documented in README.md):

- **Score and class.** A track's probability of class ``c`` is its softmax probability of ``c``
  averaged over the windows where the track is *active* (its thresholded mask has a foreground
  pixel in some frame of the window); a track that is never active averages over all windows. The
  final top-k is taken over (track, class) pairs of these averages, exactly as the whole-video
  inference takes it over (query, class) pairs; so a track can be reported with two classes, as a
  query can.
- **Tracks that appear later.** A slot whose object leaves and a slot that is free (matched to
  background queries) are both just tracks; an object entering in a later window is picked up by
  the slot its query is matched to, and its earlier frames are empty masks. Averaging over active
  windows only keeps its score from being diluted by the windows before it appeared.
- **Equality.** With W >= T there is one window, every average is over that one window, and the
  result equals :func:`video_inference` on the whole video exactly (the same probabilities, the
  same top-k, the same resizing and threshold).
"""

import numbers
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import torch
from scipy.optimize import linear_sum_assignment
from torch.nn import functional as F

from ..data.frame_checks import check_video_frames
from ..precision import float32_island
from ..structures import RLEVideoMask, encode_masks
from .postprocess import DEFAULT_TOPK, MASK_LOGIT_THRESHOLD, resize_mask_logits, topk_pairs

# Mask maps (one query in one frame) resized at a time: bounds the float buffers of the resizing
# (128 maps of 360x640 float32 are 118 MB).
DEFAULT_MAPS_PER_CHUNK = 128


def check_window_size(value, where: str, minimum: int = 1) -> int:
    """``value`` as an int, when it is an integer >= ``minimum`` (not a bool, a float, a string or
    None); else a one-line ValueError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"{where}: window_size must be an integer >= {minimum}, got {value!r} "
            f"({type(value).__name__})"
        )
    return int(value)


def check_output_size(value, where: str) -> Tuple[int, int]:
    """``value`` as an (H, W) pair of ints >= 1; else a one-line ValueError naming ``where``."""
    try:
        height, width = value
        valid = all(not isinstance(s, bool) and isinstance(s, numbers.Integral) for s in value)
    except (TypeError, ValueError):
        valid = False
    if not valid or height < 1 or width < 1:
        raise ValueError(
            f"{where}: output_size must be (height, width), two integers >= 1, got {value!r}"
        )
    return int(height), int(width)


@dataclass
class WindowOutput:
    """What the network predicts for one window of frames.

    Attributes:
        pred_logits (Tensor): (Q, K+1) class logits.
        pred_masks (Tensor): (Q, W, h, w) mask logits.
        pred_embeds (Tensor): (Q, C) query embeddings (after the decoder's final norm).
        padded_size (tuple): (Hp, Wp) of the padded network input.
        image_size (tuple): (Hi, Wi) of the frames before padding.
    """

    pred_logits: torch.Tensor
    pred_masks: torch.Tensor
    pred_embeds: torch.Tensor
    padded_size: Tuple[int, int]
    image_size: Tuple[int, int]


def match_embeddings(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """One-to-one matching of the current window's queries to the previous window's tracks.

    Args:
        previous (Tensor): (Q, C) embeddings of the tracks, in track order.
        current (Tensor): (Q, C) embeddings of the current window's queries.

    Returns:
        Tensor: (Q,) int64 ``order`` such that ``current[order[j]]`` continues track ``j``
        (maximum total cosine similarity).
    """
    with float32_island(current.device):  # also under the caller's autocast
        similarity = F.normalize(previous.float(), dim=-1) @ F.normalize(current.float(), dim=-1).T
    rows, cols = linear_sum_assignment(similarity.cpu().numpy(), maximize=True)
    order = torch.empty(len(rows), dtype=torch.long)
    order[torch.as_tensor(rows)] = torch.as_tensor(cols, dtype=torch.long)
    return order


def average_track_scores(
    prob_sum_active: torch.Tensor,
    prob_sum_all: torch.Tensor,
    active_windows: torch.Tensor,
    num_windows: Union[int, torch.Tensor],
) -> torch.Tensor:
    """Class probabilities of tracks averaged over their active windows (all when never active).

    Args:
        prob_sum_active (Tensor): (Q, K) sum of the probabilities over the active windows.
        prob_sum_all (Tensor): (Q, K) sum over all windows of the track.
        active_windows (Tensor): (Q,) number of windows where the track was active.
        num_windows (int or Tensor): windows of the track: one count, or (Q,) one per track.

    Returns:
        Tensor: (Q, K) the averages.
    """
    active = active_windows[:, None]
    averaged_active = prob_sum_active / active.clamp(min=1)
    if isinstance(num_windows, torch.Tensor):
        num_windows = num_windows[:, None].clamp(min=1)
    averaged_all = prob_sum_all / num_windows
    return torch.where(active > 0, averaged_active, averaged_all)


@dataclass
class LinkedWindow:
    """One window put in track order: what is kept of it once the network's outputs are dropped.

    Attributes:
        order (Tensor): (Q,) int64 CPU, the query of the window that continues each track.
        probs (Tensor): (Q, K) float32 CPU class probabilities (no-object column dropped).
        rles (list[list[dict]]): Q lists of W compressed RLEs of the masks at the output size.
        present (Tensor): (Q, W) bool CPU, whether each track's mask has a foreground pixel in
            each frame.
    """

    order: torch.Tensor
    probs: torch.Tensor
    rles: List[List[Dict]]
    present: torch.Tensor

    @property
    def active(self) -> torch.Tensor:
        """(Q,) bool: a foreground pixel in some frame of the window."""
        return self.present.any(dim=1)

    @property
    def num_frames(self) -> int:
        return self.present.shape[1]


class WindowLinker:
    """Puts consecutive windows in track order and encodes their masks (shared by the windowed
    and the streaming inference).

    The first window fixes the order (track ``j`` is query ``j``); each later window's queries
    are matched to the previous window's, in track order (:func:`match_embeddings`).

    Args:
        output_size (tuple): (H, W) of the encoded masks.
        maps_per_chunk (int): (query, frame) mask maps resized at a time.
    """

    def __init__(self, output_size: Tuple[int, int], maps_per_chunk: int = DEFAULT_MAPS_PER_CHUNK):
        self.output_size = check_output_size(output_size, "WindowLinker")
        self.maps_per_chunk = max(1, int(maps_per_chunk))
        self.num_windows = 0
        self._embeds: Optional[torch.Tensor] = None  # (Q, C) of the last window, track order
        # The RLE of an empty mask, shared by every empty frame of every track.
        self.empty_rle = encode_masks(torch.zeros((1, *self.output_size), dtype=torch.bool))[0]

    def link(self, window: WindowOutput) -> LinkedWindow:
        """Match ``window`` to the previous one, then encode its masks in track order.

        The linker's state changes only when the window is linked completely: an exception
        leaves it as it was, so the window can be linked again.
        """
        num_queries = window.pred_logits.shape[0]
        if self._embeds is None:
            order = torch.arange(num_queries)
        else:
            if num_queries != self._embeds.shape[0]:
                raise ValueError(
                    f"window {self.num_windows} has {num_queries} queries, earlier windows had "
                    f"{self._embeds.shape[0]}"
                )
            order = match_embeddings(self._embeds, window.pred_embeds)
        device_order = order.to(window.pred_logits.device)
        probs = F.softmax(window.pred_logits[device_order].float(), dim=-1)[:, :-1].cpu()
        rles, present = self._encode_masks(window, device_order)
        self._embeds = window.pred_embeds[device_order].detach()
        self.num_windows += 1
        return LinkedWindow(order=order, probs=probs, rles=rles, present=present)

    def _encode_masks(
        self, window: WindowOutput, order: torch.Tensor
    ) -> Tuple[List[List[Dict]], torch.Tensor]:
        """Resize, threshold and RLE-encode the window's masks in track order.

        Host syncs per window: one for the maps to resize, one per chunk of them on CUDA (the
        run lengths of :func:`encode_masks` cross to the host chunk by chunk, so device memory
        stays bounded by ``maps_per_chunk``) and one for the returned flags.

        Returns:
            tuple: Q lists of W RLEs, and (Q, W) bool CPU foreground flags.
        """
        masks = window.pred_masks[order]  # (Q, W, h, w)
        num_queries, num_frames = masks.shape[:2]
        # Bilinear resizing is a convex combination of the low-resolution logits, so a map whose
        # logits are all <= the threshold is empty at any size: it is not resized (exact).
        candidates = masks.flatten(2).amax(dim=2) > MASK_LOGIT_THRESHOLD  # (Q, W)
        flat_indices = candidates.flatten().nonzero()[:, 0]  # q * W + f of the maps to resize
        maps = masks.flatten(0, 1)  # (Q*W, h, w)
        has_pixels = torch.zeros(num_queries * num_frames, dtype=torch.bool, device=masks.device)
        rles = []
        for start in range(0, len(flat_indices), self.maps_per_chunk):
            indices = flat_indices[start : start + self.maps_per_chunk]
            logits = resize_mask_logits(
                maps[indices][:, None], window.padded_size, window.image_size, self.output_size
            )  # (n, 1, H, W)
            binary = logits[:, 0] > MASK_LOGIT_THRESHOLD  # (n, H, W)
            has_pixels[indices] = binary.flatten(1).any(dim=1)
            rles.extend(encode_masks(binary))
        window_rles = [[self.empty_rle] * num_frames for _ in range(num_queries)]
        for flat, rle in zip(flat_indices.tolist(), rles):
            query, frame = divmod(flat, num_frames)
            window_rles[query][frame] = rle
        return window_rles, has_pixels.view(num_queries, num_frames).cpu()


class TrackAccumulator:
    """Links window outputs into Q tracks and keeps only what the final result needs.

    Args:
        output_size (tuple): (H, W) of the returned masks.
        maps_per_chunk (int): (query, frame) mask maps resized at a time.
    """

    def __init__(self, output_size: Tuple[int, int], maps_per_chunk: int = DEFAULT_MAPS_PER_CHUNK):
        self._linker = WindowLinker(output_size, maps_per_chunk)
        self.output_size = self._linker.output_size
        self.num_windows = 0
        self.num_frames = 0
        self._prob_sum_all: Optional[torch.Tensor] = None  # (Q, K)
        self._prob_sum_active: Optional[torch.Tensor] = None  # (Q, K)
        self._active_windows: Optional[torch.Tensor] = None  # (Q,)
        self._rles: List[List[Dict]] = []  # per track, one RLE per frame so far

    def add(self, window: WindowOutput) -> torch.Tensor:
        """Append one window.

        Returns:
            Tensor: (Q,) the query of this window that continues each track.
        """
        try:
            linked = self._linker.link(window)
        except ValueError as e:
            raise ValueError(f"TrackAccumulator: {e}") from None
        if self._prob_sum_all is None:
            self._prob_sum_all = torch.zeros_like(linked.probs)
            self._prob_sum_active = torch.zeros_like(linked.probs)
            self._active_windows = torch.zeros(linked.probs.shape[0])
            self._rles = [[] for _ in range(linked.probs.shape[0])]
        active = linked.active
        self._prob_sum_all += linked.probs
        self._prob_sum_active += linked.probs * active[:, None]
        self._active_windows += active
        for track, track_rles in zip(self._rles, linked.rles):
            track.extend(track_rles)
        self.num_windows += 1
        self.num_frames += linked.num_frames
        return linked.order

    def track_scores(self) -> torch.Tensor:
        """(Q, K) class probabilities of the tracks, averaged over their active windows."""
        if self.num_windows == 0:
            raise RuntimeError("TrackAccumulator: no window was added")
        return average_track_scores(
            self._prob_sum_active, self._prob_sum_all, self._active_windows, self.num_windows
        )

    def result(self, topk: int = DEFAULT_TOPK) -> Dict[str, object]:
        """The top-k (track, class) pairs in the official video-result format.

        Returns:
            dict: ``image_size`` (H, W), ``pred_scores``, ``pred_labels``, ``pred_masks`` (k
            :class:`RLEVideoMask`, each T frames; ``.to_tensor()`` gives (T, H, W) bool), and
            ``pred_track_ids`` (the track of each prediction).
        """
        scores, labels, tracks = topk_pairs(self.track_scores(), topk)
        return {
            "image_size": self.output_size,
            "pred_scores": scores.tolist(),
            "pred_labels": labels.tolist(),
            "pred_masks": [RLEVideoMask(self._rles[int(t)]) for t in tracks],
            "pred_track_ids": tracks.tolist(),
        }


def iter_windows(frames: Iterable, window_size: int) -> Iterator[List]:
    """Consecutive lists of ``window_size`` items (the last may be shorter); streams the input."""
    window_size = check_window_size(window_size, "iter_windows")
    window = []
    for frame in frames:
        window.append(frame)
        if len(window) == window_size:
            yield window
            window = []
    if window:
        yield window


def windowed_inference(
    predict_window: Callable[[List], WindowOutput],
    frames: Iterable,
    window_size: int,
    output_size: Tuple[int, int],
    topk: int = DEFAULT_TOPK,
    maps_per_chunk: int = DEFAULT_MAPS_PER_CHUNK,
) -> Dict[str, object]:
    """Run ``predict_window`` on consecutive windows of ``frames`` and link them into tracks.

    Args:
        predict_window (callable): list of W frames -> :class:`WindowOutput`.
        frames (iterable): the video's frames, (H, W, 3) uint8 RGB arrays or (3, H, W) RGB
            tensors (0..255), all of one size; each is checked by
            :func:`~video_mask2former.data.frame_checks.check_frame` as it is read (a bad frame
            is a :class:`~video_mask2former.data.frame_checks.FrameError` naming its index).
            Consumed lazily (a generator reading from disk keeps at most one window of frames
            in memory).
        window_size (int): W, frames per window (>= 1).
        output_size (tuple): (H, W) of the returned masks.
        topk (int): predictions returned.
        maps_per_chunk (int): (query, frame) mask maps resized at a time.

    Returns:
        dict: see :meth:`TrackAccumulator.result`.
    """
    window_size = check_window_size(window_size, "windowed_inference")
    tracks = TrackAccumulator(output_size, maps_per_chunk)
    frames = check_video_frames(frames, "the video (windowed inference)")
    for window in iter_windows(frames, window_size):
        with torch.no_grad():
            tracks.add(predict_window(window))
    if tracks.num_windows == 0:
        raise ValueError("windowed_inference: the video has no frames")
    return tracks.result(topk)

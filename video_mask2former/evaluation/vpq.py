"""Video Panoptic Quality (VPQ, Kim et al., CVPR 2020) with the VIPSeg protocol, pure NumPy.

Shapes: T frames of H x W; K categories; per video Ng ground-truth and Np predicted segment ids
(index 0 of each id axis is void: id 0 in the PNG), J distinct (gt, pred) pairs of the video.

The numbers are those of the VIPSeg / DVIS script ``eval_vpq_vspw.py``:

- For a window size n, the windows are the frames [s, s + n) for s = 0 .. T - n (stride 1). A
  video shorter than n frames has no window and adds nothing for that n (as in the script).
- In a window, the pixels of one segment id (ground truth or prediction) over all its frames form
  a tube; the tube's category and crowd flag are those of the first frame of the window that
  lists the id (so a class change within a window keeps the earlier class).
- A (gt, pred) tube pair of the same category, gt not crowd, is a true positive when
  IoU = |gt n pred| / (|gt| + |pred| - |gt n pred| - |pred n void|) > 0.5 (strictly).
- A ground-truth tube that is neither matched nor crowd is a false negative. A prediction that is
  not matched is a false positive unless more than half of it lies on void plus the crowd tube
  of its category (when several crowd tubes share a category, the one listed last: the script
  keeps one per category, the last in order of first appearance in the window).
- TP, FP, FN and the summed IoU of the TPs are pooled per category over all windows of all
  videos; PQ = IoU / (TP + FP / 2 + FN / 2), SQ = IoU / TP, RQ = TP / (TP + FP / 2 + FN / 2)
  per category, averaged over the categories with TP + FP + FN > 0 (All, Things, Stuff). The
  VPQ of a run is the mean over the window sizes (VIPSeg: 1, 2, 4, 6, 8).

Difference from the script, by design: segment areas come from the PNGs (the script takes the
ground truth's from the JSON ``area`` field, which the VIPSeg conversion computes from the same
PNGs), and inputs the script would mis-read are errors here (an id listed on one side only).

Speed: the (gt id, pred id) intersection counts of each frame are computed once (one
``np.unique`` over a combined key); a window's tube statistics are sums of those per-frame
counts (a cumulative sum over frames), so every window size reuses them. Memory: one video's
per-frame counts at a time.
"""

import itertools
import math
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ["VPQ_WINDOW_SIZES", "VPQAccumulator", "VPQInputError", "VideoCounter"]

# The VIPSeg protocol: windows of 1, 2, 4, 6 and 8 frames, VPQ their mean.
VPQ_WINDOW_SIZES = (1, 2, 4, 6, 8)
# A pair is a true positive when its tube IoU is strictly above this.
MATCH_IOU = 0.5
# An unmatched prediction is not a false positive when strictly more than this share of it lies
# on void and same-category crowd.
IGNORED_FRACTION = 0.5
# Segment ids are 24-bit (three 8-bit PNG channels); a (gt, pred) pair packs into one int64.
_ID_BITS = 24
VOID = 0
# The category of an id in a frame that does not list it (void, absent): different on the two
# sides, so that such ids never pair up.
_NO_GT_CATEGORY, _NO_PRED_CATEGORY = -1, -2


class VPQInputError(ValueError):
    """Frames given to :class:`VPQAccumulator` are inconsistent; the message names the video and
    the frame."""


def _category_of(value) -> int:
    """The category of a segments-dict value: an int, or an object with ``category_id``."""
    return int(getattr(value, "category_id", value))


class _Frame:
    """One frame's per-segment data and its (gt, pred) intersection counts.

    Attributes:
        gt_ids, gt_cats, gt_crowd (ndarray): (G,) the listed gt ids in listing order, their
            category indices, their crowd flags.
        pred_ids, pred_cats (ndarray): (P,) the listed predicted ids and category indices.
        pair_gt, pair_pred, pair_count (ndarray): (M,) every (gt id, pred id) pair with pixels
            (void included) and its pixel count.
    """

    __slots__ = (
        "gt_ids",
        "gt_cats",
        "gt_crowd",
        "pred_ids",
        "pred_cats",
        "pair_gt",
        "pair_pred",
        "pair_count",
    )


class VideoCounter:
    """Collects one video's frames (:meth:`add_frame`), then scores its windows into the
    accumulator (:meth:`finish`). Made by :meth:`VPQAccumulator.start_video`."""

    def __init__(self, accumulator: "VPQAccumulator", video_id: str):
        self._acc = accumulator
        self.video_id = video_id
        self._frames: List[_Frame] = []
        self._shape = None

    def add_frame(
        self,
        gt_ids: np.ndarray,
        gt_segments: Mapping[int, object],
        pred_ids: np.ndarray,
        pred_segments: Mapping[int, object],
        *,
        frame: Optional[str] = None,
        gt_source: Optional[str] = None,
        pred_source: Optional[str] = None,
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Add the next frame.

        Args:
            gt_ids (ndarray): (H, W) integer ground-truth segment ids, 0 = void.
            gt_segments (dict): id -> segment with ``category_id`` and ``iscrowd`` (e.g.
                ``data.vps.Segment``), in the JSON's order; exactly the non-zero ids of
                ``gt_ids``.
            pred_ids (ndarray): (H, W) integer predicted ids, 0 = no prediction.
            pred_segments (dict): id -> category id (or an object with ``category_id``);
                exactly the non-zero ids of ``pred_ids``.
            frame (str, optional): the frame's name in error messages (default its index).
            gt_source, pred_source (str, optional): where each map comes from (a PNG), named by
                the errors about it.

        Returns:
            tuple: the frame's overlap table, (n,) int64 each: ground-truth id, predicted id and
            pixels of every combination present (what STQ needs too, see ``vps_eval``).

        Raises:
            VPQInputError: naming the video and the frame.
        """
        where = f"video {self.video_id!r}, frame {frame or len(self._frames)}"
        gt_ids, pred_ids = self._check_maps(gt_ids, pred_ids, where)
        item = _Frame()
        item.gt_ids = np.array(list(gt_segments), dtype=np.int64)
        item.gt_cats = self._categories(gt_segments, where, "ground-truth")
        item.gt_crowd = np.array([bool(s.iscrowd) for s in gt_segments.values()], dtype=bool)
        item.pred_ids = np.array(list(pred_segments), dtype=np.int64)
        item.pred_cats = self._categories(pred_segments, where, "predicted")
        keys, counts = np.unique((gt_ids << _ID_BITS) | pred_ids, return_counts=True)
        item.pair_gt, item.pair_pred = keys >> _ID_BITS, keys & ((1 << _ID_BITS) - 1)
        item.pair_count = counts
        _check_listed(np.unique(item.pair_gt), item.gt_ids, where, "ground-truth", gt_source)
        _check_listed(np.unique(item.pair_pred), item.pred_ids, where, "predicted", pred_source)
        self._frames.append(item)
        return item.pair_gt, item.pair_pred, item.pair_count

    def _check_maps(self, gt_ids, pred_ids, where) -> Tuple[np.ndarray, np.ndarray]:
        maps = []
        for name, ids in (("ground-truth", gt_ids), ("predicted", pred_ids)):
            ids = np.asarray(ids)
            if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
                raise VPQInputError(
                    f"{where}: the {name} id map must be (H, W) integers, got {ids.shape} "
                    f"{ids.dtype}."
                )
            if ids.size and (ids.min() < 0 or ids.max() >= 1 << _ID_BITS):
                raise VPQInputError(
                    f"{where}: {name} ids must lie in [0, 2^24 - 1], got "
                    f"[{ids.min()}, {ids.max()}]."
                )
            maps.append(ids.astype(np.int64, copy=False))
        if maps[0].shape != maps[1].shape:
            raise VPQInputError(
                f"{where}: the ground truth is {maps[0].shape} (HxW) but the prediction is "
                f"{maps[1].shape}; they must have the same size."
            )
        if self._shape is not None and maps[0].shape != self._shape:
            raise VPQInputError(
                f"{where}: the frame is {maps[0].shape} (HxW) but the video's first frame is "
                f"{self._shape}."
            )
        self._shape = maps[0].shape
        return maps[0], maps[1]

    def _categories(self, segments: Mapping[int, object], where: str, side: str) -> np.ndarray:
        index = self._acc._cat_index
        out = np.empty(len(segments), dtype=np.int64)
        for k, (sid, value) in enumerate(segments.items()):
            category = _category_of(value)
            if category not in index:
                raise VPQInputError(
                    f"{where}: {side} segment {sid} has unknown category_id {category}."
                )
            if sid == VOID:
                raise VPQInputError(f"{where}: {side} segment id 0 is void and cannot be listed.")
            out[k] = index[category]
        return out

    def finish(self) -> None:
        """Score every window of the video into the accumulator and drop the frames."""
        frames, self._frames = self._frames, []
        if frames:
            self._acc._score_video(frames)
        self._acc._longest = max(self._acc._longest, len(frames))


def _check_listed(
    in_png: np.ndarray, listed: np.ndarray, where: str, side: str, source: Optional[str]
) -> None:
    """The non-void ids of a map must be exactly its listed segments."""
    in_png = set(in_png.tolist()) - {VOID}
    listed = set(listed.tolist())
    if in_png != listed:
        problems = []
        if in_png - listed:
            problems.append(
                f"ids {sorted(in_png - listed)[:10]} are in the map but not in its segments list"
            )
        if listed - in_png:
            problems.append(f"listed segments {sorted(listed - in_png)[:10]} have no pixel")
        source = f" ({source})" if source else ""
        raise VPQInputError(f"{where}: {side} map{source}: {'; '.join(problems)}.")


class _VideoTables:
    """One video's frames on dense per-video id axes (index 0 = void).

    Attributes:
        pair_gt, pair_pred (ndarray): (J,) the gt / pred index of each pair.
        cumulative (ndarray): (T + 1, J) int64 pixel counts of each pair summed over frames
            [0, t); a window [s, s + n) holds ``cumulative[s + n] - cumulative[s]``.
        gt_listed, gt_cats, gt_crowd, gt_order (ndarray): (T, Ng + 1) per frame: whether the id
            is listed, its category index (``_NO_GT_CATEGORY`` unlisted), crowd flag, position in
            the listing.
        pred_listed, pred_cats (ndarray): (T, Np + 1) the same for the predictions
            (``_NO_PRED_CATEGORY`` unlisted).
    """

    def __init__(self, frames: Sequence[_Frame]):
        gt_vocab = np.unique(np.concatenate([f.gt_ids for f in frames]))
        pred_vocab = np.unique(np.concatenate([f.pred_ids for f in frames]))
        num_gt, num_pred = len(gt_vocab) + 1, len(pred_vocab) + 1
        shape = (len(frames), num_gt)
        self.gt_listed = np.zeros(shape, dtype=bool)
        self.gt_cats = np.full(shape, _NO_GT_CATEGORY, dtype=np.int64)
        self.gt_crowd = np.zeros(shape, dtype=bool)
        self.gt_order = np.zeros(shape, dtype=np.int64)
        self.pred_listed = np.zeros((len(frames), num_pred), dtype=bool)
        self.pred_cats = np.full((len(frames), num_pred), _NO_PRED_CATEGORY, dtype=np.int64)
        frame_keys = []
        for t, f in enumerate(frames):
            g = _index_in(gt_vocab, f.gt_ids)
            self.gt_listed[t, g] = True
            self.gt_cats[t, g] = f.gt_cats
            self.gt_crowd[t, g] = f.gt_crowd
            self.gt_order[t, g] = np.arange(len(g))
            p = _index_in(pred_vocab, f.pred_ids)
            self.pred_listed[t, p] = True
            self.pred_cats[t, p] = f.pred_cats
            # (M,) pair key on the video's axes: gt index * (Np + 1) + pred index
            keys = _index_in(gt_vocab, f.pair_gt) * num_pred + _index_in(pred_vocab, f.pair_pred)
            frame_keys.append(keys)
        all_keys = np.unique(np.concatenate(frame_keys))
        self.pair_gt, self.pair_pred = all_keys // num_pred, all_keys % num_pred
        counts = np.zeros((len(frames), len(all_keys)), dtype=np.int64)  # (T, J)
        for t, (f, keys) in enumerate(zip(frames, frame_keys)):
            counts[t, np.searchsorted(all_keys, keys)] = f.pair_count
        self.cumulative = np.concatenate([np.zeros_like(counts[:1]), np.cumsum(counts, axis=0)])
        self.num_gt, self.num_pred = num_gt, num_pred


def _index_in(vocab: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Index of each id on an axis whose entry 0 is void and entries 1.. are ``vocab``."""
    index = np.searchsorted(vocab, ids) + 1
    return np.where(ids == VOID, 0, index)


def _tubes(listed: np.ndarray, start: int, size: int, *columns: np.ndarray):
    """The tubes of the window [start, start + size): which ids are listed in it, and each
    id's attributes in the first frame of the window that lists it.

    Args:
        listed (ndarray): (T, N) bool.
        columns (ndarray): (T, N) per-frame attributes.

    Returns:
        present (ndarray): (N,) bool; then each column's (N,) values (meaningless where absent)
        and the (N,) first frame.
    """
    window = listed[start : start + size]  # (n, N)
    first = start + np.argmax(window, axis=0)  # (N,) first listing frame
    ids = np.arange(listed.shape[1])
    return (window.any(axis=0),) + tuple(c[first, ids] for c in columns) + (first,)


class _Counts:
    """Per-category TP / FP / FN counts and summed TP IoU of one window size (K,) each."""

    def __init__(self, num_categories: int):
        self.tp = np.zeros(num_categories, dtype=np.int64)
        self.fp = np.zeros(num_categories, dtype=np.int64)
        self.fn = np.zeros(num_categories, dtype=np.int64)
        self.iou = np.zeros(num_categories, dtype=np.float64)
        self.windows = 0

    def merge(self, other: "_Counts") -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.iou += other.iou
        self.windows += other.windows


def _score_window(tables: _VideoTables, start: int, size: int, counts: _Counts) -> None:
    """Match the tubes of the window [start, start + size) and add its TP / FP / FN / IoU."""
    area = tables.cumulative[start + size] - tables.cumulative[start]  # (J,)
    pair_gt, pair_pred = tables.pair_gt, tables.pair_pred
    gt_present, gt_cat, gt_crowd, gt_order, gt_first = _tubes(
        tables.gt_listed, start, size, tables.gt_cats, tables.gt_crowd, tables.gt_order
    )
    pred_present, pred_cat, _ = _tubes(tables.pred_listed, start, size, tables.pred_cats)
    gt_area = np.zeros(tables.num_gt, dtype=np.int64)
    np.add.at(gt_area, pair_gt, area)
    pred_area = np.zeros(tables.num_pred, dtype=np.int64)
    np.add.at(pred_area, pair_pred, area)
    on_void = np.where(pair_gt == VOID, area, 0)
    pred_void = np.zeros(tables.num_pred, dtype=np.int64)  # (Np + 1,) |pred n void|
    np.add.at(pred_void, pair_pred, on_void)

    # true positives: same category (void and ids absent from the window have none), gt not
    # crowd, IoU > 0.5; pairs without pixels in the window have IoU 0
    same = (gt_cat[pair_gt] == pred_cat[pair_pred]) & ~gt_crowd[pair_gt]  # (J,)
    union = pred_area[pair_pred] + gt_area[pair_gt] - area - pred_void[pair_pred]
    iou = area / np.maximum(union, 1)  # union >= area, 0 only without pixels
    match = same & (iou > MATCH_IOU)
    np.add.at(counts.tp, gt_cat[pair_gt[match]], 1)
    np.add.at(counts.iou, gt_cat[pair_gt[match]], iou[match])
    gt_matched = np.zeros(tables.num_gt, dtype=bool)
    gt_matched[pair_gt[match]] = True
    pred_matched = np.zeros(tables.num_pred, dtype=bool)
    pred_matched[pair_pred[match]] = True

    missed = gt_present & ~gt_crowd & ~gt_matched
    np.add.at(counts.fn, gt_cat[missed], 1)

    # crowd: one tube per category, the last in order of first appearance in the window
    crowd_ids = np.flatnonzero(gt_present & gt_crowd)
    crowd_ids = crowd_ids[np.lexsort((gt_order[crowd_ids], gt_first[crowd_ids]))]
    chosen_of_cat = {int(gt_cat[i]): i for i in crowd_ids}
    chosen = np.zeros(tables.num_gt, dtype=bool)
    chosen[list(chosen_of_cat.values())] = True
    on_crowd = np.where(chosen[pair_gt] & (gt_cat[pair_gt] == pred_cat[pair_pred]), area, 0)
    pred_crowd = np.zeros(tables.num_pred, dtype=np.int64)
    np.add.at(pred_crowd, pair_pred, on_crowd)

    unmatched = np.flatnonzero(pred_present & ~pred_matched)
    ignored = pred_void[unmatched] + pred_crowd[unmatched]
    # listed predictions have pixels in the window (add_frame), so the area is > 0
    counted = ~(ignored / pred_area[unmatched] > IGNORED_FRACTION)
    np.add.at(counts.fp, pred_cat[unmatched[counted]], 1)
    counts.windows += 1


class VPQAccumulator:
    """Streams videos and pools VPQ statistics per window size; :meth:`merge` combines
    accumulators (e.g. of worker processes), :meth:`result` gives the scores.

    Args:
        categories (list[dict]): ``{"id": int, "isthing": 0/1}`` per category (the ground
            truth's ``categories``); every segment's category must be one of them.
        window_sizes (sequence of int): window lengths in frames (VIPSeg: 1, 2, 4, 6, 8).
    """

    def __init__(self, categories: Sequence[Mapping], window_sizes=VPQ_WINDOW_SIZES):
        sizes = tuple(window_sizes)
        if not sizes or any(
            isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in sizes
        ):
            raise VPQInputError(f"window_sizes must be positive integers, got {window_sizes!r}.")
        if len(set(sizes)) != len(sizes):
            raise VPQInputError(f"window_sizes has a repeated size: {window_sizes!r}.")
        ids = [int(c["id"]) for c in categories]
        if not ids or len(set(ids)) != len(ids):
            raise VPQInputError("categories must be a non-empty list with distinct ids.")
        self.category_ids = ids
        self._cat_index = {cid: k for k, cid in enumerate(ids)}
        self._isthing = np.array([bool(c["isthing"]) for c in categories], dtype=bool)  # (K,)
        self.window_sizes = tuple(int(n) for n in sizes)
        self._counts = {n: _Counts(len(ids)) for n in self.window_sizes}
        self._longest = 0

    def start_video(self, video_id: str) -> VideoCounter:
        """A :class:`VideoCounter` for one video: ``add_frame`` each frame, then ``finish``."""
        return VideoCounter(self, str(video_id))

    def add_video(self, gt: Iterable, pred: Iterable, *, video_id: str = "?") -> None:
        """Add one video, streaming its frames.

        Args:
            gt: iterable of ``(ids (H, W), {id: Segment})`` per frame, in order.
            pred: iterable of ``(ids (H, W), {id: category id or Segment})`` per frame.
            video_id (str): named by the errors.

        Raises:
            VPQInputError: the two have different frame counts, or a frame is inconsistent.
        """
        counter = self.start_video(video_id)
        missing = object()
        for t, (gt_frame, pred_frame) in enumerate(
            itertools.zip_longest(gt, pred, fillvalue=missing)
        ):
            if gt_frame is missing or pred_frame is missing:
                longer = "prediction" if gt_frame is missing else "ground truth"
                raise VPQInputError(
                    f"video {video_id!r}: the {longer} has more frames than the other side ({t} "
                    f"frames in common); both must have the same frames."
                )
            counter.add_frame(*gt_frame, *pred_frame)
        counter.finish()

    def _score_video(self, frames: Sequence[_Frame]) -> None:
        tables = _VideoTables(frames)
        for size in self.window_sizes:
            # a video shorter than the window has no window (range is empty), as in the script
            for start in range(len(frames) - size + 1):
                _score_window(tables, start, size, self._counts[size])

    def merge(self, other: "VPQAccumulator") -> None:
        """Add another accumulator's statistics (same categories and window sizes)."""
        if other.category_ids != self.category_ids or other.window_sizes != self.window_sizes:
            raise ValueError("merge: the accumulators have different categories or window sizes.")
        for size in self.window_sizes:
            self._counts[size].merge(other._counts[size])
        self._longest = max(self._longest, other._longest)

    def num_windows(self, window_size: int) -> int:
        """How many windows of ``window_size`` frames were scored (all videos)."""
        return self._counts[window_size].windows

    def class_stats(self, window_size: int) -> Dict[int, dict]:
        """Per category id with TP + FP + FN > 0: ``{"tp", "fp", "fn", "iou"}`` (pooled)."""
        c = self._counts[window_size]
        return {
            cid: {"tp": int(c.tp[k]), "fp": int(c.fp[k]), "fn": int(c.fn[k]), "iou": c.iou[k]}
            for k, cid in enumerate(self.category_ids)
            if c.tp[k] + c.fp[k] + c.fn[k] > 0
        }

    def result(self) -> Dict[str, float]:
        """The scores on the 0-100 scale.

        Returns:
            dict: ``VPQ@n``, ``VPQ_thing@n``, ``VPQ_stuff@n``, ``VPQ_SQ@n``, ``VPQ_RQ@n`` for
            each window size n, and ``VPQ``, ``VPQ_thing``, ``VPQ_stuff``, ``VPQ_SQ``,
            ``VPQ_RQ`` their means over the window sizes. NaN where no category of the subset
            occurs (no TP, FP or FN), e.g. ``VPQ_stuff`` without stuff.

        Raises:
            ValueError: a window size longer than every video (no window at all).
        """
        out: Dict[str, float] = {}
        per_size = []
        for size in self.window_sizes:
            c = self._counts[size]
            if c.windows == 0:
                raise VPQInputError(
                    f"No window of {size} frames: every video is shorter (the longest has "
                    f"{self._longest}); choose window sizes of at most {self._longest} frames."
                )
            scores = _average(c, self._isthing)
            per_size.append(scores)
            for key, value in scores.items():
                out[f"{key}@{size}"] = value
        for key in per_size[0]:  # the mean over the window sizes, as the script
            values = [scores[key] for scores in per_size]
            out[key] = sum(values) / len(values)
        return out


def _average(c: _Counts, isthing: np.ndarray) -> Dict[str, float]:
    """PQ / SQ / RQ per category, averaged over the categories that occur, x 100."""
    occurs = c.tp + c.fp + c.fn > 0
    denominator = np.maximum(c.tp + 0.5 * c.fp + 0.5 * c.fn, 0.5)  # >= 0.5 where it occurs
    pq = c.iou / denominator
    sq = c.iou / np.maximum(c.tp, 1)  # 0 without a TP
    rq = c.tp / denominator
    return {
        "VPQ": _mean(pq, occurs),
        "VPQ_thing": _mean(pq, occurs & isthing),
        "VPQ_stuff": _mean(pq, occurs & ~isthing),
        "VPQ_SQ": _mean(sq, occurs),
        "VPQ_RQ": _mean(rq, occurs),
    }


def _mean(values: np.ndarray, subset: np.ndarray) -> float:
    """100 x the mean of ``values`` over ``subset`` (summed in category order, as the script
    does); NaN for an empty subset."""
    selected = values[subset].tolist()
    if not selected:
        return math.nan
    return 100 * (sum(selected) / len(selected))

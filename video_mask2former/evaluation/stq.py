"""Segmentation and Tracking Quality (STQ, Weber et al., NeurIPS 2021 Datasets track), in NumPy.

Shapes: H×W a frame; K classes (indices 0..K-1); K + 1 confusion slots, slot K being void (the
ignore label, wherever it lies); N tubes.

The numbers are those of deeplab2's NumPy ``STQuality``
(google-research/deeplab2, ``evaluation/numpy/segmentation_and_tracking_quality.py``):

- A frame is given as a semantic map (class indices, ``ignore_label`` = void) and an instance map.
  A ground-truth or predicted *tube* is the set of pixels of a video with the same (class,
  instance) pair, for thing classes only; tubes are never compared across videos.
- Crowd: ground-truth thing pixels with instance 0 belong to no tube, and predicted pixels on
  them are left out of every prediction tube. Predicted instance 0 is an ordinary tube.
- AQ is class-agnostic. For each ground-truth tube g of a video and each prediction tube p that
  overlaps it (TPA = |g ∩ p|, FPA = |p| - TPA, FNA = |g| - TPA):
  AQ(g) = 1/|g| · Σ_p TPA · TPA / (TPA + FPA + FNA). Prediction tubes count every predicted thing
  pixel outside crowd, including those on void or stuff ground truth.
  AQ = Σ over all tubes of all videos of AQ(g) / (number of tubes), 0 when there are no tubes
  (a stuff-only dataset has AQ = 0 and STQ = 0, as in deeplab2).
- SQ is the mean IoU of ONE confusion matrix pooled over all frames of all videos, rows = ground
  truth, with the void row removed (void ground truth is ignored). A class enters the mean when
  its union is non-zero (so a class predicted but absent from the ground truth counts with IoU 0,
  a class absent from both does not). deeplab2's rule kept here: a prediction of void on a
  non-void pixel is a false negative of the true class AND makes the void slot's union non-zero,
  so the void slot then enters the mean with IoU 0. SQ is NaN when nothing is counted.
- STQ = sqrt(AQ · SQ); per video the same with that video's tubes and confusion counts.

Differences from deeplab2, none of which changes a result beyond float rounding: counts are exact
integers (deeplab2's current version sums tube areas in float32 under NumPy 2, which rounds once
an area passes 2^24 pixels and makes its AQ float32-precise, about 1e-7); semantic and instance
maps are passed separately instead of one encoded map; there are no per-pixel weights; the state
is a few integer arrays per video (tube areas, overlap areas, three per-class counts), never a
(K+1)×(K+1) matrix or any pixels.

VIPSeg / DVIS numbering: :func:`panoptic_to_semantic_instance` turns a VIPSeg-format frame (an id
map + its segments) into the two maps; see there for the two numberings.
"""

import math
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

_EPSILON = 1e-15  # deeplab2's guard against dividing by zero tubes / unions
_INT64_MAX = np.iinfo(np.int64).max
RGB_ID_LIMIT = 256**3  # segment ids of RGB id PNGs are R + 256 G + 256^2 B < 256^3


def _add_counts(keys, counts, new_keys, new_counts):
    """Sum two (sorted unique keys, counts) tables into one sorted table."""
    merged, inverse = np.unique(np.concatenate([keys, new_keys]), return_inverse=True)
    sums = np.zeros(len(merged), np.int64)
    np.add.at(sums, inverse, np.concatenate([counts, new_counts]))
    return merged, sums


class _SequenceCounts:
    """Everything STQ keeps of one video: integer counts, no pixels.

    ``tables`` maps "gt" / "pred" (tube side keys) and "pair" (combination keys of overlapping
    tubes) to (sorted unique keys, areas in pixels summed over the video's frames), int64 (N,).
    """

    def __init__(self, num_classes: int):
        empty = np.zeros(0, np.int64)
        self.length = 0  # frames seen
        self.tables = {"gt": (empty, empty), "pred": (empty, empty), "pair": (empty, empty)}
        self.true_positives = np.zeros(num_classes + 1, np.int64)  # (K+1,) confusion diagonal
        self.gt_pixels = np.zeros(num_classes + 1, np.int64)  # (K+1,) row sums, no void row
        self.pred_pixels = np.zeros(num_classes + 1, np.int64)  # (K+1,) column sums, no void row


def _mean_iou(true_positives, gt_pixels, pred_pixels):
    """(mean IoU over the slots with a non-zero union (NaN if none), (K+1,) IoUs, NaN if empty)."""
    unions = gt_pixels + pred_pixels - true_positives  # (K+1,) TP + FP + FN
    counted = np.count_nonzero(unions)
    ious = np.where(unions > 0, true_positives / np.maximum(unions, _EPSILON), np.nan)
    mean = float(np.nansum(ious) / counted) if counted else math.nan
    return mean, ious


class STQAccumulator:
    """Streaming STQ over videos (deeplab2's numbers; see the module docstring for the rules).

    Feed frames with :meth:`update` (label maps) or :meth:`update_overlaps` (a frame's overlap
    table, when the caller has one already); combine accumulators of other processes with
    :meth:`merge`; read the scores with :meth:`result`. A video (``sequence_id``) must be updated
    in one accumulator only: merging two accumulators that both hold a video is an error (its
    tubes' areas would need summing across processes, which deeplab2 does not do either).

    Keys: a *side key* is ``slot * max_instances_per_category + instance`` ((K+1)·M values); a
    frame's (ground truth, prediction) combination is ``gt_side * offset + pred_side``, deeplab2's
    encoding of its overlap keys, also used here to count a frame's combinations in one pass.
    """

    def __init__(
        self,
        num_classes: int,
        thing_classes: Iterable[int],
        ignore_label: int = 255,
        max_instances_per_category: int = RGB_ID_LIMIT,
        offset: Optional[int] = None,
    ):
        """
        Args:
            num_classes (int): K; class indices are 0..K-1.
            thing_classes (iterable of int): the class indices that are things (form tubes).
            ignore_label (int): the void class index of the semantic maps (outside 0..K-1, or one
                of them, which then is no class).
            max_instances_per_category (int): M; instance ids must be below it. The default
                (256^3) holds every segment id of an RGB id PNG, which the default numbering of
                :func:`panoptic_to_semantic_instance` uses as the instance id.
            offset (int or None): multiplier of the combination key; at least (K+1)·M, the
                default (deeplab2 asks K·M; one more slot for void). (K+1)·M·offset must fit in
                int64: with the default M that allows up to 180 classes; pass a smaller M (and
                instance ids below it) for more.
        """
        self.num_classes = _positive_int(num_classes, "num_classes")
        self.ignore_label = int(ignore_label)
        self.max_instances = _positive_int(max_instances_per_category, "max_instances_per_category")
        self.thing_classes = tuple(sorted({int(c) for c in thing_classes}))
        bad = [c for c in self.thing_classes if not 0 <= c < num_classes or c == ignore_label]
        if bad:
            raise ValueError(
                f"thing_classes {bad} are not class indices in 0..{num_classes - 1} other than "
                f"the ignore label {ignore_label}"
            )
        # deeplab2 keeps an ignore label inside 0..K-1 at its own slot and drops that slot's row;
        # here it moves to slot K like any other, and its own slot stays empty: the same numbers
        side_limit = (self.num_classes + 1) * self.max_instances  # every side key is below it
        self.offset = side_limit if offset is None else int(offset)
        if self.offset < side_limit:
            raise ValueError(
                f"offset {self.offset} is below (classes + void) * max_instances_per_category = "
                f"{side_limit}: combination keys could collide"
            )
        if (side_limit - 1) * self.offset + side_limit - 1 > _INT64_MAX:
            raise ValueError(
                f"(classes + void) * max_instances_per_category * offset = {side_limit} * "
                f"{self.offset} does not fit in int64: pass a smaller max_instances_per_category "
                "(and instance ids below it)"
            )
        self._is_thing = np.zeros(self.num_classes + 1, bool)  # (K+1,) lookup by slot
        self._is_thing[list(self.thing_classes)] = True
        self._sequences = {}  # sequence id -> _SequenceCounts, in insertion order

    # ------------------------------------------------------------------ input
    def _check_frame(self, sequence_id, arrays, ndim):
        """Validate a frame's semantic / instance arrays (maps or overlap columns); as int64."""
        names = ("gt_semantic", "gt_instance", "pred_semantic", "pred_instance", "pixels")
        arrays = [np.asarray(a) for a in arrays]
        shape = arrays[0].shape
        for name, array in zip(names, arrays):
            if array.ndim != ndim or not np.issubdtype(array.dtype, np.integer):
                raise ValueError(
                    f"STQ video {sequence_id!r}: {name} must be a {ndim}-D integer array, got "
                    f"shape {array.shape} dtype {array.dtype}"
                )
            if array.shape != shape:
                raise ValueError(
                    f"STQ video {sequence_id!r}: {name} has shape {array.shape}, gt_semantic "
                    f"{shape}; a frame's arrays must have one shape"
                )
        for name, array in zip(names[0:4:2], arrays[0:4:2]):
            bad = (array < 0) | (array >= self.num_classes)
            bad &= array != self.ignore_label
            if bad.any():
                raise ValueError(
                    f"STQ video {sequence_id!r}: {name} holds {np.unique(array[bad])[:5].tolist()}"
                    f"; expected class indices 0..{self.num_classes - 1} or the ignore label "
                    f"{self.ignore_label}"
                )
        limits = (self.max_instances, self.max_instances, _INT64_MAX)  # instances, pixels
        for name, array, limit in zip(names[1::2] + names[4:], arrays[1::2] + arrays[4:], limits):
            if array.size and (array.min() < 0 or array.max() >= limit):
                raise ValueError(
                    f"STQ video {sequence_id!r}: {name} holds values in "
                    f"{array.min()}..{array.max()}; expected 0..{limit - 1}"
                )
        return [a.astype(np.int64, copy=False) for a in arrays]

    def _side_keys(self, semantic, instance):
        """Class indices and instances -> side keys (void -> the void slot); a new array."""
        keys = np.where(semantic == self.ignore_label, self.num_classes, semantic)
        keys *= self.max_instances  # in place: a 720p frame's temporaries cost milliseconds
        keys += instance
        return keys

    # ----------------------------------------------------------------- update
    def update(self, gt_semantic, gt_instance, pred_semantic, pred_instance, sequence_id):
        """Add one frame of a video.

        Args:
            gt_semantic, pred_semantic (ndarray): (H, W) integer class indices 0..K-1 or
                ``ignore_label`` (void).
            gt_instance, pred_instance (ndarray): (H, W) integer instance ids in 0..M-1, read on
                thing pixels only; ground-truth thing pixels with instance 0 are crowd. The same
                (class, instance) in two frames of a video is one tube.
            sequence_id (hashable): the video the frame belongs to.
        """
        gt_sem, gt_ins, pred_sem, pred_ins = self._check_frame(
            sequence_id, (gt_semantic, gt_instance, pred_semantic, pred_instance), ndim=2
        )
        combined = self._side_keys(gt_sem, gt_ins)  # (H, W)
        combined *= self.offset
        combined += self._side_keys(pred_sem, pred_ins)
        keys, pixels = np.unique(combined, return_counts=True)  # (n,) the frame's combinations
        self._add_overlaps(sequence_id, *np.divmod(keys, self.offset), pixels.astype(np.int64))

    def update_overlaps(
        self, gt_semantic, gt_instance, pred_semantic, pred_instance, pixels, sequence_id
    ):
        """Add one frame given as its overlap table instead of its maps (same result as
        :meth:`update` on maps with these pixel counts).

        Args:
            gt_semantic, gt_instance, pred_semantic, pred_instance (ndarray): (n,) integers, one
                row per (ground truth, prediction) combination of the frame, as in :meth:`update`;
                a combination may appear in several rows.
            pixels (ndarray): (n,) non-negative integers, the frame's pixels with that combination.
            sequence_id (hashable): the video the frame belongs to.
        """
        gt_sem, gt_ins, pred_sem, pred_ins, pixels = self._check_frame(
            sequence_id, (gt_semantic, gt_instance, pred_semantic, pred_instance, pixels), ndim=1
        )
        gt_side = self._side_keys(gt_sem, gt_ins)
        self._add_overlaps(sequence_id, gt_side, self._side_keys(pred_sem, pred_ins), pixels)

    def _add_overlaps(self, sequence_id, gt_side, pred_side, pixels):
        """Add a frame's (n,) combinations (side keys) and their pixel counts."""
        seq = self._sequences.get(sequence_id)
        if seq is None:
            seq = self._sequences[sequence_id] = _SequenceCounts(self.num_classes)
        seq.length += 1
        gt_slot, gt_ins = np.divmod(gt_side, self.max_instances)  # (n,) each
        pred_slot = pred_side // self.max_instances
        # SQ: confusion counts without the void row: diagonal, row sums, column sums (K+1,) each
        valid = gt_slot != self.num_classes
        np.add.at(seq.true_positives, gt_slot[valid], pixels[valid] * (gt_slot == pred_slot)[valid])
        np.add.at(seq.gt_pixels, gt_slot[valid], pixels[valid])
        np.add.at(seq.pred_pixels, pred_slot[valid], pixels[valid])
        # AQ: tubes of thing pixels outside crowd
        gt_thing = self._is_thing[gt_slot]
        gt_tube = gt_thing & (gt_ins != 0)
        pred_tube = self._is_thing[pred_slot] & ~(gt_thing & (gt_ins == 0))
        combined = gt_side * self.offset + pred_side
        tables = (
            ("gt", gt_side, gt_tube),
            ("pred", pred_side, pred_tube),
            ("pair", combined, gt_tube & pred_tube),
        )
        for name, keys, rows in tables:
            seq.tables[name] = _add_counts(*seq.tables[name], keys[rows], pixels[rows])

    # ------------------------------------------------------------------ merge
    def merge(self, other: "STQAccumulator") -> None:
        """Take over the videos of ``other`` (e.g. from a worker process).

        Raises:
            ValueError: when the two were built with other settings, or share a video.
        """
        mine, theirs = self._settings(), other._settings()
        if mine != theirs:
            raise ValueError(
                f"cannot merge STQ accumulators with other settings: {mine} vs {theirs}"
            )
        shared = [s for s in other._sequences if s in self._sequences]
        if shared:
            raise ValueError(
                f"cannot merge STQ accumulators that both hold videos {shared[:5]}: a video must "
                "be updated in one accumulator only"
            )
        self._sequences.update(other._sequences)

    def _settings(self):
        """What two accumulators must share to be merged."""
        names = ("num_classes", "thing_classes", "ignore_label", "max_instances", "offset")
        return {name: getattr(self, name) for name in names}

    # ----------------------------------------------------------------- result
    def _association(self, seq) -> Tuple[float, int]:
        """(Σ over the video's ground-truth tubes of AQ(g), number of tubes)."""
        (gt_keys, gt_areas), (pred_keys, pred_areas), (pair_keys, overlap) = (
            seq.tables[name] for name in ("gt", "pred", "pair")
        )
        gt_key, pred_key = np.divmod(pair_keys, self.offset)  # (N_pair,) each
        gt_area = gt_areas[np.searchsorted(gt_keys, gt_key)]
        union = gt_area + pred_areas[np.searchsorted(pred_keys, pred_key)] - overlap  # TPA+FPA+FNA
        return float(np.sum(overlap / union * overlap / gt_area)), len(gt_keys)

    def result(self) -> dict:
        """Scores on the 0..1 scale.

        Returns:
            dict with ``STQ``, ``AQ``, ``SQ`` (floats), ``IoU_per_class`` (list of K floats, NaN
            for a class whose union is empty; the ignore label's entry is NaN when it is a class
            index), and per video, in the order videos were first seen (merged ones appended):
            ``STQ_per_seq``, ``AQ_per_seq``, ``SQ_per_seq`` (lists of floats), ``ID_per_seq``
            (the sequence ids), ``Length_per_seq`` (frames per video).
        """
        seqs = list(self._sequences.values())
        aq_sums, tubes, sq_per_seq = [], [], []
        tp = np.zeros(self.num_classes + 1, np.int64)
        gt_pixels, pred_pixels = tp.copy(), tp.copy()
        for seq in seqs:
            aq_sum, num_tubes = self._association(seq)
            aq_sums.append(aq_sum)
            tubes.append(num_tubes)
            sq_per_seq.append(_mean_iou(seq.true_positives, seq.gt_pixels, seq.pred_pixels)[0])
            tp += seq.true_positives
            gt_pixels += seq.gt_pixels
            pred_pixels += seq.pred_pixels
        aq = float(np.sum(aq_sums) / max(np.sum(tubes), _EPSILON))
        aq_per_seq = [s / max(n, _EPSILON) for s, n in zip(aq_sums, tubes)]
        sq, ious = _mean_iou(tp, gt_pixels, pred_pixels)
        per_class = ious[: self.num_classes]
        return {
            "STQ": math.sqrt(aq * sq),
            "AQ": aq,
            "SQ": sq,
            "IoU_per_class": per_class.tolist(),
            "STQ_per_seq": [math.sqrt(a * s) for a, s in zip(aq_per_seq, sq_per_seq)],
            "AQ_per_seq": aq_per_seq,
            "SQ_per_seq": sq_per_seq,
            "ID_per_seq": list(self._sequences),
            "Length_per_seq": [seq.length for seq in seqs],
        }


def _positive_int(value, name):
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ------------------------------------------------------------------ VIPSeg-format frames
def vipseg_segment_order(frames_segment_ids: Iterable[Iterable[int]]) -> List[int]:
    """A video's segment ids in the order the VIPSeg / DVIS STQ script numbers them.

    Args:
        frames_segment_ids: per frame, in frame order, the segment ids in the order of that
            frame's ``segments_info`` list (e.g. ``[list(f.segments) for f in video.frames]``).

    Returns:
        Every id once, in order of first appearance; an id's position is its instance number.
    """
    order = {}
    for ids in frames_segment_ids:
        for segment_id in ids:
            order.setdefault(int(segment_id), len(order))
    return list(order)


def panoptic_to_semantic_instance(
    ids: np.ndarray,
    segments: Mapping[int, object],
    category_to_index: Mapping[int, int],
    thing_indices: Iterable[int],
    *,
    ignore_label: int = 255,
    vipseg_numbering: bool = False,
    video_segment_order: Optional[Sequence[int]] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """One VIPSeg-format frame (id map + segments) -> (semantic, instance) maps for STQ.

    Args:
        ids (ndarray): (H, W) non-negative integer segment ids (0 = void), e.g. from an RGB id PNG.
        segments (mapping): segment id -> a ``Segment`` (``category_id``, ``iscrowd``) or a plain
            category id (predictions). Every non-zero id of ``ids`` must be a key.
        category_to_index (mapping): category id -> class index 0..K-1.
        thing_indices (iterable of int): the class indices that are things.
        ignore_label (int): the semantic value of void pixels.
        vipseg_numbering (bool): number instances as the VIPSeg / DVIS script does (below).
        video_segment_order (sequence of int): with ``vipseg_numbering``, the video's segment ids
            in first-appearance order (:func:`vipseg_segment_order`); ignored otherwise.

    Returns:
        (semantic, instance): (H, W) int64 each. Void pixels get ``ignore_label`` and instance 0.

    Numbering. Default (``vipseg_numbering=False``): a thing segment's instance is its segment id
    (>= 1, and the same in every frame of the video, so a segment is one tube); a thing segment
    with ``iscrowd`` gets instance 0, deeplab2's crowd, ignored by AQ; stuff gets 0.
    ``vipseg_numbering=True`` reproduces ``eval_stq_vspw.py`` of VIPSeg (and DVIS / DVIS++'s
    copy): every segment of the video, stuff or thing, is numbered 0, 1, 2, ... in order of first
    appearance in the JSON, and ``iscrowd`` is not read. How the two differ: (1) the first
    segment listed in the video's JSON gets instance 0; when it is a thing, deeplab2 takes its
    whole tube for crowd: it is left out of AQ, and predicted pixels on it are left out of the
    prediction tubes (when it is stuff nothing changes); (2) crowd segments are scored as ordinary
    tubes. Every other tube, and SQ, are the same; the numbering of predictions changes nothing,
    since a predicted instance 0 is not special.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer) or (ids.size and ids.min() < 0):
        raise ValueError(
            f"segment id map must be a 2-D array of non-negative integers, got shape {ids.shape} "
            f"dtype {ids.dtype}"
        )
    table = segment_label_table(
        segments,
        category_to_index,
        thing_indices,
        ignore_label=ignore_label,
        vipseg_numbering=vipseg_numbering,
        video_segment_order=video_segment_order,
    )
    return lookup_segment_labels(table, ids)


def segment_label_table(
    segments: Mapping[int, object],
    category_to_index: Mapping[int, int],
    thing_indices: Iterable[int],
    *,
    ignore_label: int = 255,
    vipseg_numbering: bool = False,
    video_segment_order: Optional[Sequence[int]] = None,
) -> np.ndarray:
    """The (segment id, class index, instance) rows of one frame's segments, void (id 0) included,
    sorted by id: what :func:`panoptic_to_semantic_instance` maps each pixel through (arguments
    and numbering as there). Evaluators that already have a frame's (gt id, pred id, pixels)
    table map its ids through this with :func:`lookup_segment_labels` and call
    :meth:`STQAccumulator.update_overlaps`, without a second pass over the pixels.

    Returns:
        ndarray: (S + 1, 3) int64.
    """
    things = {int(c) for c in thing_indices}
    if vipseg_numbering:
        if video_segment_order is None:
            raise ValueError(
                "vipseg_numbering=True needs video_segment_order, the video's segment ids in "
                "first-appearance order (see vipseg_segment_order)"
            )
        number = {int(s): n for n, s in enumerate(video_segment_order)}
    if 0 in segments:
        raise ValueError("segment id 0 is void and cannot be a segment")
    rows = [(0, ignore_label, 0)]  # (S + 1, 3): id, class index, instance; void first
    for segment_id, segment in segments.items():
        category = getattr(segment, "category_id", segment)
        if category not in category_to_index:
            raise ValueError(
                f"segment {segment_id} has category {category}, which is not in the categories"
            )
        index = category_to_index[category]
        if vipseg_numbering:
            if segment_id not in number:
                raise ValueError(f"segment {segment_id} is not in video_segment_order")
            instance = number[segment_id]
        elif index in things and not getattr(segment, "iscrowd", False):
            instance = segment_id
        else:
            instance = 0
        rows.append((segment_id, index, instance))
    return np.array(sorted(rows), dtype=np.int64)


def lookup_segment_labels(table: np.ndarray, ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(semantic, instance) of segment ids (any shape) through a :func:`segment_label_table`.

    Raises:
        ValueError: an id that is not in the table.
    """
    ids = np.asarray(ids)
    position = np.minimum(np.searchsorted(table[:, 0], ids), len(table) - 1)
    unknown = table[position, 0] != ids
    if unknown.any():
        raise ValueError(
            f"segment ids {np.unique(ids[unknown])[:5].tolist()} of the id map are not in the "
            "segments (only 0 is void)"
        )
    return table[position, 1], table[position, 2]

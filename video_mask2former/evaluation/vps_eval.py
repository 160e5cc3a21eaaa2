"""Score video panoptic segmentation predictions in the VIPSeg layout: VPQ and STQ.

Inputs (the formats the VIPSeg / DVIS scripts read, see ``data/vps.py``):

- ground truth: ``--gt-json`` (``panoptic_gt_VIPSeg_val.json``) and ``--gt-dir`` holding
  ``<video_id>/<file_name>`` RGB id PNGs;
- predictions: ``--pred-json`` (``pred.json``: ``annotations[{video_id, annotations[{file_name,
  segments_info[{id, category_id}]}]}]``) and ``--pred-dir`` holding ``<video_id>/<file_name>``.

The i-th predicted frame of a video is the i-th ground-truth frame (as in the scripts) and must
carry its file name. Every input is checked: a video missing from the predictions or predicted
but not in the ground truth, a frame count or file name that differs, a PNG id absent from its
JSON entry (or the reverse), an unknown category, PNGs of different sizes: each is an error naming
the file, the video and the frame.

Videos are scored in a process pool, each worker reading one video at a time (memory: one
video's per-frame counts, two frames of pixels).
"""

import multiprocessing
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ..data.vps import (
    VideoSegFormatError,
    VpsVideo,
    load_vps_ground_truth,
    load_vps_predictions,
    read_id_png,
)
from .stq import (
    STQAccumulator,
    lookup_segment_labels,
    segment_label_table,
    vipseg_segment_order,
)
from .vpq import VPQ_WINDOW_SIZES, VPQAccumulator, VPQInputError

__all__ = ["default_workers", "evaluate_vps"]


def default_workers() -> int:
    """Worker processes by default: min(2, CPUs)."""
    return min(2, os.cpu_count() or 1)


@dataclass
class _Settings:
    """What every worker needs besides its video."""

    categories: List[dict]
    window_sizes: Tuple[int, ...]
    gt_dir: str
    pred_dir: str
    with_stq: bool
    stq_vipseg_numbering: bool


def evaluate_vps(
    gt_json: str,
    gt_dir: str,
    pred_json: str,
    pred_dir: str,
    *,
    window_sizes: Sequence[int] = VPQ_WINDOW_SIZES,
    workers: Optional[int] = None,
    stq_vipseg_numbering: bool = False,
    with_stq: bool = True,
) -> Dict[str, float]:
    """VPQ (VIPSeg protocol, :mod:`.vpq`) and STQ (deeplab2's, :mod:`.stq`) of a prediction.

    Args:
        gt_json, gt_dir, pred_json, pred_dir (str): see the module docstring.
        window_sizes (sequence of int): VPQ window lengths in frames (VIPSeg: 1, 2, 4, 6, 8;
            Cityscapes-VPS: 1, 2, 3, 4); each at most the longest video's length.
        workers (int, optional): processes (default :func:`default_workers`); 1 scores in this
            process.
        stq_vipseg_numbering (bool): number STQ instances as the VIPSeg / DVIS script does (drops
            each video's first-listed thing segment; for comparison with published figures).
        with_stq (bool): also compute STQ / AQ / SQ.

    Returns:
        dict: 0-100 scale; ``VPQ``, ``VPQ_thing``, ``VPQ_stuff``, ``VPQ_SQ``, ``VPQ_RQ`` (means
        over the window sizes) and each with ``@<n>`` per window size; ``STQ``, ``AQ``, ``SQ``
        with ``with_stq``. NaN where a subset has no category (e.g. ``VPQ_stuff`` without stuff).

    Raises:
        VideoSegFormatError: a bad or inconsistent input file (naming file, video and frame).
        VPQInputError: a bad window size, or predictions inconsistent with their PNGs.
        OSError: a file that cannot be read.
    """
    videos, categories = load_vps_ground_truth(gt_json)
    predictions = load_vps_predictions(pred_json, categories=[c["id"] for c in categories])
    pairs = _pair_videos(videos, predictions, gt_json, pred_json)
    settings = _Settings(
        categories, tuple(window_sizes), gt_dir, pred_dir, with_stq, stq_vipseg_numbering
    )
    vpq = VPQAccumulator(categories, settings.window_sizes)  # checks the window sizes
    _check_window_sizes(settings.window_sizes, videos, gt_json)
    stq = _new_stq(categories) if with_stq else None
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise VPQInputError(f"workers must be at least 1, got {workers}.")
    tasks = [(settings, gt, pred) for gt, pred in pairs]
    for video_vpq, video_stq in _map(_score_video, tasks, min(workers, len(tasks))):
        vpq.merge(video_vpq)
        if stq is not None:
            stq.merge(video_stq)
    scores = vpq.result()
    if stq is not None:
        stq_scores = stq.result()
        scores.update({key: 100.0 * stq_scores[key] for key in ("STQ", "AQ", "SQ")})
    return scores


def _map(function, tasks, workers):
    """``function`` over ``tasks`` in order: in this process, or in a pool of ``workers``."""
    if workers <= 1:
        yield from map(function, tasks)
        return
    with multiprocessing.Pool(workers) as pool:
        yield from pool.imap(function, tasks, chunksize=1)


def _pair_videos(
    videos: List[VpsVideo], predictions: Dict[str, VpsVideo], gt_json: str, pred_json: str
) -> List[Tuple[VpsVideo, VpsVideo]]:
    """Each ground-truth video with its prediction, checked frame by frame (count and names)."""
    extra = sorted(set(predictions) - {v.video_id for v in videos})
    if extra:
        raise VideoSegFormatError(
            f"{pred_json}: videos {extra[:5]} are predicted but not in the ground truth {gt_json}."
        )
    pairs = []
    for video in videos:
        pred = predictions.get(video.video_id)
        if pred is None:
            raise VideoSegFormatError(
                f"{pred_json}: video {video.video_id!r} of the ground truth {gt_json} has no "
                f"prediction."
            )
        if len(pred.frames) != len(video.frames):
            raise VideoSegFormatError(
                f"{pred_json}: video {video.video_id!r} has {len(pred.frames)} predicted frames "
                f"but {len(video.frames)} in the ground truth {gt_json}."
            )
        for index, (gt_frame, pred_frame) in enumerate(zip(video.frames, pred.frames)):
            if gt_frame.file_name != pred_frame.file_name:
                raise VideoSegFormatError(
                    f"{pred_json}: video {video.video_id!r}, frame {index}: predicted frame "
                    f"{pred_frame.file_name!r} but the ground truth's frame {index} is "
                    f"{gt_frame.file_name!r}; the frames must be in the same order."
                )
        pairs.append((video, pred))
    return pairs


def _check_window_sizes(window_sizes, videos: List[VpsVideo], gt_json: str) -> None:
    longest = max((len(v.frames) for v in videos), default=0)
    too_long = [n for n in window_sizes if n > longest]
    if too_long:
        raise VPQInputError(
            f"window sizes {too_long} are longer than every video of {gt_json} (the longest has "
            f"{longest} frames): no window would be scored; choose sizes of at most {longest}."
        )


def _new_stq(categories: List[dict]) -> STQAccumulator:
    # void gets the label K, outside the class indices 0..K-1 (any K, unlike 255)
    num_classes = len(categories)
    things = [k for k, c in enumerate(categories) if c["isthing"]]
    return STQAccumulator(num_classes, things, ignore_label=num_classes)


def _score_video(task) -> Tuple[VPQAccumulator, Optional[STQAccumulator]]:
    """Worker: one video's VPQ (and STQ) statistics, reading its PNGs one frame at a time."""
    settings, gt, pred = task
    vpq = VPQAccumulator(settings.categories, settings.window_sizes)
    stq = _new_stq(settings.categories) if settings.with_stq else None
    category_to_index = {c["id"]: k for k, c in enumerate(settings.categories)}
    things = stq.thing_classes if stq is not None else ()
    orders = [vipseg_segment_order([list(f.segments) for f in v.frames]) for v in (gt, pred)]
    counter = vpq.start_video(gt.video_id)
    for gt_frame, pred_frame in zip(gt.frames, pred.frames):
        name = gt_frame.file_name
        gt_png = os.path.join(settings.gt_dir, gt.video_id, name)
        pred_png = os.path.join(settings.pred_dir, gt.video_id, name)
        gt_ids = read_id_png(gt_png, video_id=gt.video_id, frame=name)
        pred_ids = read_id_png(pred_png, video_id=gt.video_id, frame=name)
        pair_gt, pair_pred, pixels = counter.add_frame(
            gt_ids,
            gt_frame.segments,
            pred_ids,
            pred_frame.segments,
            frame=name,
            gt_source=gt_png,
            pred_source=pred_png,
        )
        if stq is None:
            continue
        # STQ from the same overlap table: each (gt id, pred id) combination mapped to its
        # (class, instance) on both sides; no second pass over the pixels.
        labels = []
        for pair_ids, frame, order in (
            (pair_gt, gt_frame, orders[0]),
            (pair_pred, pred_frame, orders[1]),
        ):
            table = segment_label_table(
                frame.segments,
                category_to_index,
                things,
                ignore_label=stq.ignore_label,
                vipseg_numbering=settings.stq_vipseg_numbering,
                video_segment_order=order,
            )
            labels.extend(lookup_segment_labels(table, pair_ids))
        stq.update_overlaps(*labels, pixels, gt.video_id)
    counter.finish()
    return vpq, stq

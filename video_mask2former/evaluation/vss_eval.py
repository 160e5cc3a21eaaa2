"""Score video semantic segmentation predictions against a VSPW-layout split: mIoU, mVC8, mVC16.

    evaluate_vss(gt_root, "val.txt", pred_dir) -> {"mIoU": ..., "mVC8": ..., "mVC16": ..., ...}

Ground truth: ``<gt_root>/data/<video>/mask/<frame>.png`` (read by ``data/vss.py``).
Predictions: ``<pred_dir>/<video>/<frame>.png``, one 8-bit single-channel PNG per ground-truth
frame, of the frame's size, holding class indices 0..K-1 (the remapped labels: VSPW mask value
``v`` is index ``v - 1``). Extra video folders in ``pred_dir`` are not read.

What each number means is written in ``vss_metrics``. The mIoU uses the remapped labels ("others"
and unlabelled ignored); the video consistency compares the masks' values as stored, as the VSPW
authors' ``VC_perclip.py`` does (a pixel that goes from "others" (0) to unlabelled (255) is a
ground-truth change there, although both are ignored by the mIoU).

Every video's prediction folder and frame names are checked before anything is scored; a PNG's
values and size are checked when it is read. Videos are streamed one at a time (a frame pair in
memory at once, plus two counters per pixel), over a process pool when ``workers > 1``.
"""

import itertools
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

from ..data.vps import MissingVideoSegFileError, VideoSegFormatError, locate
from ..data.vss import (
    IGNORE_LABEL,
    VSPW_NUM_CLASSES,
    VssVideo,
    load_vss_split,
    read_vss_frame_mask,
    read_vss_prediction,
    remap_vss_mask,
)
from .vss_metrics import VC_WINDOW_SIZES, ConfusionAccumulator, VCAccumulator

PRED_EXT = ".png"


def default_workers() -> int:
    """Processes used when ``workers`` is None: min(2, CPUs)."""
    return min(2, os.cpu_count() or 1)


def prediction_paths(pred_dir: str, video: VssVideo) -> List[str]:
    """The prediction PNG of each ground-truth frame of ``video``, in frame order.

    Raises:
        MissingVideoSegFileError: ``<pred_dir>/<video>/`` or a frame's PNG is missing.
        VideoSegFormatError: a PNG there is not the name of a ground-truth frame (an extra frame).
    """
    folder = os.path.join(pred_dir, video.name)
    if not os.path.isdir(folder):
        raise MissingVideoSegFileError(
            f"Missing prediction folder {locate(folder, video.name)}: every video of the split "
            f"needs <pred-dir>/<video>/<frame>{PRED_EXT}."
        )
    found = {
        os.path.splitext(n)[0]
        for n in os.listdir(folder)
        if n.lower().endswith(PRED_EXT) and not n.startswith(".")
    }
    expected = set(video.frame_names)
    missing = [f for f in video.frame_names if f not in found]
    if missing:
        path = os.path.join(folder, missing[0] + PRED_EXT)
        raise MissingVideoSegFileError(
            f"Missing prediction {locate(path, video.name, missing[0])} ({len(missing)} of the "
            f"video's {len(expected)} frames have no prediction)."
        )
    extra = sorted(found - expected)
    if extra:
        path = os.path.join(folder, extra[0] + PRED_EXT)
        raise VideoSegFormatError(
            f"Prediction {locate(path, video.name, extra[0])} is not a frame of the ground truth "
            f"({len(extra)} extra PNG(s) in the folder)."
        )
    return [os.path.join(folder, f + PRED_EXT) for f in video.frame_names]


def _video_frames(video: VssVideo, pred_paths: Sequence[str], num_classes: int):
    """Yield (stored mask values, remapped label, prediction), each (H, W) uint8, frame by frame.

    Raises:
        VideoSegFormatError: a PNG that is not a valid mask / prediction (from ``data/vss.py``),
            a prediction of another size than its mask, or a mask of another size than the
            video's first; naming the video and the frame.
    """
    first_shape = None
    for index, (frame, pred_path) in enumerate(zip(video.frame_names, pred_paths)):
        stored = read_vss_frame_mask(video, index, num_classes=num_classes)
        label = remap_vss_mask(stored)
        pred = read_vss_prediction(pred_path, num_classes, video_id=video.name, frame=frame)
        if pred.shape != label.shape:
            raise VideoSegFormatError(
                f"Prediction {locate(pred_path, video.name, frame)} is {_size(pred.shape)}; its "
                f"ground truth {video.mask_paths[index]} is {_size(label.shape)}."
            )
        if first_shape is None:
            first_shape = label.shape
        elif label.shape != first_shape:
            raise VideoSegFormatError(
                f"Mask {locate(video.mask_paths[index], video.name, frame)} is "
                f"{_size(label.shape)}; the video's first mask is {_size(first_shape)}."
            )
        yield stored, label, pred


def _size(shape: Tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]} (WxH)"


def score_video(
    video: VssVideo,
    pred_paths: Sequence[str],
    num_classes: int,
    window_sizes: Sequence[int] = VC_WINDOW_SIZES,
) -> Tuple[ConfusionAccumulator, VCAccumulator]:
    """The confusion matrix and the consistency windows of one video, frames streamed."""
    confusion = ConfusionAccumulator(num_classes, IGNORE_LABEL)
    consistency = VCAccumulator(window_sizes)

    def pairs():
        for stored, label, pred in _video_frames(video, pred_paths, num_classes):
            confusion.update(label, pred)
            yield stored, pred

    # the metric reads the ground truth then the prediction of each frame: tee holds one frame
    gt_side, pred_side = itertools.tee(pairs())
    consistency.add_video((g for g, _ in gt_side), (p for _, p in pred_side))
    return confusion, consistency


def _score_video_job(job):
    return score_video(*job)


def evaluate_vss(
    gt_root: str,
    split_file: str,
    pred_dir: str,
    *,
    num_classes: int = VSPW_NUM_CLASSES,
    window_sizes: Sequence[int] = VC_WINDOW_SIZES,
    workers: Optional[int] = None,
) -> Dict:
    """mIoU and mVC of the predictions in ``pred_dir`` for the videos of a VSPW split.

    Args:
        gt_root (str): the dataset root (``data/<video>/{origin,mask}/``).
        split_file (str): the split's video list (a bare name such as ``"val.txt"`` is looked up
            in ``gt_root``).
        pred_dir (str): ``<pred_dir>/<video>/<frame>.png`` for every frame of every video.
        num_classes (int): K (124 for VSPW).
        window_sizes: the VC window lengths (8 and 16 for VSPW).
        workers (int, optional): processes scoring videos in parallel (1: in this process);
            default ``default_workers()``.

    Returns:
        dict: ``mIoU`` and ``mVC<n>`` for each n (0..100; NaN when undefined: no ground-truth
        pixel, or no video longer than n frames), ``IoU_per_class`` ((K,) list, 0..100, NaN for
        a class without ground truth), ``num_videos``, ``num_frames``, ``num_windows``
        ({n: windows scored}).

    Raises:
        VideoSegFormatError (a ValueError; MissingVideoSegFileError for a missing file): any bad
            input, naming the file, the video and the frame. Nothing is skipped.
    """
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    videos = load_vss_split(gt_root, split_file)
    if not os.path.isdir(pred_dir):
        raise MissingVideoSegFileError(f"Missing prediction folder {pred_dir}.")
    jobs = [(v, prediction_paths(pred_dir, v), num_classes, tuple(window_sizes)) for v in videos]
    confusion = ConfusionAccumulator(num_classes, IGNORE_LABEL)
    consistency = VCAccumulator(window_sizes)
    if workers == 1 or len(jobs) == 1:
        _merge_all(map(_score_video_job, jobs), confusion, consistency)
    else:
        pool = ProcessPoolExecutor(min(workers, len(jobs)))
        try:
            _merge_all(pool.map(_score_video_job, jobs), confusion, consistency)
        finally:  # on a bad input, do not score the remaining videos before reporting it
            pool.shutdown(wait=True, cancel_futures=True)
    scores = {"mIoU": 100.0 * confusion.miou()}
    scores.update(consistency.result())
    scores["IoU_per_class"] = (100.0 * confusion.iou_per_class()).tolist()
    scores["num_videos"] = len(videos)
    scores["num_frames"] = sum(len(v.frame_names) for v in videos)
    scores["num_windows"] = consistency.num_windows()
    return scores


def _merge_all(results, confusion: ConfusionAccumulator, consistency: VCAccumulator) -> None:
    """Merge per-video results in video order (the mean of the windows is then the same float
    whatever the number of workers)."""
    for video_confusion, video_consistency in results:
        confusion.merge(video_confusion)
        consistency.merge(video_consistency)

"""Video semantic segmentation metrics of VSPW: mIoU and video consistency (mVC8, mVC16).

Shapes: T frames of a video, H x W pixels, K classes, n frames in a window, W_n windows of n frames.

The numbers are those of the VSPW authors' scripts (Miao et al., CVPR 2021; VSPW-dataset/VSPW_code
and sssdddwww2/CVPR2021_VSPW_Implement):

- **mIoU**: the authors' ``Evaluator`` (their ``utils.py``) fed with the remapped labels, as their
  ``test.py`` and DVIS++'s ``eval_miou_vspw.py`` feed it (their released ``evaluator_test.py``
  passes the masks' values as stored, off by one class index from the predictions: not
  reproduced). One (K, K) confusion matrix over every frame of the split; pixels whose ground
  truth is the ignore label are left out, whatever was predicted there. IoU_k = TP / (TP + FP +
  FN); mIoU is the mean over the classes that have ground-truth pixels (a class that is only
  predicted is excluded, its false positives still count against the true class).
- **VC_n** (video consistency over ``n`` frames): for a video of T frames, the windows start at
  0, 1, ..., T - n - 1 (the authors' ``range(T - n)``: the last full window, starting at
  T - n, is not scored, so a video of T <= n frames has no window and T = n + 1 has one).
  In a window, a pixel's ground truth is *constant* when its label is the same in all n frames,
  and so is its prediction; the window's score is
  |GT constant and prediction constant| / |GT constant|, with no special case for the ignore
  label (a pixel that stays ignored is a constant pixel like any other; the authors compare the
  mask values as stored, so give this module the labels whose equality you want: see
  ``vss_eval``). A window without a constant pixel scores NaN and is left out; mVC_n is the mean
  over all the windows of all the videos (not a mean of per-video means), 0..100 here.

DVIS / DVIS++ (``utils/eval_vc_vspw.py``) run the authors' loop for n = 8 then n = 16 without
emptying the list of window scores in between, so their "VC16" is the mean over the 8-frame and
the 16-frame windows together. This module does not reproduce that: mVC16 here is the authors'.

Speed and memory: frames are streamed. A pixel is constant over the window ending at frame t iff
its last n - 1 frame-to-frame comparisons were equal (equality is transitive), so one "equal
since" counter per pixel, updated once per frame, serves every window size at once: O(T) passes
over the frames instead of the authors' O(T * n), and two (H, W) counters in memory.
"""

import math
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

# The VSPW protocol: windows of 8 and 16 frames (the paper's VC8 and VC16).
VC_WINDOW_SIZES = (8, 16)
IGNORE_LABEL = 255  # the remapped VSPW ground truth's "others" and "ignore"


def _check_pair(gt: np.ndarray, pred: np.ndarray, what: str) -> None:
    """Both arrays 2-D of one shape, integer, else a ValueError naming ``what``."""
    if gt.ndim != 2 or gt.shape != pred.shape:
        raise ValueError(
            f"{what}: expected a ground truth and a prediction of one (H, W) shape, "
            f"got {gt.shape} and {pred.shape}"
        )
    for name, array in (("ground truth", gt), ("prediction", pred)):
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{what}: the {name} must hold integer labels, got {array.dtype}")


def confusion_matrix(
    gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_label: int = IGNORE_LABEL
) -> np.ndarray:
    """The (K, K) int64 confusion matrix of one frame (rows ground truth, columns prediction).

    Args:
        gt (ndarray): (H, W) ground-truth class indices in [0, K) or ``ignore_label``.
        pred (ndarray): (H, W) predicted class indices in [0, K).
        num_classes (int): K.
        ignore_label (int): ground-truth value whose pixels are left out.

    Raises:
        ValueError: shapes differ, or a value is out of range (the authors' script silently drops
            a ground-truth value >= K and crashes on a prediction >= K; this one says so).
    """
    _check_pair(gt, pred, "confusion_matrix")
    valid = gt != ignore_label
    gt_valid = gt[valid]
    _check_range(
        gt_valid, num_classes, f"ground truth (other than the ignore label {ignore_label})"
    )
    _check_range(pred, num_classes, "prediction")
    # (gt, pred) -> gt * K + pred in the smallest type that holds K * K (16 bits for VSPW)
    index = gt_valid.astype(np.min_scalar_type(num_classes * num_classes))
    index *= num_classes
    np.add(index, pred[valid], out=index, casting="unsafe")  # values checked: in [0, K)
    counts = np.bincount(index, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def _check_range(values: np.ndarray, num_classes: int, what: str) -> None:
    """Every value in [0, K), else a ValueError naming ``what`` and the offending value."""
    if values.size == 0:
        return
    low, high = values.min(), values.max()
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise ValueError(f"{what}: value {bad} is outside the class indices [0, {num_classes})")


def iou_per_class(confusion: np.ndarray) -> np.ndarray:
    """(K,) float64 IoU of each class from a (K, K) confusion matrix; NaN for a class without
    ground-truth pixels (excluded from the mean, as the authors' ``isval``)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    true_positive = np.diag(confusion)
    gt_area = confusion.sum(axis=1)
    union = gt_area + confusion.sum(axis=0) - true_positive
    iou = np.full(len(confusion), np.nan)
    has_gt = gt_area > 0
    iou[has_gt] = true_positive[has_gt] / union[has_gt]
    return iou


def mean_iou(confusion: np.ndarray) -> float:
    """Mean IoU (0..1) over the classes with ground-truth pixels; NaN when there are none."""
    iou = iou_per_class(confusion)
    has_gt = ~np.isnan(iou)
    if not has_gt.any():
        return math.nan
    # one sum over all K classes, 0 for those without ground truth: bit-equal to the authors'
    return float(np.where(has_gt, iou, 0.0).sum() / np.count_nonzero(has_gt))


class ConfusionAccumulator:
    """A (K, K) confusion matrix summed over frames; ``merge`` adds another accumulator's
    (e.g. from a worker process).

    Attributes:
        confusion (ndarray): (K, K) int64, rows ground truth, columns prediction.
    """

    def __init__(self, num_classes: int, ignore_label: int = IGNORE_LABEL):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Add one frame: ``gt`` (H, W) class indices or the ignore label, ``pred`` (H, W)."""
        self.confusion += confusion_matrix(gt, pred, self.num_classes, self.ignore_label)

    def merge(self, other: "ConfusionAccumulator") -> "ConfusionAccumulator":
        """Add ``other``'s counts to this accumulator (same K); returns self."""
        if other.num_classes != self.num_classes:
            raise ValueError(
                f"cannot merge confusion matrices of {other.num_classes} and "
                f"{self.num_classes} classes"
            )
        self.confusion += other.confusion
        return self

    def iou_per_class(self) -> np.ndarray:
        """(K,) IoU per class (0..1), NaN for a class without ground truth."""
        return iou_per_class(self.confusion)

    def miou(self) -> float:
        """Mean IoU (0..1) over the classes with ground truth; NaN when no pixel had one."""
        return mean_iou(self.confusion)


def consistency_windows(
    gt_frames: Iterable[np.ndarray],
    pred_frames: Iterable[np.ndarray],
    window_sizes: Sequence[int] = VC_WINDOW_SIZES,
) -> Dict[int, np.ndarray]:
    """Pixel counts of every scored window of one video, frames streamed one at a time.

    Args:
        gt_frames: T ground-truth label maps (H, W), integers compared for equality only.
        pred_frames: T predicted label maps (H, W).
        window_sizes: the window lengths n (>= 1).

    Returns:
        dict: n -> (W_n, 2) int64 array, one row per window in start order (starts 0 .. T-n-1,
        none when T <= n): [pixels with constant GT and constant prediction, pixels with
        constant GT].

    Raises:
        ValueError: a frame of another shape than the video's first, or fewer/more predicted
            frames than ground-truth frames (the message gives the frame index).
    """
    sizes = _check_window_sizes(window_sizes)
    windows: Dict[int, List[Tuple[int, int]]] = {n: [] for n in sizes}
    pending: Dict[int, Tuple[int, int]] = {}
    runs = None
    for t, (gt, pred) in enumerate(_paired_frames(gt_frames, pred_frames)):
        if runs is None:
            # (any larger cap gives the same counts: max(sizes) - 1 is the smallest that works)
            runs = _EqualRuns(gt, pred, cap=max(sizes) - 1)
        else:
            runs.advance(gt, pred, t)
        # the window ending at frame t - 1 is scored only now that frame t exists
        for n, counts in pending.items():
            windows[n].append(counts)
        pending = {n: runs.window_counts(n) for n in sizes if t >= n - 1}
    return {n: np.array(windows[n], dtype=np.int64).reshape(len(windows[n]), 2) for n in sizes}


def _paired_frames(gt_frames: Iterable[np.ndarray], pred_frames: Iterable[np.ndarray]):
    """Yield (gt, pred) arrays of one (H, W) shape, frame by frame; a ValueError naming the frame
    index when one side has more frames or a pair differs in shape."""
    gt_iter, pred_iter = iter(gt_frames), iter(pred_frames)
    num_frames = 0
    for gt in gt_iter:
        pred = next(pred_iter, None)
        if pred is None:
            raise ValueError(f"frame {num_frames}: a ground-truth frame without a predicted frame")
        gt, pred = np.asarray(gt), np.asarray(pred)
        _check_pair(gt, pred, f"frame {num_frames}")
        yield gt, pred
        num_frames += 1
    if next(pred_iter, None) is not None:
        raise ValueError(f"frame {num_frames}: a predicted frame without a ground-truth frame")


class _EqualRuns:
    """Per pixel, how many of the last frame-to-frame comparisons were equal (capped), for the
    ground truth and the prediction: the window of n frames ending at the current frame is
    constant at a pixel iff its count is >= n - 1."""

    def __init__(self, gt: np.ndarray, pred: np.ndarray, cap: int):
        self.cap = cap  # a count above the largest n - 1 tells nothing more
        self.shape = gt.shape
        # the smallest type that holds cap + 1 (a larger one gives the same counts, more slowly)
        self.gt_count = np.zeros(self.shape, dtype=np.min_scalar_type(cap + 1))  # (H, W)
        self.pred_count = np.zeros_like(self.gt_count)  # (H, W)
        self.gt, self.pred = gt, pred

    def advance(self, gt: np.ndarray, pred: np.ndarray, t: int) -> None:
        """Take frame ``t`` (same shape as the first frame, else a ValueError naming ``t``)."""
        if gt.shape != self.shape:
            raise ValueError(
                f"frame {t}: size {gt.shape} differs from the first frame's {self.shape}"
            )
        for count, equal in ((self.gt_count, gt == self.gt), (self.pred_count, pred == self.pred)):
            count += 1
            np.minimum(count, self.cap, out=count)
            count *= equal
        self.gt, self.pred = gt, pred

    def window_counts(self, n: int) -> Tuple[int, int]:
        """(pixels with constant GT and prediction, pixels with constant GT) in the window of the
        last n frames."""
        gt_constant = self.gt_count >= n - 1
        both = np.count_nonzero(gt_constant & (self.pred_count >= n - 1))
        return both, np.count_nonzero(gt_constant)


def _check_window_sizes(window_sizes: Sequence[int]) -> Tuple[int, ...]:
    sizes = tuple(int(n) for n in window_sizes)
    if not sizes or any(n < 1 for n in sizes) or len(set(sizes)) != len(sizes):
        raise ValueError(f"window sizes must be distinct integers >= 1, got {window_sizes}")
    return sizes


def window_scores(counts: np.ndarray) -> np.ndarray:
    """(W,) float64 score of each window from its (W, 2) counts; NaN where no pixel is constant."""
    counts = np.asarray(counts, dtype=np.int64)
    scores = np.full(len(counts), np.nan)
    has_constant = counts[:, 1] > 0
    scores[has_constant] = counts[has_constant, 0] / counts[has_constant, 1]
    return scores


class VCAccumulator:
    """Video consistency over the windows of every video added; ``merge`` appends another
    accumulator's windows (e.g. from a worker process; merge in video order for bit-equal means).
    """

    def __init__(self, window_sizes: Sequence[int] = VC_WINDOW_SIZES):
        self.window_sizes = _check_window_sizes(window_sizes)
        # n -> per-window scores, in video then start order (a float per window)
        self.scores: Dict[int, List[np.ndarray]] = {n: [] for n in self.window_sizes}

    def add_video(
        self, gt_frames: Iterable[np.ndarray], pred_frames: Iterable[np.ndarray]
    ) -> Dict[int, np.ndarray]:
        """Score the windows of one video (frames streamed; see ``consistency_windows``) and keep
        them; returns n -> (W_n,) window scores of this video."""
        counts = consistency_windows(gt_frames, pred_frames, self.window_sizes)
        video = {n: window_scores(counts[n]) for n in self.window_sizes}
        for n in self.window_sizes:
            self.scores[n].append(video[n])
        return video

    def merge(self, other: "VCAccumulator") -> "VCAccumulator":
        """Append ``other``'s windows after this accumulator's (same window sizes); returns self."""
        if other.window_sizes != self.window_sizes:
            raise ValueError(
                f"cannot merge window sizes {other.window_sizes} into {self.window_sizes}"
            )
        for n in self.window_sizes:
            self.scores[n].extend(other.scores[n])
        return self

    def num_windows(self) -> Dict[int, int]:
        """n -> number of windows scored (NaN windows included)."""
        return {n: sum(len(s) for s in self.scores[n]) for n in self.window_sizes}

    def result(self) -> Dict[str, float]:
        """``{"mVC<n>": mean window score * 100}`` for each n; NaN when no window has a constant
        pixel (e.g. every video has <= n frames). The mean is taken as ``numpy.nanmean`` does
        (NaN as 0 in one sum, divided by the count of the others), so that it is bit-equal."""
        out = {}
        for n in self.window_sizes:
            scores = np.concatenate(self.scores[n]) if self.scores[n] else np.zeros(0)
            defined = ~np.isnan(scores)
            count = np.count_nonzero(defined)
            total = np.where(defined, scores, 0.0).sum()
            out[f"mVC{n}"] = 100.0 * float(total / count) if count else math.nan
        return out

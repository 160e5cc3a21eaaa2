"""The YouTube-VIS video instance segmentation metric (AP / AR), this project's implementation.

Shapes: V videos, T frames, D predictions and G ground-truth tracks of a video, K categories,
    I IoU thresholds (10), R recall points (101), A area ranges (4), M max-detection limits (3).

The numbers are those of the official YouTube-VIS evaluation (``YTVOSeval`` of youtubevos/cocoapi,
as used by the official Mask2Former video code), which no longer runs on NumPy >= 1.24:

- A prediction and a ground-truth track are compared over the whole video:
  IoU = sum over frames of |P n G| / sum over frames of |P u G| (a frame with a mask on one side
  only adds that mask to the union; 0 when the union is empty). Crowd tracks use the same IoU.
- A track's area is its mean mask area over the frames where the area is non-zero; the ground
  truth's comes from the annotation's ``areas`` field (computed from the masks when absent).
- COCO matching per (video, category): predictions by descending score (stable), greedy, crowd
  and out-of-range ground truth ignored; precision at 101 recall points, averaged over categories
  and IoU thresholds; -1 where no ground truth falls in a setting.

Speed: the per-frame intersections of all (prediction, ground truth) pairs of a video come from one
``pycocotools.mask.iou`` call per frame on the compressed RLEs (no decoding to bitmaps); the
matching is vectorised over the IoU thresholds.
"""

from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import pycocotools.mask as mask_util

from ..data.ytvis import check_ytvis_dataset, valid_polygons, video_length
from .results import VideoSpec, read_json, validate_results

# The official protocol (COCO's detection defaults with video areas).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # (I,) 0.50:0.05:0.95
RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # (R,) 0:0.01:1
MAX_DETS = (1, 10, 100)  # (M,) predictions kept per video
_LARGEST_AREA = 1e5**2  # "no upper bound" of the official area ranges
AREA_RANGES = {  # mean area over the frames where the track is present, bounds inclusive
    "all": (0.0, _LARGEST_AREA),
    "small": (0.0, 128.0**2),
    "medium": (128.0**2, 256.0**2),
    "large": (256.0**2, _LARGEST_AREA),
}
STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
# Official guard so that a pair that never fully matches is not accepted at threshold 1.
_MAX_IOU_THRESHOLD = 1 - 1e-10


@dataclass
class VideoTracks:
    """The N tracks (ground truth or predictions) of one video.

    Attributes:
        ids (ndarray): (N,) int64 annotation ids (ground truth) or 1-based result indices.
        category_ids (ndarray): (N,) int64 dataset category ids.
        scores (ndarray): (N,) float64 confidence (0 for ground truth).
        crowd (ndarray): (N,) bool ``iscrowd`` (False for predictions).
        mean_areas (ndarray): (N,) float64 mean area over the frames with a non-zero area.
        areas (ndarray): (N, T) int64 mask area per frame (0 where absent).
        rles (list[list]): N lists of T compressed RLEs, ``None`` where the track is absent.
    """

    ids: np.ndarray
    category_ids: np.ndarray
    scores: np.ndarray
    crowd: np.ndarray
    mean_areas: np.ndarray
    areas: np.ndarray
    rles: List[List[Optional[dict]]]

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, index: np.ndarray) -> "VideoTracks":
        """The tracks at ``index`` (an int array), in that order."""
        return VideoTracks(
            self.ids[index],
            self.category_ids[index],
            self.scores[index],
            self.crowd[index],
            self.mean_areas[index],
            self.areas[index],
            [self.rles[i] for i in index],
        )


def _mean_present_area(areas: Sequence) -> float:
    """Mean of the non-zero, non-null per-frame areas (0 when there are none), like the official."""
    present = [a for a in areas if a]
    return float(np.array(present, dtype=np.float64).mean()) if present else 0.0


def _make_tracks(entries: List[dict], rles: List[List[Optional[dict]]], length: int) -> VideoTracks:
    """Stack per-track fields; ``entries`` carry id, category_id, score, crowd, areas_field."""
    areas = np.zeros((len(entries), length), dtype=np.int64)
    for n, track in enumerate(rles):
        present = [t for t, rle in enumerate(track) if rle is not None]
        if present:
            areas[n, present] = mask_util.area([track[t] for t in present])
    mean_areas = [
        _mean_present_area(e["areas_field"] if e["areas_field"] is not None else areas[n])
        for n, e in enumerate(entries)
    ]
    return VideoTracks(
        ids=np.array([e["id"] for e in entries], dtype=np.int64),
        category_ids=np.array([e["category_id"] for e in entries], dtype=np.int64),
        scores=np.array([e["score"] for e in entries], dtype=np.float64),
        crowd=np.array([e["crowd"] for e in entries], dtype=bool),
        mean_areas=np.array(mean_areas, dtype=np.float64),
        areas=areas,
        rles=rles,
    )


# ---------------------------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------------------------


def _gt_frame_rle(segm, spec: VideoSpec) -> Optional[dict]:
    """One checked annotated frame (polygons, uncompressed or compressed RLE, or null) -> a
    compressed RLE (None where absent). Polygons follow the loader's rule
    (:func:`~video_mask2former.data.ytvis.valid_polygons`): a frame without a valid polygon is
    absent, and a 2-point polygon is never read as a box by pycocotools."""
    if isinstance(segm, list):
        segm = valid_polygons(segm)
    if segm is None or (isinstance(segm, list) and not segm):  # null or no polygon: absent
        return None
    if isinstance(segm, list):  # polygons: merged into one mask
        return mask_util.merge(mask_util.frPyObjects(segm, spec.height, spec.width))
    if isinstance(segm["counts"], list):  # uncompressed RLE
        return mask_util.frPyObjects(segm, spec.height, spec.width)
    return segm


class YTVISGroundTruth:
    """A YouTube-VIS annotation file prepared for evaluation.

    The file is checked first (:func:`~video_mask2former.data.ytvis.check_ytvis_dataset`): JSON
    types, ids, frame counts, and that every RLE covers exactly H x W pixels, so that pycocotools
    never sees a corrupt RLE.

    Attributes:
        videos (dict[int, VideoSpec]): frame count and size of every video, by id.
        category_ids (list[int]): the dataset's category ids, sorted.
        tracks (dict[int, VideoTracks]): the annotated tracks of each video that has any.
        has_annotations (bool): False for test-split files (``annotations`` absent or null).
    """

    def __init__(self, dataset: Mapping, *, source: str = "ground truth"):
        """
        Args:
            dataset (dict): the parsed annotation JSON (``videos``, ``categories``, optional
                ``annotations``).
            source (str): the file name used in error messages.

        Raises:
            YTVISFormatError: naming the file, the video / annotation id (and frame) and what
                was expected.
        """
        videos = check_ytvis_dataset(dataset, source, require_file_names=False)
        self.videos: Dict[int, VideoSpec] = {
            vid: VideoSpec(video_length(v), v["height"], v["width"]) for vid, v in videos.items()
        }
        self.category_ids: List[int] = sorted(c["id"] for c in dataset["categories"])
        self.has_annotations = dataset.get("annotations") is not None
        self.tracks: Dict[int, VideoTracks] = self._parse_annotations(
            dataset.get("annotations") or []
        )

    @classmethod
    def from_json(cls, path: str) -> "YTVISGroundTruth":
        """Read a YouTube-VIS annotation file."""
        return cls(read_json(path, "annotation file"), source=path)

    def _parse_annotations(self, annotations: List[dict]) -> Dict[int, VideoTracks]:
        per_video = defaultdict(lambda: ([], []))
        for ann in annotations:
            spec = self.videos[ann["video_id"]]
            entries, tracks = per_video[ann["video_id"]]
            entries.append(
                {
                    "id": ann["id"],
                    "category_id": ann["category_id"],
                    "score": 0.0,
                    "crowd": bool(ann.get("iscrowd", 0)),
                    "areas_field": ann.get("areas"),
                }
            )
            tracks.append([_gt_frame_rle(s, spec) for s in ann["segmentations"]])
        return {
            vid: _make_tracks(entries, rles, self.videos[vid].length)
            for vid, (entries, rles) in per_video.items()
        }


def results_to_tracks(
    results: List[dict], ground_truth: YTVISGroundTruth
) -> Dict[int, VideoTracks]:
    """Group validated ``results.json`` entries by video (entry order kept within a video)."""
    per_video = defaultdict(lambda: ([], []))
    for index, entry in enumerate(results):
        entries, tracks = per_video[entry["video_id"]]
        entries.append(
            {
                "id": index + 1,
                "category_id": entry["category_id"],
                "score": float(entry["score"]),
                "crowd": False,
                "areas_field": None,
            }
        )
        tracks.append(entry["segmentations"])
    return {
        vid: _make_tracks(entries, rles, ground_truth.videos[vid].length)
        for vid, (entries, rles) in per_video.items()
    }


# ---------------------------------------------------------------------------------------------
# Video IoU and matching
# ---------------------------------------------------------------------------------------------


def video_iou(dts: VideoTracks, gts: VideoTracks) -> np.ndarray:
    """IoU over the whole video of every (prediction, ground truth) pair.

    Returns:
        ndarray: (D, G) float64, sum_t |d_t n g_t| / sum_t |d_t u g_t| (0 for an empty union).
    """
    num_frames = dts.areas.shape[1] if len(dts) else gts.areas.shape[1] if len(gts) else 0
    inter = np.zeros((len(dts), len(gts)), dtype=np.float64)
    for t in range(num_frames):
        d_idx = np.flatnonzero(dts.areas[:, t] > 0)
        g_idx = np.flatnonzero(gts.areas[:, t] > 0)
        if len(d_idx) == 0 or len(g_idx) == 0:
            continue
        iou = mask_util.iou(
            [dts.rles[i][t] for i in d_idx],
            [gts.rles[j][t] for j in g_idx],
            [0] * len(g_idx),
        )  # (d, g)
        # |d n g| from the IoU: i / (a + b - i) = iou  =>  i = iou (a + b) / (1 + iou); integer.
        sum_areas = dts.areas[d_idx, t][:, None] + gts.areas[g_idx, t][None, :]
        inter[np.ix_(d_idx, g_idx)] += np.rint(iou * sum_areas / (1.0 + iou))
    union = dts.areas.sum(1)[:, None] + gts.areas.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass
class _Matches:
    """Matching of one (video, category, area range); D predictions sorted by score.

    Attributes:
        scores: (D,) float64; matched_gt: (I, D) int64 matched ground-truth id, 0 if none (the
        official convention); ignored: (I, D) bool; num_gt: int, non-ignored ground truth.
    """

    scores: np.ndarray
    matched_gt: np.ndarray
    ignored: np.ndarray
    num_gt: int


def _match(ious: np.ndarray, dts: VideoTracks, gts: VideoTracks, area_range) -> _Matches:
    """Greedy COCO matching at every IoU threshold at once.

    Args:
        ious (ndarray): (D, G), predictions already in descending score order.
    """
    lo, hi = area_range
    gt_ignore = gts.crowd | (gts.mean_areas < lo) | (gts.mean_areas > hi)  # (G,)
    order = np.argsort(gt_ignore, kind="stable")  # ignored ground truth last
    gt_ignore, crowd, gt_ids = gt_ignore[order], gts.crowd[order], gts.ids[order]
    ious = ious[:, order]
    num_thr, (num_dt, num_gt) = len(IOU_THRESHOLDS), ious.shape
    gt_taken = np.zeros((num_thr, num_gt), dtype=bool)
    matched_gt = np.zeros((num_thr, num_dt), dtype=np.int64)
    ignored = np.zeros((num_thr, num_dt), dtype=bool)
    for d in range(num_dt if num_gt else 0):
        best = np.minimum(IOU_THRESHOLDS, _MAX_IOU_THRESHOLD)  # (I,)
        m = np.full(num_thr, -1)
        open_ = np.ones(num_thr, dtype=bool)
        for g in range(num_gt):
            if gt_ignore[g]:  # stop once a regular match exists and only ignored ones are left
                open_ &= ~((m >= 0) & ~gt_ignore[np.maximum(m, 0)])
            take = open_ & (ious[d, g] >= best) & ~(gt_taken[:, g] & ~crowd[g])
            best = np.where(take, ious[d, g], best)
            m = np.where(take, g, m)
        hit = np.flatnonzero(m >= 0)
        ignored[hit, d] = gt_ignore[m[hit]]
        matched_gt[hit, d] = gt_ids[m[hit]]
        gt_taken[hit, m[hit]] = True
    dt_outside = (dts.mean_areas < lo) | (dts.mean_areas > hi)  # (D,)
    ignored |= (matched_gt == 0) & dt_outside[None, :]
    return _Matches(dts.scores, matched_gt, ignored, int((~gt_ignore).sum()))


# ---------------------------------------------------------------------------------------------
# Accumulation and summary
# ---------------------------------------------------------------------------------------------


def _precision_recall(matches: List[_Matches], max_det: int):
    """Interpolated precision (I, R) and recall (I,) of one (category, area, max dets) setting.

    Returns None when no non-ignored ground truth exists (the setting then stays -1).
    """
    num_gt = sum(m.num_gt for m in matches)
    if num_gt == 0:
        return None
    scores = np.concatenate([m.scores[:max_det] for m in matches])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([m.matched_gt[:, :max_det] for m in matches], axis=1)[:, order]
    ignored = np.concatenate([m.ignored[:, :max_det] for m in matches], axis=1)[:, order]
    tp = np.cumsum((matched != 0) & ~ignored, axis=1).astype(np.float64)  # (I, N)
    fp = np.cumsum((matched == 0) & ~ignored, axis=1).astype(np.float64)
    num_det = tp.shape[1]
    recall_curve = tp / num_gt
    precision_curve = tp / (fp + tp + np.spacing(1))
    # precision envelope: the best precision at any recall at least as high
    envelope = np.maximum.accumulate(precision_curve[:, ::-1], axis=1)[:, ::-1]
    precision = np.zeros((len(IOU_THRESHOLDS), len(RECALL_POINTS)))
    for i in range(len(IOU_THRESHOLDS) if num_det else 0):
        idx = np.searchsorted(recall_curve[i], RECALL_POINTS, side="left")
        reached = idx < num_det
        precision[i, reached] = envelope[i, idx[reached]]
    recall = recall_curve[:, -1] if num_det else np.zeros(len(IOU_THRESHOLDS))
    return precision, recall


@dataclass
class YTVISEvaluation:
    """Everything the metric computed.

    Attributes:
        stats (dict[str, float]): the twelve numbers (0-1 scale, -1 where no ground truth).
        precision (ndarray): (I, R, K, A, M), -1 where a setting has no ground truth.
        recall (ndarray): (I, K, A, M), -1 likewise.
        category_ids (list[int]): the K category ids, in the order of the K axis.
    """

    stats: Dict[str, float]
    precision: np.ndarray
    recall: np.ndarray
    category_ids: List[int]

    def per_category_ap(self) -> Dict[int, float]:
        """AP of each category (area 'all', 100 dets); NaN for a category without ground truth."""
        out = {}
        for k, cat in enumerate(self.category_ids):
            p = self.precision[:, :, k, 0, -1]
            out[cat] = float(p[p > -1].mean()) if (p > -1).any() else float("nan")
        return out


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def summarize(precision: np.ndarray, recall: np.ndarray) -> Dict[str, float]:
    """The twelve official numbers from precision (I, R, K, A, M) and recall (I, K, A, M)."""
    area = {name: a for a, name in enumerate(AREA_RANGES)}
    last = len(MAX_DETS) - 1
    iou50, iou75 = 0, 5  # indices of 0.50 and 0.75 in IOU_THRESHOLDS
    stats = {
        "AP": _mean_valid(precision[:, :, :, area["all"], last]),
        "AP50": _mean_valid(precision[iou50, :, :, area["all"], last]),
        "AP75": _mean_valid(precision[iou75, :, :, area["all"], last]),
    }
    for key, name in (("APs", "small"), ("APm", "medium"), ("APl", "large")):
        stats[key] = _mean_valid(precision[:, :, :, area[name], last])
    for m, max_det in enumerate(MAX_DETS):
        stats[f"AR{max_det}"] = _mean_valid(recall[:, :, area["all"], m])
    for key, name in (("ARs", "small"), ("ARm", "medium"), ("ARl", "large")):
        stats[key] = _mean_valid(recall[:, :, area[name], last])
    return {k: stats[k] for k in STAT_KEYS}


def evaluate_ytvis_detailed(
    ground_truth: Union[YTVISGroundTruth, str],
    results: Union[List[dict], str],
    *,
    check_counts: bool = True,
) -> YTVISEvaluation:
    """Score ``results`` against ``ground_truth`` (see the module docstring for the protocol).

    Args:
        ground_truth (YTVISGroundTruth or str): prepared ground truth, or its JSON path.
        results (list[dict] or str): ``results.json`` entries, or the path of the file. They are
            validated first (unknown video or category, frame count, RLE size and encoding).
        check_counts (bool): decode-check every RLE string (see
            :func:`~video_mask2former.evaluation.results.validate_results`); the slowest check.

    Returns:
        YTVISEvaluation
    """
    if isinstance(ground_truth, str):
        ground_truth = YTVISGroundTruth.from_json(ground_truth)
    if isinstance(results, str):
        source, results = results, read_json(results, "results file")
    else:
        source = "results"
    validate_results(
        results,
        ground_truth.videos,
        category_ids=ground_truth.category_ids,
        source=source,
        check_counts=check_counts,
    )
    predictions = results_to_tracks(results, ground_truth)
    cat_index = {c: k for k, c in enumerate(ground_truth.category_ids)}
    # matches[k][a]: one entry per video (sorted ids) having ground truth or predictions of k
    matches = [[[] for _ in AREA_RANGES] for _ in cat_index]
    for vid in sorted(ground_truth.videos):
        _evaluate_video(ground_truth.tracks.get(vid), predictions.get(vid), cat_index, matches)

    shape_k_a_m = (len(cat_index), len(AREA_RANGES), len(MAX_DETS))
    precision = -np.ones((len(IOU_THRESHOLDS), len(RECALL_POINTS)) + shape_k_a_m)
    recall = -np.ones((len(IOU_THRESHOLDS),) + shape_k_a_m)
    for k, per_area in enumerate(matches):
        for a, per_video in enumerate(per_area):
            for m, max_det in enumerate(MAX_DETS):
                pr = _precision_recall(per_video, max_det) if per_video else None
                if pr is not None:
                    precision[:, :, k, a, m], recall[:, k, a, m] = pr
    return YTVISEvaluation(
        summarize(precision, recall), precision, recall, list(ground_truth.category_ids)
    )


def _empty_tracks() -> VideoTracks:
    empty = np.zeros(0)
    return VideoTracks(
        empty.astype(np.int64),
        empty.astype(np.int64),
        empty,
        empty.astype(bool),
        empty,
        np.zeros((0, 0), np.int64),
        [],
    )


def _evaluate_video(gts: Optional[VideoTracks], dts: Optional[VideoTracks], cat_index, matches):
    """Append the matches of every category present in one video to ``matches[k][a]``."""
    gts = gts if gts is not None else _empty_tracks()
    dts = dts if dts is not None else _empty_tracks()
    if len(dts):
        # keep the top MAX_DETS[-1] per category, by descending score (stable in file order)
        order = np.argsort(-dts.scores, kind="mergesort")
        per_cat_rank = defaultdict(int)
        kept = []
        for i in order:
            c = dts.category_ids[i]
            if per_cat_rank[c] < MAX_DETS[-1]:
                kept.append(i)
                per_cat_rank[c] += 1
        dts = dts.select(np.array(kept, dtype=np.int64))
    if len(dts) and len(gts):
        ious = video_iou(dts, gts)  # (D, G), across categories
    else:
        ious = np.zeros((len(dts), len(gts)))
    for cat in sorted(set(gts.category_ids.tolist()) | set(dts.category_ids.tolist())):
        d_idx = np.flatnonzero(dts.category_ids == cat)
        g_idx = np.flatnonzero(gts.category_ids == cat)
        sub_dts, sub_gts = dts.select(d_idx), gts.select(g_idx)
        sub_ious = ious[np.ix_(d_idx, g_idx)]
        for a, area_range in enumerate(AREA_RANGES.values()):
            matches[cat_index[cat]][a].append(_match(sub_ious, sub_dts, sub_gts, area_range))


def evaluate_ytvis(
    ground_truth: Union[YTVISGroundTruth, str], results: Union[List[dict], str]
) -> Dict[str, float]:
    """The twelve numbers ``AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl``.

    On the 0-1 scale, as the official evaluation prints them; -1 where no ground truth falls in
    an area range. See :func:`evaluate_ytvis_detailed` for the arguments.
    """
    return evaluate_ytvis_detailed(ground_truth, results).stats

"""The YouTube-VIS metric against a slow, independent reference written from the protocol.

These tests were written to kill the mutants that survived the rest of the suite (an operator, a
bound or a constant changed in the metric without any test noticing). The reference below works on
decoded bitmaps with plain loops, in the order of the official ``YTVOSeval.evaluateVid`` /
``accumulate``, and shares no code with :mod:`video_mask2former.evaluation.ytvis_metric` except
the protocol constants it is written from (thresholds, recall points, area ranges, max detections).
"""

import numpy as np
import pycocotools.mask as mask_util
import pytest

from video_mask2former.evaluation import YTVISGroundTruth, evaluate_ytvis
from video_mask2former.evaluation.results import encode_mask_frames
from video_mask2former.evaluation.ytvis2022 import combined_ap, evaluate_2022, split_by_videos
from video_mask2former.evaluation.ytvis_metric import (
    VideoTracks,
    evaluate_ytvis_detailed,
    video_iou,
)

# The official protocol, written out again (not imported) so that a changed constant is noticed.
IOU_THRESHOLDS = [0.5 + 0.05 * i for i in range(10)]
RECALL_POINTS = [i / 100 for i in range(101)]
MAX_DETS = [1, 10, 100]
AREA_RANGES = [(0, 1e10), (0, 128**2), (128**2, 256**2), (256**2, 1e10)]
H, W, T = 12, 12, 3
CATEGORIES = (1, 2)


# ------------------------------------------------------------------------------ the reference
def _decode(segm):
    if segm is None:
        return None
    rle = dict(segm, counts=segm["counts"].encode()) if isinstance(segm["counts"], str) else segm
    return mask_util.decode(rle).astype(bool)


def _mean_area(areas):
    present = [a for a in areas if a]
    return sum(present) / len(present) if present else 0.0


def _iou(dt_masks, gt_masks):
    inter = union = 0
    for d, g in zip(dt_masks, gt_masks):
        d = np.zeros((H, W), bool) if d is None else d
        g = np.zeros((H, W), bool) if g is None else g
        inter += int((d & g).sum())
        union += int((d | g).sum())
    return inter / union if union else 0.0


def _evaluate_video_category(gts, dts, area_range):
    """Official ``evaluateVid`` for one (video, category, area range), 100 detections."""
    lo, hi = area_range
    gt_ignore = [g["crowd"] or g["area"] < lo or g["area"] > hi for g in gts]
    gts = [g for _, g in sorted(zip(gt_ignore, gts), key=lambda p: p[0])]  # stable
    gt_ignore = sorted(gt_ignore)
    dts = sorted(dts, key=lambda d: -d["score"])[: MAX_DETS[-1]]
    matched = [[0] * len(dts) for _ in IOU_THRESHOLDS]
    ignored = [[False] * len(dts) for _ in IOU_THRESHOLDS]
    for t, thr in enumerate(IOU_THRESHOLDS):
        taken = [False] * len(gts)
        for d, dt in enumerate(dts):
            best, m = min(thr, 1 - 1e-10), -1
            for g, gt in enumerate(gts):
                if taken[g] and not gt["crowd"]:
                    continue
                if m > -1 and not gt_ignore[m] and gt_ignore[g]:
                    break
                iou = _iou(dt["masks"], gt["masks"])
                if iou < best:
                    continue
                best, m = iou, g
            if m == -1:
                continue
            ignored[t][d] = gt_ignore[m]
            matched[t][d] = gts[m]["id"]
            taken[m] = True
        for d, dt in enumerate(dts):
            if matched[t][d] == 0 and (dt["area"] < lo or dt["area"] > hi):
                ignored[t][d] = True
    return dict(
        scores=[d["score"] for d in dts],
        matched=matched,
        ignored=ignored,
        num_gt=sum(not i for i in gt_ignore),
    )


def _accumulate(evals, max_det):
    num_gt = sum(e["num_gt"] for e in evals)
    if num_gt == 0:
        return None
    rows = []  # (score, matched per threshold, ignored per threshold), video order
    for e in evals:
        for d, score in enumerate(e["scores"][:max_det]):
            rows.append((score, [m[d] for m in e["matched"]], [i[d] for i in e["ignored"]]))
    rows.sort(key=lambda r: -r[0])  # stable
    precision = np.zeros((len(IOU_THRESHOLDS), len(RECALL_POINTS)))
    recall = np.zeros(len(IOU_THRESHOLDS))
    for t in range(len(IOU_THRESHOLDS)):
        tp = fp = 0
        rc, pr = [], []
        for _, matched, ignored in rows:
            if ignored[t]:
                tp_, fp_ = 0, 0
            else:
                tp_, fp_ = int(matched[t] != 0), int(matched[t] == 0)
            tp, fp = tp + tp_, fp + fp_
            rc.append(tp / num_gt)
            pr.append(tp / (tp + fp + np.spacing(1)))
        recall[t] = rc[-1] if rc else 0.0
        for i in range(len(pr) - 1, 0, -1):
            pr[i - 1] = max(pr[i - 1], pr[i])
        for r, point in enumerate(RECALL_POINTS):
            reached = [i for i, value in enumerate(rc) if value >= point]
            if not reached:
                break
            precision[t, r] = pr[reached[0]]
    return precision, recall


def reference_evaluation(dataset, results):
    """(I, R, K, A, M) precision and (I, K, A, M) recall, -1 where a setting has no ground truth."""
    gts, dts = [], []
    for ann in dataset["annotations"]:
        masks = [_decode(s) for s in ann["segmentations"]]
        areas = ann.get("areas") or [0 if m is None else int(m.sum()) for m in masks]
        crowd = bool(ann.get("iscrowd", 0))
        gts.append(dict(id=ann["id"], video=ann["video_id"], cat=ann["category_id"],
                        crowd=crowd, masks=masks, area=_mean_area(areas)))  # fmt: skip
    for i, res in enumerate(results):
        masks = [_decode(s) for s in res["segmentations"]]
        areas = [0 if m is None else int(m.sum()) for m in masks]
        dts.append(dict(id=i + 1, video=res["video_id"], cat=res["category_id"],
                        score=res["score"], masks=masks, area=_mean_area(areas)))  # fmt: skip
    cats = sorted(c["id"] for c in dataset["categories"])
    shape = (len(cats), len(AREA_RANGES), len(MAX_DETS))
    precision = -np.ones((len(IOU_THRESHOLDS), len(RECALL_POINTS)) + shape)
    recall = -np.ones((len(IOU_THRESHOLDS),) + shape)
    for k, cat in enumerate(cats):
        for a, area_range in enumerate(AREA_RANGES):
            evals = []
            for vid in sorted(v["id"] for v in dataset["videos"]):
                g = [x for x in gts if x["video"] == vid and x["cat"] == cat]
                d = [x for x in dts if x["video"] == vid and x["cat"] == cat]
                if g or d:
                    evals.append(_evaluate_video_category(g, d, area_range))
            for m, max_det in enumerate(MAX_DETS):
                out = _accumulate(evals, max_det) if evals else None
                if out is not None:
                    precision[:, :, k, a, m], recall[:, k, a, m] = out
    return precision, recall


# ------------------------------------------------------------------------------ inputs
def _rle(mask):
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [H, W], "counts": rle["counts"].decode()}


def _box(rng):
    y0, x0 = rng.integers(0, H - 2, size=2)
    y1, x1 = y0 + rng.integers(1, H - y0 + 1), x0 + rng.integers(1, W - x0 + 1)
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _dataset(annotations, num_videos=2):
    return {
        "videos": [
            {"id": v, "height": H, "width": W, "length": T} for v in range(1, num_videos + 1)
        ],
        "categories": [{"id": c, "name": f"c{c}"} for c in CATEGORIES],
        "annotations": annotations,
    }


def _random_case(seed):
    """Ground truth with absent frames, crowd tracks and ``areas`` fields on the range bounds, and
    predictions near it with tied scores."""
    rng = np.random.default_rng(seed)
    annotations, results = [], []
    for vid in (1, 2):
        for _ in range(rng.integers(1, 5)):
            masks = [_box(rng) if rng.random() < 0.8 else None for _ in range(T)]
            areas = [None if m is None else int(m.sum()) for m in masks]
            if rng.random() < 0.4:  # an ``areas`` field on a bound of the ranges
                bound = float(rng.choice([128**2, 256**2, 100, 128**2 + 1]))
                areas = [None if m is None else bound for m in masks]
            annotations.append({
                "id": len(annotations) + 1, "video_id": vid,
                "category_id": int(rng.choice(CATEGORIES)),
                "iscrowd": int(rng.random() < 0.15), "areas": areas,
                "segmentations": [None if m is None else _rle(m) for m in masks],
            })  # fmt: skip
            for _ in range(rng.integers(0, 4)):  # predictions near this track
                pred = [
                    (m if rng.random() < 0.5 else _box(rng)) if m is not None else None
                    for m in masks
                ]
                pred = np.stack([np.zeros((H, W), bool) if p is None else p for p in pred])
                results.append({
                    "video_id": vid, "category_id": int(rng.choice(CATEGORIES)),
                    "score": float(rng.choice([0.9, 0.5, 0.5, 0.3, rng.random()])),
                    "segmentations": encode_mask_frames(pred),
                })  # fmt: skip
    return _dataset(annotations), results


@pytest.mark.parametrize("seed", range(6))
def test_precision_and_recall_equal_the_reference_on_random_videos(seed):
    dataset, results = _random_case(seed)
    ours = evaluate_ytvis_detailed(YTVISGroundTruth(dataset), results)
    precision, recall = reference_evaluation(dataset, results)
    np.testing.assert_allclose(ours.precision, precision, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.recall, recall, rtol=0, atol=1e-12)


def test_video_iou_intersections_are_exact():
    """sum |d n g| / sum |d u g| exactly, for many pairs whose IoU is not a round number."""
    rng = np.random.default_rng(0)
    gt_masks = [np.stack([_box(rng) for _ in range(T)]) for _ in range(6)]
    dt_masks = [np.stack([_box(rng) for _ in range(T)]) for _ in range(6)]

    def tracks(masks):
        return VideoTracks(
            ids=np.arange(1, len(masks) + 1), category_ids=np.ones(len(masks), np.int64),
            scores=np.ones(len(masks)), crowd=np.zeros(len(masks), bool),
            mean_areas=np.zeros(len(masks)),
            areas=np.stack([m.reshape(T, -1).sum(-1) for m in masks]).astype(np.int64),
            rles=[encode_mask_frames(m) for m in masks],
        )  # fmt: skip

    expected = np.array(
        [[(d & g).sum() / (d | g).sum() for g in gt_masks] for d in dt_masks], dtype=np.float64
    )
    np.testing.assert_array_equal(video_iou(tracks(dt_masks), tracks(gt_masks)), expected)


def _full(value=True):
    return np.full((T, H, W), value, dtype=bool)


def test_ground_truth_track_without_any_mask_counts_as_missed():
    """A ground-truth track absent from every frame has area 0, which lies in the "all" and
    "small" ranges (bounds inclusive): it is a miss, never ignored."""
    masks = [_full()[0]] * T
    annotations = [
        {"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentations": [_rle(m) for m in masks]},
        {"id": 2, "video_id": 1, "category_id": 1, "iscrowd": 0, "segmentations": [None] * T},
    ]  # fmt: skip
    results = [{"video_id": 1, "category_id": 1, "score": 0.9,
                "segmentations": encode_mask_frames(_full())}]  # fmt: skip
    stats = evaluate_ytvis(YTVISGroundTruth(_dataset(annotations)), results)
    assert stats["AR100"] == pytest.approx(0.5) and stats["ARs"] == pytest.approx(0.5)
    # precision 1 up to recall 0.5, 0 beyond: 51 of 101 recall points
    assert stats["AP"] == pytest.approx(51 / 101) and stats["APs"] == pytest.approx(51 / 101)


@pytest.mark.parametrize(
    "area, in_ranges",
    [(128**2, ("all", "small", "medium")), (256**2, ("all", "medium", "large"))],
)
def test_area_range_bounds_are_inclusive_for_ground_truth(area, in_ranges):
    """A ground-truth track whose ``areas`` give a mean exactly on a bound belongs to both ranges:
    a perfect prediction has AP 1 there, and the other ranges have no ground truth (-1)."""
    annotations = [{"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
                    "segmentations": [_rle(_full()[0])] * T, "areas": [area] * T}]  # fmt: skip
    results = [{"video_id": 1, "category_id": 1, "score": 0.9,
                "segmentations": encode_mask_frames(_full())}]  # fmt: skip
    stats = evaluate_ytvis(YTVISGroundTruth(_dataset(annotations)), results)
    for name, key in (("all", "AP"), ("small", "APs"), ("medium", "APm"), ("large", "APl")):
        assert stats[key] == (pytest.approx(1.0) if name in in_ranges else -1), key


def test_prediction_on_an_area_bound_is_not_ignored():
    """An unmatched prediction whose mean area is exactly 128**2 is a false positive in "small"
    and in "medium" (bounds inclusive), so it lowers AP in both."""
    size = 128
    big = np.zeros((T, size, size), bool)
    big[:] = True  # area 128**2 in every frame
    small = np.zeros((T, size, size), bool)
    small[:, :4, :4] = True
    other = np.zeros((T, size, size), bool)
    other[:, 100:, 100:] = True  # 28 x 28, far from both
    dataset = {
        "videos": [{"id": 1, "height": size, "width": size, "length": T}],
        "categories": [{"id": 1, "name": "c1"}],
        "annotations": [
            {"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentations": encode_mask_frames(small), "areas": [16.0] * T},
            {"id": 2, "video_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentations": encode_mask_frames(other), "areas": [128.0**2] * T},
        ],
    }  # fmt: skip
    results = [
        {"video_id": 1, "category_id": 1, "score": 0.9, "segmentations": encode_mask_frames(big)},
        {"video_id": 1, "category_id": 1, "score": 0.5, "segmentations": encode_mask_frames(small)},
        {"video_id": 1, "category_id": 1, "score": 0.4, "segmentations": encode_mask_frames(other)},
    ]
    stats = evaluate_ytvis(YTVISGroundTruth(dataset), results)
    # small: the FP (0.9), then two TPs: the precision envelope is 2/3 at every recall point
    assert stats["APs"] == pytest.approx(2 / 3)
    # medium: the FP (0.9), then the small prediction (ignored: unmatched, outside), then the TP
    assert stats["APm"] == pytest.approx(0.5)


def test_eleven_detections_per_video_limit_ar10():
    """AR10 counts the 10 best predictions of a video only; AR100 all of them."""
    masks = []
    for i in range(11):
        m = np.zeros((T, H, W), bool)
        m[:, i, :] = True  # one row per track: disjoint
        masks.append(m)
    annotations = [
        {"id": i + 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentations": encode_mask_frames(m)}
        for i, m in enumerate(masks)
    ]  # fmt: skip
    results = [{"video_id": 1, "category_id": 1, "score": 1.0 - 0.01 * i,
                "segmentations": encode_mask_frames(m)} for i, m in enumerate(masks)]  # fmt: skip
    stats = evaluate_ytvis(YTVISGroundTruth(_dataset(annotations)), results)
    assert stats["AR1"] == pytest.approx(1 / 11)
    assert stats["AR10"] == pytest.approx(10 / 11)
    assert stats["AR100"] == pytest.approx(1.0)


def test_regular_match_is_not_replaced_by_a_better_crowd_match():
    """Once a prediction matched regular ground truth, the ignored (crowd) tracks after it are not
    tried: IoU 0.75 with the regular track, 0.89 with the crowd one."""
    regular, crowd, pred = (np.zeros((T, H, W), bool) for _ in range(3))
    regular[:, :6], crowd[:, :9], pred[:, :8] = True, True, True
    annotations = [
        {"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentations": encode_mask_frames(regular)},
        {"id": 2, "video_id": 1, "category_id": 1, "iscrowd": 1,
         "segmentations": encode_mask_frames(crowd)},
    ]  # fmt: skip
    results = [{"video_id": 1, "category_id": 1, "score": 0.9,
                "segmentations": encode_mask_frames(pred)}]  # fmt: skip
    stats = evaluate_ytvis(YTVISGroundTruth(_dataset(annotations)), results)
    # matched at the 6 thresholds 0.50..0.75, ignored (crowd) above
    assert stats["AP50"] == pytest.approx(1.0) and stats["AP75"] == pytest.approx(1.0)
    assert stats["AP"] == pytest.approx(0.6) and stats["AR100"] == pytest.approx(0.6)


def _row(r):
    mask = np.zeros((T, H, W), bool)
    mask[:, r] = True
    return mask


def test_tied_scores_keep_file_order_across_videos():
    """Predictions of equal score are taken in file order (a stable sort, as the official
    mergesort): with the true positives of a tie first, AP is 1. Enough predictions that an
    unstable sort would reorder the tie."""
    annotations, results = [], []
    for vid, rows in ((1, range(6)), (2, range(12))):
        for r in rows:
            segs = encode_mask_frames(_row(r))
            annotations.append({"id": len(annotations) + 1, "video_id": vid, "category_id": 1,
                                "iscrowd": 0, "segmentations": segs})  # fmt: skip
    for r in range(12):  # video 1: rows 0-5 true positives, rows 6-11 false positives, all 0.5
        results.append({"video_id": 1, "category_id": 1, "score": 0.5,
                        "segmentations": encode_mask_frames(_row(r))})  # fmt: skip
    for r in range(12):
        results.append({"video_id": 2, "category_id": 1, "score": 0.9,
                        "segmentations": encode_mask_frames(_row(r))})  # fmt: skip
    stats = evaluate_ytvis(YTVISGroundTruth(_dataset(annotations)), results)
    assert stats["AP"] == pytest.approx(1.0) and stats["AR100"] == pytest.approx(1.0)


def test_iou_equal_to_the_threshold_matches():
    """IoU exactly 0.5 is a match at threshold 0.5 (``>=``), and at no other threshold."""
    gt, pred = np.zeros((T, H, W), bool), np.zeros((T, H, W), bool)
    gt[:, :6], pred[:, :3] = True, True  # IoU 36 / 72 = 0.5 in every frame
    annotations = [{"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
                    "segmentations": encode_mask_frames(gt)}]  # fmt: skip
    results = [{"video_id": 1, "category_id": 1, "score": 0.9,
                "segmentations": encode_mask_frames(pred)}]  # fmt: skip
    stats = evaluate_ytvis(YTVISGroundTruth(_dataset(annotations)), results)
    assert stats["AP50"] == pytest.approx(1.0) and stats["AP"] == pytest.approx(0.1)


def test_per_category_ap():
    """AP of each category over IoU thresholds and recall points (area "all", 100 detections):
    1 for a perfect prediction, 0.1 for one matched at IoU 0.5 only, NaN without ground truth."""
    gt, half = np.zeros((T, H, W), bool), np.zeros((T, H, W), bool)
    gt[:, :6], half[:, :3] = True, True
    annotations = [
        {"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentations": encode_mask_frames(gt)},
        {"id": 2, "video_id": 2, "category_id": 2, "iscrowd": 0,
         "segmentations": encode_mask_frames(gt)},
    ]  # fmt: skip
    results = [
        {"video_id": 1, "category_id": 1, "score": 0.9, "segmentations": encode_mask_frames(gt)},
        {"video_id": 2, "category_id": 2, "score": 0.9, "segmentations": encode_mask_frames(half)},
    ]
    dataset = _dataset(annotations)
    dataset["categories"].append({"id": 3, "name": "c3"})
    per_category = evaluate_ytvis_detailed(YTVISGroundTruth(dataset), results).per_category_ap()
    assert per_category[1] == pytest.approx(1.0) and per_category[2] == pytest.approx(0.1)
    assert np.isnan(per_category[3])


# ``precision_curve = tp / (fp + tp + np.spacing(1))``: the epsilon only keeps 0 / 0 away; its
# sign (``- np.spacing(1)``) changes a precision by ~1e-16 at most: an equivalent mutant.


def test_video_iou_of_two_empty_tracks_is_zero():
    empty = VideoTracks(
        ids=np.array([1]), category_ids=np.array([1]), scores=np.array([1.0]),
        crowd=np.array([False]), mean_areas=np.array([0.0]), areas=np.zeros((1, T), np.int64),
        rles=[encode_mask_frames(np.zeros((T, H, W), bool))],
    )  # fmt: skip
    assert video_iou(empty, empty).tolist() == [[0.0]]


# In ``_match``, ``range(num_dt if num_gt else 0)``: with no ground truth the loop body matches
# nothing, and _match is never called with neither predictions nor ground truth, so a mutant of
# the 0 is equivalent.


def test_polygon_ground_truth_is_read_as_its_mask():
    """A ground-truth frame given as polygons is the merged polygon mask (not absent)."""
    square = [[2.0, 2.0, 8.0, 2.0, 8.0, 8.0, 2.0, 8.0]]  # x, y pairs
    annotations = [{"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
                    "segmentations": [square] * T}]  # fmt: skip
    gt = YTVISGroundTruth(_dataset(annotations))
    expected = mask_util.decode(mask_util.merge(mask_util.frPyObjects(square, H, W))).astype(bool)
    assert gt.tracks[1].areas.tolist() == [[int(expected.sum())] * T]
    results = [{"video_id": 1, "category_id": 1, "score": 0.9,
                "segmentations": encode_mask_frames(np.stack([expected] * T))}]  # fmt: skip
    assert evaluate_ytvis(gt, results)["AP"] == pytest.approx(1.0)


# _MAX_IOU_THRESHOLD (1 - 1e-10) is only reached by a threshold of 1, which the protocol never
# uses (the largest is 0.95): its mutants (1 + 1e-10, 2 - 1e-10) are equivalent.


# ------------------------------------------------------------------------------ 2022 split
def test_2022_ap_is_the_mean_of_the_subsets_scored_alone():
    dataset, results = _random_case(3)
    short, long = split_by_videos(dataset, [2])
    scores = evaluate_2022({"short": short, "long": long}, results)
    alone = {
        name: evaluate_ytvis(
            YTVISGroundTruth(part),
            [r for r in results if r["video_id"] in {v["id"] for v in part["videos"]}],
        )
        for name, part in (("short", short), ("long", long))
    }
    for key, value in alone["short"].items():
        assert scores[key + "_S"] == pytest.approx(value)
        assert scores[key + "_L"] == pytest.approx(alone["long"][key])
    assert scores["AP"] == pytest.approx((alone["short"]["AP"] + alone["long"]["AP"]) / 2)
    assert combined_ap({"AP_S": 0.2, "AP_L": -1.0}) == pytest.approx(0.2)
    assert combined_ap({"AP_S": -1.0, "AP_L": 0.6}) == pytest.approx(0.6)
    assert combined_ap({"AP_S": -1.0, "AP_L": -1.0}) == -1.0


def test_2022_results_may_use_a_category_of_either_subset():
    dataset, results = _random_case(3)
    short, long = split_by_videos(dataset, [2])
    long["categories"] = long["categories"] + [{"id": 3, "name": "c3"}]  # only in the long file
    extra = dict(results[-1], video_id=2, category_id=3, score=0.01)
    scores = evaluate_2022({"short": short, "long": long}, results + [extra])
    assert scores["AP_S"] == pytest.approx(
        evaluate_2022({"short": short, "long": long}, results)["AP_S"]
    )


# ``evaluate_ytvis_detailed(gt, own, check_counts=False)`` in evaluate_2022: the results were
# validated just before; ``check_counts=True`` only checks them again (equivalent mutant).

"""The YouTube-VIS metric against the official evaluation's numbers, and its edge cases."""

import copy
import json
import os

import numpy as np
import pycocotools.mask as mask_util
import pytest

from tests.conftest import FIXTURES_DIR
from video_mask2former.evaluation import (
    STAT_KEYS,
    YTVISFormatError,
    YTVISGroundTruth,
    evaluate_ytvis,
)
from video_mask2former.evaluation.results import encode_mask_frames
from video_mask2former.evaluation.ytvis_metric import VideoTracks, video_iou

CASE_DIR = os.path.join(FIXTURES_DIR, "ytvis_eval")
CASES = [1, 2, 3, 4]
H, W, T = 32, 32, 2


def _case(n, kind):
    return os.path.join(CASE_DIR, f"case{n}_{kind}.json")


@pytest.mark.parametrize("case", CASES)
def test_reproduces_official_numbers(case):
    stats = evaluate_ytvis(_case(case, "gt"), _case(case, "results"))
    with open(_case(case, "stats")) as f:
        expected = json.load(f)
    assert list(stats) == list(STAT_KEYS)
    for key in STAT_KEYS:
        assert stats[key] == pytest.approx(expected[key], abs=1e-4), key


def _box_masks(boxes):
    """(T, H, W) bool masks with one box per frame (None -> empty frame)."""
    masks = np.zeros((len(boxes), H, W), dtype=bool)
    for t, box in enumerate(boxes):
        if box is not None:
            y0, x0, y1, x1 = box
            masks[t, y0:y1, x0:x1] = True
    return masks


def _gt_dataset(tracks):
    """tracks: list of (video_id, category_id, masks (T, H, W), iscrowd)."""
    annotations = []
    for i, (vid, cat, masks, crowd) in enumerate(tracks):
        segs, areas = [], []
        for m in masks:
            if m.any():
                rle = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
                segs.append({"size": [H, W], "counts": rle["counts"].decode()})
                areas.append(int(m.sum()))
            else:
                segs.append(None)
                areas.append(None)
        annotations.append(
            {"id": i + 1, "video_id": vid, "category_id": cat, "iscrowd": crowd,
             "segmentations": segs, "areas": areas}
        )  # fmt: skip
    return {
        "videos": [{"id": v, "height": H, "width": W, "length": T} for v in (1, 2)],
        "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)],
        "annotations": annotations,
    }


def _result(vid, cat, score, masks):
    return {"video_id": vid, "category_id": cat, "score": score,
            "segmentations": encode_mask_frames(masks)}  # fmt: skip


A = _box_masks([(2, 2, 12, 12), (3, 3, 13, 13)])
B = _box_masks([(16, 16, 30, 30), None])  # absent in frame 1


def test_perfect_prediction_scores_one_and_missing_category_is_skipped():
    gt = YTVISGroundTruth(_gt_dataset([(1, 1, A, 0), (2, 2, B, 0)]))
    stats = evaluate_ytvis(gt, [_result(1, 1, 0.9, A), _result(2, 2, 0.8, B)])
    # category 3 has no ground truth: it is left out of the mean instead of counting as 0
    for key in ("AP", "AP50", "AP75", "APs", "AR1", "AR10", "AR100", "ARs"):
        assert stats[key] == pytest.approx(1.0), key
    for key in ("APm", "APl", "ARm", "ARl"):  # all ground truth is small
        assert stats[key] == -1


def test_no_predictions():
    gt = YTVISGroundTruth(_gt_dataset([(1, 1, A, 0), (2, 2, B, 0)]))
    stats = evaluate_ytvis(gt, [])
    assert stats["AP"] == 0 and stats["AR100"] == 0 and stats["APs"] == 0
    assert stats["APm"] == -1 and stats["ARl"] == -1


def test_false_positive_of_a_category_without_ground_truth_lowers_nothing_else():
    gt = YTVISGroundTruth(_gt_dataset([(1, 1, A, 0)]))
    results = [_result(1, 1, 0.5, A), _result(1, 3, 0.9, A)]
    assert evaluate_ytvis(gt, results)["AP"] == pytest.approx(1.0)
    # the same false positive in the category with ground truth does lower AP
    results = [_result(1, 1, 0.5, A), _result(1, 1, 0.9, B)]
    assert evaluate_ytvis(gt, results)["AP"] < 1.0


def test_crowd_ground_truth_is_ignored():
    gt = YTVISGroundTruth(_gt_dataset([(1, 1, A, 0), (1, 1, B, 1)]))
    # a prediction on the crowd region is neither a true nor a false positive
    stats = evaluate_ytvis(gt, [_result(1, 1, 0.9, B), _result(1, 1, 0.5, A)])
    assert stats["AP"] == pytest.approx(1.0) and stats["AR100"] == pytest.approx(1.0)
    only_crowd = YTVISGroundTruth(_gt_dataset([(1, 1, B, 1)]))
    assert evaluate_ytvis(only_crowd, [_result(1, 1, 0.9, B)])["AP"] == -1


def test_video_iou_sums_over_frames_with_empty_frames():
    gt = YTVISGroundTruth(_gt_dataset([(1, 1, B, 0)]))
    gts = gt.tracks[1]
    # prediction: B's frame 0 shifted by 2 columns, plus a mask in frame 1 where B is absent
    pred = _box_masks([(16, 18, 30, 32), (0, 0, 4, 4)])
    dts = VideoTracks(
        ids=np.array([1]), category_ids=np.array([1]), scores=np.array([1.0]),
        crowd=np.array([False]), mean_areas=np.array([0.0]),
        areas=pred.reshape(1, T, -1).sum(-1).astype(np.int64),
        rles=[encode_mask_frames(pred)],
    )  # fmt: skip
    inter = (pred & B).sum()
    union = (pred | B).sum()
    assert video_iou(dts, gts)[0, 0] == pytest.approx(inter / union)
    assert gts.mean_areas[0] == 14 * 14  # the absent frame does not count


def test_area_ranges_use_the_mean_area_over_present_frames():
    # 13x13 in frame 0 only: the mean is over the one present frame
    gt = YTVISGroundTruth(_gt_dataset([(1, 1, _box_masks([(0, 0, 13, 13), None]), 0)]))
    assert gt.tracks[1].mean_areas[0] == 169


def test_ground_truth_with_a_wrong_frame_count_is_an_error():
    data = json.load(open(_case(1, "gt")))
    broken = copy.deepcopy(data)
    broken["annotations"][0]["segmentations"] = broken["annotations"][0]["segmentations"][:-1]
    with pytest.raises(ValueError, match="video"):
        YTVISGroundTruth(broken)


def _set_counts(counts):
    def edit(d):
        d["annotations"][0]["segmentations"][0]["counts"] = counts

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        # RLEs that do not cover H x W: pycocotools would read past them (garbage areas and AP)
        (_set_counts("0"), r"annotation 1 of video 1, frame 0: RLE 'counts' sums to 0 pixels, "
                           r"expected H x W = 32 x 32 = 1024"),
        (_set_counts("!!garbage"), r"annotation 1 of video 1, frame 0: RLE 'counts' is not a valid "
                                   r"compressed RLE string: character '!' at position 0"),
        (_set_counts([1025, -1]), r"annotation 1 of video 1, frame 0: RLE 'counts' has a negative"),
        # wrong JSON types
        (lambda d: d.update(videos={"1": d["videos"][0]}),
         r"expected a 'videos' list, got an object"),
        (lambda d: d["annotations"][0].update(video_id=[1]),
         r"annotation 1: 'video_id' is a list \(\[1\]\), expected an integer"),
        (lambda d: d["annotations"][0].update(segmentations=None),
         r"annotation 1 of video 1: 'segmentations' is null, expected a list"),
        # problems that were already errors
        (lambda d: d.pop("videos"), r"expected a 'videos' list, got nothing"),
        (lambda d: d["annotations"][0].update(video_id=9),
         r"annotation 1 refers to video 9, which is not in 'videos'"),
        (lambda d: d["annotations"][0].update(category_id=7),
         r"annotation 1 of video 1 has category_id 7, which is not in 'categories'"),
        (lambda d: d["annotations"][0]["segmentations"].pop(),
         r"annotation 1 of video 1: 'segmentations' has 1 entries, expected a list with one entry "
         r"per frame \(2"),
    ],
)  # fmt: skip
def test_bad_ground_truth_names_file_annotation_and_frame(tmp_path, edit, message):
    data = _gt_dataset([(1, 1, A, 0), (2, 2, B, 0)])
    YTVISGroundTruth(data)  # valid before the edit
    edit(data)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(data))
    with pytest.raises(YTVISFormatError, match=message) as info:
        YTVISGroundTruth.from_json(str(path))
    assert str(info.value).startswith(str(path))


def test_truncated_ground_truth_file(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(_gt_dataset([(1, 1, A, 0)]))[:-20])
    with pytest.raises(YTVISFormatError, match=r"gt.json is not valid JSON"):
        YTVISGroundTruth.from_json(str(path))


def test_null_annotations_is_a_test_split():
    data = _gt_dataset([(1, 1, A, 0)])
    data["annotations"] = None
    gt = YTVISGroundTruth(data)
    assert not gt.has_annotations and gt.tracks == {}

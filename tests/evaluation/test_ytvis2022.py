"""YouTube-VIS 2022 scoring: short and long videos apart, on a synthetic 2022-layout split."""

import json

import pytest

from video_mask2former.data.synthetic import generate_synthetic_ytvis
from video_mask2former.evaluation import YTVISFormatError, YTVISGroundTruth, evaluate_ytvis
from video_mask2former.evaluation.ytvis2022 import (
    GT_FILE_NAMES,
    combine_2022_split,
    evaluate_2022,
    format_2022_table,
)


@pytest.fixture(scope="module")
def split_2022(tmp_path_factory):
    """A 2022-layout folder: 3 short videos (4 frames) and 2 long ones (12 frames), 32x40."""
    short, _ = generate_synthetic_ytvis(num_videos=3, num_frames=4, height=32, width=40, seed=0)
    long, _ = generate_synthetic_ytvis(num_videos=2, num_frames=12, height=32, width=40, seed=1)
    files = combine_2022_split(short, long)
    folder = tmp_path_factory.mktemp("ytvis_2022")
    for name, dataset in files.items():
        (folder / name).write_text(json.dumps(dataset))
    return str(folder), files


def _perfect(dataset):
    """Every ground-truth track as a prediction of score 1."""
    return [
        {
            "video_id": a["video_id"],
            "category_id": a["category_id"],
            "score": 1.0,
            "segmentations": a["segmentations"],
        }
        for a in dataset["annotations"]
    ]


def test_layout_keeps_subsets_apart(split_2022):
    _, files = split_2022
    short_ids = {v["id"] for v in files["gt_short.json"]["videos"]}
    long_ids = {v["id"] for v in files["gt_long.json"]["videos"]}
    assert short_ids == {1, 2, 3} and long_ids == {4, 5}
    assert {a["video_id"] for a in files["gt_long.json"]["annotations"]} <= long_ids
    assert "annotations" not in files["valid.json"]


def test_short_and_long_are_scored_separately(split_2022):
    folder, files = split_2022
    short_only = _perfect(files["gt_short.json"])
    scores = evaluate_2022(folder, short_only)
    assert scores["AP_S"] == 1.0 and scores["AP_L"] == 0.0 and scores["AP"] == 0.5
    everything = _perfect(files["gt.json"])
    scores = evaluate_2022(folder, everything)
    assert scores["AP_S"] == scores["AP_L"] == scores["AP"] == 1.0
    table = format_2022_table(scores)
    assert "short" in table and "long" in table and "AP (mean of AP_S and AP_L): 1.000" in table


def test_predictions_of_the_other_subset_do_not_count(split_2022):
    """AP_S equals the metric on gt_short.json with the short videos' predictions only, whatever
    is predicted on the long videos (and likewise for AP_L)."""
    folder, files = split_2022
    short = _perfect(files["gt_short.json"])
    short[0] = dict(short[0], category_id=short[0]["category_id"] % 3 + 1)  # one wrong class
    long = [dict(e, score=0.5) for e in _perfect(files["gt_long.json"])]
    noise = [dict(e, score=0.9, segmentations=[None] * 12) for e in long]  # empty: misses
    scores = evaluate_2022(folder, short + long + noise)
    short_gt, long_gt = (YTVISGroundTruth(files[f"gt_{n}.json"]) for n in ("short", "long"))
    assert scores["AP_S"] == pytest.approx(evaluate_ytvis(short_gt, short)["AP"])
    assert scores["AP_L"] == pytest.approx(evaluate_ytvis(long_gt, long + noise)["AP"])
    assert 0 < scores["AP_S"] < 1 and 0 < scores["AP_L"] < 1


def test_one_ground_truth_with_long_video_ids(split_2022, tmp_path):
    folder, files = split_2022
    results = _perfect(files["gt_short.json"])[1:] + _perfect(files["gt_long.json"])
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    expected = evaluate_2022(folder, results)
    gt_json = f"{folder}/gt.json"
    assert evaluate_2022(gt_json, str(path), long_video_ids=[4, 5]) == expected
    assert evaluate_2022(files["gt.json"], results, long_video_ids={4, 5}) == expected


def test_bad_inputs_name_what_is_wrong(split_2022, tmp_path):
    folder, files = split_2022
    stray = dict(_perfect(files["gt_short.json"])[0], video_id=99)
    with pytest.raises(YTVISFormatError, match="video id 99 is not in the ground truth"):
        evaluate_2022(folder, [stray])
    (tmp_path / GT_FILE_NAMES["short"]).write_text(json.dumps(files["gt_short.json"]))
    with pytest.raises(YTVISFormatError, match="gt_long.json"):
        evaluate_2022(str(tmp_path), [])
    with pytest.raises(YTVISFormatError, match=r"videos \[1, 2, 3\] are in both"):
        evaluate_2022({"short": files["gt_short.json"], "long": files["gt.json"]}, [])
    with pytest.raises(YTVISFormatError, match="long ground truth has no 'annotations'"):
        evaluate_2022({"short": files["gt_short.json"], "long": files["valid.json"]}, [])


def _without_instances(dataset):
    return dict(dataset, annotations=[])


def test_subset_without_instances_is_not_averaged_in(split_2022):
    """No long-video instance: AP_L is undefined (-1), and AP is AP_S alone, never the mean of
    AP_S and the -1 sentinel; the table says so."""
    _, files = split_2022
    gt = {"short": files["gt_short.json"], "long": _without_instances(files["gt_long.json"])}
    short_only = _perfect(files["gt_short.json"])
    short_only[0] = dict(short_only[0], category_id=short_only[0]["category_id"] % 3 + 1)
    scores = evaluate_2022(gt, short_only)
    assert 0 < scores["AP_S"] < 1 and scores["AP_L"] == -1
    assert scores["AP"] == scores["AP_S"]
    table = format_2022_table(scores)
    assert "AP (short videos only: the long videos have no ground-truth instance" in table
    assert f"{scores['AP_S']:.3f}" in table.splitlines()[-1] and "n/a" in table
    gt["short"] = _without_instances(files["gt_short.json"])
    scores = evaluate_2022(gt, [])
    assert scores["AP"] == scores["AP_S"] == scores["AP_L"] == -1
    assert format_2022_table(scores).endswith("AP: n/a (no ground-truth instance in either subset)")

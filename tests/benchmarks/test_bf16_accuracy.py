"""The bf16-vs-float32 accuracy benchmark: its top-k matching on the tiny model (a changed label,
mask or score is reported), the raw-output differences, the subset of a YouTube-VIS file and the
evaluation command (detectron2 parts skip without it)."""

import copy
import json

import pytest
import torch

from benchmarks import bf16_accuracy
from benchmarks.bf16_accuracy import (
    compare_precisions,
    compare_topk,
    raw_output_differences,
    with_queries,
)
from tests.conftest import requires_detectron2
from tests.modeling.tiny_video_model import build_tiny_model, random_video


@pytest.fixture(scope="module")
def comparison():
    model = build_tiny_model().eval()
    video = {"image": random_video(2, 32, 32), "height": 32, "width": 32}
    return compare_precisions(model, video)


def test_float32_against_itself_matches_exactly(comparison):
    fp32 = comparison["results"]["fp32"]
    same = compare_topk(fp32, fp32)
    assert same["all_matched"] and same["same_labels_in_order"] and same["matched"] == 10
    assert same["max_abs_score_diff"] == 0.0 and same["min_iou"] == 1.0


def test_bf16_ran_in_bf16_and_is_compared_pair_by_pair(comparison):
    """The model's slow-precision guard is lifted for the call (bf16 is emulated on most CPUs):
    the raw outputs differ, and the pairs found in both top-k are measured."""
    raw, topk = comparison["raw"], comparison["topk"]
    assert 0 < raw["pred_logits_max_abs_diff"] < 1 and 0 < raw["pred_masks_max_abs_diff"] < 1
    assert topk["matched"] >= 8 and 0 < topk["max_abs_score_diff"] < 0.1
    bf16 = comparison["results"]["bf16"]
    for row in topk["rows"]:
        if row["iou"] is not None:
            j = row["candidate_rank"]
            assert row["candidate_score"] == bf16["pred_scores"][j]
            assert (row["query"], row["label"]) == (bf16["pred_queries"][j], bf16["pred_labels"][j])
        else:  # a pair that left the top-k: its bf16 score is below the bf16 top-k's
            assert row["candidate_score"] <= bf16["pred_scores"][-1]


def test_queries_are_recovered_from_the_logits(comparison):
    fp32 = comparison["results"]["fp32"]
    pairs = list(zip(fp32["pred_queries"], fp32["pred_labels"]))
    assert len(set(pairs)) == len(pairs) == 10
    with pytest.raises(ValueError, match="the logits' top-k is not the result's"):
        with_queries(dict(fp32), torch.zeros(5, 4))


def test_a_changed_label_mask_or_score_is_reported(comparison):
    fp32 = comparison["results"]["fp32"]
    relabelled = copy.deepcopy(fp32)
    relabelled["pred_labels"][0] = 7  # no such class
    result = compare_topk(fp32, relabelled)
    assert not result["all_matched"] and not result["same_labels"] and result["matched"] == 9
    query, label = fp32["pred_queries"][0], fp32["pred_labels"][0]
    assert result["unmatched_reference"][0][:3] == (0, query, label)
    assert result["unmatched_candidate"][0][:3] == (0, query, 7)

    requeried = copy.deepcopy(fp32)  # the same label from another query
    requeried["pred_queries"][1] = 99
    result = compare_topk(fp32, requeried)
    assert not result["all_matched"] and result["same_labels_in_order"]

    inverted = copy.deepcopy(fp32)
    inverted["pred_masks"][3] = ~inverted["pred_masks"][3]
    result = compare_topk(fp32, inverted)
    assert not result["all_matched"] and result["low_iou"] == [3] and result["min_iou"] < 0.5

    rescored = copy.deepcopy(fp32)
    rescored["pred_scores"][2] -= 0.25
    result = compare_topk(fp32, rescored)
    assert result["all_matched"] and result["max_abs_score_diff"] == pytest.approx(0.25)
    assert result["rows"][2]["score_diff"] == pytest.approx(-0.25)


def test_compare_topk_rejects_inconsistent_results(comparison):
    fp32 = comparison["results"]["fp32"]
    with pytest.raises(ValueError, match="candidate's scores, labels, masks and queries differ"):
        compare_topk(fp32, dict(fp32, pred_labels=[0]))
    repeated = dict(fp32, pred_queries=[0] * 10, pred_labels=[1] * 10)
    with pytest.raises(ValueError, match="the reference repeats a"):
        compare_topk(repeated, fp32)


def test_raw_output_differences():
    logits, masks = torch.zeros(1, 2, 3), torch.tensor([[[[[1.0, -1.0]]]]])
    diffs = raw_output_differences(
        {"pred_logits": logits, "pred_masks": masks},
        {"pred_logits": logits + torch.tensor([0.5, 0.0, 0.0]), "pred_masks": -masks},
    )
    assert diffs["pred_logits_max_abs_diff"] == 0.5 and diffs["pred_masks_max_abs_diff"] == 2.0
    assert diffs["mask_sign_flip_share"] == 1.0 and diffs["probability_max_abs_diff"] > 0


def test_subset_keeps_the_first_videos_and_their_annotations(tmp_path):
    gt = {
        "videos": [{"id": i} for i in (5, 6, 7)],
        "annotations": [{"id": 1, "video_id": 5}, {"id": 2, "video_id": 7}],
        "categories": [{"id": 1, "name": "a"}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    out = tmp_path / "subset.json"
    assert bf16_accuracy.write_subset(str(tmp_path / "gt.json"), 2, str(out)) == 2
    subset = json.loads(out.read_text())
    assert [v["id"] for v in subset["videos"]] == [5, 6]
    assert subset["annotations"] == [{"id": 1, "video_id": 5}]
    assert subset["categories"] == gt["categories"]
    assert bf16_accuracy.write_subset(str(tmp_path / "gt.json"), 0, str(out)) == 3


def test_results_files_are_compared_video_by_video(tmp_path):
    def write(name, entries):
        rows = [{"video_id": v, "score": s, "category_id": c, "segmentations": []}
                for v, s, c in entries]  # fmt: skip
        (tmp_path / name).write_text(json.dumps(rows))
        return str(tmp_path / name)

    fp32 = write("a.json", [(1, 0.9, 1), (1, 0.5, 2), (2, 0.8, 3), (2, 0.7, 1)])
    bf16 = write("b.json", [(1, 0.85, 1), (1, 0.5, 2), (2, 0.6, 3), (2, 0.7, 2)])
    agreement = bf16_accuracy.compare_results_files(fp32, bf16)
    assert agreement["videos"] == 2 and agreement["same_labels_in_order"] == 1
    assert agreement["same_labels"] == 1  # video 2: categories {3, 1} against {2, 3}
    assert agreement["max_abs_score_diff"] == pytest.approx(0.05)  # video 2's ranks differ


def test_ap_part_needs_weights():
    with pytest.raises(SystemExit):
        bf16_accuracy.parse_args(["--parts", "ap"])


@requires_detectron2
@pytest.mark.parametrize("precision", bf16_accuracy.PRECISIONS)
def test_eval_command_is_an_eval_only_run_of_the_split_in_that_precision(precision, tmp_path):
    """The evaluation process's command line parses, and its config evaluates the written split
    with the given weights and precision."""
    import train_net_video
    from video_mask2former.d2.config import get_video_cfg

    args = bf16_accuracy.parse_args(["--parts", "parity", "--weights", "w.pth"])
    command = bf16_accuracy.eval_command(args, precision, "gt.json", str(tmp_path))
    parsed = train_net_video.argument_parser().parse_args(command[2:])
    assert parsed.eval_only and parsed.dataset == [[bf16_accuracy.EVAL_DATASET, "gt.json",
                                                    args.image_root]]  # fmt: skip
    cfg = get_video_cfg(parsed.config_file, parsed.opts)
    assert cfg.MODEL.INFERENCE_PRECISION == precision and cfg.MODEL.WEIGHTS == "w.pth"
    assert cfg.DATASETS.TEST == (bf16_accuracy.EVAL_DATASET,) and cfg.OUTPUT_DIR == str(tmp_path)

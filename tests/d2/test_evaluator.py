"""YTVISEvaluator (detectron2 adapter): writes results.json + zip and reports AP x100."""

import json
import os
import zipfile

import numpy as np
import pycocotools.mask as mask_util
import torch

from tests.conftest import FIXTURES_DIR, requires_detectron2

CASE_GT = os.path.join(FIXTURES_DIR, "ytvis_eval", "case1_gt.json")


def _perfect_outputs(dataset):
    """Per video, the official eval output holding every ground-truth track (score 1)."""
    by_video = {v["id"]: (v, []) for v in dataset["videos"]}
    for ann in dataset["annotations"]:
        video, tracks = by_video[ann["video_id"]]
        frames = []
        for seg in ann["segmentations"]:
            if seg is None:
                frames.append(np.zeros((video["height"], video["width"]), dtype=bool))
            else:
                rle = mask_util.frPyObjects(seg, *seg["size"])
                frames.append(mask_util.decode(rle).astype(bool))
        tracks.append((ann["category_id"] - 1, torch.from_numpy(np.stack(frames))))
    for vid, (video, tracks) in by_video.items():
        yield [{"video_id": vid}], {
            "image_size": (video["height"], video["width"]),
            "pred_scores": [1.0] * len(tracks),
            "pred_labels": [label for label, _ in tracks],
            "pred_masks": [masks for _, masks in tracks],
        }


@requires_detectron2
def test_evaluator_writes_results_and_scores_perfect_predictions(tmp_path, caplog):
    from detectron2.data import MetadataCatalog

    from video_mask2former.d2.evaluator import YTVISEvaluator

    with open(CASE_GT) as f:
        dataset = json.load(f)
    name = "ytvis_eval_case1_test_evaluator"
    cat_ids = sorted(c["id"] for c in dataset["categories"])
    MetadataCatalog.get(name).set(
        json_file=CASE_GT,
        thing_classes=[f"c{c}" for c in cat_ids],
        thing_dataset_id_to_contiguous_id={c: i for i, c in enumerate(cat_ids)},
    )
    evaluator = YTVISEvaluator(name, output_dir=str(tmp_path))
    evaluator.reset()
    for inputs, outputs in _perfect_outputs(dataset):
        evaluator.process(inputs, outputs)
    with caplog.at_level("INFO", logger="video_mask2former"):
        scores = evaluator.evaluate()["segm"]
    assert scores["AP"] == 100.0 and scores["AR100"] == 100.0
    assert np.isnan(scores["APl"])  # no large ground truth in this case
    table = next(r.getMessage() for r in caplog.records if "Evaluation results" in r.getMessage())
    header = [cell.strip() for cell in table.splitlines()[1].strip("|").split("|")]
    assert header == ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10"]
    assert "100.000" in table and "nan" in table
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results) == len(dataset["annotations"])
    assert {r["category_id"] for r in results} <= set(cat_ids)
    with zipfile.ZipFile(tmp_path / "results.zip") as zf:
        assert zf.namelist() == ["results.json"]

"""YouTube-VIS 2022 in the detectron2 layer: built-in splits and the evaluator's AP_S / AP_L."""

import json

import numpy as np
import pycocotools.mask as mask_util
import torch

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2


def test_builtin_2022_split_names_its_short_and_long_ground_truth():
    from detectron2.data import MetadataCatalog

    import video_mask2former  # noqa: F401  (registration)

    subsets = MetadataCatalog.get("ytvis_2022_val").subset_json_files
    assert sorted(subsets) == ["long", "short"]
    assert subsets["long"].endswith("ytvis_2022/gt_long.json")
    assert MetadataCatalog.get("ytvis_2022_val_long").json_file == subsets["long"]
    assert len(MetadataCatalog.get("ytvis_2022_val").thing_classes) == 40


def _outputs(dataset, video_ids):
    """Per video of ``video_ids``, the eval output holding its ground-truth tracks (score 1)."""
    videos = {v["id"]: v for v in dataset["videos"]}
    for vid in video_ids:
        video, labels, masks = videos[vid], [], []
        for ann in (a for a in dataset["annotations"] if a["video_id"] == vid):
            frames = [
                (
                    mask_util.decode(s).astype(bool)
                    if s is not None
                    else np.zeros((video["height"], video["width"]), bool)
                )
                for s in ann["segmentations"]
            ]
            labels.append(ann["category_id"] - 1)
            masks.append(torch.from_numpy(np.stack(frames)))
        yield [{"video_id": vid}], {
            "image_size": (video["height"], video["width"]),
            "pred_scores": [1.0] * len(labels),
            "pred_labels": labels,
            "pred_masks": masks,
        }


def test_evaluator_reports_short_and_long_ap(tmp_path):
    from detectron2.data import MetadataCatalog

    from video_mask2former.d2.evaluator import YTVISEvaluator
    from video_mask2former.data.builtin_meta import metadata_for
    from video_mask2former.data.synthetic import generate_synthetic_ytvis
    from video_mask2former.evaluation.ytvis2022 import combine_2022_split

    short, _ = generate_synthetic_ytvis(num_videos=2, num_frames=3, height=24, width=32, seed=0)
    long, _ = generate_synthetic_ytvis(num_videos=2, num_frames=9, height=24, width=32, seed=1)
    files = combine_2022_split(short, long)
    for name, dataset in files.items():
        (tmp_path / name).write_text(json.dumps(dataset))
    name = "ytvis_2022_layout_test_evaluator"
    MetadataCatalog.get(name).set(
        json_file=str(tmp_path / "valid.json"),  # no annotations: scored through the subsets
        subset_json_files={s: str(tmp_path / f"gt_{s}.json") for s in ("short", "long")},
        **metadata_for("ytvis_synthetic"),
    )
    evaluator = YTVISEvaluator(name, distributed=False, output_dir=str(tmp_path / "out"))
    evaluator.reset()
    for inputs, outputs in _outputs(files["gt.json"], [1, 2, 3]):  # long video 4 missed
        evaluator.process(inputs, outputs)
    segm = evaluator.evaluate()["segm"]
    assert segm["AP_S"] == 100.0 and 0.0 < segm["AP_L"] < 100.0
    assert segm["AP"] == (segm["AP_S"] + segm["AP_L"]) / 2
    assert (tmp_path / "out" / "results.zip").exists()

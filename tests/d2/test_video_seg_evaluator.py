"""VideoSegEvaluator end to end: the tiny model through detectron2's ``inference_on_dataset`` on
tiny synthetic VIPSeg / VSPW-layout splits (prediction files written, metrics with the expected
keys), the ground truth fed back as predictions (VPQ and mIoU 100: the frame names, class ->
category map and folders are right), a split without ground truth, and the task checks.
"""

import json
import math
import os

import numpy as np
import pytest
import torch

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2


@pytest.fixture(scope="module")
def tiny_video_seg(tmp_path_factory):
    from tests.d2.video_seg_helpers import write_tiny_video_seg

    return write_tiny_video_seg(tmp_path_factory.mktemp("video_seg_eval"))


def _test_loader(name):
    from detectron2.data import DatasetCatalog, build_detection_test_loader

    from video_mask2former.d2.mapper import VideoSegDatasetMapper
    from video_mask2former.data.augmentation import build_clip_augmentation

    mapper = VideoSegDatasetMapper(
        is_train=False,
        augmentations=build_clip_augmentation(is_train=False, min_size_test=32),
        num_classes=6,
    )
    return build_detection_test_loader(dataset=DatasetCatalog.get(name), mapper=mapper)


def _tiny_model(kind):
    from tests.modeling.tiny_video_model import build_tiny_model
    from video_mask2former.inference.segment_windows import SegmentationTask

    model = build_tiny_model().eval()
    # K = 3: the tiny model predicts classes 0..2 (the synthetic stuff classes) only
    model.segmentation_task = SegmentationTask(
        kind, thing_classes=(), object_mask_threshold=0.0, overlap_threshold=0.0
    )
    return model


def _evaluator(name, output_dir, **kwargs):
    from video_mask2former.d2.video_seg_evaluator import VideoSegEvaluator

    return VideoSegEvaluator(
        name, str(output_dir), distributed=False, vpq_window_sizes=(1, 2), workers=1, **kwargs
    )


def test_panoptic_end_to_end(tiny_video_seg, tmp_path):
    from detectron2.evaluation import inference_on_dataset

    name = tiny_video_seg["vps_val"]
    results = inference_on_dataset(
        _tiny_model("panoptic"), _test_loader(name), _evaluator(name, tmp_path)
    )
    scores = results["panoptic_seg"]
    for key in ("VPQ", "VPQ_thing", "VPQ_stuff", "VPQ@1", "VPQ@2", "STQ", "AQ", "SQ"):
        assert key in scores and isinstance(scores[key], float)
    assert 0.0 <= scores["VPQ"] <= 100.0
    with open(tmp_path / "pred.json") as f:
        pred = json.load(f)
    assert sorted(v["video_id"] for v in pred["annotations"]) == ["val_000", "val_001"]
    for video in pred["annotations"]:
        assert [f["file_name"] for f in video["annotations"]] == [
            "00000.png",
            "00001.png",
            "00002.png",
        ]
        for frame in video["annotations"]:
            assert (tmp_path / "pan_pred" / video["video_id"] / frame["file_name"]).is_file()
            # dataset category ids of the classes 0..2 (the synthetic ids are 0..5)
            assert {s["category_id"] for s in frame["segments_info"]} <= {0, 1, 2}


def test_semantic_end_to_end(tiny_video_seg, tmp_path):
    from detectron2.evaluation import inference_on_dataset

    name = tiny_video_seg["vss_val"]
    results = inference_on_dataset(
        _tiny_model("semantic"), _test_loader(name), _evaluator(name, tmp_path)
    )
    scores = results["sem_seg"]
    assert 0.0 <= scores["mIoU"] <= 100.0
    assert math.isnan(scores["mVC8"]) and math.isnan(scores["mVC16"])  # 3-frame videos
    assert "IoU-sky" in scores and all(isinstance(v, float) for v in scores.values())
    for video in ("val_000", "val_001"):
        names = sorted(os.listdir(tmp_path / "sem_pred" / video))
        assert names == ["00000000.png", "00000001.png", "00000002.png"]


def _ground_truth_as_prediction(kind, record):
    """The model output that reproduces the ground truth of ``record``."""
    from video_mask2former.data.segment_targets import semantic_frame_segments
    from video_mask2former.data.vps import read_vps_frame
    from video_mask2former.data.vss import read_vss_label

    if kind == "vps":
        maps = [read_vps_frame(record, t) for t in range(record["length"])]
        infos = [
            [{"id": s["id"], "category_id": s["category_id"]} for s in segments]
            for segments in record["segments_info"]
        ]
        return {"panoptic_seg": torch.from_numpy(np.stack(maps)), "segments_info": infos}
    labels = [read_vss_label(p, num_classes=6) for p in record["sem_seg_file_names"]]
    assert semantic_frame_segments(labels[0])[1]  # the frames have labelled pixels
    # unlabelled pixels (255) are ignored by the metric: predict class 0 there
    sem = np.stack([np.where(lab == 255, 0, lab) for lab in labels]).astype(np.int64)
    return {"sem_seg": torch.from_numpy(sem)}


@pytest.mark.parametrize(
    "kind, key, metric", [("vps", "panoptic_seg", "VPQ"), ("vss", "sem_seg", "mIoU")]
)
def test_ground_truth_scores_100(tiny_video_seg, tmp_path, kind, key, metric):
    from detectron2.data import DatasetCatalog

    name = tiny_video_seg[f"{kind}_val"]
    evaluator = _evaluator(name, tmp_path)
    evaluator.reset()
    for record in DatasetCatalog.get(name):
        video = {"video_id": record["video_id"], "file_names": record["file_names"]}
        evaluator.process([video], _ground_truth_as_prediction(kind, record))
    scores = evaluator.evaluate()[key]
    assert scores[metric] == pytest.approx(100.0)


def test_split_without_ground_truth_is_written_not_scored(tiny_video_seg, tmp_path):
    from detectron2.data import DatasetCatalog

    from video_mask2former.d2 import register_vss_video
    from video_mask2former.data.builtin_meta import metadata_for

    root = os.path.join(tiny_video_seg["root"], "vss_synthetic")
    name = tiny_video_seg["vss_val"] + "_test"
    register_vss_video(
        name, root, os.path.join(root, "val.txt"), metadata_for("vss_synthetic_val"),
        annotated=False,
    )  # fmt: skip
    evaluator = _evaluator(name, tmp_path)
    record = DatasetCatalog.get(name)[0]
    video = {"video_id": record["video_id"], "file_names": record["file_names"]}
    evaluator.process([video], {"sem_seg": torch.zeros((3, 32, 40), dtype=torch.int64)})
    assert evaluator.evaluate() == {}
    assert len(os.listdir(tmp_path / "sem_pred" / record["video_id"])) == 3


def test_output_of_another_task_is_a_config_error(tiny_video_seg, tmp_path):
    from video_mask2former.d2.config import ConfigError

    evaluator = _evaluator(tiny_video_seg["vps_val"], tmp_path)
    video = {"video_id": "val_000", "file_names": ["a.jpg"]}
    with pytest.raises(ConfigError, match="set MODEL.MASK_FORMER.TEST.PANOPTIC_ON True"):
        evaluator.process([video], {"sem_seg": torch.zeros((1, 4, 4), dtype=torch.int64)})


@pytest.mark.parametrize(
    "task, dataset, text",
    [("instance", "vps_synthetic_val", "Set MODEL.MASK_FORMER.TEST.PANOPTIC_ON True"),
     ("panoptic", "vss_synthetic_val", "Set MODEL.MASK_FORMER.TEST.SEMANTIC_ON True"),
     ("semantic", "ytvis_synthetic_val", "Set MODEL.MASK_FORMER.TEST.INSTANCE_ON True"),
     ("panoptic", "vps_synthetic_val", None)],
)  # fmt: skip
def test_task_must_be_the_dataset_task(task, dataset, text):
    import video_mask2former.d2  # noqa: F401
    from video_mask2former.d2.config import ConfigError
    from video_mask2former.d2.video_seg_evaluator import check_task_for_dataset

    if text is None:
        check_task_for_dataset(task, dataset)
        return
    with pytest.raises(ConfigError, match=text):
        check_task_for_dataset(task, dataset)


def test_build_inference_model_has_the_config_task():
    from tests.d2.helpers import CONFIG_DIR, video_cfg
    from video_mask2former.d2 import build_inference_model

    config = os.path.join(
        CONFIG_DIR, "quick_schedules", "video_maskformer2_R18_vss_synthetic_smoke.yaml"
    )
    model = build_inference_model(video_cfg(config), random_weights=True)
    assert model.segmentation_task.kind == "semantic"

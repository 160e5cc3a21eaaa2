"""Prediction writers: what they write reads back through the scorers' readers."""

import numpy as np
import pytest
import torch

from video_mask2former.data.vps import load_vps_predictions, read_id_png
from video_mask2former.data.vss import read_vss_prediction
from video_mask2former.evaluation.video_seg_predictions import (
    VpsPredictionWriter,
    write_vss_prediction,
)


def test_panoptic_frames_and_json_round_trip(tmp_path):
    writer = VpsPredictionWriter(str(tmp_path), class_to_category=[10, 20, 30])
    seg0 = torch.tensor([[0, 1, 1], [300, 300, 1]], dtype=torch.int32)
    seg1 = np.array([[1, 1, 1], [0, 0, 0]])
    info = [
        {"id": 1, "category_id": 0},
        {"id": 300, "category_id": 2},
        {"id": 7, "category_id": 1},  # listed but absent: dropped
    ]
    writer.write_frame("v1", "00001.jpg", seg0, info)
    writer.write_frame("v1", "00002.jpg", seg1, info)
    json_file = writer.close()
    assert np.array_equal(read_id_png(str(tmp_path / "pan_pred" / "v1" / "00001.png")), seg0)
    videos = load_vps_predictions(json_file)
    frames = videos["v1"].frames
    assert [f.file_name for f in frames] == ["00001.png", "00002.png"]
    assert {s.id: s.category_id for s in frames[0].segments.values()} == {1: 10, 300: 30}
    assert {s.id: s.category_id for s in frames[1].segments.values()} == {1: 10}


def test_panoptic_bad_predictions_are_errors_naming_the_frame(tmp_path):
    writer = VpsPredictionWriter(str(tmp_path), class_to_category=[10])
    with pytest.raises(ValueError, match=r"'v', frame 'a.jpg'.*class 3"):
        writer.write_frame("v", "a.jpg", np.ones((2, 2)), [{"id": 1, "category_id": 3}])
    with pytest.raises(ValueError, match=r"ids \[2\] are in the map but not in segments_info"):
        writer.write_frame("v", "a.jpg", np.full((2, 2), 2), [{"id": 1, "category_id": 0}])
    assert not (tmp_path / "pan_pred" / "v").exists() or not any(
        (tmp_path / "pan_pred" / "v").iterdir()
    )


def test_semantic_frames_round_trip_and_range_check(tmp_path):
    labels = torch.tensor([[0, 3], [123, 5]])
    path = write_vss_prediction(str(tmp_path), "v", "frame_01.jpg", labels, num_classes=124)
    assert path.endswith("v/frame_01.png")
    assert np.array_equal(read_vss_prediction(path, 124), labels.numpy())
    with pytest.raises(ValueError, match="expected 0..123"):
        write_vss_prediction(str(tmp_path), "v", "f.jpg", torch.tensor([[124]]), num_classes=124)

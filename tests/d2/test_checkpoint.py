"""Checkpoints: a DetectionCheckpointer round trip and clear errors for missing files."""

import pytest
import torch

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2


def _model(seed):
    from detectron2.modeling import build_model

    from tests.d2.helpers import SMOKE_CONFIG, video_cfg

    torch.manual_seed(seed)
    return build_model(video_cfg(SMOKE_CONFIG)).eval()


def _video():
    g = torch.Generator().manual_seed(0)
    frames = [torch.randint(0, 256, (3, 64, 80), generator=g).float() for _ in range(2)]
    return {"image": frames, "height": 64, "width": 80}


def test_round_trip(tmp_path):
    from detectron2.checkpoint import DetectionCheckpointer

    from video_mask2former.d2.checkpoint import VideoCheckpointer

    model = _model(0)
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("model_final")
    fresh = _model(1)
    query_feat = model.sem_seg_head.predictor.query_feat.weight
    assert not torch.equal(fresh.sem_seg_head.predictor.query_feat.weight, query_feat)
    incompatible = VideoCheckpointer(fresh).resume_or_load(
        str(tmp_path / "model_final.pth"), resume=False
    )
    assert incompatible is not None
    for key, value in model.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[key]), key
    with torch.no_grad():
        a, b = model([_video()]), fresh([_video()])
    assert a["pred_scores"] == b["pred_scores"] and a["pred_labels"] == b["pred_labels"]
    assert all(torch.equal(x, y) for x, y in zip(a["pred_masks"], b["pred_masks"]))


def test_mismatched_keys_are_reported(tmp_path, caplog):
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    model = _model(0)
    state = model.state_dict()
    state["unexpected.weight"] = torch.zeros(1)
    del state["sem_seg_head.predictor.query_embed.weight"]
    path = tmp_path / "edited.pth"
    torch.save({"model": state}, path)
    with caplog.at_level("INFO"):
        VideoCheckpointer(_model(1)).load(str(path))
    text = caplog.text
    assert "sem_seg_head.predictor.query_embed.weight" in text
    assert "unexpected.weight" in text
    assert "1 missing keys" in text and "1 unexpected keys" in text


def test_missing_weights_file():
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    with pytest.raises(FileNotFoundError, match="model_final_3c8ec9.pkl"):
        VideoCheckpointer(_model(0)).load("model_final_3c8ec9.pkl")

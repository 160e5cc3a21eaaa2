import pickle

import pytest
import torch

from tests.modeling.tiny_video_model import build_tiny_model, random_video
from video_mask2former.checkpoint import CheckpointMismatchError, load_checkpoint, read_checkpoint


def _save_pkl(state_dict, path):
    """An official-style detectron2 pickle: numpy arrays under "model"."""
    with open(path, "wb") as f:
        pickle.dump({"model": {k: v.numpy() for k, v in state_dict.items()}, "__author__": "x"}, f)


@pytest.mark.parametrize("suffix", [".pkl", ".pth"])
def test_round_trip_gives_the_same_outputs(tmp_path, suffix):
    source = build_tiny_model(seed=1).eval()
    path = str(tmp_path / f"model{suffix}")
    if suffix == ".pkl":
        _save_pkl(source.state_dict(), path)
    else:
        torch.save({"model": source.state_dict(), "iteration": 3}, path)
    target = build_tiny_model(seed=2).eval()
    report = load_checkpoint(target, path)
    assert report.ok
    video = {"image": random_video(2, 64, 64)}
    with torch.no_grad():
        a, b = source([video]), target([video])
    assert a["pred_scores"] == b["pred_scores"] and a["pred_labels"] == b["pred_labels"]


def test_wrong_keys_are_listed_with_the_file(tmp_path):
    state = build_tiny_model().state_dict()
    state["sem_seg_head.extra.weight"] = torch.zeros(1)
    del state["sem_seg_head.predictor.query_feat.weight"]
    state["sem_seg_head.predictor.class_embed.bias"] = torch.zeros(99)
    path = str(tmp_path / "bad.pkl")
    _save_pkl(state, path)
    with pytest.raises(CheckpointMismatchError) as error:
        load_checkpoint(build_tiny_model(), path)
    message = str(error.value)
    assert "bad.pkl" in message
    assert "1 missing keys: sem_seg_head.predictor.query_feat.weight" in message
    assert "1 unexpected keys: sem_seg_head.extra.weight" in message
    assert "class_embed.bias [99]" in message
    model = build_tiny_model(seed=5)
    before = model.sem_seg_head.predictor.query_feat.weight.clone()
    report = load_checkpoint(model, path, strict=False)  # loads what fits
    assert not report.ok and len(report.shape_mismatches) == 1
    assert torch.equal(model.sem_seg_head.predictor.query_feat.weight, before)


def test_file_without_weights_is_a_clear_error(tmp_path):
    path = str(tmp_path / "notes.pth")
    torch.save({"iteration": 3, "model": []}, path)
    with pytest.raises(ValueError, match="notes.pth: expected a dict of weights"):
        read_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        read_checkpoint(str(tmp_path / "missing.pkl"))

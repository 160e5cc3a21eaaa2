"""tools/convert_hf.py: official <-> transformers layout from the command line."""

import json
import os
import pickle
import sys

import pytest
import torch

from tests.hf_models import tiny_model

TOOLS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "tools")
sys.path.insert(0, TOOLS_DIR)
import convert_hf  # noqa: E402

pytest.importorskip("safetensors")


def _official_weights():
    """A tiny model with a backbone that transformers' layout has (ResNet-50 of 1/8 width)."""
    return tiny_model("resnet").state_dict()


def test_to_hf_and_back(tmp_path, capsys):
    weights = _official_weights()
    source, folder = str(tmp_path / "model.pth"), str(tmp_path / "hf")
    torch.save({"model": weights}, source)
    argv = [source, folder, "--to", "hf", "--dataset", "ytvis_synthetic"]
    assert convert_hf.main(argv) == 0
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    assert config["model_type"] == "mask2former"
    assert config["id2label"] == {"0": "circle", "1": "square", "2": "triangle"}

    for name in ("back.pth", "back.pkl"):
        assert convert_hf.main([folder, str(tmp_path / name), "--to", "official"]) == 0
    back = torch.load(tmp_path / "back.pth", weights_only=True)["model"]
    with open(tmp_path / "back.pkl", "rb") as f:
        pickled = pickle.load(f)
    assert "__author__" in pickled and "matching_heuristics" not in pickled
    assert set(back) == set(pickled["model"]) == set(weights)
    for key, value in weights.items():
        assert torch.equal(back[key], value), key
        assert torch.equal(torch.from_numpy(pickled["model"][key]), value), key
    assert "Wrote" in capsys.readouterr().out


def test_errors_are_one_line(tmp_path, capsys):
    weights = _official_weights()
    source, folder = str(tmp_path / "model.pth"), str(tmp_path / "hf")
    torch.save({"model": weights}, source)
    assert convert_hf.main([source, folder, "--to", "hf", "--backbone", "swin_tiny"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the state dict holds a ResNet") and "\n" not in err
    assert not os.path.exists(folder)

    # an official file given as a transformers one
    assert convert_hf.main([source, str(tmp_path / "x.pth"), "--to", "official"]) == 1
    assert "this project's (official) keys" in capsys.readouterr().err

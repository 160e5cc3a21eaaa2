"""tools/convert_hf.py: official <-> transformers layout from the command line."""

import errno
import json
import os
import pickle
import re
import tempfile

import pytest
import torch

from tests.hf_models import tiny_model

from tests.tools.scripts import load_tool

convert_hf = load_tool("convert_hf")

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
    assert err.startswith(f"error: {source} holds a ResNet") and "\n" not in err
    assert not os.path.exists(folder)

    # an official file given as a transformers one
    assert convert_hf.main([source, str(tmp_path / "x.pth"), "--to", "official"]) == 1
    assert "this project's (official) keys" in capsys.readouterr().err


def _read_only_disk(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system")


def _group_norm_resnet(weights):
    """``weights`` as if its ResNet used GroupNorm (the quick model's): no running statistics."""
    return {k: v for k, v in weights.items() if not k.endswith(("running_mean", "running_var"))}


@pytest.mark.parametrize(
    "case, to, expected",
    [
        ("output-is-a-file", "hf", "out: it is a file, expected a folder; --to hf writes a folder"),
        (
            "output-folder-not-empty",
            "hf",
            "out: it is a folder that is not empty; pass --overwrite",
        ),
        ("output-exists", "official", "out.pth: it exists; pass --overwrite to replace it"),
        ("output-is-a-folder", "official", "out: it is a folder, .*; --to official writes one"),
        ("missing-folder", "official", "out.pth: the folder .*missing does not exist"),
        ("read-only-disk", "hf", r"cannot write .*out: the folder .* is not writable \(Read-only"),
        ("read-only-disk", "official", "cannot write .*out.pth: the folder .* is not writable"),
        ("group-norm-resnet", "hf", "model.pth: its ResNet normalises without running statistics"),
    ],
)
def test_bad_outputs_and_inputs_are_one_line_errors_before_any_work(
    tmp_path, capsys, monkeypatch, case, to, expected
):
    """Each is found before the input is read (the input here does not even exist, except
    for the GroupNorm ResNet), and nothing existing is replaced."""
    weights = _official_weights()
    source = str(tmp_path / ("model.pth" if case == "group-norm-resnet" else "absent.pth"))
    if case == "group-norm-resnet":
        torch.save({"model": _group_norm_resnet(weights)}, source)
    output = tmp_path / ("out" if to == "hf" else "out.pth")
    if case == "output-is-a-file":
        output.write_text("keep")
    elif case == "output-folder-not-empty":
        output.mkdir()
        (output / "config.json").write_text("keep")
    elif case == "output-exists":
        output.write_text("keep")
    elif case == "output-is-a-folder":
        output = tmp_path / "out"
        output.mkdir()
    elif case == "missing-folder":
        output = tmp_path / "missing" / "out.pth"
    elif case == "read-only-disk":  # creating a file there fails, as on a read-only disk
        monkeypatch.setattr(tempfile, "mkstemp", _read_only_disk)
    before = sorted(str(p) for p in tmp_path.glob("**/*"))
    assert convert_hf.main([source, str(output), "--to", to]) == 1
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(f"error: .*{expected}.*", err), err
    assert sorted(str(p) for p in tmp_path.glob("**/*")) == before
    if case in ("output-is-a-file", "output-exists"):
        assert output.read_text() == "keep"


def test_overwrite_replaces_and_success_says_which_layout(tmp_path, capsys):
    source = str(tmp_path / "model.pth")
    torch.save({"model": _official_weights()}, source)
    folder, back = tmp_path / "hf", tmp_path / "back.pth"
    folder.mkdir()
    (folder / "README.md").write_text("notes")
    assert convert_hf.main([source, str(folder), "--to", "hf", "--overwrite"]) == 0
    assert "in transformers' Mask2Former layout" in capsys.readouterr().out
    back.write_text("old")
    assert convert_hf.main([str(folder), str(back), "--to", "official", "--overwrite"]) == 0
    assert "in the official layout" in capsys.readouterr().out
    assert set(torch.load(back, weights_only=True)["model"]) == set(_official_weights())


def test_a_failed_write_is_one_line(tmp_path, capsys, monkeypatch):
    from video_mask2former import file_io

    source = str(tmp_path / "model.pth")
    torch.save({"model": _official_weights()}, source)

    def full_disk(fd, mode):
        os.close(fd)
        return open("/dev/full", mode)

    monkeypatch.setattr(file_io.os, "fdopen", full_disk)
    assert convert_hf.main([source, str(tmp_path / "hf"), "--to", "hf"]) == 1
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"error: \[Errno 28\] cannot write .*model.safetensors: No space.*", err)

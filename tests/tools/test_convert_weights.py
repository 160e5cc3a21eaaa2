"""Weight converters: torchvision ResNet / official Swin checkpoints -> detectron2-style pickles."""

import pickle

import numpy as np
import pytest
import torch
import torchvision

from video_mask2former.modeling.backbone.swin import SwinTransformer

from tests.tools.scripts import load_tool

convert_swin = load_tool("convert_swin")
convert_torchvision_resnet = load_tool("convert_torchvision_resnet")

TINY_SWIN = dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=7)


def _read(path):
    with open(path, "rb") as f:
        return pickle.load(f)


@pytest.mark.parametrize("depth", [50, 101])
def test_resnet_keys_follow_detectron2_names(depth, tmp_path):
    model = getattr(torchvision.models, f"resnet{depth}")()
    state = model.state_dict()
    path_in, path_out = tmp_path / "r.pth", tmp_path / "r.pkl"
    torch.save(state, path_in)
    assert convert_torchvision_resnet.main([str(path_in), str(path_out)]) == 0
    out = _read(path_out)
    assert out["__author__"] == "torchvision" and out["matching_heuristics"] is True
    weights = out["model"]
    assert all(isinstance(v, np.ndarray) for v in weights.values())
    # every tensor except fc and num_batches_tracked is kept, with its values
    kept = [k for k in state if not k.startswith("fc.") and "num_batches_tracked" not in k]
    assert len(weights) == len(kept)
    np.testing.assert_array_equal(weights["stem.conv1.weight"], state["conv1.weight"].numpy())
    np.testing.assert_array_equal(
        weights["stem.conv1.norm.running_var"], state["bn1.running_var"].numpy()
    )
    np.testing.assert_array_equal(
        weights["res2.0.conv2.norm.bias"], state["layer1.0.bn2.bias"].numpy()
    )
    np.testing.assert_array_equal(
        weights["res3.0.shortcut.weight"], state["layer2.0.downsample.0.weight"].numpy()
    )
    np.testing.assert_array_equal(
        weights["res5.0.shortcut.norm.running_mean"],
        state["layer4.0.downsample.1.running_mean"].numpy(),
    )
    blocks = {"50": (3, 4, 6, 3), "101": (3, 4, 23, 3)}[str(depth)]
    for stage, n in zip(range(2, 6), blocks):
        assert f"res{stage}.{n - 1}.conv3.norm.weight" in weights
        assert f"res{stage}.{n}.conv1.weight" not in weights
    assert not any(k.startswith("fc") or "layer" in k or "bn" in k for k in weights)


def test_resnet_prefix_option(tmp_path):
    torch.save(torchvision.models.resnet50().state_dict(), tmp_path / "r.pth")
    convert_torchvision_resnet.main(
        [str(tmp_path / "r.pth"), str(tmp_path / "r.pkl"), "--prefix", "backbone."]
    )
    assert all(k.startswith("backbone.") for k in _read(tmp_path / "r.pkl")["model"])


def test_resnet_unexpected_keys_are_reported(tmp_path, capsys):
    state = torchvision.models.resnet50().state_dict()
    state["transformer.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    assert (
        convert_torchvision_resnet.main([str(tmp_path / "bad.pth"), str(tmp_path / "bad.pkl")]) == 1
    )
    err = capsys.readouterr().err
    assert "bad.pth" in err and "transformer.weight" in err
    assert not (tmp_path / "bad.pkl").exists()


def _official_swin_checkpoint(model):
    """An official classification checkpoint: backbone keys plus norm, head and attn_mask."""
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("norm")}
    state["layers.0.blocks.1.attn_mask"] = torch.zeros(4, 49, 49)
    state["norm.weight"], state["norm.bias"] = torch.ones(128), torch.zeros(128)
    state["head.weight"], state["head.bias"] = torch.zeros(1000, 128), torch.zeros(1000)
    return {"model": state}


def test_swin_converts_to_loadable_backbone(tmp_path):
    torch.manual_seed(0)
    source = SwinTransformer(**TINY_SWIN)
    torch.save(_official_swin_checkpoint(source), tmp_path / "swin.pth")
    assert convert_swin.main([str(tmp_path / "swin.pth"), str(tmp_path / "swin.pkl")]) == 0
    out = _read(tmp_path / "swin.pkl")
    assert out["matching_heuristics"] is True
    weights = out["model"]
    assert not any(k.startswith(("head", "norm.")) or "attn_mask" in k for k in weights)
    assert weights["layers.0.blocks.0.attn.relative_position_index"].dtype == np.int64

    target = SwinTransformer(**TINY_SWIN)
    missing, unexpected = target.load_state_dict(
        {k: torch.from_numpy(v) for k, v in weights.items()}, strict=False
    )
    assert unexpected == []
    assert sorted(missing) == sorted(f"norm{i}.{p}" for i in range(4) for p in ("weight", "bias"))
    torch.testing.assert_close(
        target.layers[2].downsample.reduction.weight, source.layers[2].downsample.reduction.weight
    )


def test_swin_unexpected_keys_are_reported(tmp_path, capsys):
    checkpoint = _official_swin_checkpoint(SwinTransformer(**TINY_SWIN))
    checkpoint["model"]["layers.0.blocks.0.attn.logit_scale"] = torch.zeros(1)  # a Swin-V2 key
    torch.save(checkpoint, tmp_path / "v2.pth")
    assert convert_swin.main([str(tmp_path / "v2.pth"), str(tmp_path / "v2.pkl")]) == 1
    err = capsys.readouterr().err
    assert "v2.pth" in err and "logit_scale" in err

"""transformers' Mask2Former layout: conversion both ways, checked against transformers itself.

Tiny models (``tests/hf_models.py``) with random weights; the real sizes of the six official
backbones are checked on key names and shapes only (models on the meta device, no weights).
Inputs are 64 x 64: Swin's last stage (2 x 2 tokens) is smaller than its window (3), the case
where older transformers shrank the window and dropped the shift (its SwinBackbone now partitions
like the official Swin).
"""

import importlib.util
import json
import os
import sys

import pytest
import torch
from torch import nn

from tests.conftest import FIXTURES_DIR
from tests.hf_models import HIDDEN, NUM_CLASSES, randomize_, tiny_model
from tests.parity_weights import KEY_FILES
from video_mask2former import hf
from video_mask2former.modeling.position_encoding import PositionEmbeddingSine

transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

IMAGE_SIZE = 64
TOLERANCE = 1e-4
OFFICIAL_KEY_FILES = KEY_FILES


def _hf_from_folder(folder: str):
    model, info = transformers.Mask2FormerForUniversalSegmentation.from_pretrained(
        folder, output_loading_info=True
    )
    return model.eval(), info


@pytest.fixture(scope="module", params=["swin", "resnet"])
def exported(request, tmp_path_factory):
    """(family, our model, transformers' model loaded from our export, its loading info)."""
    ours = tiny_model(request.param)
    folder = str(tmp_path_factory.mktemp(f"hf_{request.param}"))
    hf.save_hf_checkpoint(folder, ours.state_dict(), class_names=["a", "b", "c"])
    theirs, info = _hf_from_folder(folder)
    return request.param, ours, theirs, info, folder


def _image(seed: int = 0) -> torch.Tensor:
    """(1, 3, 64, 64): a normalised image (what both backbones take)."""
    return torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(seed))


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


# --------------------------------------------------------------------------------------------
# Against transformers
# --------------------------------------------------------------------------------------------


def test_export_loads_into_transformers_with_every_key(exported):
    family, ours, theirs, info, folder = exported
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    assert config["backbone_config"]["model_type"] == family
    assert len(config["id2label"]) == NUM_CLASSES
    assert theirs.config.id2label == {0: "a", 1: "b", 2: "c"}
    # what transformers holds (its in-memory names) converts back to exactly our weights
    back = hf.from_hf_state_dict(theirs.state_dict())
    expected = ours.state_dict()
    assert set(back) == set(expected)
    for key, value in expected.items():
        assert torch.equal(back[key], value), key


def test_pixel_module_outputs_equal_transformers(exported):
    family, ours, theirs, _, _ = exported
    image = _image()
    with torch.no_grad():
        features = ours.backbone(image)
        mask_features, _, multi_scale = ours.sem_seg_head.pixel_decoder(features)
        out = theirs.model.pixel_level_module(image, output_hidden_states=True)
    diffs = {
        f"res{i + 2}": _max_diff(features[f"res{i + 2}"], theirs_feature)
        for i, theirs_feature in enumerate(out.encoder_hidden_states)
    }
    diffs["mask_features"] = _max_diff(mask_features, out.decoder_last_hidden_state)
    assert len(out.decoder_hidden_states) == len(multi_scale) == 3
    for level, (a, b) in enumerate(zip(multi_scale, out.decoder_hidden_states)):
        diffs[f"multi_scale_{level}"] = _max_diff(a, b)  # coarse to fine in both
    print(f"{family}: max |ours - transformers| {diffs}")
    assert max(diffs.values()) < TOLERANCE, diffs


class _PerFrame2D(nn.Module):
    """The image model's 2-D sine encoding applied to each frame: (B, T, C, H, W) ->
    (B, T, 2F, H, W)."""

    def __init__(self, num_pos_feats: int):
        super().__init__()
        self.pe = PositionEmbeddingSine(num_pos_feats, normalize=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        return self.pe(x.flatten(0, 1)).view(b, t, -1, *x.shape[-2:])


def test_transformer_decoder_is_parameter_compatible(exported, monkeypatch):
    """With one frame and the image model's 2-D position encoding, the video decoder computes
    exactly transformers' image decoder: the q/k/v split and every name are right."""
    _, ours, theirs, _, _ = exported
    monkeypatch.setattr(ours.sem_seg_head.predictor, "pe_layer", _PerFrame2D(HIDDEN // 2))
    image = _image(seed=1)
    with torch.no_grad():
        out = ours.sem_seg_head(ours.backbone(image), num_frames=1)
        expected = theirs(pixel_values=image)
    assert _max_diff(out["pred_logits"], expected.class_queries_logits) < TOLERANCE
    assert _max_diff(out["pred_masks"][:, :, 0], expected.masks_queries_logits) < TOLERANCE


@pytest.mark.parametrize("family", ["swin", "resnet"])
def test_hf_to_official_to_hf_is_the_identity(family, tmp_path):
    folder = str(tmp_path / "hf")
    config = transformers.Mask2FormerConfig.from_dict(hf.hf_config(tiny_model(family).state_dict()))
    model = transformers.Mask2FormerForUniversalSegmentation(config)
    # Swin's final norm, unused by transformers' backbone, is not kept (written as the identity).
    randomize_(model, seed=3, keep="swin.layernorm").save_pretrained(folder)
    stored = safetensors_torch.load_file(os.path.join(folder, "model.safetensors"))

    back = hf.to_hf_state_dict(hf.load_hf_state_dict(folder))
    assert set(back) == set(stored)
    for key, value in stored.items():
        assert torch.equal(back[key], value), key


def test_files_of_transformers_4_are_read(exported, tmp_path):
    """transformers 4 stored Swin's relative_position_index and had no swin.layernorm."""
    family, ours, _, _, folder = exported
    stored = safetensors_torch.load_file(os.path.join(folder, "model.safetensors"))
    old = {k: v for k, v in stored.items() if ".swin.layernorm." not in k}
    for key in [k for k in stored if k.endswith("relative_position_bias_table")]:
        old[key.replace("_bias_table", "_index")] = torch.zeros(9, 9, dtype=torch.long)
    path = str(tmp_path / "old.bin")
    torch.save(old, path)
    back = hf.load_hf_state_dict(path)
    assert set(back) == set(ours.state_dict())
    for key, value in ours.state_dict().items():
        assert torch.equal(back[key], value), key


def test_sharded_folder(exported, tmp_path):
    _, ours, theirs, _, _ = exported
    theirs.save_pretrained(str(tmp_path), max_shard_size="100KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    back = hf.load_hf_state_dict(str(tmp_path))
    for key, value in ours.state_dict().items():
        assert torch.equal(back[key], value), key


@pytest.mark.parametrize("backbone", sorted(OFFICIAL_KEY_FILES))
def test_real_sizes_have_the_same_keys_and_shapes(backbone):
    with open(os.path.join(FIXTURES_DIR, "parity", OFFICIAL_KEY_FILES[backbone])) as f:
        rows = json.load(f)["state_dict"]
    official = {k: torch.empty(s, dtype=getattr(torch, d), device="meta") for k, s, d in rows}
    config = transformers.Mask2FormerConfig.from_dict(hf.hf_config(official, backbone))
    with torch.device("meta"):
        model = transformers.Mask2FormerForUniversalSegmentation(config)
    converted = hf.to_hf_state_dict(official, backbone)

    # transformers' in-memory names, read back
    back = hf.from_hf_state_dict(model.state_dict(), target=backbone)
    assert {k: tuple(v.shape) for k, v in back.items()} == {k: tuple(s) for k, s, _ in rows}
    # the names of its files (what save_pretrained writes), where this transformers tells them
    if importlib.util.find_spec("transformers.core_model_loading") is not None:
        from transformers.core_model_loading import revert_weight_conversion

        files = revert_weight_conversion(model, dict(model.state_dict()))
        assert {k: tuple(v.shape) for k, v in files.items()} == {
            k: tuple(v.shape) for k, v in converted.items()
        }


# --------------------------------------------------------------------------------------------
# Detection and bad input
# --------------------------------------------------------------------------------------------


def test_is_hf_checkpoint(exported, tmp_path):
    _, ours, theirs, _, folder = exported
    official_path, hf_path = str(tmp_path / "official.pth"), str(tmp_path / "hf.pth")
    torch.save({"model": ours.state_dict()}, official_path)
    torch.save(theirs.state_dict(), hf_path)
    assert hf.is_hf_checkpoint("hf://facebook/some-model")
    assert hf.is_hf_checkpoint(folder)
    assert hf.is_hf_checkpoint(os.path.join(folder, "model.safetensors"))
    assert hf.is_hf_checkpoint(hf_path)
    assert hf.is_hf_checkpoint(theirs.state_dict())
    assert not hf.is_hf_checkpoint(official_path)
    assert not hf.is_hf_checkpoint(ours.state_dict())
    assert not hf.is_hf_checkpoint(str(tmp_path / "model_final.pkl"))
    assert not hf.is_hf_checkpoint(str(tmp_path))  # a folder without config or weights
    assert not hf.is_hf_checkpoint(str(tmp_path / "missing.pth"))


def test_config_of_another_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "swin"}))
    with pytest.raises(hf.HFCheckpointError, match=r"config\.json describes a 'swin' model"):
        hf.load_hf_state_dict(str(tmp_path))


def test_backbone_of_another_architecture(exported):
    family, _, _, _, folder = exported
    other = "swin_tiny" if family == "resnet" else "R50"
    with pytest.raises(hf.HFCheckpointError) as error:
        hf.load_hf_state_dict(folder, target=other)
    message = str(error.value)
    assert "model.safetensors" in message and "\n" not in message
    found, expected = ("ResNet", "Swin (swin_tiny") if family == "resnet" else ("Swin", "(R50")
    assert found in message and expected in message
    # the target may also be a model
    assert hf.load_hf_state_dict(folder, target=tiny_model(family)).keys()


def test_weights_in_neither_layout(tmp_path):
    path = str(tmp_path / "other.pth")
    torch.save({"encoder.layer.0.weight": torch.zeros(2)}, path)
    assert not hf.is_hf_checkpoint(path)
    with pytest.raises(hf.HFCheckpointError, match="other.pth is not in transformers' Mask2Former"):
        hf.load_hf_state_dict(path)


def test_official_weights_given_as_hf(tmp_path):
    path = str(tmp_path / "official.pth")
    torch.save({"model": tiny_model("resnet").state_dict()}, path)
    with pytest.raises(hf.HFCheckpointError, match="this project's \\(official\\) keys"):
        hf.load_hf_state_dict(path)


def test_unknown_and_incomplete_keys(exported):
    _, _, theirs, _, _ = exported
    state = dict(theirs.state_dict())
    state["model.pixel_level_module.decoder.fpn.weight"] = torch.zeros(1)
    with pytest.raises(hf.HFCheckpointError, match=r"1 keys are not in .*decoder\.fpn\.weight"):
        hf.from_hf_state_dict(state)
    state = dict(theirs.state_dict())
    del state["model.transformer_module.decoder.layers.0.self_attn.k_proj.weight"]
    with pytest.raises(hf.HFCheckpointError, match="only 2 are in the file"):
        hf.from_hf_state_dict(state)


def test_folder_without_weights_and_unreadable_file(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mask2former"}))
    with pytest.raises(hf.HFCheckpointError, match="holds no transformers weights"):
        hf.load_hf_state_dict(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"\x00\x01truncated")
    with pytest.raises(hf.HFCheckpointError, match="model.safetensors is not a readable"):
        hf.load_hf_state_dict(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="missing"):
        hf.load_hf_state_dict(str(tmp_path / "missing"))


def test_hub_download(exported, monkeypatch):
    """hf://<repo>[@revision] goes through huggingface_hub.snapshot_download (stubbed here)."""
    pytest.importorskip("huggingface_hub")
    import huggingface_hub

    _, ours, _, _, folder = exported
    calls = []

    def snapshot(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, allow_patterns))
        return folder

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    back = hf.load_hf_state_dict("hf://someone/video-mask2former@v1")
    assert set(back) == set(ours.state_dict())
    assert calls == [("someone/video-mask2former", "v1", ["*.json", "*.safetensors"])]

    def failing(repo_id, **kwargs):
        raise huggingface_hub.errors.LocalEntryNotFoundError("cannot reach the Hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", failing)
    with pytest.raises(
        hf.HFCheckpointError, match="could not download someone/x .*pass its folder"
    ):
        hf.load_hf_state_dict("hf://someone/x")


def test_hub_without_huggingface_hub(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # find_spec then returns None
    with pytest.raises(hf.HFCheckpointError, match="pip install huggingface_hub"):
        hf.load_hf_state_dict("hf://someone/x")


def test_export_checks_the_named_backbone():
    with pytest.raises(hf.HFCheckpointError, match=r"ResNet .* but the target's is a Swin"):
        hf.to_hf_state_dict(tiny_model("resnet").state_dict(), "swin_tiny")
    state = tiny_model("resnet").state_dict()
    state["sem_seg_head.extra.weight"] = torch.zeros(1)
    with pytest.raises(hf.HFCheckpointError, match="sem_seg_head.extra.weight"):
        hf.to_hf_state_dict(state)

"""load_checkpoint reads transformers-layout checkpoints (a folder or a single weights file) through
the loading policy; tests/d2/test_checkpoint.py reads the same files with VideoCheckpointer.
transformers itself is not needed: the files are written by video_mask2former.hf."""

import pytest
import torch

from tests.hf_models import tiny_model
from video_mask2former import hf
from video_mask2former.checkpoint import CheckpointMismatchError, load_checkpoint


def _assert_same_weights(a, b):
    for key, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[key], value, msg=key)


def _reseeded(family, seed):
    model = tiny_model(family)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed)) * 0.01)
    return model


@pytest.mark.parametrize("family", ["swin", "resnet"])
def test_load_checkpoint_reads_a_single_transformers_weights_file(family, tmp_path):
    source = tiny_model(family)
    path = tmp_path / "pytorch_model.bin"
    torch.save(hf.to_hf_state_dict(source.state_dict()), path)
    target = _reseeded(family, 1)
    report = load_checkpoint(target, str(path))
    assert report.ok
    _assert_same_weights(source, target)


def test_load_checkpoint_reads_a_transformers_folder(tmp_path):
    pytest.importorskip("safetensors")
    source = tiny_model("swin")
    hf.save_hf_checkpoint(str(tmp_path / "hf"), source.state_dict(), class_names=["a", "b", "c"])
    target = _reseeded("swin", 2)
    assert load_checkpoint(target, str(tmp_path / "hf")).ok
    _assert_same_weights(source, target)


def test_transformers_file_of_another_backbone_is_an_error_naming_both(tmp_path):
    path = tmp_path / "resnet.bin"
    torch.save(hf.to_hf_state_dict(tiny_model("resnet").state_dict()), path)
    with pytest.raises(hf.HFCheckpointError, match="resnet.bin") as error:
        load_checkpoint(tiny_model("swin"), str(path))
    assert "swin" in str(error.value).lower() and "resnet" in str(error.value).lower()


def test_transformers_file_with_another_class_count_follows_the_policy(tmp_path):
    source = tiny_model("swin")
    weights = hf.to_hf_state_dict(source.state_dict())
    weights = {k: (v[:-1] if k.startswith("class_predictor") else v) for k, v in weights.items()}
    path = tmp_path / "fewer_classes.bin"
    torch.save(weights, path)
    with pytest.raises(CheckpointMismatchError, match="fewer_classes.bin"):
        load_checkpoint(tiny_model("swin"), str(path))  # for inference: every shape must fit
    report = load_checkpoint(tiny_model("swin"), str(path), for_training=True)
    assert [k for k, _, _ in report.shape_mismatches] == [
        "sem_seg_head.predictor.class_embed.weight",
        "sem_seg_head.predictor.class_embed.bias",
    ]

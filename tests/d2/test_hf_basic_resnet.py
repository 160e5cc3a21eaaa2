"""transformers' layout for a ResNet-18 (basic blocks) with batch norm, checked against
transformers: every key loads, the backbone and pixel-decoder outputs are equal, and the round trip
is exact. The ResNet-18 is detectron2's (the core builds bottleneck ResNets only); the quick
model's own ResNet-18 uses GroupNorm, which transformers' ResNet cannot express: refused."""

import pytest
import torch

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from detectron2.modeling import build_model

    from tests.d2.helpers import SMOKE_CONFIG, video_cfg
    from tests.hf_models import randomize_
    from video_mask2former import hf

    torch.manual_seed(0)
    cfg = video_cfg(SMOKE_CONFIG, ["MODEL.RESNETS.NORM", "FrozenBN"])
    ours = randomize_(build_model(cfg), seed=3).eval()
    folder = str(tmp_path_factory.mktemp("hf_r18"))
    hf.save_hf_checkpoint(folder, ours.state_dict(), source="the quick model")
    theirs, info = transformers.Mask2FormerForUniversalSegmentation.from_pretrained(
        folder, output_loading_info=True
    )
    return ours, theirs.eval(), info, folder


def test_basic_block_resnet_loads_with_every_key(converted):
    _, theirs, info, folder = converted
    assert theirs.config.backbone_config.layer_type == "basic"
    assert not info["missing_keys"] and not info["unexpected_keys"], info


def test_backbone_and_pixel_decoder_equal_transformers(converted):
    ours, theirs, _, _ = converted
    image = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features = ours.backbone(image)
        mask_features, _, _ = ours.sem_seg_head.pixel_decoder(features)
        out = theirs.model.pixel_level_module(image, output_hidden_states=True)
    for i, theirs_feature in enumerate(out.encoder_hidden_states):
        diff = (features[f"res{i + 2}"] - theirs_feature).abs().max().item()
        assert diff < TOLERANCE, (f"res{i + 2}", diff)
    assert (mask_features - out.decoder_last_hidden_state).abs().max().item() < TOLERANCE


def test_round_trip_is_exact(converted):
    from video_mask2former import hf

    ours, _, _, folder = converted
    back = hf.load_hf_state_dict(folder, target=ours)
    state = ours.state_dict()
    assert set(back) == set(state)
    for key, value in state.items():
        assert torch.equal(back[key], value), key


def test_group_norm_resnet_is_refused(tmp_path):
    from detectron2.modeling import build_model

    from tests.d2.helpers import SMOKE_CONFIG, video_cfg
    from video_mask2former import hf

    state = build_model(video_cfg(SMOKE_CONFIG)).state_dict()  # MODEL.RESNETS.NORM GN
    with pytest.raises(hf.HFCheckpointError, match="quick.pth: its ResNet normalises without"):
        hf.save_hf_checkpoint(str(tmp_path / "out"), state, source="quick.pth")

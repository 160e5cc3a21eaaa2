"""ResNet backbone: detectron2 layout, strides, freezing."""

import torch

from video_mask2former.modeling.backbone.resnet import ResNet
from video_mask2former.modeling.layers import FrozenBatchNorm2d


def test_output_shapes_and_strides():
    model = ResNet(depth=50).eval()
    shapes = model.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {
        "res2": (256, 4),
        "res3": (512, 8),
        "res4": (1024, 16),
        "res5": (2048, 32),
    }
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 96))
    for name, spec in shapes.items():
        assert out[name].shape == (1, spec.channels, 64 // spec.stride, 96 // spec.stride)
    assert model.size_divisibility == 0


def test_stride_in_3x3_and_key_names():
    with torch.device("meta"):  # structure only: no weights needed
        model = ResNet(depth=50, stride_in_1x1=False)
        r101_keys = ResNet(depth=101).state_dict()
    assert model.res3[0].conv1.stride == (1, 1) and model.res3[0].conv2.stride == (2, 2)
    keys = model.state_dict().keys()
    assert "stem.conv1.norm.running_var" in keys and "res2.0.shortcut.weight" in keys
    assert "res2.1.shortcut.weight" not in keys
    assert len([k for k in keys if k.startswith("res4.") and k.endswith("conv1.weight")]) == 6
    assert len([k for k in r101_keys if k.startswith("res4.") and k.endswith("conv1.weight")]) == 23


def test_freeze_at():
    with torch.device("meta"):
        model = ResNet(depth=50, norm="BN", freeze_at=2)
        unfrozen = ResNet(depth=50, freeze_at=0)
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for p in model.res2.parameters())
    assert all(p.requires_grad for p in model.res3.parameters())
    assert isinstance(model.res2[0].conv1.norm, FrozenBatchNorm2d)
    assert isinstance(model.res3[0].conv1.norm, torch.nn.BatchNorm2d)
    assert all(p.requires_grad for p in unfrozen.parameters())

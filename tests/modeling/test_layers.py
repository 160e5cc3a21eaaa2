"""Conv2d wrapper, FrozenBatchNorm2d, get_norm, MLP."""

import pytest
import torch
from torch import nn

from video_mask2former.modeling.layers import MLP, Conv2d, FrozenBatchNorm2d, get_norm


def _random_frozen_bn(channels=4):
    bn = FrozenBatchNorm2d(channels)
    bn.weight.uniform_(0.5, 2)
    bn.bias.normal_()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2)
    return bn


@pytest.mark.parametrize("requires_grad", [False, True])
def test_frozen_bn_formula(requires_grad):
    bn = _random_frozen_bn()
    x = torch.randn(2, 4, 3, 5, requires_grad=requires_grad)
    expected = (x - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(
        bn.running_var.view(1, -1, 1, 1) + bn.eps
    ) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    assert torch.allclose(bn(x), expected, atol=1e-5)
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var"}
    assert list(bn.parameters()) == []


def test_convert_frozen_batchnorm_keeps_statistics():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    model[1].running_mean.fill_(0.5)
    model[1].weight.data.fill_(2.0)
    model = FrozenBatchNorm2d.convert_frozen_batchnorm(model)
    assert isinstance(model[1], FrozenBatchNorm2d)
    assert torch.all(model[1].running_mean == 0.5) and torch.all(model[1].weight == 2.0)


def test_conv2d_norm_is_submodule_and_applied():
    conv = Conv2d(3, 32, kernel_size=1, bias=False, norm=get_norm("GN", 32), activation=torch.relu)
    assert set(conv.state_dict()) == {"weight", "norm.weight", "norm.bias"}
    out = conv(torch.randn(2, 3, 4, 4))
    assert (out >= 0).all()
    plain = nn.functional.conv2d(torch.ones(1, 3, 4, 4), conv.weight)
    assert torch.allclose(conv.norm(plain).relu(), conv(torch.ones(1, 3, 4, 4)))


def test_get_norm_names():
    assert get_norm("", 8) is None
    assert isinstance(get_norm("FrozenBN", 8), FrozenBatchNorm2d)
    assert isinstance(get_norm("BN", 8), nn.BatchNorm2d)
    with pytest.raises(ValueError, match="unknown norm"):
        get_norm("LN", 8)


def test_mlp_relu_between_layers_only():
    mlp = MLP(4, 8, 2, 3)
    expected_keys = [f"layers.{i}.{p}" for i in range(3) for p in ("weight", "bias")]
    assert list(mlp.state_dict()) == expected_keys
    x = torch.randn(5, 4)
    h = torch.relu(mlp.layers[1](torch.relu(mlp.layers[0](x))))
    assert torch.allclose(mlp(x), mlp.layers[2](h))

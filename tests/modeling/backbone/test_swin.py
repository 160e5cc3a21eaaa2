"""SwinTransformer: official key layout of all four variants, output strides, padding."""

import json
import os

import pytest
import torch

from tests.conftest import FIXTURES_DIR
from video_mask2former.modeling.backbone.swin import (
    SWIN_VARIANTS,
    SwinTransformer,
    relative_position_index,
    shifted_window_mask,
    window_merge,
    window_partition,
)
from video_mask2former.structures import ShapeSpec

TINY = dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=7)


@pytest.mark.parametrize(
    "variant,fixture", [("T", "swint"), ("S", "swins"), ("B", "swinb"), ("L", "swinl")]
)
def test_state_dict_matches_official_keys(variant, fixture):
    with open(os.path.join(FIXTURES_DIR, "parity", f"keys_{fixture}.json")) as f:
        rows = json.load(f)["state_dict"]
    expected = [
        (key[len("backbone.") :], tuple(shape), dtype)
        for key, shape, dtype in rows
        if key.startswith("backbone.")
    ]
    with torch.device("meta"):
        model = SwinTransformer(**SWIN_VARIANTS[variant])
    actual = [
        (key, tuple(value.shape), str(value.dtype).replace("torch.", ""))
        for key, value in model.state_dict().items()
    ]
    assert actual == expected


def test_forward_strides_and_output_shape():
    model = SwinTransformer(**TINY).eval()
    features = model(torch.randn(2, 3, 64, 64))
    shapes = model.output_shape()
    assert list(features) == ["res2", "res3", "res4", "res5"]
    for name, stride, channels in [
        ("res2", 4, 16),
        ("res3", 8, 32),
        ("res4", 16, 64),
        ("res5", 32, 128),
    ]:
        assert features[name].shape == (2, channels, 64 // stride, 64 // stride)
        assert shapes[name] == ShapeSpec(channels=channels, stride=stride)
        assert torch.isfinite(features[name]).all()
    assert model.size_divisibility == 32


def test_out_features_subset_and_odd_sizes():
    # 40x56 is not a multiple of the window nor of 32: inner padding must handle it.
    model = SwinTransformer(**TINY, out_features=("res3", "res5")).eval()
    features = model(torch.randn(1, 3, 40, 56))
    assert set(features) == {"res3", "res5"} == set(model.output_shape())
    assert features["res3"].shape == (1, 32, 5, 7)
    assert features["res5"].shape == (1, 128, 2, 2)


def test_images_are_independent():
    # Windows of one image must never attend to another image of the batch.
    model = SwinTransformer(**TINY).eval()
    x = torch.randn(3, 3, 64, 64)
    batched = model(x)
    single = model(x[1:2])
    for name in batched:
        torch.testing.assert_close(batched[name][1:2], single[name], atol=1e-5, rtol=1e-5)


def test_window_partition_round_trip():
    x = torch.randn(2, 14, 21, 5)
    windows = window_partition(x, 7)
    assert windows.shape == (2 * 2 * 3, 49, 5)
    torch.testing.assert_close(windows[0].view(7, 7, 5), x[0, :7, :7])
    torch.testing.assert_close(window_merge(windows, 7, 14, 21), x)


def test_relative_position_index_values():
    index = relative_position_index(3)
    assert index.dtype == torch.int64 and index.shape == (9, 9)
    # diagonal = zero offset = centre of the (2*3-1)^2 table; corners are its extremes
    assert (index.diagonal() == 12).all()
    assert index[0, 8] == 0 and index[8, 0] == 24


def test_shifted_window_mask_blocks_regions():
    mask = shifted_window_mask(14, 14, window_size=7, shift_size=3, device="cpu")
    assert mask.shape == (4, 49, 49)
    assert (mask[0] == 0).all()  # top-left window lies in one region
    assert set(mask[3].unique().tolist()) == {-100.0, 0.0}  # bottom-right mixes 4 regions


def test_gradients_and_train_mode():
    model = SwinTransformer(**TINY, drop_path_rate=0.3).train()
    out = model(torch.randn(2, 3, 32, 32))
    sum(v.sum() for v in out.values()).backward()
    assert model.patch_embed.proj.weight.grad is not None
    assert model.layers[0].blocks[0].attn.relative_position_bias_table.grad.abs().sum() > 0

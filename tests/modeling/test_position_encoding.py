"""2-D and 3-D sine position encodings."""

import math

import torch

from video_mask2former.modeling.position_encoding import (
    PositionEmbeddingSine,
    PositionEmbeddingSine3D,
)


def _code(pos, num_feats, temperature=10000):
    i = torch.arange(num_feats)
    freq = temperature ** (2 * (i // 2) / num_feats)
    angle = pos[:, None] / freq
    return torch.where(i % 2 == 0, angle.sin(), angle.cos())


def test_2d_formula():
    pe = PositionEmbeddingSine(4, normalize=True)
    out = pe(torch.zeros(2, 7, 3, 5))
    assert out.shape == (2, 8, 3, 5)
    rows = torch.arange(1, 4.0) / (3 + 1e-6) * 2 * math.pi
    cols = torch.arange(1, 6.0) / (5 + 1e-6) * 2 * math.pi
    assert torch.allclose(out[1, :4, :, 0].T, _code(rows, 4), atol=1e-6)
    assert torch.allclose(out[0, 4:, 2, :].T, _code(cols, 4), atol=1e-6)


def test_3d_is_spatial_plus_temporal():
    pe3 = PositionEmbeddingSine3D(4, normalize=True)
    out = pe3(torch.zeros(2, 3, 1, 4, 5))
    assert out.shape == (2, 3, 8, 4, 5)
    spatial = PositionEmbeddingSine(4, normalize=True)(torch.zeros(1, 1, 4, 5))[0]
    frames = torch.arange(1, 4.0) / (3 + 1e-6) * 2 * math.pi
    temporal = _code(frames, 8)  # (T, 8): frequencies spaced for the full width
    expected = spatial[None] + temporal[:, :, None, None]
    assert torch.allclose(out[1], expected, atol=1e-6)
    assert not torch.allclose(out[:, 0], out[:, 1])

"""Non-parametric sine position encodings for images (2-D) and videos (3-D).

Shapes: B videos (or N images), T frames, C channels, H x W feature size.

Each coordinate (row, column and, for videos, frame) is normalised to (0, 2*pi] and encoded by
interleaved sines and cosines of geometrically spaced frequencies (DETR). The 2-D encoding is the
concatenation [row code, column code] of ``2 * num_pos_feats`` channels; the 3-D encoding adds a
frame code of the same width to it.
"""

import math

import torch
from torch import nn

# The frequencies are temperature ** (-2i / num_feats) (as in "Attention is all you need").
DEFAULT_TEMPERATURE = 10000
# Guards the normalisation of cumulative positions by the last position.
NORMALIZE_EPS = 1e-6


def _sine_code(position: torch.Tensor, num_feats: int, temperature: float) -> torch.Tensor:
    """Interleaved sine/cosine code of positions.

    Args:
        position (Tensor): (...) float32 positions.
        num_feats (int): F, the width of the code (even).
        temperature (float): base of the frequencies.

    Returns:
        Tensor: (..., F) with sin at even and cos at odd channels.
    """
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=position.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    angles = position[..., None] / dim_t  # (..., F)
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)


def _positions(size: int, normalize: bool, scale: float, device: torch.device) -> torch.Tensor:
    """1-based positions 1..size as float32, optionally rescaled to (0, scale]."""
    position = torch.arange(1, size + 1, dtype=torch.float32, device=device)
    if normalize:
        position = position / (position[-1:] + NORMALIZE_EPS) * scale
    return position


class PositionEmbeddingSine(nn.Module):
    """2-D sine position encoding of a feature map.

    Args:
        num_pos_feats (int): channels per coordinate; the output has ``2 * num_pos_feats``.
        temperature (float): base of the frequencies.
        normalize (bool): rescale positions to (0, scale].
        scale (float, optional): defaults to 2*pi; only allowed with ``normalize``.
    """

    def __init__(
        self,
        num_pos_feats: int = 64,
        temperature: float = DEFAULT_TEMPERATURE,
        normalize: bool = False,
        scale: float = None,
    ):
        super().__init__()
        if scale is not None and not normalize:
            raise ValueError("PositionEmbeddingSine: scale is only used with normalize=True")
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode the positions of ``x``'s pixels (the values of ``x`` are not used).

        Args:
            x (Tensor): (N, C, H, W).

        Returns:
            Tensor: (N, 2 * num_pos_feats, H, W) float32.
        """
        n, _, h, w = x.shape
        rows = _positions(h, self.normalize, self.scale, x.device)
        cols = _positions(w, self.normalize, self.scale, x.device)
        code_y = _sine_code(rows, self.num_pos_feats, self.temperature)  # (H, F)
        code_x = _sine_code(cols, self.num_pos_feats, self.temperature)  # (W, F)
        pos = torch.cat(
            (code_y[:, None, :].expand(h, w, -1), code_x[None, :, :].expand(h, w, -1)), dim=-1
        )  # (H, W, 2F)
        return pos.permute(2, 0, 1)[None].expand(n, -1, -1, -1)


class PositionEmbeddingSine3D(PositionEmbeddingSine):
    """3-D sine position encoding of a video feature volume.

    The spatial code is :class:`PositionEmbeddingSine`'s; the frame code has ``2 * num_pos_feats``
    channels (frequencies spaced for that width) and is added to it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode the positions of ``x``'s voxels (the values of ``x`` are not used).

        Args:
            x (Tensor): (B, T, C, H, W).

        Returns:
            Tensor: (B, T, 2 * num_pos_feats, H, W) float32.
        """
        if x.dim() != 5:
            raise ValueError(
                f"PositionEmbeddingSine3D expects (B, T, C, H, W) input, got shape {tuple(x.shape)}"
            )
        b, t, _, h, w = x.shape
        spatial = super().forward(x[0, :1])[0]  # (2F, H, W)
        frames = _positions(t, self.normalize, self.scale, x.device)
        code_t = _sine_code(frames, 2 * self.num_pos_feats, self.temperature)  # (T, 2F)
        pos = spatial[None] + code_t[:, :, None, None]  # (T, 2F, H, W)
        return pos[None].expand(b, -1, -1, -1, -1)

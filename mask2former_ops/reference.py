"""Pure-PyTorch multi-scale deformable attention (always available; the test oracle).

Shape shorthand (Deformable DETR): N batch, S = sum_l H_l * W_l flattened value positions, M heads,
D channels per head, Lq queries, L levels, P sampling points per head and level.

Sampling follows ``F.grid_sample(..., mode="bilinear", padding_mode="zeros", align_corners=False)``:
the pixel in row i and column j of an H x W map has its centre at ``((j + 0.5) / W, (i + 0.5) / H)``
in (x, y) coordinates, and anything outside the map reads as zero.
"""

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

__all__ = ["ms_deform_attn_pytorch", "compute_dtype_for"]


def compute_dtype_for(value_dtype: torch.dtype) -> torch.dtype:
    """The dtype sampling locations, attention weights and accumulators use for a value dtype.

    float16 / bfloat16 / float32 values compute in float32 (a half-precision location would move a
    sample by up to ~0.05 pixel on a 640-wide map); float64 values compute in float64.
    """
    return torch.float64 if value_dtype == torch.float64 else torch.float32


def _level_shapes(value_spatial_shapes: torch.Tensor) -> List[List[int]]:
    if value_spatial_shapes.dim() != 2 or value_spatial_shapes.shape[1] != 2:
        raise ValueError(
            "value_spatial_shapes must be (L, 2) holding (H, W) per level, got shape "
            f"{tuple(value_spatial_shapes.shape)}"
        )
    return [[int(h), int(w)] for h, w in value_spatial_shapes.tolist()]


def ms_deform_attn_pytorch(
    value: torch.Tensor,
    value_spatial_shapes: torch.Tensor,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
    level_shapes: Optional[Sequence[Tuple[int, int]]] = None,
) -> torch.Tensor:
    """Multi-scale deformable attention with ``F.grid_sample``.

    Computes in ``compute_dtype_for(value.dtype)`` and returns ``value.dtype``.

    Args:
        value (Tensor): (N, S, M, D) values of all levels, flattened level after level.
        value_spatial_shapes (Tensor): (L, 2) long, (H_l, W_l) of each level.
        sampling_locations (Tensor): (N, Lq, M, L, P, 2) normalised (x, y) in [0, 1].
        attention_weights (Tensor): (N, Lq, M, L, P) weight of each sample.
        level_shapes (sequence, optional): the L (H_l, W_l) as Python ints, used instead of
            reading ``value_spatial_shapes`` (they must agree).

    Returns:
        Tensor: (N, Lq, M * D) weighted sums of the bilinear samples.
    """
    n, s, m, d = value.shape
    _, lq, _, num_levels, num_points, _ = sampling_locations.shape
    shapes = _level_shapes(value_spatial_shapes) if level_shapes is None else level_shapes
    concrete = all(isinstance(v, int) for v in (s, *(v for hw in shapes for v in hw)))
    if concrete and sum(h * w for h, w in shapes) != s:  # (symbolic sizes: export checks them)
        raise ValueError(f"value has S={s} positions but value_spatial_shapes sum to {shapes}")
    dtype = compute_dtype_for(value.dtype)

    value_levels = value.to(dtype).split([h * w for h, w in shapes], dim=1)
    # (N, Lq, M, L, P, 2) -> (N, M, Lq, L, P, 2) -> (N*M, Lq, L, P, 2), grid_sample's [-1, 1] range
    grids = (2 * sampling_locations.to(dtype) - 1).transpose(1, 2).flatten(0, 1)
    # (N, Lq, M, L, P) -> (N*M, 1, Lq, L, P)
    weights = attention_weights.to(dtype).transpose(1, 2)
    weights = weights.reshape(n * m, 1, lq, num_levels, num_points)

    output = value.new_zeros((n * m, d, lq), dtype=dtype)
    for level, (h, w) in enumerate(shapes):
        # (N, H*W, M, D) -> (N, M, D, H*W) -> (N*M, D, H, W)
        value_l = value_levels[level].permute(0, 2, 3, 1).reshape(n * m, d, h, w)
        # (N*M, D, Lq, P)
        sampled = F.grid_sample(
            value_l, grids[:, :, level], mode="bilinear", padding_mode="zeros", align_corners=False
        )
        output = output + (sampled * weights[:, :, :, level]).sum(-1)
    # (N*M, D, Lq) -> (N, M*D, Lq) -> (N, Lq, M*D)
    return output.view(n, m * d, lq).transpose(1, 2).contiguous().to(value.dtype)

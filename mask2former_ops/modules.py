"""``MSDeformAttn``: multi-scale deformable attention with the official parameter names.

Shape shorthand: N batch, Lq queries, S = sum_l H_l * W_l flattened input positions, C = d_model
channels, L levels, M heads, P points per head and level.

Parameter names (``sampling_offsets``, ``attention_weights``, ``value_proj``, ``output_proj``),
their shapes and the initialisation follow Deformable DETR / Mask2Former, so official
checkpoints load unchanged.
"""

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .functional import ms_deform_attn

__all__ = ["MSDeformAttn"]


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention layer.

    Each query predicts, per head, level and point, a sampling offset around its reference point
    and an attention weight (softmax over the L * P samples of a head); the output is the weighted
    sum of bilinearly sampled projected values, projected back to ``d_model``.
    """

    def __init__(self, d_model: int = 256, n_levels: int = 4, n_heads: int = 8, n_points: int = 4):
        """
        Args:
            d_model: channels C of queries and values; divisible by ``n_heads``.
            n_levels: number of feature levels L.
            n_heads: number of attention heads M.
            n_points: sampling points P per head and level.
        """
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(
                f"MSDeformAttn: d_model ({d_model}) must be divisible by n_heads ({n_heads})"
            )
        self.d_model = d_model
        self.n_levels = n_levels
        self.n_heads = n_heads
        self.n_points = n_points
        # Which implementation of the op runs: "auto" (by device and what was compiled), or
        # "cuda", "cpu", "pytorch" (e.g. "pytorch" for ONNX export). Not part of the state dict.
        self.implementation = "auto"

        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Official initialisation.

        Offsets start at zero weight and a bias that puts point ``p`` (1-based) of head ``h`` at
        ``p`` pixels along direction ``2 * pi * h / M``, scaled so the larger of |cos|, |sin| is 1;
        attention logits start at zero (uniform weights); the projections are Xavier-uniform with
        zero bias.
        """
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        directions = torch.stack([angles.cos(), angles.sin()], -1)  # (M, 2)
        directions = directions / directions.abs().max(-1, keepdim=True).values
        steps = torch.arange(1, self.n_points + 1, dtype=torch.float32)  # (P,)
        # (M, 1, 1, 2) * (1, 1, P, 1) -> (M, L, P, 2)
        grid = directions[:, None, None, :] * steps[None, None, :, None]
        grid = grid.expand(self.n_heads, self.n_levels, self.n_points, 2)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        input_flatten: torch.Tensor,
        input_spatial_shapes: torch.Tensor,
        input_level_start_index: torch.Tensor,
        input_padding_mask: Optional[torch.Tensor] = None,
        input_level_shapes: Optional[Sequence[Tuple[int, int]]] = None,
    ) -> torch.Tensor:
        """
        Args:
            query (Tensor): (N, Lq, C).
            reference_points (Tensor): (N, Lq, L, 2) normalised (x, y) in [0, 1] with (0, 0) the
                top-left corner of the padded map, or (N, Lq, L, 4) boxes (x, y, w, h).
            input_flatten (Tensor): (N, S, C) the L levels flattened one after another.
            input_spatial_shapes (Tensor): (L, 2) long, (H_l, W_l) of each level.
            input_level_start_index (Tensor): (L,) long, offset of each level in S.
            input_padding_mask (Tensor, optional): (N, S) bool, True at padding positions.
            input_level_shapes (sequence, optional): the L (H_l, W_l) as Python ints, for the
                PyTorch path (which otherwise reads them from ``input_spatial_shapes``).

        Returns:
            Tensor: (N, Lq, C).
        """
        n, lq, _ = query.shape
        _, s, _ = input_flatten.shape
        m, num_levels, num_points = self.n_heads, self.n_levels, self.n_points
        if input_spatial_shapes.shape[0] != num_levels:
            raise ValueError(
                f"MSDeformAttn was built for n_levels={num_levels} but input_spatial_shapes has "
                f"{input_spatial_shapes.shape[0]} levels"
            )

        value = self.value_proj(input_flatten)
        if input_padding_mask is not None:
            value = value.masked_fill(input_padding_mask[..., None], 0.0)
        value = value.view(n, s, m, self.d_model // m)  # (N, S, M, D)

        # Locations and weights are computed in at least float32 (see functional's dtype policy).
        coord_dtype = torch.promote_types(reference_points.dtype, torch.float32)
        offsets = self.sampling_offsets(query).to(coord_dtype)
        offsets = offsets.view(n, lq, m, num_levels, num_points, 2)
        logits = self.attention_weights(query).to(coord_dtype)
        logits = logits.view(n, lq, m, num_levels * num_points)
        weights = F.softmax(logits, -1).view(n, lq, m, num_levels, num_points)

        if reference_points.shape[-1] == 2:
            # offsets are in pixels of each level: divide by (W_l, H_l)
            normalizer = input_spatial_shapes.flip(-1).to(coord_dtype)  # (L, 2) as (W, H)
            locations = (
                reference_points[:, :, None, :, None, :]
                + offsets / normalizer[None, None, None, :, None, :]
            )
        elif reference_points.shape[-1] == 4:
            # offsets are in units of half the box size, spread over the P points
            locations = (
                reference_points[:, :, None, :, None, :2]
                + offsets / num_points * reference_points[:, :, None, :, None, 2:] * 0.5
            )
        else:
            raise ValueError(
                "MSDeformAttn: reference_points must end in 2 (x, y) or 4 (x, y, w, h), got shape "
                f"{tuple(reference_points.shape)}"
            )
        # (N, Lq, M, L, P, 2), (N, Lq, M, L, P)
        output = ms_deform_attn(
            value,
            input_spatial_shapes,
            input_level_start_index,
            locations,
            weights,
            implementation=self.implementation,
            level_shapes=input_level_shapes,
        )
        return self.output_proj(output)

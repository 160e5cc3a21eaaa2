"""Tiny inputs and a loop-based float64 oracle for the deformable-attention tests.

Shape shorthand: N batch, S values, M heads, D channels, Lq queries, L levels, P points.
"""

import math

import torch

# Non-square levels of different sizes; S = 5*7 + 3*4 + 2*2 = 51.
LEVEL_SHAPES = ((5, 7), (3, 4), (2, 2))
N, M, D, LQ, P = 2, 2, 3, 4, 2


def level_tensors(device="cpu"):
    """(L, 2) spatial shapes and (L,) level start index."""
    shapes = torch.tensor(LEVEL_SHAPES, dtype=torch.long, device=device)
    areas = shapes.prod(1)
    starts = torch.cat([areas.new_zeros(1), areas.cumsum(0)[:-1]])
    return shapes, starts


def make_inputs(dtype=torch.float64, device="cpu", seed=0, requires_grad=False):
    """Random value (N, S, M, D), locations (N, Lq, M, L, P, 2) partly outside [0, 1] (one point
    of every (n, q, m, l) far outside), weights (N, Lq, M, L, P) of mixed sign."""
    gen = torch.Generator().manual_seed(seed)
    shapes, starts = level_tensors(device)
    num_values = int(shapes.prod(1).sum())
    num_levels = len(LEVEL_SHAPES)
    value = torch.randn(N, num_values, M, D, generator=gen, dtype=torch.float64)
    locations = torch.rand(N, LQ, M, num_levels, P, 2, generator=gen, dtype=torch.float64)
    locations = locations * 1.5 - 0.25  # about a third of the samples straddle or leave the map
    locations[..., 0, :] = torch.tensor([-0.9, 1.7], dtype=torch.float64)  # entirely outside
    weights = torch.randn(N, LQ, M, num_levels, P, generator=gen, dtype=torch.float64)
    tensors = [t.to(device=device, dtype=dtype) for t in (value, locations, weights)]
    if requires_grad:
        tensors = [t.requires_grad_() for t in tensors]
    value, locations, weights = tensors
    return value, shapes, starts, locations, weights


def loop_reference(value, shapes, starts, locations, weights):
    """Float64 oracle with explicit loops and the bilinear formula (no grid_sample).

    Differentiable in ``value`` and ``weights`` (not in ``locations``).

    A location (x, y) maps to the pixel coordinate (x * W - 0.5, y * H - 0.5); the four
    neighbouring pixels are weighted bilinearly and pixels outside the map are zero.

    Returns:
        Tensor: (N, Lq, M * D) float64.
    """
    value, weights = value.double().cpu(), weights.double().cpu()  # differentiable
    locations = locations.detach().double().cpu()
    n_batch, _, n_heads, channels = value.shape
    _, n_queries, _, n_levels, n_points, _ = locations.shape
    out = torch.zeros(n_batch, n_queries, n_heads, channels, dtype=torch.float64)
    for n in range(n_batch):
        for q in range(n_queries):
            for m in range(n_heads):
                for lvl in range(n_levels):
                    height, width = (int(v) for v in shapes[lvl])
                    start = int(starts[lvl])
                    for p in range(n_points):
                        x, y = (float(v) for v in locations[n, q, m, lvl, p])
                        h = y * height - 0.5
                        w = x * width - 0.5
                        h0, w0 = math.floor(h), math.floor(w)
                        for hi in (h0, h0 + 1):
                            for wi in (w0, w0 + 1):
                                if not (0 <= hi < height and 0 <= wi < width):
                                    continue
                                coef = (1 - abs(h - hi)) * (1 - abs(w - wi))
                                row = value[n, start + hi * width + wi, m]
                                out[n, q, m] += weights[n, q, m, lvl, p] * coef * row
    return out.view(n_batch, n_queries, n_heads * channels)

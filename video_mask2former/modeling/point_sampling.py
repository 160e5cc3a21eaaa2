"""Sampling mask logits at continuous points (PointRend-style), shared by the matcher and the loss.

Shape shorthand in this module:
    N: number of masks (or feature maps) sampled independently
    C: channels of each map (1 for a mask)
    P: number of points
    H x W: the grid the maps are defined on

Point coordinates are ``(x, y)`` pairs in the unit square ``[0, 1] x [0, 1]``: ``(0, 0)`` is the
top-left corner of the top-left pixel, ``(1, 1)`` the bottom-right corner of the bottom-right pixel
(``grid_sample`` with ``align_corners=False``).
"""

from typing import Callable

import torch
import torch.nn.functional as F


def point_sample(input: torch.Tensor, point_coords: torch.Tensor, **kwargs) -> torch.Tensor:
    """Bilinearly sample ``input`` at unit-square points, with ``grid_sample`` semantics.

    Args:
        input (Tensor): (N, C, H, W) maps.
        point_coords (Tensor): (N, P, 2) or (N, Hg, Wg, 2) ``(x, y)`` coordinates in [0, 1].
        **kwargs: passed to :func:`torch.nn.functional.grid_sample` (e.g. ``align_corners=False``,
            ``mode``, ``padding_mode``).

    Returns:
        Tensor: (N, C, P) for (N, P, 2) points, (N, C, Hg, Wg) for grid-shaped points.
    """
    flat_points = point_coords.dim() == 3
    grid = point_coords.unsqueeze(2) if flat_points else point_coords  # (N, P, 1, 2)
    # grid_sample works in [-1, 1]; the points live in [0, 1].
    output = F.grid_sample(input, 2.0 * grid - 1.0, **kwargs)
    return output.squeeze(3) if flat_points else output


def calculate_uncertainty(logits: torch.Tensor) -> torch.Tensor:
    """Uncertainty of class-agnostic mask logits: highest where the logit is closest to 0.

    Args:
        logits (Tensor): (N, 1, ...) mask logits.

    Returns:
        Tensor: (N, 1, ...) ``-|logits|``.
    """
    if logits.shape[1] != 1:
        raise ValueError(
            f"calculate_uncertainty expects (N, 1, ...) logits, got {tuple(logits.shape)}"
        )
    return -torch.abs(logits)


def get_uncertain_point_coords_with_randomness(
    coarse_logits: torch.Tensor,
    uncertainty_func: Callable[[torch.Tensor], torch.Tensor],
    num_points: int,
    oversample_ratio: float,
    importance_sample_ratio: float,
) -> torch.Tensor:
    """Sample points biased towards uncertain regions of each map (PointRend training sampling).

    ``num_points * oversample_ratio`` candidates are drawn uniformly; the
    ``importance_sample_ratio * num_points`` most uncertain of them (uncertainty measured on the
    *interpolated* logits at each candidate) are kept, and the rest of the ``num_points`` are drawn
    uniformly again.

    Args:
        coarse_logits (Tensor): (N, C, H, W) logits (C=1 for class-agnostic masks).
        uncertainty_func: maps (N, C, P) point logits to (N, 1, P) uncertainties (higher = more
            uncertain), e.g. :func:`calculate_uncertainty`.
        num_points (int): P, points returned per map.
        oversample_ratio (float): >= 1, candidates drawn per returned point.
        importance_sample_ratio (float): in [0, 1], share of the P points chosen by uncertainty.

    Returns:
        Tensor: (N, P, 2) point coordinates in [0, 1].
    """
    if oversample_ratio < 1:
        raise ValueError(f"oversample_ratio must be >= 1, got {oversample_ratio}")
    if not 0 <= importance_sample_ratio <= 1:
        raise ValueError(
            f"importance_sample_ratio must be in [0, 1], got {importance_sample_ratio}"
        )
    num_maps = coarse_logits.shape[0]
    device = coarse_logits.device
    num_candidates = int(num_points * oversample_ratio)
    candidates = torch.rand(num_maps, num_candidates, 2, device=device)  # (N, P', 2)
    candidate_logits = point_sample(coarse_logits, candidates, align_corners=False)  # (N, C, P')
    uncertainties = uncertainty_func(candidate_logits)  # (N, 1, P')

    num_uncertain = int(importance_sample_ratio * num_points)
    num_random = num_points - num_uncertain
    top_idx = torch.topk(uncertainties[:, 0, :], k=num_uncertain, dim=1).indices  # (N, P_unc)
    point_coords = torch.gather(candidates, 1, top_idx[..., None].expand(-1, -1, 2))
    if num_random > 0:
        random_coords = torch.rand(num_maps, num_random, 2, device=device)
        point_coords = torch.cat([point_coords, random_coords], dim=1)  # (N, P, 2)
    return point_coords

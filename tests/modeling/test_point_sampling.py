"""point_sample is grid_sample on the unit square; uncertainty sampling picks uncertain points."""

import pytest
import torch
import torch.nn.functional as F

from video_mask2former.modeling.point_sampling import (
    calculate_uncertainty,
    get_uncertain_point_coords_with_randomness,
    point_sample,
)


def test_point_sample_equals_grid_sample():
    torch.manual_seed(0)
    maps = torch.randn(2, 3, 5, 7)
    points = torch.rand(2, 11, 2)
    out = point_sample(maps, points, align_corners=False)
    assert out.shape == (2, 3, 11)
    expected = F.grid_sample(maps, (2 * points - 1)[:, :, None], align_corners=False)[..., 0]
    torch.testing.assert_close(out, expected)


def test_point_sample_pixel_centres_and_grid_points():
    maps = torch.arange(12.0).view(1, 1, 3, 4)
    # pixel (row 1, col 2) has its centre at x=(2+0.5)/4, y=(1+0.5)/3
    centre = torch.tensor([[[2.5 / 4, 1.5 / 3]]])
    assert point_sample(maps, centre, align_corners=False).item() == pytest.approx(6.0)
    # halfway between columns 0 and 1 of row 0
    between = torch.tensor([[[1.0 / 4, 0.5 / 3]]])
    assert point_sample(maps, between, align_corners=False).item() == pytest.approx(0.5)
    # (N, Hg, Wg, 2) points keep their grid shape
    grid = torch.rand(1, 2, 3, 2)
    assert point_sample(maps, grid, align_corners=False).shape == (1, 1, 2, 3)


def test_uncertain_points_prefer_zero_logits():
    # Left half of each map is certain (|logit| = 10), right half uncertain (logit 0).
    logits = torch.full((4, 1, 8, 8), 10.0)
    logits[..., 4:] = 0.0
    torch.manual_seed(0)
    points = get_uncertain_point_coords_with_randomness(
        logits,
        calculate_uncertainty,
        num_points=40,
        oversample_ratio=3,
        importance_sample_ratio=0.75,
    )
    assert points.shape == (4, 40, 2)
    assert ((points >= 0) & (points <= 1)).all()
    importance = points[:, :30]
    # among 120 uniform candidates far more than 30 lie right of x=0.5+1/16 (fully uncertain)
    assert (importance[..., 0] > 0.5).all()


def test_all_random_when_ratio_zero():
    torch.manual_seed(1)
    points = get_uncertain_point_coords_with_randomness(
        torch.zeros(2, 1, 4, 4), calculate_uncertainty, 16, 2, 0.0
    )
    assert points.shape == (2, 16, 2)


def test_invalid_ratios_raise():
    with pytest.raises(ValueError, match="oversample_ratio"):
        get_uncertain_point_coords_with_randomness(
            torch.zeros(1, 1, 4, 4), calculate_uncertainty, 4, 0.5, 0.5
        )
    with pytest.raises(ValueError, match="importance_sample_ratio"):
        get_uncertain_point_coords_with_randomness(
            torch.zeros(1, 1, 4, 4), calculate_uncertainty, 4, 2, 1.5
        )

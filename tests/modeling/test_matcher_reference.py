"""Matching costs and set losses against formulas evaluated independently.

Written to kill the mutants that survived the rest of the suite (a weight, a sign or a normaliser
changed in :mod:`video_mask2former.modeling.matcher` / :mod:`~.criterion` without any test
noticing). Expected values come from the textbook formulas evaluated here with plain tensor ops
(BCE as ``-t log s - (1 - t) log(1 - s)``, dice as ``1 - (2 p.t + 1) / (|p| + |t| + 1)``) and from
a brute-force assignment.
"""

import itertools
import math

import pytest
import torch

from video_mask2former.modeling import criterion as criterion_module
from video_mask2former.modeling.criterion import VideoSetCriterion
from video_mask2former.modeling.matcher import VideoHungarianMatcher

Q, N, T, K = 3, 2, 2, 4
G = 4  # mask grid (G x G); points at pixel centres sample the pixel values exactly


def _pixel_centre_points(ys, xs):
    """(1, P, 2) normalised (x, y) points at the centres of pixels (ys[i], xs[i])."""
    return torch.tensor([[[(x + 0.5) / G, (y + 0.5) / G] for y, x in zip(ys, xs)]])


def _bce(x, t):
    s = torch.sigmoid(x.double())
    return -(t * torch.log(s) + (1 - t) * torch.log(1 - s))


def _dice(x, t):
    p = torch.sigmoid(x.double())
    return 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)


def test_cost_matrix_is_the_weighted_sum_of_the_three_costs():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(Q, K + 1, generator=gen)
    pred = torch.randn(Q, T, G, G, generator=gen) * 3
    gt = (torch.rand(N, T, G, G, generator=gen) > 0.5).float()
    labels = torch.tensor([2, 0])
    ys, xs = [0, 1, 3, 2, 0], [0, 2, 3, 1, 3]
    points = _pixel_centre_points(ys, xs)
    matcher = VideoHungarianMatcher(cost_class=2.0, cost_mask=5.0, cost_dice=3.0, num_points=5)
    cost = matcher.cost_matrix(logits, pred, labels, gt, points)
    probs = torch.softmax(logits.double(), -1)
    for q in range(Q):
        for n in range(N):
            x = pred[q][:, ys, xs].flatten()  # (T*P,) every frame on the same points
            t = gt[n][:, ys, xs].flatten().double()
            expected = (
                -2.0 * probs[q, labels[n]] + 5.0 * _bce(x, t).mean() + 3.0 * _dice(x, t)
            ).item()
            assert cost[q, n].item() == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_match_video_is_the_minimum_cost_assignment():
    gen = torch.Generator().manual_seed(1)
    matcher = VideoHungarianMatcher(num_points=16)
    for _ in range(3):
        logits = torch.randn(Q, K + 1, generator=gen) * 3
        pred = torch.randn(Q, T, G, G, generator=gen) * 3
        target = {"labels": torch.tensor([1, 3]), "masks": torch.rand(N, T, G, G, generator=gen)}
        torch.manual_seed(5)
        queries, instances = matcher.match_video(logits, pred, target)
        torch.manual_seed(5)
        points = torch.rand(1, 16, 2)  # the points the matcher drew
        cost = matcher.cost_matrix(logits, pred, target["labels"], target["masks"], points)
        best = min(
            itertools.permutations(range(Q), N),
            key=lambda qs: sum(cost[q, n] for n, q in enumerate(qs)),
        )
        assert dict(zip(instances.tolist(), queries.tolist())) == dict(enumerate(best))
        assert queries.tolist() == sorted(queries.tolist())


def _criterion(eos_coef=0.25, losses=("labels", "masks"), matches=None):
    def matcher(outputs, targets):
        return [
            (torch.tensor(q, dtype=torch.int64), torch.tensor(n, dtype=torch.int64))
            for q, n in matches
        ]

    return VideoSetCriterion(
        num_classes=K, matcher=matcher, weight_dict={}, eos_coef=eos_coef, losses=losses,
        num_points=6, oversample_ratio=3.0, importance_sample_ratio=0.75,
    )  # fmt: skip


def test_losses_equal_the_formulas_on_uniform_masks(monkeypatch):
    """Uniform logits and targets per frame, sampled at pixel centres (the importance sampling is
    tested in test_point_sampling): the losses follow from the formulas, normalised by the
    number of instances."""
    calls = []

    def centre_points(masks, uncertainty, num_points, oversample, importance):
        calls.append((masks.shape, num_points, oversample, importance))
        return _pixel_centre_points([0, 1, 2, 3, 1, 2], [3, 2, 1, 0, 1, 2]).expand(
            len(masks), -1, -1
        )

    monkeypatch.setattr(
        criterion_module, "get_uncertain_point_coords_with_randomness", centre_points
    )
    # video 0: instance 0 (class 1) <- query 2
    # video 1: instances 0, 1 (classes 3, 0) <- queries 0, 1
    matches = [([2], [0]), ([0, 1], [0, 1])]
    logits = torch.randn(2, Q, K + 1, generator=torch.Generator().manual_seed(2))
    frame_logit = torch.tensor([[0.0, 0.0, 1.5], [-2.0, 0.5, 0.0]])  # (B, Q) per query
    pred = frame_logit[:, :, None, None, None].expand(2, Q, T, G, G).clone()
    pred[0, 2, 1] = -1.0  # frame 1 of the matched query of video 0 differs
    targets = [
        {"labels": torch.tensor([1]), "masks": torch.ones(1, T, G, G)},
        {"labels": torch.tensor([3, 0]), "masks": torch.stack([torch.ones(T, G, G),
                                                               torch.zeros(T, G, G)])},
    ]  # fmt: skip
    outputs = {"pred_logits": logits, "pred_masks": pred}
    losses = _criterion(matches=matches)(outputs, targets)

    # cross-entropy with class weights: no-object (K) weighs eos_coef
    target_classes = torch.full((2, Q), K)
    target_classes[0, 2], target_classes[1, 0], target_classes[1, 1] = 1, 3, 0
    log_probs = torch.log_softmax(logits.double(), -1)
    weights = torch.where(target_classes == K, 0.25, 1.0).double()
    picked = log_probs.gather(-1, target_classes[..., None])[..., 0]
    expected_ce = -(weights * picked).sum() / weights.sum()
    assert losses["loss_ce"].item() == pytest.approx(expected_ce.item(), rel=1e-5)

    # (logit, target) of every matched frame; each frame is a mask of 6 identical points
    frames = [(1.5, 1.0), (-1.0, 1.0), (-2.0, 1.0), (-2.0, 1.0), (0.5, 0.0), (0.5, 0.0)]
    num_masks = 3  # instances in the batch
    bce = sum(_bce(torch.tensor(x), t).item() for x, t in frames) / num_masks
    dice = sum(_dice(torch.full((6,), x), torch.full((6,), t)).item() for x, t in frames)
    assert losses["loss_mask"].item() == pytest.approx(bce, rel=1e-5)
    assert losses["loss_dice"].item() == pytest.approx(dice / num_masks, rel=1e-5)
    assert calls == [(torch.Size([3 * T, 1, G, G]), 6, 3.0, 0.75)]  # every frame is one mask


def test_no_instance_anywhere_gives_zero_mask_losses_and_all_no_object_labels():
    logits = torch.randn(1, Q, K + 1, generator=torch.Generator().manual_seed(3))
    pred = torch.randn(1, Q, T, G, G, requires_grad=True)
    targets = [{"labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, T, G, G)}]
    losses = _criterion(matches=[([], [])])({"pred_logits": logits, "pred_masks": pred}, targets)
    assert losses["loss_mask"].item() == 0.0 and losses["loss_dice"].item() == 0.0
    expected_ce = -torch.log_softmax(logits[0].double(), -1)[:, K].mean()  # all weights eos
    assert losses["loss_ce"].item() == pytest.approx(expected_ce.item(), rel=1e-5)
    assert math.isfinite(losses["loss_ce"].item())

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


def test_one_instance_is_matched_to_its_cheapest_query():
    """N = 1 (the smallest non-empty target) takes the assignment path too."""
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(Q, K + 1, generator=gen) * 3
    pred = torch.randn(Q, T, G, G, generator=gen) * 3
    target = {"labels": torch.tensor([2]), "masks": torch.rand(1, T, G, G, generator=gen)}
    matcher = VideoHungarianMatcher(num_points=16)
    torch.manual_seed(7)
    queries, instances = matcher.match_video(logits, pred, target)
    torch.manual_seed(7)
    cost = matcher.cost_matrix(
        logits, pred, target["labels"], target["masks"], torch.rand(1, 16, 2)
    )
    assert instances.tolist() == [0] and queries.tolist() == [int(cost[:, 0].argmin())]


def test_class_cost_of_low_precision_logits_is_computed_in_float32():
    """bf16 logits (autocast) give the cost of their float32 values: the softmax runs in float32
    (in bf16 the probabilities would keep about 3 significant digits)."""
    gen = torch.Generator().manual_seed(3)
    logits = (torch.randn(Q, K + 1, generator=gen) * 3).bfloat16()
    pred = torch.randn(Q, T, G, G, generator=gen) * 3
    gt = (torch.rand(N, T, G, G, generator=gen) > 0.5).float()
    labels, points = torch.tensor([1, 3]), torch.rand(1, 8, 2, generator=gen)
    matcher = VideoHungarianMatcher(cost_class=2.0, cost_mask=5.0, cost_dice=5.0)
    cost = matcher.cost_matrix(logits, pred, labels, gt, points)
    expected = matcher.cost_matrix(logits.float(), pred, labels, gt, points)
    assert cost.dtype == torch.float32
    torch.testing.assert_close(cost, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "weights", [(0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 2.0, 2.0)]
)
def test_any_non_zero_cost_weight_is_enough(weights):
    matcher = VideoHungarianMatcher(
        cost_class=weights[0], cost_mask=weights[1], cost_dice=weights[2]
    )
    assert (matcher.cost_class, matcher.cost_mask, matcher.cost_dice) == weights


def test_all_cost_weights_zero_is_refused():
    with pytest.raises(ValueError, match="at least one non-zero cost weight"):
        VideoHungarianMatcher(cost_class=0.0, cost_mask=0.0, cost_dice=0.0)


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


def test_one_instance_with_a_detailed_mask_is_sampled_at_the_points(monkeypatch):
    """One instance in the whole batch (the smallest non-empty case) whose target differs from
    pixel to pixel: its points read exactly the target pixels they fall in (pixel centres, no
    interpolation), and the mask losses follow from the formulas."""
    ys, xs = [0, 1, 2, 3, 1, 2], [3, 2, 1, 0, 1, 2]
    monkeypatch.setattr(
        criterion_module,
        "get_uncertain_point_coords_with_randomness",
        lambda masks, *args: _pixel_centre_points(ys, xs).expand(len(masks), -1, -1),
    )
    gen = torch.Generator().manual_seed(4)
    gt = torch.zeros(1, T, G, G)
    gt[0, 0, :2, 2:] = 1  # frame 0: a corner block; frame 1: one column
    gt[0, 1, :, 1] = 1
    pred = torch.randn(1, Q, T, G, G, generator=gen) * 2
    targets = [{"labels": torch.tensor([2]), "masks": gt}]
    outputs = {"pred_logits": torch.randn(1, Q, K + 1, generator=gen), "pred_masks": pred}
    losses = _criterion(matches=[([1], [0])])(outputs, targets)
    bce = dice = 0.0
    for t in range(T):
        x, target = pred[0, 1, t][ys, xs], gt[0, t][ys, xs].double()
        bce += _bce(x, target).mean().item()
        dice += _dice(x, target).item()
    assert losses["loss_mask"].item() == pytest.approx(bce, rel=1e-5)  # num_masks = 1
    assert losses["loss_dice"].item() == pytest.approx(dice, rel=1e-5)


def test_class_loss_of_low_precision_logits_is_computed_in_float32():
    """bf16 logits (autocast) give the cross-entropy of their float32 values."""
    logits = (torch.randn(2, Q, K + 1, generator=torch.Generator().manual_seed(5)) * 3).bfloat16()
    targets = [{"labels": torch.tensor([1]), "masks": torch.ones(1, T, G, G)}] * 2
    outputs = {"pred_logits": logits, "pred_masks": torch.zeros(2, Q, T, G, G)}
    criterion = _criterion(losses=("labels",), matches=[([0], [0]), ([2], [0])])
    got = criterion(outputs, targets)["loss_ce"]
    expected = criterion(dict(outputs, pred_logits=logits.float()), targets)["loss_ce"]
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


# Mutants of the matcher and criterion that no test here kills, and why:
# - cost_matrix without ``pred_points.float()`` / ``gt_points.float()``: the points are sampled by
#   grid_sample, which autocast runs in float32, so they are float32 already; bf16 masks outside
#   autocast do not reach these lines (grid_sample refuses bf16 masks with float32 points).
# - VideoSetCriterion._num_masks without ``float(...)`` around the instance count: the tensor is
#   built with dtype=torch.float anyway (equivalent).
# - _num_masks without ``torch.distributed.all_reduce``, or multiplying by the world size instead
#   of dividing: only two processes can tell; tests/d2/test_distributed.py runs two (it is not
#   part of the mutation runs, which take seconds per mutant).

"""VideoHungarianMatcher: obvious assignments, empty videos, batch invariance, shared points."""

import torch

from video_mask2former.modeling.criterion import (
    dice_loss,
    pairwise_dice_cost,
    pairwise_sigmoid_ce_cost,
    sigmoid_ce_loss,
)
from video_mask2former.modeling.matcher import VideoHungarianMatcher

Q, K, T, H, W = 5, 3, 2, 32, 32


def _video(perm, labels, generator):
    """Queries whose masks / classes are ``perm``-shuffled copies of the targets (perfect match)."""
    n = len(labels)
    coarse = (torch.rand(n, T, H // 8, W // 8, generator=generator) > 0.5).float()
    masks = coarse.repeat_interleave(8, dim=2).repeat_interleave(8, dim=3)  # 8x8 blocks
    logits = torch.full((Q, K + 1), -5.0)
    logits[:, K] = 5.0  # everything "no object" ...
    pred_masks = torch.full((Q, T, H // 4, W // 4), -8.0)
    small = masks[:, :, ::4, ::4]  # nearest downsample of the targets
    for inst, query in enumerate(perm):
        logits[query] = -5.0
        logits[query, labels[inst]] = 5.0  # ... except the matching queries
        pred_masks[query] = (small[inst] * 2 - 1) * 8.0
    target = {"labels": torch.tensor(labels, dtype=torch.int64), "masks": masks}
    return logits, pred_masks, target


def test_finds_obvious_assignment():
    g = torch.Generator().manual_seed(0)
    logits, masks, target = _video([3, 0, 4], [2, 0, 1], g)
    matcher = VideoHungarianMatcher(num_points=200)
    ((src, tgt),) = matcher({"pred_logits": logits[None], "pred_masks": masks[None]}, [target])
    assert src.dtype == tgt.dtype == torch.int64
    assert dict(zip(tgt.tolist(), src.tolist())) == {0: 3, 1: 0, 2: 4}


def test_mask_cost_alone_separates_same_class_instances():
    # Two instances of the same class: only the masks can tell them apart.
    g = torch.Generator().manual_seed(1)
    logits, masks, target = _video([1, 2], [0, 0], g)
    matcher = VideoHungarianMatcher(cost_class=0.0, num_points=500)
    ((src, tgt),) = matcher({"pred_logits": logits[None], "pred_masks": masks[None]}, [target])
    assert dict(zip(tgt.tolist(), src.tolist())) == {0: 1, 1: 2}


def test_empty_targets_give_empty_matches():
    outputs = {"pred_logits": torch.randn(2, Q, K + 1), "pred_masks": torch.randn(2, Q, T, 8, 8)}
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, T, H, W)}
    g = torch.Generator().manual_seed(2)
    _, _, full = _video([0, 1], [1, 2], g)
    indices = VideoHungarianMatcher(num_points=50)(outputs, [empty, full])
    assert [len(s) for s, _ in indices] == [0, 2]
    assert indices[0][0].dtype == torch.int64


def test_batch_invariance():
    # Matching a video alone equals matching it inside a batch (same random points).
    torch.manual_seed(3)
    outputs = {"pred_logits": torch.randn(3, Q, K + 1), "pred_masks": torch.randn(3, Q, T, 8, 8)}
    targets = [
        {"labels": torch.randint(0, K, (n,)), "masks": (torch.rand(n, T, H, W) > 0.5).float()}
        for n in (2, 0, 4)
    ]
    matcher = VideoHungarianMatcher(num_points=64)
    torch.manual_seed(10)
    batched = matcher(outputs, targets)
    torch.manual_seed(10)
    alone = []
    for b in range(3):
        alone += matcher(
            {
                "pred_logits": outputs["pred_logits"][b : b + 1],
                "pred_masks": outputs["pred_masks"][b : b + 1],
            },
            targets[b : b + 1],
        )
    for (s1, t1), (s2, t2) in zip(batched, alone):
        assert torch.equal(s1, s2) and torch.equal(t1, t2)


def test_clip_is_compared_as_one_3d_mask_on_shared_points():
    # Frame 0: left half foreground; frame 1: top half. A query right in both frames costs ~0,
    # one right in frame 0 only costs clearly more.
    gt = torch.zeros(1, T, H, W)
    gt[0, 0, :, : W // 2] = 1
    gt[0, 1, : H // 2, :] = 1
    good = (gt[0] * 2 - 1) * 20
    bad = good.clone()
    bad[1] = -bad[1]
    pred = torch.stack([good, bad])  # (2, T, H, W)
    points = torch.rand(1, 300, 2)
    matcher = VideoHungarianMatcher(cost_class=0.0, num_points=300)
    cost = matcher.cost_matrix(torch.zeros(2, K + 1), pred, torch.tensor([0]), gt, points)
    assert cost.shape == (2, 1)
    assert cost[0, 0] < 1.0 and cost[1, 0] > 10 * cost[0, 0]

    # Same value as sampling every frame at the same points and concatenating the frames.
    def sample(masks):  # (n, T, H, W) -> (n, T*P)
        per_frame = [
            torch.nn.functional.grid_sample(
                masks[:, t : t + 1],
                (2 * points - 1)[:, :, None].expand(len(masks), -1, -1, -1),
                align_corners=False,
            )
            for t in range(T)
        ]
        return torch.cat([f.flatten(1) for f in per_frame], dim=1)

    expected = 5.0 * pairwise_sigmoid_ce_cost(sample(pred), sample(gt)) + 5.0 * pairwise_dice_cost(
        sample(pred), sample(gt)
    )
    torch.testing.assert_close(cost, expected)


def test_pairwise_costs_are_the_elementwise_losses():
    torch.manual_seed(5)
    logits = torch.randn(4, 30)
    targets = (torch.rand(3, 30) > 0.5).float()
    ce = pairwise_sigmoid_ce_cost(logits, targets)
    dice = pairwise_dice_cost(logits, targets)
    assert ce.shape == dice.shape == (4, 3)
    for i in range(4):
        for j in range(3):
            torch.testing.assert_close(
                ce[i, j], sigmoid_ce_loss(logits[i : i + 1], targets[j : j + 1], 1.0)
            )
            torch.testing.assert_close(
                dice[i, j], dice_loss(logits[i : i + 1], targets[j : j + 1], 1.0)
            )

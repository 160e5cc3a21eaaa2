"""VideoSetCriterion: loss keys with deep supervision, empty videos, gradients, normalisation."""

import math

import pytest
import torch

from video_mask2former.modeling.criterion import VideoSetCriterion, dice_loss, sigmoid_ce_loss
from video_mask2former.modeling.matcher import VideoHungarianMatcher

B, Q, K, T, H, W = 2, 5, 3, 2, 32, 32
NUM_AUX = 2
WEIGHTS = {"loss_ce": 2.0, "loss_mask": 5.0, "loss_dice": 5.0}


def _criterion(**kwargs):
    args = dict(
        num_classes=K,
        matcher=VideoHungarianMatcher(num_points=64),
        weight_dict=WEIGHTS,
        eos_coef=0.1,
        num_points=64,
        oversample_ratio=3.0,
        importance_sample_ratio=0.75,
    )
    args.update(kwargs)
    return VideoSetCriterion(**args)


def _outputs(seed=0):
    g = torch.Generator().manual_seed(seed)

    def layer():
        return {
            "pred_logits": torch.randn(B, Q, K + 1, generator=g).requires_grad_(),
            "pred_masks": torch.randn(B, Q, T, H // 4, W // 4, generator=g).requires_grad_(),
        }

    outputs = layer()
    outputs["aux_outputs"] = [layer() for _ in range(NUM_AUX)]
    return outputs


def _target(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "labels": torch.randint(0, K, (n,), generator=g),
        "ids": torch.arange(n)[:, None].repeat(1, T),
        "masks": torch.rand(n, T, H, W, generator=g) > 0.5,
    }


def test_keys_finite_and_empty_weight():
    criterion = _criterion()
    assert criterion.empty_weight.tolist() == pytest.approx([1, 1, 1, 0.1])
    assert "empty_weight" in criterion.state_dict()
    losses = criterion(_outputs(), [_target(2, 1), _target(3, 2)])
    expected = {f"loss_{n}{s}" for n in ("ce", "mask", "dice") for s in ["", "_0", "_1"]}
    assert set(losses) == expected
    for name, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), name


def test_gradients_reach_logits_and_masks():
    outputs = _outputs()
    losses = _criterion()(outputs, [_target(2, 1), _target(1, 2)])
    sum(losses.values()).backward()
    for layer in [outputs] + outputs["aux_outputs"]:
        assert layer["pred_logits"].grad.abs().sum() > 0
        assert layer["pred_masks"].grad.abs().sum() > 0


def test_video_without_instances():
    outputs = _outputs()
    empty = _target(0)
    # one empty video in a batch: finite, and the other video still gives mask losses
    losses = _criterion()(outputs, [empty, _target(2, 3)])
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_mask"] > 0
    # no instance anywhere: mask losses are exactly zero, class loss pushes to "no object"
    losses = _criterion()(outputs, [empty, _target(0)])
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_mask"] == 0 and losses["loss_dice_1"] == 0
    logits = outputs["pred_logits"]
    expected_ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.full((B * Q,), K))
    torch.testing.assert_close(losses["loss_ce"], expected_ce)
    sum(losses.values()).backward()  # graph stays connected
    assert outputs["pred_masks"].grad is not None


def test_perfect_prediction_has_small_losses():
    torch.manual_seed(0)  # fix the point draw: the dice bound depends on how many hit the edges
    target = _target(2, 4)
    target["masks"] = torch.zeros(2, T, H, W, dtype=torch.bool)
    target["masks"][0, :, :16] = True  # top half
    target["masks"][1, :, 16:] = True  # bottom half
    logits = torch.full((1, Q, K + 1), -10.0)
    logits[..., K] = 10.0
    masks = torch.full((1, Q, T, H, W), -20.0)
    for q, inst in ((1, 0), (3, 1)):
        logits[0, q] = -10.0
        logits[0, q, target["labels"][inst]] = 10.0
        masks[0, q] = target["masks"][inst].float() * 40 - 20
    losses = _criterion(losses=("labels", "masks"))(
        {"pred_logits": logits, "pred_masks": masks}, [target]
    )
    assert losses["loss_ce"] < 1e-3
    # Importance sampling puts most points on the boundary rows, where interpolated logits are ~0,
    # so the "perfect" losses are small but not zero: a point's sigmoid-CE is at most ln 2 there,
    # and the mask loss sums the T frames of an instance. Swapping the two masks makes them large.
    assert losses["loss_dice"] < 0.3 and losses["loss_mask"] <= T * math.log(2) + 1e-3
    assert "loss_ce_0" not in losses
    masks[0, [1, 3]] = masks[0, [3, 1]]
    swapped = _criterion(matcher=VideoHungarianMatcher(cost_mask=0.0, cost_dice=0.0))(
        {"pred_logits": logits, "pred_masks": masks}, [target]
    )
    assert swapped["loss_dice"] > 1.5 and swapped["loss_mask"] > 10


def test_num_masks_normalisation_and_labels_only():
    assert VideoSetCriterion._num_masks([_target(2), _target(3)], torch.device("cpu")) == 5.0
    assert VideoSetCriterion._num_masks([_target(0)], torch.device("cpu")) == 1.0  # clamped
    # Duplicating the batch leaves the class loss unchanged (class-only matching is deterministic).
    outputs = {k: v for k, v in _outputs().items() if k != "aux_outputs"}
    target = _target(2, 5)
    single = {k: v[:1] for k, v in outputs.items()}
    double = {k: torch.cat([v[:1], v[:1]]) for k, v in outputs.items()}
    matcher = VideoHungarianMatcher(cost_mask=0.0, cost_dice=0.0)
    criterion = _criterion(matcher=matcher, losses=("labels",))
    one = criterion(single, [target])
    two = criterion(double, [target, target])
    assert set(one) == {"loss_ce"}
    torch.testing.assert_close(one["loss_ce"], two["loss_ce"])


def test_elementwise_losses():
    logits = torch.tensor([[0.0, 0.0], [10.0, -10.0]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert sigmoid_ce_loss(logits, targets, 2.0).item() == pytest.approx(math.log(2) / 2, rel=1e-3)
    # row 0: p = (0.5, 0.5): 1 - (2 * 0.5 + 1) / (1 + 1 + 1) = 1/3; row 1 ~ 0
    assert dice_loss(logits, targets, 1.0).item() == pytest.approx(1 / 3, abs=1e-3)


def test_rejects_unknown_loss_and_batch_mismatch():
    with pytest.raises(ValueError, match="boxes"):
        _criterion(losses=("labels", "boxes"))
    with pytest.raises(ValueError, match="targets"):
        _criterion()(_outputs(), [_target(1)])


def test_ignored_points_do_not_count():
    # Same matches, uniformly drawn points (no importance sampling, so the points do not depend on
    # the predictions): predictions changed only inside the ignored region leave the mask losses
    # unchanged; an all-False ignore equals no ignore at all.
    criterion = _criterion(importance_sample_ratio=0.0)
    targets = [_target(2, 1), _target(3, 2)]
    indices = [(torch.tensor([0, 3]), torch.tensor([1, 0])), (torch.tensor([4]), torch.tensor([2]))]
    ignore = torch.zeros(T, H, W, dtype=torch.bool)
    ignore[:, :, : W // 2] = True  # the left half of every frame
    with_ignore = [dict(t, ignore=ignore) for t in targets]

    def mask_losses(outputs, targets):
        torch.manual_seed(0)
        losses = criterion.loss_masks(outputs, targets, indices, num_masks=3.0)
        return {k: v.item() for k, v in losses.items()}

    outputs = _outputs()
    changed = {"pred_masks": outputs["pred_masks"].detach().clone()}
    # Low-resolution columns 0..2 of 8 only influence points left of x = 3.5 / 8 < 1/2 (bilinear).
    changed["pred_masks"][..., :3] = 7.0
    base = mask_losses(outputs, with_ignore)
    assert base == pytest.approx(mask_losses(changed, with_ignore), rel=1e-6)
    assert base != pytest.approx(mask_losses(outputs, targets), rel=1e-3)
    assert mask_losses(changed, targets) != pytest.approx(mask_losses(outputs, targets), rel=1e-3)
    nothing = [dict(t, ignore=torch.zeros(T, H, W, dtype=torch.bool)) for t in targets]
    assert mask_losses(outputs, nothing) == pytest.approx(mask_losses(outputs, targets), rel=1e-6)


def test_weighted_losses_mean_over_kept_points():
    logits = torch.tensor([[2.0, -1.0, 5.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    keep = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert sigmoid_ce_loss(logits, labels, 1.0, keep).item() == pytest.approx(
        sigmoid_ce_loss(logits[:, :2], labels[:, :2], 1.0).item()
    )
    assert dice_loss(logits, labels, 1.0, keep).item() == pytest.approx(
        dice_loss(logits[:, :2], labels[:, :2], 1.0).item()
    )
    # A row with no kept point contributes nothing.
    assert sigmoid_ce_loss(logits, labels, 1.0, torch.zeros_like(keep)).item() == 0.0

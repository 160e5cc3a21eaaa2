"""Set-prediction losses of Video Mask2Former: class cross-entropy plus point-sampled mask losses.

Shape shorthand in this module:
    B: videos in the batch          T: frames per clip
    Q: queries                       K: classes (index K is "no object")
    N: ground-truth instances        M: masks compared (rows), P: points per mask
    h x w: predicted mask grid       Hp x Wp: padded ground-truth mask grid

The mask losses exist here once, in two forms side by side: *elementwise* (row i of the logits
against row i of the targets; used by the loss) and *pairwise* (every logit row against every target
row; used as matching cost by :class:`~video_mask2former.modeling.matcher.VideoHungarianMatcher`).
"""

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .point_sampling import (
    calculate_uncertainty,
    get_uncertain_point_coords_with_randomness,
    point_sample,
)

# (src_idx (n,), tgt_idx (n,)) matched query / instance indices of one video
Indices = Tuple[torch.Tensor, torch.Tensor]


# ----------------------------------------------------------------------------- mask losses
def dice_loss(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    num_masks: float,
    weights: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Dice loss of each logit row against its own target row, summed and normalised.

    Args:
        inputs (Tensor): (M, P) logits.
        targets (Tensor): (M, P) float targets in [0, 1].
        num_masks (float): normaliser (instances in the batch).
        weights (Tensor, optional): (M, P) 0/1, points to leave out (0) of the sums.

    Returns:
        Tensor: scalar ``sum_i (1 - (2 <p_i, t_i> + 1) / (|p_i| + |t_i| + 1)) / num_masks``.
    """
    probs = inputs.sigmoid().flatten(1)
    if weights is not None:
        probs, targets = probs * weights, targets * weights
    numerator = 2 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    loss = 1 - (numerator + 1) / (denominator + 1)
    return loss.sum() / num_masks


def pairwise_dice_cost(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Dice loss of every logit row against every target row (pairwise :func:`dice_loss`).

    Args:
        inputs (Tensor): (Q, P) logits.
        targets (Tensor): (N, P) float targets in [0, 1].

    Returns:
        Tensor: (Q, N) dice losses.
    """
    probs = inputs.sigmoid().flatten(1)
    numerator = 2 * probs @ targets.T  # (Q, N)
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def sigmoid_ce_loss(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    num_masks: float,
    weights: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Binary cross-entropy of each logit row against its target row, averaged over points.

    Args:
        inputs (Tensor): (M, P) logits.
        targets (Tensor): (M, P) float targets in [0, 1].
        num_masks (float): normaliser (instances in the batch).
        weights (Tensor, optional): (M, P) 0/1; the mean is then over the points of weight 1
            (a row with none contributes 0).

    Returns:
        Tensor: scalar ``sum_i mean_p BCE(x_ip, t_ip) / num_masks``.
    """
    loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    if weights is not None:
        return ((loss * weights).sum(1) / weights.sum(1).clamp(min=1)).sum() / num_masks
    return loss.mean(1).sum() / num_masks


def pairwise_sigmoid_ce_cost(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean BCE of every logit row against every target row (the pairwise :func:`sigmoid_ce_loss`).

    Uses ``BCE(x, t) = softplus(x) - t * x``, so the (Q, N) matrix is one matrix product.

    Args:
        inputs (Tensor): (Q, P) logits.
        targets (Tensor): (N, P) float targets in [0, 1].

    Returns:
        Tensor: (Q, N) point-averaged BCE.
    """
    num_points = inputs.shape[1]
    bce_negative = F.softplus(inputs).sum(-1)  # (Q,) sum_p BCE(x_qp, 0)
    return (bce_negative[:, None] - inputs @ targets.T) / num_points


# ----------------------------------------------------------------------------- criterion
def _is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


class VideoSetCriterion(nn.Module):
    """Hungarian-matched set losses for clip-level queries, with deep supervision.

    For the last decoder layer and each entry of ``outputs["aux_outputs"]`` the matcher assigns
    queries to ground-truth instances; then

    * ``loss_ce``: cross-entropy over K+1 classes for all queries (unmatched ones target "no
      object", weighted by ``eos_coef``);
    * ``loss_mask`` / ``loss_dice``: sigmoid-CE and dice between each matched query's mask and its
      instance's mask, frame by frame, on ``num_points`` points per frame chosen by uncertainty
      importance sampling; normalised by the number of instances in the (global) batch.

    Losses of auxiliary output ``i`` get the suffix ``_i``. Losses are returned unweighted;
    ``weight_dict`` is kept for the caller (the meta-architecture multiplies by it).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        matcher: nn.Module,
        weight_dict: Mapping[str, float],
        eos_coef: float,
        losses: Sequence[str] = ("labels", "masks"),
        num_points: int,
        oversample_ratio: float,
        importance_sample_ratio: float,
    ):
        """
        Args:
            num_classes (int): K, object classes without "no object".
            matcher (nn.Module): called as ``matcher(outputs, targets)`` -> list of B
                ``(src_idx, tgt_idx)`` pairs, e.g. a ``VideoHungarianMatcher``.
            weight_dict (dict): loss name -> weight (applied by the caller).
            eos_coef (float): class weight of "no object" in ``loss_ce``.
            losses (sequence of str): subset of ``("labels", "masks")``.
            num_points (int): points per frame for the mask losses.
            oversample_ratio (float): candidates per point in importance sampling (>= 1).
            importance_sample_ratio (float): share of points chosen by uncertainty, in [0, 1].
        """
        super().__init__()
        unknown = set(losses) - {"labels", "masks"}
        if unknown:
            raise ValueError(f"Unknown losses {sorted(unknown)}; expected 'labels' and/or 'masks'")
        self.num_classes = num_classes
        self.matcher = matcher
        self.weight_dict = dict(weight_dict)
        self.eos_coef = eos_coef
        self.losses = tuple(losses)
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer("empty_weight", empty_weight)
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio

    # -- individual losses ---------------------------------------------------------------------
    def loss_labels(
        self, outputs: Dict, targets: List[Dict], indices: List[Indices], num_masks: float
    ) -> Dict[str, torch.Tensor]:
        """``loss_ce`` from ``outputs["pred_logits"]`` (B, Q, K+1)."""
        logits = outputs["pred_logits"].float()
        batch_idx, src_idx = self._src_permutation_idx(indices)
        target_classes = torch.full(
            logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device
        )  # (B, Q), default "no object"
        matched_labels = [
            t["labels"][tgt].to(logits.device) for t, (_, tgt) in zip(targets, indices)
        ]
        target_classes[batch_idx, src_idx] = torch.cat(matched_labels)
        loss_ce = F.cross_entropy(logits.transpose(1, 2), target_classes, self.empty_weight)
        return {"loss_ce": loss_ce}

    def loss_masks(
        self, outputs: Dict, targets: List[Dict], indices: List[Indices], num_masks: float
    ) -> Dict[str, torch.Tensor]:
        """``loss_mask`` and ``loss_dice`` from ``outputs["pred_masks"]`` (B, Q, T, h, w)."""
        pred_masks = outputs["pred_masks"]
        batch_idx, src_idx = self._src_permutation_idx(indices)
        if batch_idx.numel() == 0:
            # No instance anywhere in the batch: zero losses that keep the graph connected.
            zero = pred_masks.sum() * 0.0
            return {"loss_mask": zero, "loss_dice": zero.clone()}
        src_masks = pred_masks[batch_idx, src_idx]  # (n, T, h, w)
        tgt_masks = torch.cat(
            [t["masks"][tgt].to(src_masks) for t, (_, tgt) in zip(targets, indices)]
        )  # (n, T, Hp, Wp)

        # Every frame of every matched instance is one mask: (n*T, 1, h, w). Coordinates are
        # normalised, so predictions and targets need not share a resolution.
        src_masks = src_masks.flatten(0, 1)[:, None]
        tgt_masks = tgt_masks.flatten(0, 1)[:, None]
        with torch.no_grad():
            point_coords = get_uncertain_point_coords_with_randomness(
                src_masks,
                calculate_uncertainty,
                self.num_points,
                self.oversample_ratio,
                self.importance_sample_ratio,
            )  # (n*T, P, 2)
            point_labels = point_sample(tgt_masks, point_coords, align_corners=False).squeeze(1)
        point_logits = point_sample(src_masks, point_coords, align_corners=False).squeeze(1)
        weights = self._point_weights(targets, indices, point_coords)
        if weights is not None:
            return {
                "loss_mask": sigmoid_ce_loss(point_logits, point_labels, num_masks, weights),
                "loss_dice": dice_loss(point_logits, point_labels, num_masks, weights),
            }
        return {
            "loss_mask": sigmoid_ce_loss(point_logits, point_labels, num_masks),
            "loss_dice": dice_loss(point_logits, point_labels, num_masks),
        }

    @staticmethod
    def _point_weights(
        targets: List[Dict], indices: List[Indices], point_coords: torch.Tensor
    ) -> Optional[torch.Tensor]:
        """(n*T, P) float: 0 at sampled points inside a target's ``ignore`` region (void, crowd,
        padding of panoptic / semantic targets), 1 elsewhere; None when no target has one."""
        if all("ignore" not in t for t in targets):
            return None
        maps = []
        for t, (_, tgt) in zip(targets, indices):
            num_frames = t["masks"].shape[1]
            ignore = t.get("ignore")
            if ignore is None:
                ignore = torch.zeros((num_frames, 1, 1), dtype=torch.bool)
                ignore = ignore.expand(num_frames, *t["masks"].shape[-2:])
            ignore = ignore.to(point_coords.device).float()  # (T, Hp, Wp)
            maps.append(ignore[None].expand(len(tgt), -1, -1, -1))  # (n_b, T, Hp, Wp)
        ignore = torch.cat(maps).flatten(0, 1)[:, None]  # (n*T, 1, Hp, Wp)
        # Nearest sampling: a point is ignored when the pixel it falls in is.
        sampled = point_sample(ignore, point_coords, mode="nearest", align_corners=False)
        return 1.0 - sampled.squeeze(1)

    # -- driver --------------------------------------------------------------------------------
    def forward(self, outputs: Dict, targets: List[Dict]) -> Dict[str, torch.Tensor]:
        """Compute all losses for the last layer and every auxiliary output.

        Args:
            outputs (dict): ``"pred_logits"`` (B, Q, K+1), ``"pred_masks"`` (B, Q, T, h, w), and
                optionally ``"aux_outputs"``: a list of dicts with the same two keys.
            targets (list[dict]): B dicts with ``"labels"`` (N,) int64 and ``"masks"``
                (N, T, Hp, Wp) float/bool (N may be 0).

        Returns:
            dict[str, Tensor]: scalar unweighted losses ``loss_ce``, ``loss_mask``,
            ``loss_dice`` and, for auxiliary output i, the same names with suffix ``_i``.
        """
        if len(targets) != outputs["pred_logits"].shape[0]:
            raise ValueError(
                f"VideoSetCriterion: got {len(targets)} targets for a batch of "
                f"{outputs['pred_logits'].shape[0]} videos"
            )
        last = {k: v for k, v in outputs.items() if k != "aux_outputs"}
        num_masks = self._num_masks(targets, outputs["pred_logits"].device)

        losses = self._losses_for(last, targets, num_masks, suffix="")
        for i, aux in enumerate(outputs.get("aux_outputs", [])):
            losses.update(self._losses_for(aux, targets, num_masks, suffix=f"_{i}"))
        return losses

    def _losses_for(
        self, outputs: Dict, targets: List[Dict], num_masks: float, suffix: str
    ) -> Dict[str, torch.Tensor]:
        indices = self.matcher(outputs, targets)
        losses = {}
        for name in self.losses:
            loss_fn = self.loss_labels if name == "labels" else self.loss_masks
            losses.update(loss_fn(outputs, targets, indices, num_masks))
        return {k + suffix: v for k, v in losses.items()}

    @staticmethod
    def _num_masks(targets: List[Dict], device: torch.device) -> float:
        """Instances per process, averaged over processes when distributed, at least 1."""
        num_masks = torch.as_tensor(
            [float(sum(len(t["labels"]) for t in targets))], dtype=torch.float, device=device
        )
        world_size = 1
        if _is_distributed():
            torch.distributed.all_reduce(num_masks)
            world_size = torch.distributed.get_world_size()
        return torch.clamp(num_masks / world_size, min=1).item()

    @staticmethod
    def _src_permutation_idx(indices: List[Indices]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Flatten per-video matches to (video index (n,), query index (n,))."""
        batch_idx = torch.cat([torch.full_like(src, b) for b, (src, _) in enumerate(indices)])
        src_idx = torch.cat([src for src, _ in indices])
        return batch_idx, src_idx

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, eos_coef={self.eos_coef}, losses={self.losses},\n"
            f"weight_dict={self.weight_dict},\nnum_points={self.num_points}, "
            f"oversample_ratio={self.oversample_ratio}, "
            f"importance_sample_ratio={self.importance_sample_ratio}"
        )

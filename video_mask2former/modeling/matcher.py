"""Hungarian matching of clip-level queries to ground-truth video instances.

Shape shorthand in this module:
    B: videos      T: frames per clip      Q: queries      K: classes (K+1 with "no object")
    N: ground-truth instances of a video   P: sampled points per frame
    h x w: predicted mask grid             Hp x Wp: padded ground-truth mask grid
"""

from typing import Dict, List, Tuple

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from .criterion import pairwise_dice_cost, pairwise_sigmoid_ce_cost
from .point_sampling import point_sample


class VideoHungarianMatcher(nn.Module):
    """One-to-one assignment of queries to instances minimising class + mask costs.

    For each video, independently of the rest of the batch:

    * class cost: ``-softmax(pred_logits)[q, label_n]``;
    * mask costs: point-averaged sigmoid-CE and dice between query and instance masks over the
      whole clip, evaluated at ``num_points`` random points drawn once per video and shared by all
      queries, instances and frames (so each mask is compared on T*P values).

    The total cost ``cost_class * C_class + cost_mask * C_mask + cost_dice * C_dice`` is solved
    with :func:`scipy.optimize.linear_sum_assignment`. Queries left unmatched are "no object".
    """

    def __init__(
        self,
        *,
        cost_class: float = 2.0,
        cost_mask: float = 5.0,
        cost_dice: float = 5.0,
        num_points: int = 12544,
    ):
        """
        Args:
            cost_class (float): weight of the class-probability cost.
            cost_mask (float): weight of the sigmoid-CE mask cost.
            cost_dice (float): weight of the dice mask cost.
            num_points (int): P, random points per video (12544 = 112 * 112 officially).
        """
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("VideoHungarianMatcher needs at least one non-zero cost weight")
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.num_points = num_points

    @torch.no_grad()
    def forward(
        self, outputs: Dict[str, torch.Tensor], targets: List[Dict[str, torch.Tensor]]
    ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Match every video of the batch.

        Args:
            outputs (dict): ``"pred_logits"`` (B, Q, K+1) and ``"pred_masks"`` (B, Q, T, h, w).
            targets (list[dict]): B dicts with ``"labels"`` (N,) int64 and ``"masks"``
                (N, T, Hp, Wp) float or bool; N may be 0.

        Returns:
            list[tuple[Tensor, Tensor]]: per video, ``(query_idx, instance_idx)``, both (min(Q, N),)
            int64 on the CPU, ``query_idx`` sorted ascending.
        """
        return [
            self.match_video(logits, masks, target)
            for logits, masks, target in zip(outputs["pred_logits"], outputs["pred_masks"], targets)
        ]

    @torch.no_grad()
    def match_video(
        self, pred_logits: torch.Tensor, pred_masks: torch.Tensor, target: Dict[str, torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Match one video; see :meth:`forward`.

        Args:
            pred_logits (Tensor): (Q, K+1) class logits.
            pred_masks (Tensor): (Q, T, h, w) mask logits.
            target (dict): ``"labels"`` (N,), ``"masks"`` (N, T, Hp, Wp).

        Returns:
            tuple[Tensor, Tensor]: (n,) query indices and (n,) instance indices, n = min(Q, N).
        """
        # One set of points for the whole video, drawn even when there is nothing to match so
        # that the random stream does not depend on the targets (as in the official code).
        points = torch.rand(1, self.num_points, 2, device=pred_masks.device)  # (1, P, 2)
        labels = target["labels"]
        if labels.numel() == 0:
            empty = torch.zeros(0, dtype=torch.int64)
            return empty, empty.clone()
        cost = self.cost_matrix(pred_logits, pred_masks, labels, target["masks"], points)
        query_idx, instance_idx = linear_sum_assignment(cost.cpu().numpy())
        return (
            torch.as_tensor(query_idx, dtype=torch.int64),
            torch.as_tensor(instance_idx, dtype=torch.int64),
        )

    def cost_matrix(
        self,
        pred_logits: torch.Tensor,
        pred_masks: torch.Tensor,
        labels: torch.Tensor,
        gt_masks: torch.Tensor,
        points: torch.Tensor,
    ) -> torch.Tensor:
        """Weighted total matching cost of one video.

        Args:
            pred_logits (Tensor): (Q, K+1) class logits.
            pred_masks (Tensor): (Q, T, h, w) mask logits.
            labels (Tensor): (N,) int64 instance classes.
            gt_masks (Tensor): (N, T, Hp, Wp) instance masks.
            points (Tensor): (1, P, 2) points in [0, 1], shared by all queries, instances and
                frames: every mask is compared on its T*P sampled values.

        Returns:
            Tensor: (Q, N) float32 cost.
        """
        cost_class = -pred_logits.float().softmax(-1)[:, labels.to(pred_logits.device)]  # (Q, N)

        num_queries, num_instances = pred_masks.shape[0], gt_masks.shape[0]
        # (N, T, Hp, Wp) sampled at (N, P, 2) -> (N, T, P) -> (N, T*P)
        gt_points = point_sample(
            gt_masks.to(pred_masks), points.expand(num_instances, -1, -1), align_corners=False
        ).flatten(1)
        pred_points = point_sample(
            pred_masks, points.expand(num_queries, -1, -1), align_corners=False
        ).flatten(
            1
        )  # (Q, T*P)

        # Costs in fp32 even under autocast.
        with torch.autocast(device_type=pred_masks.device.type, enabled=False):
            pred_points = pred_points.float()
            gt_points = gt_points.float()
            cost_mask = pairwise_sigmoid_ce_cost(pred_points, gt_points)
            cost_dice = pairwise_dice_cost(pred_points, gt_points)
        return (
            self.cost_class * cost_class + self.cost_mask * cost_mask + self.cost_dice * cost_dice
        )

    def extra_repr(self) -> str:
        return (
            f"cost_class={self.cost_class}, cost_mask={self.cost_mask}, "
            f"cost_dice={self.cost_dice}, num_points={self.num_points}"
        )

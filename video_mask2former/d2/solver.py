"""Optimizer of the trainer: AdamW / SGD over detectron2's parameter groups.

Parameter groups (``get_default_optimizer_params``): ``SOLVER.BASE_LR`` and
``SOLVER.WEIGHT_DECAY`` by default; the backbone's learning rate times
``SOLVER.BACKBONE_MULTIPLIER``; ``SOLVER.WEIGHT_DECAY_NORM`` for normalisation layers,
``SOLVER.WEIGHT_DECAY_EMBED`` for ``nn.Embedding`` weights (queries, level embeddings) and no
decay for Swin's ``relative_position_bias_table`` / ``absolute_pos_embed``.

Gradient clipping: ``SOLVER.CLIP_GRADIENTS.CLIP_TYPE: "full_model"`` clips the norm of all
gradients together (the official setting, not offered by detectron2); "value" and "norm"
(per parameter) go through detectron2's ``maybe_add_gradient_clipping``.
"""

import itertools
from typing import Any, Dict, List, Type

import torch
from detectron2.solver.build import (
    get_default_optimizer_params,
    maybe_add_gradient_clipping,
    reduce_param_groups,
)
from torch import nn

__all__ = ["build_param_groups", "build_optimizer", "NO_DECAY_PARAM_NAMES"]

# Parameter names (last part of the key) trained without weight decay (Swin position tables).
NO_DECAY_PARAM_NAMES = ("relative_position_bias_table", "absolute_pos_embed")
# Top-level module whose parameters get SOLVER.BACKBONE_MULTIPLIER.
BACKBONE_PREFIX = "backbone"
FULL_MODEL = "full_model"


def build_param_groups(cfg, model: nn.Module) -> List[Dict[str, Any]]:
    """Optimizer parameter groups (see the module docstring); frozen parameters are left out."""
    solver = cfg.SOLVER

    def lr_factor(name: str) -> float:
        # ``name`` is "<module>.<param>"; the backbone is the model's ``backbone`` attribute.
        return solver.BACKBONE_MULTIPLIER if name.split(".")[0] == BACKBONE_PREFIX else 1.0

    groups = get_default_optimizer_params(
        model,
        base_lr=solver.BASE_LR,
        weight_decay=solver.WEIGHT_DECAY,
        weight_decay_norm=solver.WEIGHT_DECAY_NORM,
        lr_factor_func=lr_factor,
        overrides={name: {"weight_decay": 0.0} for name in NO_DECAY_PARAM_NAMES},
    )
    embeddings = {
        id(p)
        for module in model.modules()
        if isinstance(module, nn.Embedding)
        for p in module.parameters(recurse=False)
    }
    split = []
    for group in groups:
        hyper = {k: v for k, v in group.items() if k != "params"}
        rest = [p for p in group["params"] if id(p) not in embeddings]
        embed = [p for p in group["params"] if id(p) in embeddings]
        if rest:
            split.append({**hyper, "params": rest})
        if embed:
            split.append({**hyper, "params": embed, "weight_decay": solver.WEIGHT_DECAY_EMBED})
    return reduce_param_groups(split)


def _with_full_model_clipping(
    optimizer_type: Type[torch.optim.Optimizer], max_norm: float, norm_type: float
) -> Type[torch.optim.Optimizer]:
    """``optimizer_type`` whose ``step`` first clips the total gradient norm of all groups."""

    class FullModelGradientClipping(optimizer_type):
        def step(self, closure=None):
            params = itertools.chain.from_iterable(g["params"] for g in self.param_groups)
            torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type)
            return super().step(closure)

    FullModelGradientClipping.__name__ = f"{optimizer_type.__name__}WithFullModelGradientClip"
    return FullModelGradientClipping


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer named by ``SOLVER.OPTIMIZER`` ("ADAMW" or "SGD") with gradient clipping."""
    solver = cfg.SOLVER
    name = solver.OPTIMIZER
    if name == "ADAMW":
        optimizer_type, kwargs = torch.optim.AdamW, {}
    elif name == "SGD":
        optimizer_type, kwargs = torch.optim.SGD, {"momentum": solver.MOMENTUM}
    else:
        raise ValueError(f"SOLVER.OPTIMIZER={name!r} is not supported; use 'ADAMW' or 'SGD'.")
    clip = solver.CLIP_GRADIENTS
    full_model = clip.ENABLED and clip.CLIP_TYPE == FULL_MODEL
    if full_model and clip.CLIP_VALUE > 0:
        optimizer_type = _with_full_model_clipping(optimizer_type, clip.CLIP_VALUE, clip.NORM_TYPE)
    optimizer = optimizer_type(build_param_groups(cfg, model), lr=solver.BASE_LR, **kwargs)
    if not full_model:
        optimizer = maybe_add_gradient_clipping(cfg, optimizer)
    return optimizer

"""Optimizer parameter groups and full-model gradient clipping."""

import pytest
import torch
from torch import nn

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2


def _cfg(**solver):
    from tests.d2.helpers import SMOKE_CONFIG, video_cfg

    opts = []
    for key, value in solver.items():
        opts += [f"SOLVER.{key}", value]
    return video_cfg(SMOKE_CONFIG, opts)


def _group_of(optimizer):
    return {id(p): g for g in optimizer.param_groups for p in g["params"]}


def test_param_groups_of_the_video_model():
    from detectron2.modeling import build_model

    from video_mask2former.d2.solver import build_optimizer

    cfg = _cfg(
        BASE_LR=1e-3,
        WEIGHT_DECAY=0.05,
        BACKBONE_MULTIPLIER=0.1,
        WEIGHT_DECAY_NORM=0.0,
        WEIGHT_DECAY_EMBED=0.02,
    )
    model = build_model(cfg)
    optimizer = build_optimizer(cfg, model)
    assert isinstance(optimizer, torch.optim.AdamW)
    group = _group_of(optimizer)
    assert len(group) == sum(1 for p in model.parameters() if p.requires_grad)

    norm_types = (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d)
    for module_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            g = group[id(p)]
            expected_lr = 1e-3 * (0.1 if module_name.startswith("backbone") else 1.0)
            assert g["lr"] == pytest.approx(expected_lr), f"{module_name}.{name}"
            if isinstance(module, norm_types):
                assert g["weight_decay"] == 0.0, f"{module_name}.{name}"
            elif isinstance(module, nn.Embedding):
                assert g["weight_decay"] == 0.02, f"{module_name}.{name}"
            else:
                assert g["weight_decay"] == 0.05, f"{module_name}.{name}"
    predictor = model.sem_seg_head.predictor
    assert group[id(predictor.query_feat.weight)]["weight_decay"] == 0.02
    assert group[id(predictor.decoder_norm.weight)]["weight_decay"] == 0.0


def test_swin_position_tables_have_no_weight_decay():
    from video_mask2former.d2.registration import D2SwinTransformer
    from video_mask2former.d2.solver import build_param_groups

    cfg = _cfg(WEIGHT_DECAY=0.05, BACKBONE_MULTIPLIER=0.5, BASE_LR=1.0)
    cfg.MODEL.SWIN.EMBED_DIM = 16
    cfg.MODEL.SWIN.DEPTHS = [1, 1, 1, 1]
    cfg.MODEL.SWIN.NUM_HEADS = [1, 1, 1, 1]
    cfg.MODEL.SWIN.APE = True
    from detectron2.layers import ShapeSpec

    model = nn.Module()
    model.backbone = D2SwinTransformer(cfg, ShapeSpec(channels=3))
    groups = build_param_groups(cfg, model)
    by_param = {id(p): g for g in groups for p in g["params"]}
    for name, p in model.named_parameters():
        g = by_param[id(p)]
        assert g["lr"] == 0.5, name
        no_decay = name.endswith(("relative_position_bias_table", "absolute_pos_embed"))
        is_norm = ".norm" in name or name.startswith("backbone.norm")
        if no_decay or is_norm:
            assert g["weight_decay"] == 0.0, name
    assert any(n.endswith("absolute_pos_embed") for n, _ in model.named_parameters())


def test_full_model_gradient_clipping():
    from video_mask2former.d2.solver import build_optimizer

    cfg = _cfg(BASE_LR=1.0, WEIGHT_DECAY=0.0, OPTIMIZER="SGD", MOMENTUM=0.0)
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "full_model"
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 0.5
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = build_optimizer(cfg, model)
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)
    optimizer.step()
    steps = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, model.parameters())])
    # One clip over all parameters: the total step norm is CLIP_VALUE, every entry equal.
    assert steps.norm().item() == pytest.approx(0.5, rel=1e-4)
    assert torch.allclose(steps, steps[0].expand_as(steps))


def test_unknown_optimizer_is_named():
    from video_mask2former.d2.solver import build_optimizer

    with pytest.raises(ValueError, match="LAMB"):
        build_optimizer(_cfg(OPTIMIZER="LAMB"), nn.Linear(2, 2))

"""MSDeformAttn module (official parameter names, shapes, initialisation) and the op's dispatch."""

import math
import warnings

import pytest
import torch

import mask2former_ops
from mask2former_ops import MSDeformAttn, functional
from tests.ops.helpers import level_tensors, loop_reference, make_inputs

D_MODEL, LEVELS, HEADS, POINTS = 32, 3, 4, 2


def _module_inputs(batch=2, queries=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shapes, starts = level_tensors()
    num_values = int(shapes.prod(1).sum())
    query = torch.randn(batch, queries, D_MODEL, generator=gen)
    reference = torch.rand(batch, queries, LEVELS, 2, generator=gen)
    flat = torch.randn(batch, num_values, D_MODEL, generator=gen)
    return query, reference, flat, shapes, starts


def test_parameter_names_and_shapes_match_the_official_layout():
    module = MSDeformAttn(d_model=D_MODEL, n_levels=LEVELS, n_heads=HEADS, n_points=POINTS)
    shapes = {name: tuple(p.shape) for name, p in module.state_dict().items()}
    assert shapes == {
        "sampling_offsets.weight": (HEADS * LEVELS * POINTS * 2, D_MODEL),
        "sampling_offsets.bias": (HEADS * LEVELS * POINTS * 2,),
        "attention_weights.weight": (HEADS * LEVELS * POINTS, D_MODEL),
        "attention_weights.bias": (HEADS * LEVELS * POINTS,),
        "value_proj.weight": (D_MODEL, D_MODEL),
        "value_proj.bias": (D_MODEL,),
        "output_proj.weight": (D_MODEL, D_MODEL),
        "output_proj.bias": (D_MODEL,),
    }


def test_initialisation_matches_the_official_one():
    module = MSDeformAttn(d_model=D_MODEL, n_levels=LEVELS, n_heads=HEADS, n_points=POINTS)
    assert torch.count_nonzero(module.sampling_offsets.weight) == 0
    bias = module.sampling_offsets.bias.view(HEADS, LEVELS, POINTS, 2)
    for head in range(HEADS):
        angle = 2 * math.pi * head / HEADS
        direction = torch.tensor([math.cos(angle), math.sin(angle)])
        direction = direction / direction.abs().max()
        for point in range(POINTS):
            expected = (direction * (point + 1)).expand(LEVELS, 2)
            torch.testing.assert_close(bias[head, :, point], expected)
    assert torch.count_nonzero(module.attention_weights.weight) == 0
    assert torch.count_nonzero(module.attention_weights.bias) == 0
    for proj in (module.value_proj, module.output_proj):
        assert torch.count_nonzero(proj.bias) == 0
        bound = math.sqrt(6.0 / (2 * D_MODEL))  # xavier_uniform
        assert proj.weight.abs().max() <= bound and proj.weight.std() > bound / 4


def test_output_shape_and_uniform_attention_at_init():
    module = MSDeformAttn(d_model=D_MODEL, n_levels=LEVELS, n_heads=HEADS, n_points=POINTS)
    query, reference, flat, shapes, starts = _module_inputs()
    out = module(query, reference, flat, shapes, starts)
    assert out.shape == query.shape
    # with zero offset weights and zero logits the op sees the bias offsets and weights 1/(L*P)
    n, lq, s = query.shape[0], query.shape[1], flat.shape[1]
    value = module.value_proj(flat).view(n, s, HEADS, D_MODEL // HEADS)
    offsets = module.sampling_offsets.bias.view(1, 1, HEADS, LEVELS, POINTS, 2)
    normaliser = shapes.flip(-1)[None, None, None, :, None]  # (W, H) per level
    locations = reference[:, :, None, :, None, :] + offsets / normaliser
    weights = torch.full((n, lq, HEADS, LEVELS, POINTS), 1.0 / (LEVELS * POINTS))
    expected = module.output_proj(loop_reference(value, shapes, starts, locations, weights).float())
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_box_reference_points_and_padding_mask():
    module = MSDeformAttn(d_model=D_MODEL, n_levels=LEVELS, n_heads=HEADS, n_points=POINTS)
    query, reference, flat, shapes, starts = _module_inputs()
    boxes = torch.cat([reference, torch.full_like(reference, 0.2)], -1)  # (N, Lq, L, 4)
    assert module(query, boxes, flat, shapes, starts).shape == query.shape
    # padded positions are zeroed: changing their features does not change the output
    mask = torch.zeros(flat.shape[:2], dtype=torch.bool)
    mask[:, 10:30] = True
    changed = flat.clone()
    changed[:, 10:30] += 100.0
    torch.testing.assert_close(
        module(query, reference, flat, shapes, starts, mask),
        module(query, reference, changed, shapes, starts, mask),
    )
    with pytest.raises(ValueError, match="reference_points must end in 2"):
        module(query, reference[..., :1], flat, shapes, starts)


def test_rejects_d_model_not_divisible_by_heads():
    with pytest.raises(ValueError, match="divisible"):
        MSDeformAttn(d_model=30, n_heads=4)


def test_official_state_dict_loads_strictly():
    source = MSDeformAttn(d_model=D_MODEL, n_levels=LEVELS, n_heads=HEADS, n_points=POINTS)
    target = MSDeformAttn(d_model=D_MODEL, n_levels=LEVELS, n_heads=HEADS, n_points=POINTS)
    state = {k: torch.randn_like(v) for k, v in source.state_dict().items()}
    target.load_state_dict(state, strict=True)
    torch.testing.assert_close(target.value_proj.weight, state["value_proj.weight"])


def test_introspection_is_consistent():
    assert isinstance(mask2former_ops.is_compiled(), bool)
    assert isinstance(mask2former_ops.cuda_kernels_built(), bool)
    if not mask2former_ops.is_compiled():
        assert not mask2former_ops.cuda_kernels_built()
        assert mask2former_ops.extension_import_error() is not None
    if mask2former_ops.cuda_available():
        assert mask2former_ops.cuda_kernels_built() and torch.cuda.is_available()


def test_without_extension_falls_back_and_warns_once(monkeypatch):
    monkeypatch.setattr(functional, "_C", None)
    monkeypatch.setattr(functional, "_C_IMPORT_ERROR", "simulated: no module named _C")
    monkeypatch.setattr(functional, "_fallback_warned", False)
    monkeypatch.setattr(functional, "CPU_PREFERS_COMPILED", True)
    assert not mask2former_ops.is_compiled() and not mask2former_ops.cuda_kernels_built()
    assert mask2former_ops.available_implementations("cpu") == ["pytorch"]
    assert mask2former_ops.available_implementations("cuda") == ["pytorch"]
    inputs = make_inputs(torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = mask2former_ops.ms_deform_attn(*inputs)
        second = mask2former_ops.ms_deform_attn(*inputs)
    slow = [w for w in caught if "pure-PyTorch path" in str(w.message)]
    assert len(slow) == 1 and "simulated" in str(slow[0].message)
    torch.testing.assert_close(first, loop_reference(*inputs))
    torch.testing.assert_close(first, second)
    with pytest.raises(ValueError, match="cannot run on cpu"):
        mask2former_ops.ms_deform_attn(*inputs, implementation="cpu")


def test_compiled_cpu_path_does_not_warn(monkeypatch):
    if not mask2former_ops.is_compiled():
        pytest.skip("mask2former_ops._C is not built")
    monkeypatch.setattr(functional, "_fallback_warned", False)
    monkeypatch.setattr(functional, "CPU_PREFERS_COMPILED", True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mask2former_ops.ms_deform_attn(*make_inputs(torch.float32))

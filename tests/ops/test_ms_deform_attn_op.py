"""The multi-scale deformable attention op on CPU: every implementation against a loop oracle."""

import pytest
import torch

import mask2former_ops
from mask2former_ops import MSDeformAttn, functional
from mask2former_ops.functional import available_implementations, ms_deform_attn
from mask2former_ops.reference import ms_deform_attn_pytorch
from tests.ops.helpers import LEVEL_SHAPES, level_tensors, loop_reference, make_inputs

CPU_IMPLS = [impl for impl in ("pytorch", "cpu") if impl in available_implementations("cpu")]


def _run(impl, inputs):
    value, shapes, starts, locations, weights = inputs
    return ms_deform_attn(value, shapes, starts, locations, weights, implementation=impl)


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_forward_matches_loop_reference_float64(impl):
    inputs = make_inputs(torch.float64)
    out = _run(impl, inputs)
    assert out.shape == (2, 4, 2 * 3) and out.dtype == torch.float64
    torch.testing.assert_close(out, loop_reference(*inputs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_forward_float32_close_to_reference(impl):
    inputs = make_inputs(torch.float32)
    out = _run(impl, inputs)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), loop_reference(*inputs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_points_outside_the_map_contribute_nothing(impl):
    value, shapes, starts, locations, weights = make_inputs(torch.float64)
    locations = torch.full_like(locations, 1.6)  # every sample beyond the bottom-right corner
    out = ms_deform_attn(value, shapes, starts, locations, weights, implementation=impl)
    assert torch.count_nonzero(out) == 0
    # half a pixel beyond the edge still sees the edge pixel with bilinear weight 1/2
    height, width = LEVEL_SHAPES[0]
    locations = torch.full_like(locations, -10.0)
    locations[:, :, :, 0, 0] = torch.tensor([0.5 / width, -0.0 / height], dtype=torch.float64)
    weights = torch.zeros_like(weights)
    weights[:, :, :, 0, 0] = 1.0
    out = ms_deform_attn(value, shapes, starts, locations, weights, implementation=impl)
    expected = 0.5 * value[:, 0].reshape(2, 1, -1).expand_as(out)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_gradcheck_float64(impl):
    inputs = make_inputs(torch.float64, requires_grad=True)
    value, shapes, starts, locations, weights = inputs

    def fn(v, loc, w):
        return ms_deform_attn(v, shapes, starts, loc, w, implementation=impl)

    assert torch.autograd.gradcheck(fn, (value, locations, weights), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_gradients_match_loop_reference(impl):
    inputs = make_inputs(torch.float64, requires_grad=True)
    value, shapes, starts, locations, weights = inputs
    grad_output = torch.randn(2, 4, 6, dtype=torch.float64)
    got_value, got_locations, got_weights = torch.autograd.grad(
        _run(impl, inputs), (value, locations, weights), grad_output
    )
    # the oracle is linear in value and weights: autograd through its loops is exact
    ref_value, ref_weights = torch.autograd.grad(
        loop_reference(*inputs), (value, weights), grad_output
    )
    torch.testing.assert_close(got_value, ref_value, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got_weights, ref_weights, rtol=1e-10, atol=1e-12)
    # locations: central differences of the oracle on the samples of the first (n, q)
    eps = 1e-6
    num_checked = locations[0, 0].numel()
    flat = locations.detach().reshape(-1)
    for i in range(num_checked):
        diffs = []
        for sign in (1.0, -1.0):
            shifted = flat.clone()
            shifted[i] += sign * eps
            out = loop_reference(value, shapes, starts, shifted.view_as(locations), weights)
            diffs.append((out * grad_output).sum().item())
        numeric = (diffs[0] - diffs[1]) / (2 * eps)
        assert got_locations.reshape(-1)[i].item() == pytest.approx(numeric, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 2e-3), (torch.bfloat16, 1e-2)])
def test_half_values_keep_subpixel_locations(impl, dtype, tol):
    """Locations stay float32 for half values: rounding x to float16 would move a sample by up to
    0.16 pixel on this 640-wide map, i.e. up to 0.16 in the output of a 0/1 striped row."""
    width = 640
    shapes = torch.tensor([[1, width]])
    starts = torch.tensor([0])
    stripes = (torch.arange(width) % 2).double()  # (W,)
    value = stripes.view(1, width, 1, 1).to(dtype)  # (N=1, S=W, M=1, D=1)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 64, 1, 1, 1, generator=gen) * 0.9 + 0.05  # (N, Lq, M, L, P)
    locations = torch.stack([x, torch.full_like(x, 0.5)], -1)  # (N, Lq, M, L, P, 2) float32
    weights = torch.ones_like(x)
    out = ms_deform_attn(value, shapes, starts, locations, weights, implementation=impl)
    assert out.dtype == dtype
    expected = loop_reference(value, shapes, starts, locations, weights)
    assert (out.double() - expected).abs().max().item() < tol


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_gradients_have_input_dtypes(impl, dtype):
    value, shapes, starts, locations, weights = make_inputs(dtype, requires_grad=True)
    out = ms_deform_attn(value, shapes, starts, locations, weights, implementation=impl)
    assert out.dtype == dtype
    grads = torch.autograd.grad(out.float().sum(), (value, locations, weights))
    assert [g.dtype for g in grads] == [dtype] * 3
    ref = torch.autograd.grad(
        loop_reference(value, shapes, starts, locations, weights).sum(), (value, weights)
    )
    tol = 2e-2 if dtype == torch.float16 else 6e-2
    torch.testing.assert_close(grads[0].double(), ref[0].double(), rtol=tol, atol=tol)
    torch.testing.assert_close(grads[2].double(), ref[1].double(), rtol=tol, atol=tol)


def test_compiled_and_pytorch_paths_agree_float32():
    if "cpu" not in CPU_IMPLS:
        pytest.skip("mask2former_ops._C is not built")
    inputs = make_inputs(torch.float32, requires_grad=True, seed=3)
    outs = [_run(impl, inputs) for impl in ("cpu", "pytorch")]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    grads = [torch.autograd.grad(o.sum(), (inputs[0], inputs[3], inputs[4])) for o in outs]
    for got, ref in zip(*grads):
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def test_bad_shapes_raise_with_the_expected_shape():
    value, shapes, starts, locations, weights = make_inputs(torch.float32)
    with pytest.raises(ValueError, match="attention_weights must be"):
        ms_deform_attn(value, shapes, starts, locations, weights[..., :1])
    with pytest.raises(ValueError, match="sampling_locations must be"):
        ms_deform_attn(value, shapes, starts, locations[:, :, :1], weights)
    with pytest.raises(ValueError, match="implementation"):
        ms_deform_attn(value, shapes, starts, locations, weights, implementation="triton")


def test_auto_uses_the_preferred_cpu_path():
    if not functional.is_compiled():
        pytest.skip("mask2former_ops._C is not built")
    expected = "cpu" if functional.CPU_PREFERS_COMPILED else "pytorch"
    assert functional.select_implementation("cpu") == expected


requires_compiled_op = pytest.mark.skipif(
    not mask2former_ops.is_compiled() or not hasattr(torch.library, "custom_op"),
    reason="needs mask2former_ops._C and torch >= 2.4 (torch.library.custom_op)",
)


@requires_compiled_op
def test_compiled_op_passes_torch_library_opcheck():
    """Schema, fake (meta) implementation, autograd registration and dispatch are consistent."""
    value, shapes, starts, locations, weights = make_inputs(torch.float32, requires_grad=True)
    torch.library.opcheck(
        torch.ops.mask2former_ops.ms_deform_attn.default,
        (value, shapes, starts, locations, weights),
    )


@requires_compiled_op
def test_torch_compile_captures_the_op_without_graph_breaks():
    value, shapes, starts, locations, weights = make_inputs(torch.float32)

    def fn(v, loc, w):
        return ms_deform_attn(v, shapes, starts, loc, w, implementation="cpu").square().sum()

    leaves = [t.clone().requires_grad_() for t in (value, locations, weights)]
    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True)  # raises on a graph break
    got = torch.autograd.grad(compiled(*leaves), leaves)
    expected = torch.autograd.grad(fn(*leaves), leaves)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


@requires_compiled_op
def test_torch_export_keeps_the_op_as_one_node():
    module = MSDeformAttn(d_model=8, n_levels=3, n_heads=2, n_points=2).eval()
    shapes, starts = level_tensors()
    num_values = int(shapes.prod(1).sum())
    query, reference = torch.randn(1, 4, 8), torch.rand(1, 4, 3, 2)
    flat = torch.randn(1, num_values, 8)
    exported = torch.export.export(module, (query, reference, flat, shapes, starts))
    targets = [str(node.target) for node in exported.graph.nodes if node.op == "call_function"]
    assert "mask2former_ops.ms_deform_attn.default" in targets
    torch.testing.assert_close(
        exported.module()(query, reference, flat, shapes, starts),
        module(query, reference, flat, shapes, starts),
    )


# The compiled CPU kernels, each layout (vectorised: vectors of channels in the widest instruction
# set of this CPU; scalar: one channel at a time) against the float64 reference on the same
# rounded inputs, for channel counts below one vector (1, 3), with a tail after the vectors (17),
# and whole blocks of vectors (32, 64).
requires_compiled = pytest.mark.skipif(
    not mask2former_ops.is_compiled(), reason="mask2former_ops._C is not built"
)
KERNEL_LAYOUTS = ("vectorised", "scalar")
KERNEL_CHANNELS = (1, 3, 17, 32, 64)
# (rtol, atol) per dtype of the compared tensor: outputs in the value dtype are rounded once
# (bfloat16 keeps 8 significant bits: relative error up to 2^-8), everything accumulates in
# float32 (float64 for float64 values); gradients of the locations are scaled by the map size.
KERNEL_TOLERANCES = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-5, 1e-5),
    torch.bfloat16: (2**-8, 1e-5),
}


def _channel_inputs(dtype, channels, seed=0):
    """Value (N, S, M, D) in ``dtype``, locations / weights in its compute dtype, a grad_output
    (N, Lq, M * D) in ``dtype``: make_inputs' samples with ``channels`` channels."""
    _, shapes, starts, locations, weights = make_inputs(torch.float64, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    batch, queries, heads = locations.shape[:3]
    value = torch.randn(batch, int(shapes.prod(1).sum()), heads, channels, generator=gen)
    grad = torch.randn(batch, queries, heads * channels, generator=gen)
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    return (
        (value.to(dtype), shapes, starts, locations.to(compute), weights.to(compute)),
        grad.to(dtype),
    )


def _reference(inputs, grad):
    """Float64 output and gradients of the PyTorch path on exactly the kernel's inputs."""
    value, shapes, _, locations, weights = inputs
    leaves = [t.double() for t in (value, locations, weights)]

    def forward(v, loc, w):
        return ms_deform_attn_pytorch(v, shapes, loc, w)

    output, vjp = torch.func.vjp(forward, *leaves)
    return (output, *vjp(grad.double()))


@requires_compiled
@pytest.mark.parametrize("layout", KERNEL_LAYOUTS)
@pytest.mark.parametrize("channels", KERNEL_CHANNELS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_cpu_kernel_layouts_match_float64_reference(dtype, channels, layout):
    inputs, grad = _channel_inputs(dtype, channels)
    got = (
        functional._kernel_forward(*inputs, layout),
        *functional._kernel_backward(*inputs, grad, layout),
    )
    names = ("output", "grad_value", "grad_locations", "grad_weights")
    for name, tensor, expected in zip(names, got, _reference(inputs, grad)):
        assert tensor.dtype == (dtype if name in ("output", "grad_value") else inputs[3].dtype)
        rtol, atol = KERNEL_TOLERANCES[tensor.dtype]
        torch.testing.assert_close(tensor.double(), expected, rtol=rtol, atol=atol, msg=name)


@requires_compiled
def test_cpu_kernels_use_the_instruction_set_torch_dispatches_to():
    capability = torch.backends.cpu.get_cpu_capability()
    expected = {"AVX512": "avx512", "AVX2": "avx2"}.get(capability, "base")
    assert functional._C.cpu_kernel_isa() == expected
    assert functional._C.cpu_kernel_isa(channels_per_thread=1) == "scalar"
    with pytest.raises(RuntimeError, match="channels_per_thread=0 .* or 1"):
        functional._C.ms_deform_attn_forward(*_channel_inputs(torch.float32, 8)[0], 2)


@requires_compiled
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_kernels_give_the_same_bits_on_one_and_two_threads(dtype):
    """Every output element is summed by one task in a fixed order: threads change nothing."""
    inputs, grad = _channel_inputs(dtype, 32)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)  # the conftest fixture restores the count
        out = functional._kernel_forward(*inputs, "vectorised")
        results.append((out, *functional._kernel_backward(*inputs, grad, "vectorised")))
    for one, two in zip(*results):
        assert torch.equal(one, two)

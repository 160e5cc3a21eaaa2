"""CUDA kernels of the op (skipped without a GPU or without CUDA kernels in mask2former_ops._C)."""

import pytest
import torch

import mask2former_ops
from mask2former_ops import MSDeformAttn
from mask2former_ops.functional import ms_deform_attn
from tests.conftest import requires_cuda
from tests.ops.helpers import level_tensors, loop_reference, make_inputs

pytestmark = [
    requires_cuda,
    pytest.mark.skipif(
        not mask2former_ops.cuda_kernels_built(), reason="mask2former_ops._C has no CUDA kernels"
    ),
]

# float16 / bfloat16 outputs and gradients against float32 (values ~N(0, 1), weights ~N(0, 1)):
# the output is rounded once to the half dtype; sums accumulate in float32.
HALF_TOLERANCES = {torch.float16: 1e-2, torch.bfloat16: 5e-2}


def _cuda_inputs(dtype, seed=0, requires_grad=False):
    return make_inputs(dtype, device="cuda", seed=seed, requires_grad=requires_grad)


def _grads(impl, inputs, grad_output):
    value, shapes, starts, locations, weights = inputs
    out = ms_deform_attn(value, shapes, starts, locations, weights, implementation=impl)
    return (out, *torch.autograd.grad(out, (value, locations, weights), grad_output.to(out.dtype)))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_cuda_forward_matches_loop_reference(dtype, tol):
    inputs = _cuda_inputs(dtype)
    out = ms_deform_attn(*inputs, implementation="cuda")
    assert out.dtype == dtype and out.is_cuda
    torch.testing.assert_close(out.cpu().double(), loop_reference(*inputs), rtol=tol, atol=tol)


def test_cuda_gradcheck_float64():
    value, shapes, starts, locations, weights = _cuda_inputs(torch.float64, requires_grad=True)

    def fn(v, loc, w):
        return ms_deform_attn(v, shapes, starts, loc, w, implementation="cuda")

    # atomicAdd order varies between runs: allow float64 rounding differences on re-entry
    assert torch.autograd.gradcheck(
        fn, (value, locations, weights), eps=1e-6, atol=1e-6, nondet_tol=1e-12
    )


def test_cuda_gradients_match_cpu_float32():
    cuda_inputs = _cuda_inputs(torch.float32, requires_grad=True, seed=1)
    cpu_inputs = make_inputs(torch.float32, requires_grad=True, seed=1)
    grad_output = torch.randn(2, 4, 6)
    got = _grads("cuda", cuda_inputs, grad_output.cuda())
    ref = _grads("pytorch", cpu_inputs, grad_output)
    for g, r in zip(got, ref):
        torch.testing.assert_close(g.cpu(), r, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_half_precision_close_to_float32(dtype):
    tol = HALF_TOLERANCES[dtype]
    inputs32 = _cuda_inputs(torch.float32, requires_grad=True, seed=2)
    value, shapes, starts, locations, weights = _cuda_inputs(torch.float32, seed=2)
    inputs_half = (
        value.to(dtype).requires_grad_(),
        shapes,
        starts,
        locations.requires_grad_(),
        weights.requires_grad_(),
    )
    grad_output = torch.randn(2, 4, 6, device="cuda")
    got = _grads("cuda", inputs_half, grad_output)
    ref = _grads("cuda", inputs32, grad_output)
    assert got[0].dtype == dtype and got[1].dtype == dtype
    assert got[2].dtype == torch.float32 and got[3].dtype == torch.float32
    for g, r in zip(got, ref):
        torch.testing.assert_close(g.float(), r, rtol=tol, atol=tol)


def test_cuda_large_channel_counts_use_every_reduction_path():
    """D = 64 (two warp segments), D = 16 (half a warp) and D = 6 (atomics only)."""
    shapes, starts = level_tensors("cuda")
    num_values = int(shapes.prod(1).sum())
    for channels in (64, 16, 6):
        gen = torch.Generator().manual_seed(channels)
        value = torch.randn(2, num_values, 2, channels, generator=gen, dtype=torch.float64)
        locations = torch.rand(2, 3, 2, 3, 2, 2, generator=gen, dtype=torch.float64) * 1.2 - 0.1
        weights = torch.randn(2, 3, 2, 3, 2, generator=gen, dtype=torch.float64)
        grad_output = torch.randn(2, 3, 2 * channels, generator=gen, dtype=torch.float64)
        results = []
        for impl, device in (("cuda", "cuda"), ("pytorch", "cpu")):
            inputs = [t.to(device).requires_grad_() for t in (value, locations, weights)]
            results.append(
                _grads(
                    impl,
                    (inputs[0], shapes.to(device), starts.to(device), *inputs[1:]),
                    grad_output.to(device),
                )
            )
        for g, r in zip(*results):
            torch.testing.assert_close(g.cpu(), r, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_module_under_autocast(dtype):
    torch.manual_seed(0)
    module = MSDeformAttn(d_model=32, n_levels=3, n_heads=4, n_points=2).cuda()
    shapes, starts = level_tensors("cuda")
    num_values = int(shapes.prod(1).sum())
    query = torch.randn(2, 5, 32, device="cuda")
    reference = torch.rand(2, 5, 3, 2, device="cuda")
    flat = torch.randn(2, num_values, 32, device="cuda", requires_grad=True)
    expected = module(query, reference, flat, shapes, starts)
    with torch.autocast("cuda", dtype=dtype):
        out = module(query, reference, flat, shapes, starts)
    assert out.dtype == dtype  # the op ran in the autocast dtype, not forced to float32
    torch.testing.assert_close(
        out.float(), expected, rtol=HALF_TOLERANCES[dtype] * 2, atol=HALF_TOLERANCES[dtype] * 2
    )
    out.float().sum().backward()
    assert flat.grad is not None and torch.isfinite(flat.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)


def _compiled_grads(inputs, grad_output, channels_per_thread):
    """Output and gradients straight from the kernels, with a forced thread layout."""
    from mask2former_ops.functional import _C

    value, shapes, starts, locations, weights = inputs
    out = _C.ms_deform_attn_forward(
        value, shapes, starts, locations, weights, channels_per_thread=channels_per_thread
    )
    grads = _C.ms_deform_attn_backward(
        value,
        shapes,
        starts,
        locations,
        weights,
        grad_output.to(value.dtype).contiguous(),
        channels_per_thread=channels_per_thread,
    )
    return (out, *grads)


def _vector_inputs(dtype, channels, heads=2, seed=0):
    """Inputs with ``channels`` per head on CUDA; locations and weights in the compute dtype."""
    shapes, starts = level_tensors("cuda")
    num_values = int(shapes.prod(1).sum())
    gen = torch.Generator().manual_seed(seed)
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    value = torch.randn(2, num_values, heads, channels, generator=gen)
    locations = torch.rand(2, 5, heads, 3, 2, 2, generator=gen) * 1.4 - 0.2
    locations[:, 0, :, 0, 0] = torch.tensor([-0.9, 1.7])  # entirely outside the map
    weights = torch.randn(2, 5, heads, 3, 2, generator=gen)
    grad_output = torch.randn(2, 5, heads * channels, generator=gen)
    return (
        value.to("cuda", dtype),
        shapes,
        starts,
        locations.to("cuda", compute),
        weights.to("cuda", compute),
    ), grad_output.to("cuda")


# Channels per head that exercise each layout of the vectorised kernels: one group per head
# (store, no atomics), a power-of-two number of groups inside one warp segment, more groups than a
# warp (segments add atomically), and a count that is no multiple of the vector width (the
# one-thread-per-channel kernel).
VECTOR_CHANNELS = (8, 32, 256, 12)


@pytest.mark.parametrize("channels", VECTOR_CHANNELS)
@pytest.mark.parametrize(
    "dtype,tol",
    [(torch.float64, 1e-10), (torch.float32, 1e-4), (torch.float16, 2e-2), (torch.bfloat16, 1e-1)],
)
def test_vectorised_kernels_match_float64_pytorch_path(dtype, tol, channels):
    inputs, grad_output = _vector_inputs(dtype, channels)
    value, shapes, starts, locations, weights = inputs
    leaves64 = [t.double().requires_grad_() for t in (value, locations, weights)]
    ref = _grads("pytorch", (leaves64[0], shapes, starts, *leaves64[1:]), grad_output.double())
    for channels_per_thread in (0, 1):  # the widest layout the inputs allow, and the scalar one
        got = _compiled_grads(inputs, grad_output, channels_per_thread)
        assert got[0].dtype == dtype and got[1].dtype == dtype
        for name, g, r in zip(("output", "value", "locations", "weights"), got, ref):
            scale = r.abs().max().clamp(min=1)
            err = (g.double() - r).abs().max() / scale
            assert err < tol, f"{name} ({dtype}, D={channels}, cpt={channels_per_thread}): {err}"


def test_vectorised_and_scalar_layouts_agree_float32():
    inputs, grad_output = _vector_inputs(torch.float32, 32, heads=8, seed=3)
    vector = _compiled_grads(inputs, grad_output, 4)
    scalar = _compiled_grads(inputs, grad_output, 1)
    for v, s in zip(vector, scalar):
        torch.testing.assert_close(v, s, rtol=1e-5, atol=1e-5)


def test_misaligned_value_falls_back_to_one_thread_per_channel():
    from mask2former_ops.functional import _C

    inputs, grad_output = _vector_inputs(torch.float32, 32)
    value = inputs[0]
    storage = torch.empty(value.numel() + 1, device="cuda")
    shifted = storage[1:].view_as(value).copy_(value)  # contiguous, 4 bytes off 16-byte alignment
    assert shifted.data_ptr() % 16 != 0
    got = ms_deform_attn(shifted, *inputs[1:], implementation="cuda")
    expected = ms_deform_attn(value, *inputs[1:], implementation="cuda")
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(RuntimeError, match="channels_per_thread=4 is not possible"):
        _C.ms_deform_attn_forward(shifted, *inputs[1:], channels_per_thread=4)


def test_large_batch_many_queries_has_no_out_of_bounds_access():
    """Batch 8, 100,000 queries, the paper's heads / channels / points: the vectorised kernels
    agree with the one-thread-per-channel ones (run under compute-sanitizer by gpu_report)."""
    gen = torch.Generator().manual_seed(5)
    level_shapes = torch.tensor([[48, 80], [24, 40], [12, 20]])
    areas = level_shapes.prod(1)
    starts = torch.cat([areas.new_zeros(1), areas.cumsum(0)[:-1]]).cuda()
    shapes = level_shapes.cuda()
    batch, queries, heads, channels, points = 8, 100_000, 8, 32, 4
    value = torch.randn(batch, int(areas.sum()), heads, channels, generator=gen).cuda()
    locations = (torch.rand(batch, queries, heads, 3, points, 2, generator=gen) * 1.2 - 0.1).cuda()
    weights = torch.rand(batch, queries, heads, 3, points, generator=gen).cuda()
    grad_output = torch.randn(batch, queries, heads * channels, generator=gen).cuda()
    inputs = (value, shapes, starts, locations, weights)
    vector = _compiled_grads(inputs, grad_output, 0)
    scalar = _compiled_grads(inputs, grad_output, 1)
    torch.cuda.synchronize()
    for v, s in zip(vector, scalar):
        assert torch.isfinite(v).all()
        torch.testing.assert_close(v, s, rtol=1e-4, atol=1e-4)

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

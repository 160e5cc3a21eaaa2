"""The first-use check on CUDA: both channel layouts pass, a faulty vectorised kernel falls back to
the scalar one, and the caller's CUDA random state is untouched (skipped without a GPU)."""

import pytest
import torch

import mask2former_ops
from mask2former_ops import KernelMismatchWarning, functional, self_check
from tests.conftest import requires_cuda
from tests.ops.helpers import make_inputs

pytestmark = [
    requires_cuda,
    pytest.mark.skipif(
        not mask2former_ops.cuda_kernels_built(), reason="mask2former_ops._C has no CUDA kernels"
    ),
]

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
CHECKS = {"forward": functional._check_forward, "backward": functional._check_backward}


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch):
    monkeypatch.delenv(self_check.STRICT_ENV, raising=False)
    monkeypatch.delenv(self_check.SELF_CHECK_ENV, raising=False)
    self_check.reset()
    yield
    self_check.reset()


def _run_cuda(dtype):
    value, shapes, starts, locations, weights = make_inputs(
        dtype, device="cuda", requires_grad=True
    )
    out = mask2former_ops.ms_deform_attn(value, shapes, starts, locations, weights)
    out.float().sum().backward()
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_kernels_pass_the_first_use_check(dtype):
    _run_cuda(dtype)
    checks = mask2former_ops.kernel_status().checks
    assert [(r.pass_, r.layout, r.result) for r in checks] == [
        ("forward", "vectorised", "ok"),
        ("backward", "vectorised", "ok"),
    ], str(mask2former_ops.kernel_status())
    assert {r.device for r in checks} == {f"cuda:{torch.cuda.current_device()}"}


@pytest.mark.parametrize("pass_", ["forward", "backward"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_scalar_layout_passes_the_check(dtype, pass_):
    record = self_check.check_path(torch.device("cuda"), dtype, pass_, "scalar", CHECKS[pass_])
    assert record.result == "ok", record


def test_cuda_check_leaves_the_random_states_unchanged():
    inputs = make_inputs(torch.float32, device="cuda", requires_grad=True)
    cpu_state, cuda_state = torch.get_rng_state(), torch.cuda.get_rng_state()
    mask2former_ops.ms_deform_attn(*inputs).sum().backward()
    assert len(mask2former_ops.kernel_status().checks) == 2
    assert torch.equal(torch.get_rng_state(), cpu_state)
    assert torch.equal(torch.cuda.get_rng_state(), cuda_state)


def test_cuda_vectorised_fault_falls_back_to_scalar(monkeypatch):
    original = functional._kernel_forward

    def faulty(value, shapes, starts, locations, weights, layout):
        out = original(value, shapes, starts, locations, weights, layout)
        return out + 0.1 if layout == "vectorised" else out

    monkeypatch.setattr(functional, "_kernel_forward", faulty)
    inputs = make_inputs(torch.float32, device="cuda")
    with pytest.warns(KernelMismatchWarning, match="vectorised forward kernel on cuda"):
        out = mask2former_ops.ms_deform_attn(*inputs)
    expected = mask2former_ops.ms_deform_attn(*inputs, implementation="pytorch")
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    paths = {key[2]: path for key, path in mask2former_ops.kernel_status().paths.items()}
    assert paths == {"forward": "scalar"}

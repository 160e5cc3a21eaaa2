"""The first-use check of the compiled kernels (mask2former_ops.self_check) on CPU.

Faults are injected by wrapping ``functional._kernel_forward`` / ``functional._kernel_backward``,
the only callers of the compiled kernels. The CPU has the CUDA fallback chain (vectorised -> scalar
layout -> PyTorch): vectors of channels in the CPU's widest instruction set, then one channel at a
time.
"""

import json
import logging
import warnings

import pytest
import torch

import mask2former_ops
from mask2former_ops import KernelMismatchError, KernelMismatchWarning, functional, self_check
from mask2former_ops.self_check_case import LEVEL_SHAPES, SUB_CASES, make_cases
from tests.ops.helpers import make_inputs

pytestmark = pytest.mark.skipif(
    not mask2former_ops.is_compiled(), reason="mask2former_ops._C is not built"
)


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch):
    """Every test starts with no check run, default (non-strict) mode and the check enabled."""
    monkeypatch.delenv(self_check.STRICT_ENV, raising=False)
    monkeypatch.delenv(self_check.SELF_CHECK_ENV, raising=False)
    self_check.reset()
    self_check.set_strict(None)
    yield
    self_check.reset()
    self_check.set_strict(None)


def _run(dtype=torch.float32, implementation="cpu", seed=0):
    """Output (N, Lq, M*D) and the gradients of value, locations, weights for a fixed grad."""
    value, shapes, starts, locations, weights = make_inputs(dtype, seed=seed, requires_grad=True)
    out = mask2former_ops.ms_deform_attn(
        value, shapes, starts, locations, weights, implementation=implementation
    )
    grad_output = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)
    grads = torch.autograd.grad(out, (value, locations, weights), grad_output.to(out.dtype))
    return (out, *grads)


def _fault_forward(monkeypatch, delta=0.1, when=lambda layout, value: True):
    original = functional._kernel_forward

    def faulty(value, shapes, starts, locations, weights, layout):
        out = original(value, shapes, starts, locations, weights, layout)
        return out + delta if when(layout, value) else out

    monkeypatch.setattr(functional, "_kernel_forward", faulty)


def _fault_backward(monkeypatch, which, delta=0.1):
    original = functional._kernel_backward

    def faulty(*args):
        grads = list(original(*args))
        grads[which] = grads[which] + delta
        return tuple(grads)

    monkeypatch.setattr(functional, "_kernel_backward", faulty)


def _count_checks(monkeypatch):
    calls = []
    original = self_check.check_path

    def counting(device, dtype, pass_, path, run):
        calls.append((str(device), dtype, pass_, path))
        return original(device, dtype, pass_, path, run)

    monkeypatch.setattr(self_check, "check_path", counting)
    return calls


def _paths():
    return {key[1:]: path for key, path in mask2former_ops.kernel_status().paths.items()}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_real_cpu_kernels_pass_forward_and_backward(dtype):
    _run(dtype)
    checks = mask2former_ops.kernel_status().checks
    name = str(dtype).replace("torch.", "")
    assert [(r.device, r.dtype, r.pass_, r.layout, r.result) for r in checks] == [
        ("cpu", name, "forward", "vectorised", "ok"),
        ("cpu", name, "backward", "vectorised", "ok"),
    ]
    assert all(r.max_diff <= r.tolerance for r in checks)
    assert _paths() == {(name, "forward"): "vectorised", (name, "backward"): "vectorised"}


def test_check_runs_once_per_device_dtype_and_pass(monkeypatch):
    calls = _count_checks(monkeypatch)
    for _ in range(3):
        _run(torch.float32)
    assert calls == [
        ("cpu", torch.float32, "forward", "vectorised"),
        ("cpu", torch.float32, "backward", "vectorised"),
    ]
    _run(torch.float64)
    assert len(calls) == 4


def test_check_leaves_the_callers_random_state_unchanged():
    inputs = make_inputs(torch.float32, requires_grad=True)
    state = torch.get_rng_state()
    out = mask2former_ops.ms_deform_attn(*inputs, implementation="cpu")
    out.sum().backward()
    assert len(mask2former_ops.kernel_status().checks) == 2
    assert torch.equal(torch.get_rng_state(), state)


def test_forward_fault_warns_once_and_falls_back_to_pytorch(monkeypatch, caplog):
    expected = _run(implementation="pytorch")
    _fault_forward(monkeypatch)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.ERROR):
        warnings.simplefilter("always")
        got = [_run() for _ in range(2)]
    mismatches = [w for w in caught if issubclass(w.category, KernelMismatchWarning)]
    assert len(mismatches) == 1
    message = str(mismatches[0].message)
    for word in ("cpu", "float32", "vectorised", "forward", "0.1", "pure-PyTorch path instead"):
        assert word in message
    assert [r.levelname for r in caplog.records if r.name == self_check.__name__] == ["ERROR"]
    for result in got:
        torch.testing.assert_close(result[0], expected[0], rtol=0, atol=0)
    assert _paths() == {("float32", "forward"): "pytorch", ("float32", "backward"): "vectorised"}
    forward = mask2former_ops.kernel_status().checks[0]
    assert forward.result == "mismatch" and forward.max_diff == pytest.approx(0.1, rel=1e-3)


@pytest.mark.parametrize("which", [0, 1, 2], ids=["grad_value", "grad_loc", "grad_attn"])
def test_backward_fault_warns_and_falls_back_to_pytorch(monkeypatch, which):
    expected = _run(implementation="pytorch")
    _fault_backward(monkeypatch, which)
    with pytest.warns(KernelMismatchWarning, match="vectorised backward kernel on cpu for float32"):
        got = _run()
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)
    assert _paths() == {("float32", "forward"): "vectorised", ("float32", "backward"): "pytorch"}


@pytest.mark.parametrize("when", ["env", "function"])
def test_strict_mode_raises_instead(monkeypatch, when):
    if when == "env":
        monkeypatch.setenv(self_check.STRICT_ENV, "1")
    else:
        mask2former_ops.set_strict(True)
    _fault_forward(monkeypatch)
    with pytest.raises(KernelMismatchError, match="vectorised forward kernel on cpu for float32"):
        _run()
    assert mask2former_ops.kernel_status().checks[-1].result == "mismatch"


def test_strict_mode_passes_correct_kernels(monkeypatch):
    monkeypatch.setenv(self_check.STRICT_ENV, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run(torch.float64)
    assert {r.result for r in mask2former_ops.kernel_status().checks} == {"ok"}


def test_perturbation_within_tolerance_is_accepted(monkeypatch):
    _fault_forward(monkeypatch, delta=self_check.TOLERANCES[torch.float32] / 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run()
    assert _paths()[("float32", "forward")] == "vectorised"


def test_nan_output_is_a_mismatch(monkeypatch):
    _fault_forward(monkeypatch, delta=float("nan"))
    with pytest.warns(KernelMismatchWarning, match="by inf"):
        out = _run()[0]
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    "faulty_channels", [512, 3], ids=["only-more-groups-than-a-warp", "only-scalar-channels"]
)
def test_a_fault_in_one_branch_only_is_caught(monkeypatch, faulty_channels):
    _fault_forward(monkeypatch, when=lambda layout, value: value.shape[-1] == faulty_channels)
    with pytest.warns(KernelMismatchWarning, match=f"D={faulty_channels}"):
        _run()


def test_vectorised_fault_falls_back_to_the_checked_scalar_layout(monkeypatch):
    expected = _run(implementation="pytorch")
    _fault_forward(monkeypatch, when=lambda layout, value: layout == "vectorised")
    with pytest.warns(KernelMismatchWarning, match="the scalar kernel \\(checked\\) instead"):
        got = _run()
    torch.testing.assert_close(got[0], expected[0])
    checks = [(r.pass_, r.layout, r.result) for r in mask2former_ops.kernel_status().checks]
    assert checks == [
        ("forward", "vectorised", "mismatch"),
        ("forward", "scalar", "ok"),
        ("backward", "vectorised", "ok"),
    ]
    assert _paths() == {("float32", "forward"): "scalar", ("float32", "backward"): "vectorised"}


def test_both_layouts_wrong_falls_back_to_pytorch_with_one_warning(monkeypatch):
    _fault_backward(monkeypatch, which=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run()
        _run()
    mismatches = [str(w.message) for w in caught if w.category is KernelMismatchWarning]
    assert len(mismatches) == 1
    assert "vectorised backward" in mismatches[0] and "scalar backward" in mismatches[0]
    assert _paths()[("float32", "backward")] == "pytorch"


def test_self_check_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(self_check.SELF_CHECK_ENV, "0")
    calls = _count_checks(monkeypatch)
    _fault_forward(monkeypatch)  # unchecked: an expert's choice
    _run()
    assert calls == []
    assert {r.result for r in mask2former_ops.kernel_status().checks} == {"not checked"}


def test_kernel_status_reads_and_serialises():
    assert "no compiled kernel used yet" in str(mask2former_ops.kernel_status())
    _run()
    text = str(mask2former_ops.kernel_status())
    assert (
        "cpu float32 forward vectorised: ok" in text and "cpu float32 backward: vectorised" in text
    )
    data = json.loads(json.dumps(mask2former_ops.kernel_status().to_dict()))
    assert data["paths"][0] == {
        "device": "cpu",
        "dtype": "float32",
        "pass": "backward",
        "path": "vectorised",
    }


def _cpu_channel_blocks(channels, lanes):
    """The channel blocks of the CPU kernels for D = ``channels``: vectors per block (4, 2, 1)
    and 0 for the channels done one at a time (ms_deform_attn_cpu_kernel.h)."""
    blocks = set()
    for vectors in (4, 2, 1):
        while channels >= vectors * lanes:
            blocks.add(vectors)
            channels -= vectors * lanes
    return blocks | ({0} if channels else set())


def test_check_case_covers_the_kernel_branches():
    cases = make_cases("cpu", torch.float32)
    channels = [case.channels for case in cases]
    for vector_width in (2, 4, 8):  # float64, float32, half on CUDA
        assert any(d % vector_width == 0 and d // vector_width > 32 for d in channels)
        assert any(d % vector_width == 0 and d // vector_width <= 32 for d in channels)
    assert any(d % 8 != 0 for d in channels) and any(d % 2 != 0 for d in channels)
    # CPU: 16-byte / AVX2 / AVX-512 vectors of float32 (4, 8, 16) and float64 (2, 4, 8) lanes
    for lanes in (2, 4, 8, 16):
        for block in (4, 2, 1, 0):
            assert any(block in _cpu_channel_blocks(d, lanes) for d in channels), (lanes, block)
        assert any({0, 1} <= _cpu_channel_blocks(d, lanes) for d in channels), lanes
    assert any(case.value.shape[0] > 1 and case.value.shape[2] > 1 for case in cases)
    assert len({h * w for h, w in LEVEL_SHAPES}) == len(LEVEL_SHAPES) > 1
    xy = torch.cat([case.sampling_locations.reshape(-1, 2) for case in cases])  # (samples, 2)
    assert ((xy[:, 0] < -0.5) & (xy[:, 1] > 1.5)).any()  # every corner outside the map
    assert ((xy > 1) & (xy < 1.25)).any() and ((xy < 0) & (xy > -0.25)).any()  # straddling
    assert (xy == 0).any() and (xy == 1).any()  # on the borders
    assert len(cases) == len(SUB_CASES)


def test_torch_compile_graph_runs_the_check_at_run_time(monkeypatch):
    if not hasattr(torch.library, "custom_op"):
        pytest.skip("needs torch >= 2.4 (torch.library.custom_op)")
    value, shapes, starts, locations, weights = make_inputs(torch.float32)
    expected = mask2former_ops.ms_deform_attn(
        value, shapes, starts, locations, weights, implementation="pytorch"
    )
    _fault_forward(monkeypatch)

    def fn(v, loc, w):
        return mask2former_ops.ms_deform_attn(v, shapes, starts, loc, w, implementation="cpu")

    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True)
    with pytest.warns(KernelMismatchWarning):
        got = compiled(value, locations, weights)
    torch.testing.assert_close(got, expected)


def test_torch_export_traces_without_checking_and_checks_at_run_time():
    if not hasattr(torch.library, "custom_op"):
        pytest.skip("needs torch >= 2.4 (torch.library.custom_op)")
    module = mask2former_ops.MSDeformAttn(d_model=8, n_levels=3, n_heads=2, n_points=2).eval()
    value, shapes, starts, _, _ = make_inputs(torch.float32)
    query, reference = torch.randn(1, 4, 8), torch.rand(1, 4, 3, 2)
    flat = torch.randn(1, value.shape[1], 8)
    exported = torch.export.export(module, (query, reference, flat, shapes, starts))
    assert mask2former_ops.kernel_status().checks == ()  # tracing ran the fake kernel only
    exported.module()(query, reference, flat, shapes, starts)
    assert [r.result for r in mask2former_ops.kernel_status().checks] == ["ok"]


def test_check_kernels_checks_every_layout_now(monkeypatch):
    records = mask2former_ops.check_kernels("cpu", dtypes=[torch.float32])
    assert [(r.pass_, r.layout, r.result) for r in records] == [
        ("forward", "vectorised", "ok"),
        ("forward", "scalar", "ok"),
        ("backward", "vectorised", "ok"),
        ("backward", "scalar", "ok"),
    ]
    assert mask2former_ops.kernel_status().paths == {}  # decided at first use, not here
    _fault_forward(monkeypatch, when=lambda layout, value: layout == "scalar")
    mask2former_ops.set_strict(True)
    with pytest.raises(KernelMismatchError, match="scalar forward kernel on cpu"):
        mask2former_ops.check_kernels("cpu", dtypes=[torch.float32])

"""First-use check of the compiled kernels: never a silent wrong result from an untried kernel.

The first time a compiled kernel runs in a process for a (device, dtype, pass) -- pass being
``"forward"`` or ``"backward"`` -- it is compared with the pure-PyTorch path (float64 on the CPU)
on the small case of :mod:`mask2former_ops.self_check_case`: three levels of different sizes,
points on the borders and outside the maps, two heads, batch 2, channel counts that take the
vectorised and the scalar CUDA layouts and every channel block and tail of the CPU kernels' vector
widths. This runs in the custom op's real kernel, so it runs
eagerly also inside ``torch.compile`` / ``torch.export`` graphs (tracing uses the fake kernel).

Paths are tried in the order of ``FALLBACK_CHAINS``; the first that passes is used for the rest of
the process. A path that fails gives one :class:`KernelMismatchWarning` (and a logged error)
naming the device, dtype, layout, pass and largest difference, and the next path is checked.
``MASK2FORMER_OPS_STRICT=1`` or :func:`set_strict` makes a mismatch a :class:`KernelMismatchError`
instead (CI, benchmarks). ``MASK2FORMER_OPS_SELF_CHECK=0`` skips the check (experts only: the
first path is then used unchecked). :func:`kernel_status` reports what was checked.
"""

import logging
import os
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .self_check_case import PASSES, CheckCase, make_cases, reference_outputs

__all__ = [
    "KernelMismatchWarning",
    "KernelMismatchError",
    "CheckRecord",
    "KernelStatus",
    "kernel_status",
    "select_path",
    "check_paths",
    "set_strict",
    "is_strict",
    "self_check_enabled",
    "reset",
    "FALLBACK_CHAINS",
    "TOLERANCES",
]

logger = logging.getLogger(__name__)

STRICT_ENV = "MASK2FORMER_OPS_STRICT"
SELF_CHECK_ENV = "MASK2FORMER_OPS_SELF_CHECK"

# Paths tried in turn per device type. "vectorised": the compiled kernels with the widest channel
# layout -- on CUDA the widest the inputs allow, on the CPU vectors of channels in the widest
# instruction set of the CPU (AVX-512, AVX2, else the build's 16-byte vectors; chosen at run time,
# ``mask2former_ops._C.cpu_kernel_isa()``) -- what runs by default; "scalar": one channel per
# CUDA thread / at a time on the CPU; "pytorch": the reference path, never checked.
FALLBACK_CHAINS: Dict[str, Tuple[str, ...]] = {
    "cuda": ("vectorised", "scalar", "pytorch"),
    "cpu": ("vectorised", "scalar", "pytorch"),
}
REFERENCE_PATH = "pytorch"

# Largest |kernel - reference| allowed, relative to max(1, max |reference|) of each compared
# tensor. Half dtypes: inputs are rounded before both run, so only the rounding of the result
# (2^-11 float16, 2^-8 bfloat16) and float32 accumulation remain; a wrong kernel is off by O(1).
TOLERANCES: Dict[torch.dtype, float] = {
    torch.float64: 1e-9,
    torch.float32: 1e-4,
    torch.float16: 5e-3,
    torch.bfloat16: 3e-2,
}

# (path, case) -> the kernel's results on the case, as reference_outputs returns them.
Runner = Callable[[str, CheckCase], Tuple[torch.Tensor, ...]]


class KernelMismatchWarning(RuntimeWarning):
    """A compiled kernel disagreed with the pure-PyTorch path; a slower correct path is used."""


class KernelMismatchError(RuntimeError):
    """A compiled kernel disagreed with the pure-PyTorch path in strict mode."""


@dataclass(frozen=True)
class CheckRecord:
    """One checked (device, dtype, pass, layout).

    ``result`` is ``"ok"``, ``"mismatch"`` or ``"not checked"``. ``relative_diff`` is the largest
    ``max |kernel - reference| / max(1, max |reference|)`` over the compared tensors (what
    ``tolerance`` bounds), ``worst`` names that tensor and its channel count, ``max_diff`` is its
    ``max |kernel - reference|``; ``seconds`` is the time the check took.
    """

    device: str
    dtype: str
    pass_: str
    layout: str
    result: str
    max_diff: Optional[float] = None
    relative_diff: Optional[float] = None
    tolerance: Optional[float] = None
    worst: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class KernelStatus:
    """What was checked in this process and the path each (device, dtype, pass) uses."""

    checks: Tuple[CheckRecord, ...]
    paths: Dict[Tuple[str, str, str], str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready: ``{"checks": [record fields, ...], "paths": [{device, dtype, pass,
        path}, ...]}``."""
        paths = [
            {"device": d, "dtype": t, "pass": p, "path": path}
            for (d, t, p), path in sorted(self.paths.items())
        ]
        return {"checks": [asdict(record) for record in self.checks], "paths": paths}

    def __str__(self) -> str:
        if not self.checks and not self.paths:
            return "mask2former_ops kernel checks: no compiled kernel used yet"
        lines = ["mask2former_ops kernel checks (device dtype pass layout: result):"]
        for r in self.checks:
            diff = "" if r.max_diff is None else f" max diff {r.max_diff:.3g}"
            if r.relative_diff is not None:
                diff += f" (relative {r.relative_diff:.3g}, tol {r.tolerance:g})"
            worst = f" in {r.worst}" if r.result == "mismatch" else ""
            lines.append(
                f"  {r.device} {r.dtype} {r.pass_} {r.layout}: {r.result}{diff}{worst}"
                f", {r.seconds * 1e3:.1f} ms"
            )
        lines.append("paths in use:")
        for (device, dtype, pass_), path in sorted(self.paths.items()):
            lines.append(f"  {device} {dtype} {pass_}: {path}")
        return "\n".join(lines)


_lock = threading.RLock()
_records: List[CheckRecord] = []
_paths: Dict[Tuple[str, str, str], str] = {}
_strict_override: Optional[bool] = None


def set_strict(strict: Optional[bool]) -> None:
    """Make a kernel mismatch an error (True), a warning and a fallback (False), or follow
    ``MASK2FORMER_OPS_STRICT`` (None, the default)."""
    global _strict_override
    _strict_override = strict


def is_strict() -> bool:
    """Whether a mismatch raises :class:`KernelMismatchError`."""
    if _strict_override is not None:
        return _strict_override
    return os.environ.get(STRICT_ENV, "0") not in ("", "0")


def self_check_enabled() -> bool:
    """False only when ``MASK2FORMER_OPS_SELF_CHECK=0``."""
    return os.environ.get(SELF_CHECK_ENV, "1") != "0"


def kernel_status() -> KernelStatus:
    """The checks run so far in this process and the path each (device, dtype, pass) uses."""
    with _lock:
        return KernelStatus(checks=tuple(_records), paths=dict(_paths))


def reset() -> None:
    """Forget every check and decision (tests; a later call checks again)."""
    with _lock:
        _records.clear()
        _paths.clear()


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _key(device: torch.device, dtype: torch.dtype, pass_: str) -> Tuple[str, str, str]:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device), _dtype_name(dtype), pass_


def select_path(device: torch.device, dtype: torch.dtype, pass_: str, run: Runner) -> str:
    """The path a compiled call on ``device`` / ``dtype`` takes for ``pass_``.

    The first call per (device, dtype, pass) checks the paths of ``FALLBACK_CHAINS`` in turn
    with ``run(path, case)`` (which returns what :func:`reference_outputs` returns) and keeps the
    first that matches; later calls return it at the cost of a dictionary look-up.

    Raises:
        KernelMismatchError: a mismatch in strict mode.
    """
    if pass_ not in PASSES:
        raise ValueError(f"pass_ must be one of {PASSES}, got {pass_!r}")
    key = _key(device, dtype, pass_)
    path = _paths.get(key)
    if path is not None:
        return path
    if _capturing(key[0]):  # a check synchronises: decide at the first call outside the capture
        return FALLBACK_CHAINS["cuda"][0]
    with _lock:
        if key not in _paths:
            _paths[key] = _choose_path(key, torch.device(key[0]), dtype, run)
        return _paths[key]


def check_paths(
    device: torch.device, dtype: torch.dtype, runs: Dict[str, Runner], paths: Sequence[str]
) -> List[CheckRecord]:
    """Check each of ``paths`` for each pass of ``runs`` (pass -> runner) now, whatever was
    decided before, and add the records to :func:`kernel_status` (the paths in use stay).

    Raises:
        KernelMismatchError: a mismatch in strict mode.
    """
    records = []
    for pass_, run in runs.items():
        for path in paths:
            record = check_path(torch.device(device), dtype, pass_, path, run)
            with _lock:
                _records.append(record)
            records.append(record)
            if record.result != "ok" and is_strict():
                raise KernelMismatchError(_mismatch_message([record], path, strict=True))
    return records


def _capturing(device: str) -> bool:
    """Whether the current CUDA stream is being captured into a CUDA graph."""
    return device.startswith("cuda") and torch.cuda.is_current_stream_capturing()


def _choose_path(key, device: torch.device, dtype: torch.dtype, run: Runner) -> str:
    chain = FALLBACK_CHAINS.get(device.type, ())
    failed: List[CheckRecord] = []
    for path in chain:
        if path == REFERENCE_PATH:
            break
        if not self_check_enabled():
            _records.append(CheckRecord(*key, path, "not checked"))
            return path
        record = check_path(device, dtype, key[2], path, run)
        _records.append(record)
        if record.result == "ok":
            _report_fallback(failed, path)
            return path
        if is_strict():
            raise KernelMismatchError(_mismatch_message([record], path, strict=True))
        failed.append(record)
    _report_fallback(failed, REFERENCE_PATH)
    return REFERENCE_PATH


def check_path(
    device: torch.device, dtype: torch.dtype, pass_: str, path: str, run: Runner
) -> CheckRecord:
    """Compare ``run(path, case)`` with the float64 reference on every sub-case."""
    started = time.perf_counter()
    tolerance = TOLERANCES[dtype]
    worst_relative, worst_diff, worst = 0.0, 0.0, ""
    with _device_guard(device):
        for case in make_cases(device, dtype):
            got = run(path, case)
            names = ("output",) if pass_ == "forward" else ("grad_value", "grad_loc", "grad_attn")
            for name, g, r in zip(names, got, reference_outputs(case, pass_)):
                diff, relative = _difference(g, r)
                if relative > worst_relative:
                    worst_relative, worst_diff, worst = (
                        relative,
                        diff,
                        f"{name} (D={case.channels})",
                    )
    result = "ok" if worst_relative <= tolerance else "mismatch"
    device_name, dtype_name, _ = _key(device, dtype, pass_)
    record = CheckRecord(
        device=device_name,
        dtype=dtype_name,
        pass_=pass_,
        layout=path,
        result=result,
        max_diff=worst_diff,
        relative_diff=worst_relative,
        tolerance=tolerance,
        worst=worst,
        seconds=time.perf_counter() - started,
    )
    logger.debug("mask2former_ops kernel check: %s", record)
    return record


def _device_guard(device: torch.device):
    if device.type == "cuda":
        return torch.cuda.device(device)
    return _NullContext()


class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _difference(got: torch.Tensor, ref: torch.Tensor) -> Tuple[float, float]:
    """max |got - ref| and that over max(1, max |ref|); inf for a wrong shape or a NaN / inf."""
    if tuple(got.shape) != tuple(ref.shape):
        return float("inf"), float("inf")
    diff = (got.detach().cpu().double() - ref).abs()
    diff = torch.where(torch.isnan(diff), torch.full_like(diff, float("inf")), diff)
    largest = float(diff.max()) if diff.numel() else 0.0
    return largest, largest / max(1.0, float(ref.abs().max()) if ref.numel() else 1.0)


def _mismatch_message(failed: Sequence[CheckRecord], path: str, strict: bool = False) -> str:
    parts = [
        f"the {r.layout} {r.pass_} kernel on {r.device} for {r.dtype} differs from the "
        f"pure-PyTorch path by {r.max_diff:.3g} in {r.worst} ({r.relative_diff:.3g} relative to "
        f"the reference's scale; tolerance {r.tolerance:g})"
        for r in failed
    ]
    if strict:
        return (
            f"mask2former_ops: {'; '.join(parts)}. Strict mode ({STRICT_ENV}=1 or "
            "mask2former_ops.set_strict(True)) makes this an error."
        )
    use = "the pure-PyTorch path" if path == REFERENCE_PATH else f"the {path} kernel (checked)"
    return (
        f"mask2former_ops: {'; '.join(parts)}. This process uses {use} instead for these "
        f"calls. Please report this with mask2former_ops.kernel_status() and the GPU model."
    )


def _report_fallback(failed: Sequence[CheckRecord], path: str) -> None:
    """One warning (and one logged error) for a (device, dtype, pass) that had to fall back."""
    if not failed:
        return
    message = _mismatch_message(failed, path)
    logger.error(message)
    warnings.warn(message, KernelMismatchWarning, stacklevel=4)

"""Inference precision: the CPU's low-precision hardware, and the one switch.

**The switch** follows PyTorch's convention: a model called under
``torch.autocast("cpu", dtype=torch.bfloat16)`` (or ``"cuda"``, float16) runs its mixed-precision
path with nothing else to call; float32 islands stay where they are needed (softmax of the
class scores, mask resizing and thresholding, the deformable-attention sampling positions).
:func:`inference_autocast` gives that context from a precision name, and the detectron2 layer
reads the name from ``MODEL.INFERENCE_PRECISION`` (the demo's ``--precision``):

- ``"fp32"``: no autocast;
- ``"bf16"`` / ``"fp16"``: autocast to that dtype on the model's device;
- ``"auto"`` (default): float16 autocast on CUDA when ``SOLVER.AMP.ENABLED`` (as the official
  evaluation), else float32. On the CPU, float32 is the default because low-precision results
  differ slightly from float32 and because most CPUs have no bfloat16 arithmetic.

**Never silently slow.** A CPU without bfloat16 (float16) arithmetic units (AVX512-BF16 or AMX;
AVX512-FP16 or AMX-FP16) emulates it, and PyTorch then runs a convolution or a matrix product
tens to hundreds of times slower than in float32 (measured on an AVX2-only AMD EPYC, PyTorch
2.13, 2 threads: a 3x3 256-channel convolution on 2x256x90x160 0.20 s in float32 and 73 s in
bfloat16; a 2048x2048 matrix product 0.11 s and 58 s). The model checks the CPU once
(:func:`cpu_info`); called under CPU autocast to a dtype this CPU runs slowly, it warns once
(:class:`SlowPrecisionWarning`, naming the CPU) and runs in float32 instead, unless the user
opted in: the model's ``allow_slow_low_precision=True`` or the environment variable
``VIDEO_MASK2FORMER_ALLOW_SLOW_LOW_PRECISION=1`` (e.g. to test the bfloat16 code path).

How the CPU is checked: PyTorch's own CPU feature queries (``torch.cpu._is_avx512_bf16_supported``,
``_is_amx_tile_supported``, ``_is_amx_fp16_supported``; cpuinfo-based, the CPUID bits that
oneDNN dispatches on, on every OS), falling back to the flags of ``/proc/cpuinfo`` on a PyTorch
without them. ``torch.backends.cpu.get_cpu_capability()`` ("AVX2", "AVX512", ...) is reported
but not decisive: an AVX512 CPU may lack the BF16 extension (e.g. Skylake-X).
"""

import contextlib
import functools
import os
import warnings
from dataclasses import dataclass
from typing import ContextManager, Optional, Tuple, Union

import torch

__all__ = [
    "ALLOW_SLOW_ENV",
    "CpuInfo",
    "PRECISIONS",
    "PrecisionError",
    "SlowPrecisionWarning",
    "autocast_dtype",
    "check_precision",
    "cpu_autocast_dtype",
    "cpu_info",
    "cpu_runs_fast",
    "float32_island",
    "inference_autocast",
    "read_cpuinfo",
    "slow_precision_fallback",
]

# Accepted precision names (MODEL.INFERENCE_PRECISION, the demo's --precision).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Set to 1 to run CPU autocast even where this CPU emulates the dtype (slow).
ALLOW_SLOW_ENV = "VIDEO_MASK2FORMER_ALLOW_SLOW_LOW_PRECISION"
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# /proc/cpuinfo flags that tell the vector extensions (reported, and the fallback check).
_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_fp16",
)


class PrecisionError(ValueError):
    """A precision name that is not one of :data:`PRECISIONS` (names the key or argument)."""


class SlowPrecisionWarning(RuntimeWarning):
    """CPU autocast to a dtype this CPU has no arithmetic units for: float32 runs instead."""


@dataclass(frozen=True)
class CpuInfo:
    """What this CPU offers for low precision.

    Attributes:
        model (str): the CPU's model name ("unknown" when the OS does not say).
        capability (str): ``torch.backends.cpu.get_cpu_capability()`` ("AVX2", "AVX512", ...).
        flags (tuple): which of the relevant flags (avx2, fma, avx512f, avx512_bf16,
            avx512_fp16, amx_tile, amx_bf16, amx_fp16) the CPU has.
        fast_bf16 (bool): bfloat16 arithmetic in hardware (AVX512-BF16 or AMX).
        fast_fp16 (bool): float16 arithmetic in hardware (AVX512-FP16 or AMX-FP16).
    """

    model: str
    capability: str
    flags: Tuple[str, ...]
    fast_bf16: bool
    fast_fp16: bool

    def describe(self) -> str:
        """One line, e.g. ``AMD EPYC (PyTorch CPU capability AVX2; avx2 fma; bf16: emulated)``."""
        speed = {True: "hardware", False: "emulated (slow)"}
        return (
            f"{self.model} (PyTorch CPU capability {self.capability}; "
            f"{' '.join(self.flags) or 'no AVX2'}; bf16: {speed[self.fast_bf16]}, "
            f"fp16: {speed[self.fast_fp16]})"
        )


def read_cpuinfo(path: str = "/proc/cpuinfo") -> Tuple[Optional[str], Optional[frozenset]]:
    """(model name, flags) from the first "model name" and "flags" lines of a Linux cpuinfo
    file: model None where there is no such line; flags None where the file cannot be read
    (another OS), empty where it has no flags line."""
    model, flags = None, None
    try:
        with open(path) as f:
            flags = frozenset()
            for line in f:
                name, _, value = line.partition(":")
                name = name.strip()
                if name == "model name" and model is None:
                    model = value.strip()
                elif name == "flags" and not flags:
                    flags = frozenset(value.split())
                if model is not None and flags:
                    break
    except OSError:
        pass
    return model, flags


def _torch_feature(name: str, flags: set, *flag_names: str) -> bool:
    """PyTorch's CPUID query ``torch.cpu.<name>`` when it has one, else the /proc flags."""
    query = getattr(torch.cpu, name, None)
    if query is not None:
        return bool(query())
    return any(flag in flags for flag in flag_names)


@functools.lru_cache(maxsize=None)
def cpu_info() -> CpuInfo:
    """This CPU's :class:`CpuInfo` (checked once per process)."""
    model, flags = read_cpuinfo()
    model, flags = model or "unknown", flags or frozenset()
    fast_bf16 = _torch_feature("_is_avx512_bf16_supported", flags, "avx512_bf16") or (
        _torch_feature("_is_amx_tile_supported", flags, "amx_bf16")
    )
    fast_fp16 = _torch_feature("_is_amx_fp16_supported", flags, "amx_fp16") or (
        "avx512_fp16" in flags
    )
    return CpuInfo(
        model=model,
        capability=torch.backends.cpu.get_cpu_capability(),
        flags=tuple(flag for flag in _FLAGS if flag in flags),
        fast_bf16=fast_bf16,
        fast_fp16=fast_fp16,
    )


def cpu_runs_fast(dtype: torch.dtype) -> bool:
    """Whether this CPU has arithmetic units for ``dtype`` (float32/float64: always)."""
    if dtype == torch.bfloat16:
        return cpu_info().fast_bf16
    if dtype == torch.float16:
        return cpu_info().fast_fp16
    return True


def cpu_autocast_dtype() -> Optional[torch.dtype]:
    """The dtype of the CPU autocast in effect here, or None when CPU autocast is off."""
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        enabled = torch.is_autocast_enabled("cpu")
        return torch.get_autocast_dtype("cpu") if enabled else None
    return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None


def check_precision(precision: str, key: str = "precision") -> str:
    """``precision`` when it is one of :data:`PRECISIONS`.

    Raises:
        PrecisionError: naming ``key`` (e.g. ``MODEL.INFERENCE_PRECISION``) and the allowed values.
    """
    if precision not in PRECISIONS:
        raise PrecisionError(f"{key} must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


def autocast_dtype(
    precision: str, device: Union[str, torch.device], amp_enabled: bool = False
) -> Optional[torch.dtype]:
    """The autocast dtype of ``precision`` on ``device`` (None: float32, no autocast).

    Args:
        precision (str): one of :data:`PRECISIONS` (checked).
        device (str or torch.device): where the model runs.
        amp_enabled (bool): ``SOLVER.AMP.ENABLED``; with "auto", float16 on CUDA.
    """
    check_precision(precision)
    if precision == "auto":
        return torch.float16 if amp_enabled and torch.device(device).type == "cuda" else None
    return _DTYPES.get(precision)


def inference_autocast(
    precision: str, device: Union[str, torch.device], amp_enabled: bool = False
) -> ContextManager:
    """``torch.autocast`` on ``device`` for ``precision`` (see :func:`autocast_dtype`), or a
    null context for float32. Under it a model takes its low-precision path (on a CPU without
    the hardware for it, the model warns and runs float32: see the module docstring)."""
    dtype = autocast_dtype(precision, device, amp_enabled)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def float32_island(device: Union[str, torch.device]) -> ContextManager:
    """Autocast off on ``device``: post-processing math (scores, similarities) in the dtype of
    its inputs (float32) even when the caller's network runs under autocast."""
    return torch.autocast(torch.device(device).type, enabled=False)


_warned = set()  # the dtypes warned about in this process


def slow_precision_fallback(device_type: str, allow_slow: bool = False) -> ContextManager:
    """Where a model enters its network: autocast disabled (float32) when CPU autocast asks for
    a dtype this CPU emulates, with one :class:`SlowPrecisionWarning` per dtype and process;
    else a null context.

    Args:
        device_type (str): the device of the model's inputs ("cpu", "cuda").
        allow_slow (bool): run the emulated dtype anyway (as does the environment variable
            :data:`ALLOW_SLOW_ENV` set to 1).
    """
    if device_type != "cpu":
        return contextlib.nullcontext()
    dtype = cpu_autocast_dtype()
    if dtype is None or cpu_runs_fast(dtype):
        return contextlib.nullcontext()
    if allow_slow or os.environ.get(ALLOW_SLOW_ENV, "") == "1":
        return contextlib.nullcontext()
    if dtype not in _warned:
        _warned.add(dtype)
        name = str(dtype).replace("torch.", "")
        warnings.warn(
            f"torch.autocast('cpu', dtype=torch.{name}) asks for {name}, but this CPU has no "
            f"{name} arithmetic (PyTorch CPU capability {cpu_info().capability}; "
            f"{cpu_info().describe()}): PyTorch would emulate it, one to several hundred times "
            f"slower than float32 (a 3x3 256-channel convolution: 0.20 s -> 73 s on an AVX2 "
            f"CPU). The model runs in float32 instead. To run {name} anyway, pass "
            f"allow_slow_low_precision=True to the model or set {ALLOW_SLOW_ENV}=1.",
            SlowPrecisionWarning,
            stacklevel=3,
        )
    return torch.autocast("cpu", enabled=False)

"""What the machine can do: CPU model and flags, and the measured matmul peak per dtype.

A reduced-precision mode is only worth measuring where the hardware runs it fast: on CPUs without
AVX512-BF16 / AMX, PyTorch's bf16 matmul and convolutions can be orders of magnitude slower than
float32 (a bf16 warm-up of the whole model then takes many minutes). :func:`measure_peaks` times a
square matmul per dtype, starting small and growing only while the next size stays cheap, so a slow
path costs well under a second; :func:`split_modes` then drops the modes whose dtype is slower than
float32 there, with the reason, unless forced.
"""

import os
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

# /proc/cpuinfo flags that decide the speed of float32 / bf16 / fp16 on the CPU.
RELEVANT_CPU_FLAGS = (
    "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
    "amx_bf16", "amx_fp16",
)  # fmt: skip
# Matmul sides tried in turn (each 8x the work of the one before).
MATMUL_SIZES = (256, 512, 1024, 2048)
# The next size is tried only if its predicted time (8x the last call) stays under this, seconds.
MATMUL_CALL_BUDGET_S = 0.25
# No new size is started once a dtype's measurement has taken this long, seconds.
MATMUL_TOTAL_BUDGET_S = 2.0
# Timed repeats per size (the fastest is kept), after one untimed call.
MATMUL_REPEATS = 3
# Autocast names (as in benchmarks.common.AMP_DTYPES) of the reduced-precision dtypes.
REDUCED_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


def _read_cpuinfo(path: str):
    # Imported here, not at the top: benchmark_vs_official's children that run the official code
    # import this module, and importing video_mask2former registers this project's model parts
    # with detectron2 under the names the official code registers too.
    from video_mask2former.precision import read_cpuinfo

    return read_cpuinfo(path)


def cpu_model(path: str = "/proc/cpuinfo") -> str:
    """The CPU's "model name" from ``path`` (Linux), else ``platform.processor()``."""
    model, _ = _read_cpuinfo(path)
    if model:
        return model
    import platform

    return platform.processor() or "unknown"


def cpu_flags(path: str = "/proc/cpuinfo", relevant: Sequence[str] = RELEVANT_CPU_FLAGS) -> dict:
    """Which of ``relevant`` flags the CPU has (from the first "flags" line of ``path``); an empty
    dict where the file is not readable (not Linux)."""
    _, present = _read_cpuinfo(path)
    return {} if present is None else {flag: flag in present for flag in relevant}


def describe_machine() -> dict:
    """CPU model, the relevant flags, torch's CPU capability (e.g. "AVX2", "AVX512"), threads."""
    import torch

    return {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
    }


def machine_line(machine: dict) -> str:
    """One line for the report, e.g. ``AMD EPYC; torch CPU capability AVX2; flags avx2 fma
    (no avx512f avx512_bf16 amx_bf16 ...); 2 threads``."""
    flags = machine.get("cpu_flags") or {}
    have = " ".join(f for f, on in flags.items() if on) or "none of the listed"
    lack = " ".join(f for f, on in flags.items() if not on)
    return (
        f"{machine['cpu_model']}; torch CPU capability {machine['torch_cpu_capability']}; "
        f"flags {have}" + (f" (not: {lack})" if lack else "") + f"; {machine['threads']} threads"
    )


def _timed_matmul(a, b, device) -> float:
    from benchmarks.common import synchronize

    synchronize(device)
    start = time.perf_counter()
    a @ b
    synchronize(device)
    return time.perf_counter() - start


def matmul_tflops(
    dtype,
    device,
    sizes: Sequence[int] = MATMUL_SIZES,
    call_budget_s: float = MATMUL_CALL_BUDGET_S,
    total_budget_s: float = MATMUL_TOTAL_BUDGET_S,
) -> dict:
    """The best TFLOP/s of a square ``dtype`` matmul on ``device`` (2 n^3 flops per call).

    Sizes are tried in order; the next one only while its predicted time (8x the last call) is
    under ``call_budget_s`` and the total under ``total_budget_s``, so a slow dtype costs about
    one small matmul.

    Returns:
        dict: ``tflops`` (> 0), ``size`` (the side that gave it), ``seconds`` (spent measuring).
    """
    import torch

    device = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    best = {"tflops": 0.0, "size": 0}
    for n in sizes:
        a, b = (torch.randn(n, n, generator=generator).to(device, dtype) for _ in range(2))
        last = _timed_matmul(a, b, device)  # untimed: first-call costs
        if last * 8 <= call_budget_s:  # repeats stay cheap
            last = min(_timed_matmul(a, b, device) for _ in range(MATMUL_REPEATS))
        tflops = 2 * n**3 / max(last, 1e-9) / 1e12
        if tflops > best["tflops"]:
            best = {"tflops": tflops, "size": n}
        if last * 8 > call_budget_s or time.perf_counter() - started > total_budget_s:
            break
    return dict(best, seconds=time.perf_counter() - started)


def measure_peaks(device, amps: Iterable[str] = ("bf16",)) -> Dict[str, dict]:
    """Matmul peaks of float32 (key "fp32") and of each reduced-precision autocast name in
    ``amps`` ("bf16", "fp16"; others are ignored); see :func:`matmul_tflops`."""
    import torch

    peaks = {"fp32": matmul_tflops(torch.float32, device)}
    for amp in dict.fromkeys(amps):
        if amp in REDUCED_DTYPES:
            peaks[amp] = matmul_tflops(getattr(torch, REDUCED_DTYPES[amp]), device)
    return peaks


def slow_reason(amp: Optional[str], peaks: Dict[str, dict]) -> Optional[str]:
    """Why ``amp`` (a reduced-precision name, or None / "none" for float32) should not be
    measured on this machine: its matmul is slower than float32's; None if it is not."""
    if amp not in REDUCED_DTYPES or amp not in peaks or "fp32" not in peaks:
        return None
    reduced, single = peaks[amp]["tflops"], peaks["fp32"]["tflops"]
    if reduced >= single:
        return None
    return (
        f"{amp} matmul {reduced * 1e3:.3g} GFLOP/s < float32 {single * 1e3:.3g} GFLOP/s here "
        f"(no fast {amp} path such as AVX512-BF16 / AMX)"
    )


def split_modes(
    modes: Sequence[str], amp_of, peaks: Dict[str, dict], force: bool = False
) -> Tuple[List[str], Dict[str, str]]:
    """Keep the modes whose precision is fast here.

    Args:
        modes: mode names.
        amp_of: mode -> its autocast name ("none", "bf16", "fp16").
        peaks: from :func:`measure_peaks`.
        force: keep every mode.

    Returns:
        tuple: the kept modes (in order) and ``{skipped mode: reason}``.
    """
    kept, skipped = [], {}
    for mode in modes:
        reason = None if force else slow_reason(amp_of(mode), peaks)
        if reason:
            skipped[mode] = reason
        else:
            kept.append(mode)
    return kept, skipped


def peaks_line(peaks: Dict[str, dict]) -> str:
    """E.g. ``matmul peak: fp32 0.41 TFLOP/s (n=2048), bf16 0.001 TFLOP/s (n=256)``."""
    parts = [f"{k} {v['tflops']:.3g} TFLOP/s (n={v['size']})" for k, v in peaks.items()]
    return "matmul peak: " + ", ".join(parts)

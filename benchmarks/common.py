"""What the benchmarks share: child processes, peak memory, synthetic inputs, models and tables.

Each benchmark setting that reports a peak memory runs in a fresh child process (the benchmark
module run again with hidden arguments, :func:`module_command`), so that each peak is that
setting's own: peak RSS of the child (``ru_maxrss``) on the CPU, ``torch.cuda.max_memory_allocated``
on a GPU. The child prints one JSON line last; the parent reads it with :func:`run_json_child`.

Models come from :func:`build_model`: the library's ``build_inference_model`` from a backbone name
(random, seeded weights unless given) or, with a detectron2 config, ``d2.build_inference_model``.
Printed tables are :func:`table` (GitHub Markdown, ``tabulate``), so they paste into README.
"""

import json
import os
import resource
import subprocess
import sys
import time
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

from tabulate import tabulate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Messages of the allocation failures that count as "out of memory": torch's CPU allocator
# raises a plain RuntimeError (e.g. under an RLIMIT_AS guard).
_CPU_OOM_MESSAGES = ("can't allocate memory", "not enough memory")
# Moving rectangles drawn on the synthetic frames.
NUM_SHAPES = 3
# Autocast dtypes by their command-line name ("none": full precision).
AMP_DTYPES = ("none", "bf16", "fp16")


# ---------------------------------------------------------------------------------------------
# Child processes
# ---------------------------------------------------------------------------------------------


def child_env(extra_paths: Sequence[str] = ()) -> Dict[str, str]:
    """The environment of a child: this one with the repository root (and ``extra_paths``, e.g.
    a prepared copy of the official code) first on ``PYTHONPATH``."""
    paths = [ROOT, *extra_paths, os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))


def module_command(module: str) -> List[str]:
    """The start of a command running the benchmark module ``module`` (its ``__name__``, e.g.
    ``benchmarks.benchmark_inference``) with this interpreter: ``python -m module``."""
    return [sys.executable, "-m", module]


class ChildFailed(RuntimeError):
    """A benchmark child exited with an error; ``returncode`` < 0 means killed by a signal."""

    def __init__(self, message: str, returncode: int):
        super().__init__(message)
        self.returncode = returncode


def run_json_child(
    command: List[str], *, label: str, timeout: float, extra_paths: Sequence[str] = ()
) -> Dict:
    """Run ``command`` (a benchmark child) and return the JSON object on its last stdout line.

    Raises:
        ChildFailed: the child exited non-zero (message: ``label`` and the end of its stderr).
        subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds (it is killed).
    """
    done = subprocess.run(
        command,
        env=child_env(extra_paths),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise ChildFailed(f"{label}: {done.stderr.strip()[-500:]}", done.returncode)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Memory and time
# ---------------------------------------------------------------------------------------------


def peak_memory_mb(device) -> float:
    """Peak memory of this process so far in MiB: CUDA max allocated, or peak RSS on the CPU."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident set size of this process now, MiB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def synchronize(device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so timings are complete."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_ms(function, device, repeats: int) -> float:
    """Fastest of ``repeats`` runs of ``function()``, ms, device work included."""
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def limit_address_space(gigabytes: float) -> None:
    """Cap this process's virtual memory (``RLIMIT_AS``) so a too-large setting fails with an
    allocation error instead of exhausting the machine. Only for CPU runs: the CUDA runtime
    reserves far more address space than it uses. ``gigabytes <= 0`` leaves the limit alone."""
    if gigabytes <= 0:
        return
    limit = int(gigabytes * 2**30)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure (CPU allocator, CUDA, or Python/NumPy)."""
    import torch

    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(error, RuntimeError) and any(m in str(error) for m in _CPU_OOM_MESSAGES)


def autocast(device, amp: str):
    """``torch.autocast`` for ``amp`` (one of :data:`AMP_DTYPES`; "none": disabled)."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


# ---------------------------------------------------------------------------------------------
# Synthetic inputs and models
# ---------------------------------------------------------------------------------------------


def random_frames(count: int, height: int, width: int, generator) -> list:
    """``count`` random RGB frames, uint8 (3, H, W) tensors (uniform noise: the worst case for
    the masks' run-length encoding)."""
    import torch

    return [
        torch.randint(0, 256, (3, height, width), generator=generator, dtype=torch.uint8)
        for _ in range(count)
    ]


def synthetic_frames(num_frames: int, height: int, width: int, seed: int) -> Iterator:
    """Yield ``num_frames`` deterministic (3, H, W) uint8 RGB frames, one at a time.

    Frame ``t`` is low-amplitude noise (seeded by ``seed`` and ``t``) with :data:`NUM_SHAPES`
    solid rectangles moving along straight lines that wrap around the frame.
    """
    import torch

    shapes = torch.Generator().manual_seed(seed)
    size = torch.tensor([height, width])
    starts = torch.rand(NUM_SHAPES, 2, generator=shapes) * size  # (S, 2) y, x
    speeds = (torch.rand(NUM_SHAPES, 2, generator=shapes) - 0.5) * size / 20  # pixels per frame
    extents = (0.1 + 0.2 * torch.rand(NUM_SHAPES, 2, generator=shapes)) * size  # (S, 2) h, w
    colors = torch.randint(0, 256, (NUM_SHAPES, 3), generator=shapes, dtype=torch.uint8)
    for t in range(num_frames):
        noise = torch.Generator().manual_seed(seed * 1_000_003 + t)
        frame = torch.randint(96, 160, (3, height, width), generator=noise, dtype=torch.uint8)
        for (y, x), (h, w), color in zip((starts + t * speeds) % size, extents, colors):
            y0, x0 = int(y), int(x)
            frame[:, y0 : y0 + int(h), x0 : x0 + int(w)] = color[:, None, None]
        yield frame


def build_model(
    backbone: str = "R50",
    *,
    config_file: str = "",
    weights: str = "",
    num_classes: int = 40,
    device: str = "cpu",
    seed: int = 0,
):
    """A model ready for inference, and the detectron2 config it came from (None without one).

    Without ``config_file``: the core build of ``backbone`` (no detectron2) with ``weights`` or
    random weights seeded by ``seed`` (a measurement). With ``config_file`` (needs detectron2):
    the config's model, with ``weights`` or random weights.
    """
    import torch

    torch.manual_seed(seed)
    if not config_file:
        from video_mask2former.build import build_inference_model

        return (
            build_inference_model(backbone, weights, num_classes=num_classes, device=device),
            None,
        )
    from video_mask2former.d2 import build_inference_model as build_from_cfg
    from video_mask2former.d2.config import get_video_cfg

    cfg = get_video_cfg(config_file)
    cfg.MODEL.DEVICE = device
    cfg.MODEL.WEIGHTS = weights
    cfg.freeze()
    return build_from_cfg(cfg, random_weights=not weights), cfg


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def table(
    rows: Iterable,
    headers="keys",
    floatfmt=".3g",
    missing: str = "—",
) -> str:
    """``rows`` (dicts, or sequences with ``headers``) as a GitHub Markdown table (``tabulate``):
    numbers formatted by ``floatfmt`` (one format, or one per column), None as ``missing``."""
    return tabulate(
        list(rows), headers=headers, tablefmt="github", floatfmt=floatfmt, missingval=missing
    )


def write_json(path: Optional[str], data) -> None:
    """Write ``data`` to ``path`` as indented JSON (nothing when ``path`` is empty)."""
    if path:
        with open(path, "w") as f:
            json.dump(data, f, indent=1, default=str)

"""Measuring helpers shared by the inference benchmarks in ``tools/``.

Each benchmark setting runs in a fresh child process (the script calling itself with hidden
arguments) so that each peak memory is that setting's own: peak RSS of the child
(``ru_maxrss``) on the CPU, ``torch.cuda.max_memory_allocated`` on a GPU. The child prints one
JSON line last; the parent reads it with :func:`run_json_child`.
"""

import json
import os
import resource
import subprocess
import sys
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Messages of the allocation failures that count as "out of memory": torch's CPU allocator
# raises a plain RuntimeError (e.g. under an RLIMIT_AS guard).
_CPU_OOM_MESSAGES = ("can't allocate memory", "not enough memory")


def child_env() -> Dict[str, str]:
    """The environment of a child: this one with the repository root on ``PYTHONPATH``."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))


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


class ChildFailed(RuntimeError):
    """A benchmark child exited with an error; ``returncode`` < 0 means killed by a signal."""

    def __init__(self, message: str, returncode: int):
        super().__init__(message)
        self.returncode = returncode


def run_json_child(command: List[str], *, label: str, timeout: float) -> Dict:
    """Run ``command`` (a benchmark child) and return the JSON object on its last stdout line.

    Raises:
        ChildFailed: the child exited non-zero (message: ``label`` and the end of its stderr).
        subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds (it is killed).
    """
    done = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise ChildFailed(f"{label}: {done.stderr.strip()[-500:]}", done.returncode)
    return json.loads(done.stdout.strip().splitlines()[-1])


def python_command(script: str) -> List[str]:
    """The start of a command running ``script`` with this interpreter."""
    return [sys.executable, os.path.abspath(script)]

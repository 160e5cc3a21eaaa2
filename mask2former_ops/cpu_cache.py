"""A caching allocator for large CPU tensors, for inference loops on the CPU.

PyTorch allocates CPU tensors with the C library's ``malloc``. glibc's serves every request above
its mmap threshold (at most 32 MiB) with fresh pages from the kernel and gives them back on free,
so the large intermediates of a forward pass page-fault on first touch, layer after layer and call
after call: at R50 video inference (5 frames of 360x640, 2 threads, this project's AVX2 machine)
about 650,000 minor faults and 16 % of the CPU time in the kernel per video. Within
:func:`cpu_block_cache` the blocks of 1 MiB and more are kept and reused (best fit, split and
merged within 2 MiB-multiple segments, like PyTorch's CUDA caching allocator), which removes
nearly all of those faults. Preloading jemalloc or tcmalloc (``LD_PRELOAD``) has the same effect
for the whole process; the cache does it without touching the environment.

Memory: the cache holds about the peak of the scopes' large tensors between calls (freed blocks
stay reserved for the next call); :func:`empty_cpu_cache` returns the unused part to the system.
When no cached block fits a request, the fully free segments are returned first, so videos of
varying sizes do not make the cache grow without bound.

Without the compiled extension (or on one built before the cache existed) every function here is
a no-op: :func:`cpu_block_cache` yields False and :func:`cpu_cache_stats` reports
``available: False``.
"""

import contextlib
from typing import Dict, Iterator

from .functional import _C

__all__ = ["cpu_block_cache", "cpu_cache_stats", "empty_cpu_cache"]


def _available() -> bool:
    return _C is not None and hasattr(_C, "cpu_cache_enter")


@contextlib.contextmanager
def cpu_block_cache(enabled: bool = True) -> Iterator[bool]:
    """Within the context, CPU tensors of 1 MiB and more are allocated from the block cache.

    Scopes nest and may be open in several threads at once: the cache is PyTorch's CPU allocator
    from the first open scope to the last closed one (then the previous allocator is back).
    Tensors allocated within stay valid after it; their memory returns to the cache when freed.

    Args:
        enabled (bool): False makes the context do nothing (a switch for callers).

    Yields:
        bool: whether the cache is PyTorch's CPU allocator within the context (False when
        disabled, without the compiled extension, or when another allocator was installed with a
        higher priority, e.g. by an extension).
    """
    if not enabled or not _available():
        yield False
        return
    installed = bool(_C.cpu_cache_enter())
    try:
        yield installed
    finally:
        _C.cpu_cache_exit()


def empty_cpu_cache() -> int:
    """Return the cached memory that holds no tensor to the system; the bytes freed (0 without
    the extension)."""
    return int(_C.cpu_cache_empty()) if _available() else 0


def cpu_cache_stats() -> Dict[str, int]:
    """The cache's counters: ``available`` (0/1), ``reserved_bytes`` (segments held),
    ``allocated_bytes`` (in live tensors), ``cached_bytes`` (reserved, free), ``segments``,
    ``hits`` / ``misses`` (requests served from cached memory / from new segments), ``scopes``
    (open now), ``installed`` (0/1: the cache is PyTorch's CPU allocator now),
    ``min_block_bytes`` (smaller requests bypass it)."""
    if not _available():
        return {"available": 0}
    stats = {"available": 1, **{key: int(value) for key, value in _C.cpu_cache_stats().items()}}
    stats["min_block_bytes"] = int(_C.cpu_cache_min_block_bytes())
    return stats

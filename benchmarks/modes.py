"""The ways of running this project's model that the benchmarks compare, applied in one place.

A mode is a precision (autocast dtype), whether the network is compiled and whether large CPU
tensors come from the block cache:

- ``fp32``: as built; ``bf16`` / ``fp16``: called under ``torch.autocast``;
- ``compiled`` / ``compiled-bf16``: the library's ``compile_network`` switch (``MODEL.COMPILE``:
  ``torch.compile`` of the network, backbone and head, on the first call at inference; the
  deformable-attention custom op stays one node), then called as ``fp32`` / ``bf16``;
- ``fp32-no-cache``: ``fp32`` with the CPU block cache off (``MODEL.CPU_BLOCK_CACHE False``:
  every large tensor from the C library's allocator), to show what the cache brings.

:func:`apply_mode` is the only code that knows how a mode is set up. The low-precision modes use
the library's switch, PyTorch's autocast; the benchmarks skip them on a CPU that emulates the
dtype (see ``benchmarks.hardware``) unless forced, and a forced mode opts the model in to the slow
path (``allow_slow_low_precision``), which it would otherwise replace by float32.
"""

import contextlib
from typing import Callable, ContextManager

# Mode name -> (autocast name as in benchmarks.common.AMP_DTYPES, compiled, CPU block cache).
MODES = {
    "fp32": ("none", False, True),
    "bf16": ("bf16", False, True),
    "fp16": ("fp16", False, True),
    "compiled": ("none", True, True),
    "compiled-bf16": ("bf16", True, True),
    "fp32-no-cache": ("none", False, False),
}
# Former autocast names accepted where a mode is expected.
AMP_ALIASES = {"none": "fp32"}


def mode_name(name: str) -> str:
    """The mode ``name`` ("none" is accepted for "fp32").

    Raises:
        ValueError: an unknown mode.
    """
    name = AMP_ALIASES.get(name, name)
    if name not in MODES:
        raise ValueError(f"unknown mode {name!r}; expected one of {', '.join(MODES)}")
    return name


def amp_of(mode: str) -> str:
    """The autocast name of ``mode``: "none", "bf16" or "fp16"."""
    return MODES[mode_name(mode)][0]


def is_compiled_mode(mode: str) -> bool:
    return MODES[mode_name(mode)][1]


def apply_mode(model, mode: str, device) -> Callable[[], ContextManager]:
    """Set ``model`` up for ``mode`` and return the context to call it in.

    Compiled modes set ``model.compile_network`` (the compilation itself happens on the first
    call: keep it out of timings with a warm-up call); every mode sets ``model.cache_cpu_blocks``.

    Args:
        model (nn.Module): a VideoMaskFormer, weights loaded, on ``device``.
        mode (str): a key of :data:`MODES` (or "none").
        device (torch.device): where it runs (the autocast device type).

    Returns:
        callable: ``() -> context manager`` to enter around each call of the model.
    """
    from benchmarks.common import autocast

    amp, compiled, block_cache = MODES[mode_name(mode)]
    model.compile_network = compiled
    model.cache_cpu_blocks = block_cache
    if amp == "none":
        return contextlib.nullcontext
    model.allow_slow_low_precision = True  # the caller decided to run it (skipped when slow)
    return lambda: autocast(device, amp)

"""Multi-scale deformable attention (Deformable DETR) for Mask2Former's pixel decoder.

Importing never fails: without the compiled extension ``mask2former_ops._C`` the pure-PyTorch path
runs (``is_compiled()`` is False and one warning is issued the first time a slow path is taken).

The first use of a compiled kernel per device, dtype and pass is checked against the pure-PyTorch
path (:mod:`mask2former_ops.self_check`); ``kernel_status()`` reports the checks and the path each
case uses, ``set_strict(True)`` or ``MASK2FORMER_OPS_STRICT=1`` turns a mismatch into an error.

:func:`cpu_block_cache` keeps large CPU tensors' memory for reuse within and across inference
calls (:mod:`mask2former_ops.cpu_cache`).
"""

from .cpu_cache import cpu_block_cache, cpu_cache_stats, empty_cpu_cache
from .functional import (
    available_implementations,
    check_kernels,
    cuda_available,
    cuda_kernels_built,
    extension_import_error,
    is_compiled,
    ms_deform_attn,
)
from .modules import MSDeformAttn
from .reference import ms_deform_attn_pytorch
from .self_check import KernelMismatchError, KernelMismatchWarning, kernel_status, set_strict

__all__ = [
    "MSDeformAttn",
    "ms_deform_attn",
    "ms_deform_attn_pytorch",
    "is_compiled",
    "cuda_kernels_built",
    "cuda_available",
    "available_implementations",
    "extension_import_error",
    "kernel_status",
    "check_kernels",
    "set_strict",
    "KernelMismatchError",
    "KernelMismatchWarning",
    "cpu_block_cache",
    "cpu_cache_stats",
    "empty_cpu_cache",
]

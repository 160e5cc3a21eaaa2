"""Multi-scale deformable attention (Deformable DETR) for Mask2Former's pixel decoder.

Importing never fails: without the compiled extension ``mask2former_ops._C`` the pure-PyTorch path
runs (``is_compiled()`` is False and one warning is issued the first time a slow path is taken).
"""

from .functional import (
    available_implementations,
    cuda_available,
    cuda_kernels_built,
    extension_import_error,
    is_compiled,
    ms_deform_attn,
)
from .modules import MSDeformAttn
from .reference import ms_deform_attn_pytorch

__all__ = [
    "MSDeformAttn",
    "ms_deform_attn",
    "ms_deform_attn_pytorch",
    "is_compiled",
    "cuda_kernels_built",
    "cuda_available",
    "available_implementations",
    "extension_import_error",
]

"""Multi-scale deformable attention: dispatch between compiled kernels and the PyTorch path.

Shape shorthand (Deformable DETR): N batch, S = sum_l H_l * W_l flattened value positions, M heads,
D channels per head, Lq queries, L levels, P sampling points per head and level.

Implementations (see :func:`available_implementations`):

- ``"cuda"``: the CUDA kernels of ``mask2former_ops._C`` (when it was built with CUDA).
- ``"cpu"``: the C++ CPU kernels of ``mask2former_ops._C``.
- ``"pytorch"``: :func:`mask2former_ops.reference.ms_deform_attn_pytorch`, always available.

``implementation="auto"`` picks once per call from the device of ``value`` and what was compiled:
CUDA tensors use ``"cuda"``; CPU tensors use ``"cpu"`` when ``CPU_PREFERS_COMPILED`` (set from the
measurements of ``benchmarks/benchmark_ms_deform_attn.py``), else ``"pytorch"``. When a compiled
path would be used but is missing, the PyTorch path runs and one warning is issued per process.

Dtype policy: ``value`` keeps its dtype (float16, bfloat16, float32 or float64) and the output has
that dtype. Sampling locations and attention weights are cast to
``compute_dtype_for(value.dtype)`` (float32, or float64 for float64 values) and every
interpolation and sum accumulates in that dtype, so half-precision values never cost sub-pixel
accuracy in the sampling positions. Under ``torch.autocast`` nothing else is cast: the op runs in
whatever dtype the value projection produced (float16/bfloat16 under CUDA autocast).
"""

import importlib.util
import warnings
from typing import List, Optional, Sequence, Tuple

import torch

from . import self_check
from .reference import compute_dtype_for, ms_deform_attn_pytorch

_C_IMPORT_ERROR: Optional[str] = None
if importlib.util.find_spec(f"{__package__}._C") is None:
    _C = None
    _C_IMPORT_ERROR = (
        "the extension mask2former_ops._C is not built; build it with "
        "`pip install --no-build-isolation -e .` from the project root"
    )
else:
    try:
        from . import _C
    except ImportError as _import_error:  # built for another torch / CUDA: undefined symbols
        _C = None
        _C_IMPORT_ERROR = f"mask2former_ops._C failed to load: {_import_error}"

__all__ = [
    "ms_deform_attn",
    "is_compiled",
    "cuda_kernels_built",
    "cuda_available",
    "available_implementations",
    "select_implementation",
    "extension_import_error",
    "check_kernels",
    "CPU_PREFERS_COMPILED",
]

# Whether the C++ CPU kernels beat the PyTorch path on CPU tensors. Measured with
# benchmarks/benchmark_ms_deform_attn.py at the pixel-decoder shapes (see the table in README.md).
CPU_PREFERS_COMPILED = True

IMPLEMENTATIONS = ("cuda", "cpu", "pytorch")

_fallback_warned = False


def is_compiled() -> bool:
    """Whether the compiled extension ``mask2former_ops._C`` was imported."""
    return _C is not None


def cuda_kernels_built() -> bool:
    """Whether the compiled extension contains the CUDA kernels."""
    return _C is not None and bool(_C.with_cuda())


def cuda_available() -> bool:
    """Whether the CUDA kernels can run here (built and a CUDA device is visible)."""
    return cuda_kernels_built() and torch.cuda.is_available()


def extension_import_error() -> Optional[str]:
    """The ``ImportError`` message raised when loading ``_C``, or None when it loaded."""
    return _C_IMPORT_ERROR


def available_implementations(device: torch.device) -> List[str]:
    """Implementations that can run on tensors of ``device``, fastest-preferred first."""
    device = torch.device(device)
    if device.type == "cuda":
        return (["cuda"] if cuda_kernels_built() else []) + ["pytorch"]
    if device.type == "cpu":
        compiled = ["cpu"] if is_compiled() else []
        return compiled + ["pytorch"] if CPU_PREFERS_COMPILED else ["pytorch"] + compiled
    return ["pytorch"]


def _warn_fallback_once(device: torch.device) -> None:
    global _fallback_warned
    if _fallback_warned:
        return
    _fallback_warned = True
    reason = (
        _C_IMPORT_ERROR
        if _C is None
        else "it was built without CUDA kernels (no nvcc at build time, or FORCE_CUDA=0)"
    )
    warnings.warn(
        f"mask2former_ops: no compiled multi-scale deformable attention kernel for {device.type} "
        f"tensors ({reason}); using the slower pure-PyTorch path. Rebuild with "
        "`pip install --no-build-isolation -e .` where nvcc is available.",
        RuntimeWarning,
        stacklevel=4,
    )


def select_implementation(device: torch.device, implementation: str = "auto") -> str:
    """Resolve ``implementation`` for tensors on ``device``.

    Args:
        device: device of ``value``.
        implementation: ``"auto"`` or one of ``"cuda"``, ``"cpu"``, ``"pytorch"``.

    Returns:
        The implementation to run. ``"auto"`` warns once when it has to fall back to the PyTorch
        path because a compiled kernel for ``device`` is missing.

    Raises:
        ValueError: an explicit implementation that cannot run on ``device`` here.
    """
    device = torch.device(device)
    available = available_implementations(device)
    if implementation == "auto":
        wanted = {"cuda": "cuda", "cpu": "cpu" if CPU_PREFERS_COMPILED else "pytorch"}.get(
            device.type, "pytorch"
        )
        if wanted not in available:
            _warn_fallback_once(device)
            return "pytorch"
        return wanted
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"implementation must be 'auto' or one of {IMPLEMENTATIONS}, got {implementation!r}"
        )
    if implementation not in available:
        raise ValueError(
            f"implementation {implementation!r} cannot run on {device.type} tensors here; "
            f"available: {available} (mask2former_ops.is_compiled()={is_compiled()}, "
            f"cuda_kernels_built()={cuda_kernels_built()})"
        )
    return implementation


# channels_per_thread of the compiled kernels on each checked path (0: the widest vector layout
# the inputs allow, 1: one channel at a time), on CUDA (channels per thread) and on the CPU (SIMD
# vectors of the instruction set torch dispatches to, or scalar loops).
CHANNELS_PER_THREAD = {"vectorised": 0, "scalar": 1}


def _kernel_forward(value, spatial_shapes, level_start_index, locations, weights, layout):
    """(N, Lq, M * D) from the compiled forward kernel: the only call of it (tests wrap this)."""
    return _C.ms_deform_attn_forward(
        value,
        spatial_shapes,
        level_start_index,
        locations,
        weights,
        channels_per_thread=CHANNELS_PER_THREAD[layout],
    )


def _kernel_backward(value, spatial_shapes, level_start_index, locations, weights, grad, layout):
    """Gradients of value, sampling locations and attention weights from the compiled backward
    kernel: the only call of it (tests wrap this)."""
    grad_value, grad_locations, grad_weights = _C.ms_deform_attn_backward(
        value,
        spatial_shapes,
        level_start_index,
        locations,
        weights,
        grad.contiguous(),
        channels_per_thread=CHANNELS_PER_THREAD[layout],
    )
    return grad_value, grad_locations, grad_weights


def _reference_backward(value, spatial_shapes, locations, weights, grad):
    """The PyTorch path's gradients, with ``torch.func`` (this runs below autograd, inside the
    custom op's kernel, where ``torch.autograd`` records nothing)."""
    level_shapes = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]

    def forward(v, loc, w):
        return ms_deform_attn_pytorch(v, spatial_shapes, loc, w, level_shapes)

    _, vjp = torch.func.vjp(forward, value, locations, weights)
    return vjp(grad.to(value.dtype))


def _forward_on(path, value, spatial_shapes, level_start_index, locations, weights):
    """The output of ``path`` (``self_check.FALLBACK_CHAINS``): a compiled layout or PyTorch."""
    if path == self_check.REFERENCE_PATH:
        return ms_deform_attn_pytorch(value, spatial_shapes, locations, weights)
    return _kernel_forward(value, spatial_shapes, level_start_index, locations, weights, path)


def _backward_on(path, value, spatial_shapes, level_start_index, locations, weights, grad):
    """The three gradients from ``path``: a compiled layout or PyTorch."""
    if path == self_check.REFERENCE_PATH:
        return _reference_backward(value, spatial_shapes, locations, weights, grad)
    return _kernel_backward(
        value, spatial_shapes, level_start_index, locations, weights, grad, path
    )


def _check_forward(path, case):
    return (_forward_on(path, *case.inputs()),)


def _check_backward(path, case):
    return _backward_on(path, *case.inputs(), case.grad_output)


def check_kernels(
    device: torch.device, dtypes: Optional[Sequence[torch.dtype]] = None
) -> List["self_check.CheckRecord"]:
    """Check every compiled layout of ``device`` (``self_check.FALLBACK_CHAINS``), forward and
    backward, for each of ``dtypes`` (default: float64, float32, float16, bfloat16) now.

    For reports and CI: the results go to :func:`mask2former_ops.kernel_status`; the paths in use
    are still decided at first use. Strict mode raises on the first mismatch.

    Raises:
        ValueError: no compiled kernel for ``device`` here.
    """
    device = torch.device(device)
    compiled = "cuda" if device.type == "cuda" else "cpu"
    if compiled not in available_implementations(device) or (
        device.type == "cuda" and not torch.cuda.is_available()
    ):
        raise ValueError(
            f"no compiled multi-scale deformable attention kernel can run on {device} here "
            f"(is_compiled()={is_compiled()}, cuda_available()={cuda_available()})"
        )
    paths = [p for p in self_check.FALLBACK_CHAINS[device.type] if p != self_check.REFERENCE_PATH]
    runs = {"forward": _check_forward, "backward": _check_backward}
    records = []
    for dtype in dtypes or tuple(self_check.TOLERANCES):
        records += self_check.check_paths(device, dtype, runs, paths)
    return records


def _compiled_forward_impl(value, spatial_shapes, level_start_index, locations, weights):
    """(N, Lq, M * D) from the path the first-use check chose for this device and dtype."""
    path = self_check.select_path(value.device, value.dtype, "forward", _check_forward)
    return _forward_on(path, value, spatial_shapes, level_start_index, locations, weights)


def _compiled_backward_impl(value, spatial_shapes, level_start_index, locations, weights, grad):
    """Gradients of value, sampling locations and attention weights from the checked path."""
    path = self_check.select_path(value.device, value.dtype, "backward", _check_backward)
    return _backward_on(path, value, spatial_shapes, level_start_index, locations, weights, grad)


if hasattr(torch.library, "custom_op"):  # torch >= 2.4: a real operator, seen by compile / export

    @torch.library.custom_op("mask2former_ops::ms_deform_attn", mutates_args=())
    def _compiled_op(
        value: torch.Tensor,
        spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
        sampling_locations: torch.Tensor,
        attention_weights: torch.Tensor,
    ) -> torch.Tensor:
        """The compiled kernels (CPU or CUDA, by the tensors' device) as ``torch.ops``'
        ``mask2former_ops.ms_deform_attn``: ``torch.compile`` and ``torch.export`` keep it as one
        node (shapes from the fake implementation below). Under autocast the inputs pass through
        in their dtypes (no autocast rule is registered): :func:`ms_deform_attn` applies the
        dtype policy before calling it. The first call per device and dtype runs the
        first-use check of :mod:`mask2former_ops.self_check` (here, eagerly: tracing uses the
        fake implementation)."""
        return _compiled_forward_impl(
            value, spatial_shapes, level_start_index, sampling_locations, attention_weights
        )

    @_compiled_op.register_fake
    def _(value, spatial_shapes, level_start_index, sampling_locations, attention_weights):
        batch, _, heads, channels = value.shape
        return value.new_empty((batch, sampling_locations.shape[1], heads * channels))

    @torch.library.custom_op("mask2former_ops::ms_deform_attn_backward", mutates_args=())
    def _compiled_backward_op(
        value: torch.Tensor,
        spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
        sampling_locations: torch.Tensor,
        attention_weights: torch.Tensor,
        grad_output: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gradients of ``mask2former_ops.ms_deform_attn`` (value, locations, weights)."""
        return _compiled_backward_impl(
            value,
            spatial_shapes,
            level_start_index,
            sampling_locations,
            attention_weights,
            grad_output,
        )

    @_compiled_backward_op.register_fake
    def _(value, spatial_shapes, level_start_index, sampling_locations, attention_weights, grad):
        return (
            torch.empty_like(value),
            torch.empty_like(sampling_locations),
            torch.empty_like(attention_weights),
        )

    def _setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    def _op_backward(ctx, grad_output):
        grad_value, grad_locations, grad_weights = _compiled_backward_op(
            *ctx.saved_tensors, grad_output
        )
        return grad_value, None, None, grad_locations, grad_weights

    _compiled_op.register_autograd(_op_backward, setup_context=_setup_context)

    def _apply_compiled(*inputs):
        return _compiled_op(*inputs)

else:  # torch 2.1 - 2.3: an autograd.Function over the same kernels

    class _MSDeformAttnFunction(torch.autograd.Function):
        """``custom_fwd`` without ``cast_inputs`` keeps the caller's dtypes under autocast (the
        dtype policy is applied by :func:`ms_deform_attn` before this runs)."""

        @staticmethod
        @torch.cuda.amp.custom_fwd
        def forward(ctx, value, spatial_shapes, level_start_index, locations, weights):
            ctx.save_for_backward(value, spatial_shapes, level_start_index, locations, weights)
            return _compiled_forward_impl(
                value, spatial_shapes, level_start_index, locations, weights
            )

        @staticmethod
        @torch.autograd.function.once_differentiable
        @torch.cuda.amp.custom_bwd
        def backward(ctx, grad_output):
            grads = _compiled_backward_impl(*ctx.saved_tensors, grad_output)
            return grads[0], None, None, grads[1], grads[2]

    def _apply_compiled(*inputs):
        return _MSDeformAttnFunction.apply(*inputs)


def _check_shapes(
    value, value_spatial_shapes, value_level_start_index, sampling_locations, attention_weights
):
    if value.dim() != 4:
        raise ValueError(f"value must be (N, S, M, D), got shape {tuple(value.shape)}")
    n, _, m, _ = value.shape
    num_levels = value_spatial_shapes.shape[0]
    if (
        sampling_locations.dim() != 6
        or sampling_locations.shape[0] != n
        or sampling_locations.shape[2] != m
        or sampling_locations.shape[3] != num_levels
        or sampling_locations.shape[5] != 2
    ):
        raise ValueError(
            f"sampling_locations must be (N={n}, Lq, M={m}, L={num_levels}, P, 2), got shape "
            f"{tuple(sampling_locations.shape)}"
        )
    if tuple(attention_weights.shape) != tuple(sampling_locations.shape[:-1]):
        raise ValueError(
            f"attention_weights must be (N, Lq, M, L, P) = {tuple(sampling_locations.shape[:-1])}, "
            f"got shape {tuple(attention_weights.shape)}"
        )
    if tuple(value_level_start_index.shape) != (num_levels,):
        raise ValueError(
            f"value_level_start_index must be (L,) = ({num_levels},), got shape "
            f"{tuple(value_level_start_index.shape)}"
        )


def ms_deform_attn(
    value: torch.Tensor,
    value_spatial_shapes: torch.Tensor,
    value_level_start_index: torch.Tensor,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
    implementation: str = "auto",
    level_shapes: Optional[Sequence[Tuple[int, int]]] = None,
) -> torch.Tensor:
    """Multi-scale deformable attention (bilinear samples, zero outside, weighted sum).

    Differentiable in ``value``, ``sampling_locations`` and ``attention_weights``.

    Args:
        value (Tensor): (N, S, M, D) values of all levels, flattened level after level.
        value_spatial_shapes (Tensor): (L, 2) long, (H_l, W_l) of each level.
        value_level_start_index (Tensor): (L,) long, offset of each level in S.
        sampling_locations (Tensor): (N, Lq, M, L, P, 2) normalised (x, y); pixel centres at
            ``(i + 0.5) / size`` (``grid_sample``'s ``align_corners=False``).
        attention_weights (Tensor): (N, Lq, M, L, P).
        implementation: ``"auto"`` (see module docstring), ``"cuda"``, ``"cpu"`` or ``"pytorch"``.
        level_shapes (sequence, optional): the L (H_l, W_l) as Python ints; the PyTorch path uses
            them instead of reading ``value_spatial_shapes`` back (a device sync, and a
            data-dependent value that ``torch.export`` / ONNX export cannot trace).

    Returns:
        Tensor: (N, Lq, M * D) in ``value.dtype``.
    """
    _check_shapes(
        value, value_spatial_shapes, value_level_start_index, sampling_locations, attention_weights
    )
    impl = select_implementation(value.device, implementation)
    if impl == "pytorch":
        return ms_deform_attn_pytorch(
            value, value_spatial_shapes, sampling_locations, attention_weights, level_shapes
        )
    dtype = compute_dtype_for(value.dtype)
    return _apply_compiled(
        value.contiguous(),
        value_spatial_shapes.to(device=value.device, dtype=torch.long).contiguous(),
        value_level_start_index.to(device=value.device, dtype=torch.long).contiguous(),
        sampling_locations.to(dtype).contiguous(),
        attention_weights.to(dtype).contiguous(),
    )

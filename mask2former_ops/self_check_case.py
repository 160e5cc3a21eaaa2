"""The small case on which :mod:`mask2former_ops.self_check` compares a kernel with the reference.

Shape shorthand (Deformable DETR): N batch, S = sum_l H_l * W_l flattened value positions, M heads,
D channels per head, Lq queries, L levels, P sampling points per head and level.

The inputs come from a local ``torch.Generator`` on the CPU (then copied to the device), so the
caller's CPU and CUDA random states are untouched. The reference runs the pure-PyTorch path in
float64 on the CPU on exactly the inputs the kernel sees (values already rounded to their dtype).
"""

from dataclasses import dataclass
from typing import List, Tuple

import torch

from .reference import compute_dtype_for, ms_deform_attn_pytorch

__all__ = ["CheckCase", "make_cases", "reference_outputs", "PASSES"]

PASSES = ("forward", "backward")

# Levels of different, non-square sizes, one of them a single row; S = 6*9 + 3*5 + 1*2 = 71.
LEVEL_SHAPES = ((6, 9), (3, 5), (1, 2))
QUERIES, POINTS = 3, 2
# (channels D, heads M, batch N) of each sub-case. On CUDA a vector holds 2 / 4 / 8 channels
# (float64 / float32 / half): D = 8 gives few channel groups per head (one for half: a plain
# store, no atomics), 12 a group count that is no power of two (float64, float32: per-lane
# atomics) and no multiple of the half vector width (the scalar fallback), 3 the scalar kernel
# only, 512 more groups than a warp in every dtype (warp segments add atomically; one head and
# one video keep it cheap). On the CPU a vector holds 4 / 8 / 16 float32 (bfloat16, float16) or
# 2 / 4 / 8 float64 channels (16-byte, AVX2, AVX-512) and channels go in blocks of 4, 2, 1
# vectors, then one at a time: 54 adds blocks of 2 (and 1) vectors followed by single channels
# at every width, which 8, 12 and 512 (multiples of the widths) do not all reach.
SUB_CASES = ((8, 2, 2), (12, 2, 2), (3, 2, 2), (512, 1, 1), (54, 2, 1))
SEED = 19


@dataclass(frozen=True)
class CheckCase:
    """One sub-case: kernel inputs on the checked device and the gradient of the output.

    Attributes:
        value (Tensor): (N, S, M, D) in the checked dtype.
        spatial_shapes (Tensor): (L, 2) long.
        level_start_index (Tensor): (L,) long.
        sampling_locations (Tensor): (N, Lq, M, L, P, 2) in ``compute_dtype_for(dtype)``.
        attention_weights (Tensor): (N, Lq, M, L, P) in ``compute_dtype_for(dtype)``.
        grad_output (Tensor): (N, Lq, M * D) in the checked dtype.
    """

    value: torch.Tensor
    spatial_shapes: torch.Tensor
    level_start_index: torch.Tensor
    sampling_locations: torch.Tensor
    attention_weights: torch.Tensor
    grad_output: torch.Tensor

    @property
    def channels(self) -> int:
        return self.value.shape[-1]

    def inputs(self) -> Tuple[torch.Tensor, ...]:
        """The five inputs of ``ms_deform_attn`` (value, shapes, starts, locations, weights)."""
        return (
            self.value,
            self.spatial_shapes,
            self.level_start_index,
            self.sampling_locations,
            self.attention_weights,
        )


def _level_tensors() -> Tuple[torch.Tensor, torch.Tensor]:
    """(L, 2) spatial shapes and (L,) level start index, on the CPU."""
    shapes = torch.tensor(LEVEL_SHAPES, dtype=torch.long)
    areas = shapes.prod(1)
    return shapes, torch.cat([areas.new_zeros(1), areas.cumsum(0)[:-1]])


def _locations(gen: torch.Generator, batch: int, heads: int) -> torch.Tensor:
    """(N, Lq, M, L, P, 2) float64: a third of the samples straddle or leave the map, plus points
    on the borders, on an exact pixel centre and entirely outside (all exact in float32)."""
    locations = torch.rand(batch, QUERIES, heads, len(LEVEL_SHAPES), POINTS, 2, generator=gen)
    locations = locations.double() * 1.5 - 0.25
    locations[:, 0, :, 0, 0, 0] = 0.0  # on the left border of level 0
    locations[:, 0, :, 1, 0] = torch.tensor([1.0, 1.0])  # bottom-right corner of level 1
    locations[:, 1, :, 2, 0] = torch.tensor([0.75, 0.5])  # the centre of pixel (0, 1), level 2
    locations[:, 2, :, :, 0] = torch.tensor([-0.9, 1.7])  # entirely outside every level
    return locations


def _make_case(sub_case, device: torch.device, dtype: torch.dtype, gen) -> CheckCase:
    channels, heads, batch = sub_case
    shapes, starts = _level_tensors()
    num_values = int(shapes.prod(1).sum())
    compute = compute_dtype_for(dtype)
    value = torch.randn(batch, num_values, heads, channels, generator=gen, dtype=torch.float64)
    locations = _locations(gen, batch, heads)
    weights = torch.randn(locations.shape[:-1], generator=gen, dtype=torch.float64)
    grad = torch.randn(batch, QUERIES, heads * channels, generator=gen, dtype=torch.float64)
    return CheckCase(
        value=value.to(device=device, dtype=dtype),
        spatial_shapes=shapes.to(device),
        level_start_index=starts.to(device),
        sampling_locations=locations.to(device=device, dtype=compute),
        attention_weights=weights.to(device=device, dtype=compute),
        grad_output=grad.to(device=device, dtype=dtype),
    )


def make_cases(device: torch.device, dtype: torch.dtype) -> List[CheckCase]:
    """One :class:`CheckCase` per entry of ``SUB_CASES`` on ``device``, from a fixed seed."""
    gen = torch.Generator().manual_seed(SEED)
    return [_make_case(sub_case, torch.device(device), dtype, gen) for sub_case in SUB_CASES]


def reference_outputs(case: CheckCase, pass_: str) -> Tuple[torch.Tensor, ...]:
    """Float64 CPU results of the pure-PyTorch path on ``case``.

    Returns:
        ``(output,)`` for ``"forward"``: (N, Lq, M * D); ``(grad_value, grad_sampling_locations,
        grad_attention_weights)`` for ``"backward"``, shaped like the inputs.
    """
    value, shapes, _, locations, weights = (t.detach().cpu() for t in case.inputs())
    value, locations, weights = value.double(), locations.double(), weights.double()

    def forward(v, loc, w):
        return ms_deform_attn_pytorch(v, shapes, loc, w, LEVEL_SHAPES)

    if pass_ == "forward":
        return (forward(value, locations, weights),)
    # torch.func, not torch.autograd: this also runs inside the custom op's kernel, below autograd
    _, vjp = torch.func.vjp(forward, value, locations, weights)
    return vjp(case.grad_output.cpu().double())

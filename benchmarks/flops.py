"""FLOPs of one model call: ``torch.utils.flop_counter.FlopCounterMode``, plus the
deformable-attention op counted by hand (the counter has no formula for a custom op).

A FLOP is a multiply or an add (the counter's convention: a matmul of (m, k) by (k, n) is
2 m k n). The deformable-attention op, per query, head, level, sampling point and channel, reads
4 bilinear taps and multiplies their weighted sum by the attention weight:
:data:`DEFORM_ATTN_FLOPS_PER_SAMPLE` = 2 x (4 taps + 1 attention weight).
"""

from typing import Callable

# Multiply-adds (x2) per sampling point and channel: 4 bilinear taps + the attention weight.
DEFORM_ATTN_FLOPS_PER_SAMPLE = 2 * (4 + 1)


def deform_attn_flops(value_shape, spatial_shapes_shape, level_start_shape, locations_shape,
                      weights_shape, *args, **kwargs) -> int:  # fmt: skip
    """FLOPs of ``ms_deform_attn`` from its inputs' shapes: value (N, S, M, D), sampling locations
    (N, Lq, M, L, P, 2); see :data:`DEFORM_ATTN_FLOPS_PER_SAMPLE`."""
    n, queries, heads, levels, points, _ = locations_shape
    return DEFORM_ATTN_FLOPS_PER_SAMPLE * n * queries * heads * levels * points * value_shape[-1]


def _custom_mapping() -> dict:
    """The counter's formulas for this project's custom ops (empty if the op is not registered:
    the pure-PyTorch path, whose ``grid_sample`` the counter does not count either)."""
    import torch

    import mask2former_ops  # noqa: F401  (registers torch.ops.mask2former_ops)

    namespace = getattr(torch.ops, "mask2former_ops", None)
    op = getattr(namespace, "ms_deform_attn", None) if namespace is not None else None
    return {op: deform_attn_flops} if op is not None else {}


def count_flops(function: Callable[[], object]) -> dict:
    """Run ``function()`` once under ``FlopCounterMode`` and count its FLOPs.

    Returns:
        dict: ``total``, ``deform_attn`` (the hand-counted part; None where the op was not
        registered, so not counted), ``by_operator`` (operator name -> FLOPs).
    """
    from torch.utils.flop_counter import FlopCounterMode

    mapping = _custom_mapping()
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:
        function()
    by_operator = {str(op): int(n) for op, n in counter.get_flop_counts()["Global"].items()}
    deform = sum(n for op, n in by_operator.items() if "ms_deform_attn" in op)
    return {
        "total": int(counter.get_total_flops()),
        "deform_attn": deform if mapping else None,
        "by_operator": by_operator,
    }

#!/usr/bin/env python
"""Time multi-scale deformable attention at the pixel-decoder shapes of the paper's setting.

Shapes: 4 frames of 360x640 padded to 384x640 (two 2-frame clips), levels 1/8, 1/16, 1/32
(48x80, 24x40, 12x20), 8 heads x 32 channels, 4 points, every pixel of the three levels a query
(Lq = S = 5040). Sampling locations are each query's own position plus offsets of a few pixels,
like a trained pixel decoder's.

For every implementation available on each device and each dtype it prints the time of the
forward pass and of forward + backward, the speed-up over the pure-PyTorch path measured in the
same run, the achieved bandwidth and, on CUDA, the peak memory allocated during the call.

Bandwidth counts compulsory traffic only: every input and output tensor read or written once
(forward: value, locations, weights, output; forward + backward adds grad_output read and
value, locations, weights read again, and grad_value, grad_locations, grad_weights written), so it
is a lower bound on the traffic and an upper bound on how far the kernel is from memory-bound.

Example::

    python tools/benchmark_ms_deform_attn.py --device cpu --dtype float32 --iters 5
"""

import argparse
import time

import torch

import mask2former_ops
from mask2former_ops.functional import available_implementations, ms_deform_attn
from mask2former_ops.reference import compute_dtype_for

LEVEL_SHAPES = ((48, 80), (24, 40), (12, 20))  # 1/8, 1/16, 1/32 of 384x640
BATCH = 4  # two 2-frame clips
HEADS, CHANNELS, POINTS = 8, 32, 4
OFFSET_STD_PIXELS = 2.0  # spread of the sampling offsets around each query, in pixels
DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


def make_inputs(device, dtype, seed=0):
    """Benchmark inputs.

    Returns:
        value (N, S, M, D) in ``dtype``; spatial shapes (L, 2); level start index (L,);
        locations (N, Lq, M, L, P, 2) and weights (N, Lq, M, L, P) in the op's compute dtype.
    """
    gen = torch.Generator().manual_seed(seed)
    shapes = torch.tensor(LEVEL_SHAPES, dtype=torch.long)
    areas = shapes.prod(1)
    starts = torch.cat([areas.new_zeros(1), areas.cumsum(0)[:-1]])
    num_values = int(areas.sum())
    num_levels = len(LEVEL_SHAPES)
    # each query sits at the centre of its own pixel: (Lq, 2) as normalised (x, y)
    centres = []
    for h, w in LEVEL_SHAPES:
        ys, xs = torch.meshgrid(
            (torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij"
        )
        centres.append(torch.stack([xs.flatten(), ys.flatten()], -1))
    reference = torch.cat(centres)  # (Lq, 2)
    normaliser = shapes.flip(-1).float()  # (L, 2) as (W, H)
    shape = (BATCH, num_values, HEADS, num_levels, POINTS, 2)
    offsets = torch.randn(shape, generator=gen) * OFFSET_STD_PIXELS
    locations = reference[None, :, None, None, None, :] + offsets / normaliser[:, None, :]
    weights = torch.rand(shape[:-1], generator=gen)
    weights = weights / weights.sum((-1, -2), keepdim=True)
    value = torch.randn(BATCH, num_values, HEADS, CHANNELS, generator=gen)
    compute = compute_dtype_for(dtype)
    return (
        value.to(device=device, dtype=dtype),
        shapes.to(device),
        starts.to(device),
        locations.to(device=device, dtype=compute),
        weights.to(device=device, dtype=compute),
    )


def compulsory_bytes(inputs, backward):
    value, _, _, locations, weights = inputs
    output_bytes = value.shape[0] * locations.shape[1] * HEADS * CHANNELS * value.element_size()
    tensors = value.nbytes + locations.nbytes + weights.nbytes
    if not backward:
        return tensors + output_bytes
    # forward traffic + backward reads (inputs again, grad_output) + writes (three grads)
    return (tensors + output_bytes) + (tensors + output_bytes) + tensors


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, device, iters, warmup):
    """Median seconds per call, and peak CUDA memory allocated during the calls (or None)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    peak = None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        start_memory = torch.cuda.memory_allocated(device)
    times = []
    for _ in range(iters):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - start_memory
    return sorted(times)[len(times) // 2], peak


def run_case(device, dtype, impl, iters, warmup):
    inputs = make_inputs(device, dtype)
    value, shapes, starts, locations, weights = inputs

    def forward():
        with torch.no_grad():
            ms_deform_attn(value, shapes, starts, locations, weights, implementation=impl)

    leaves = [t.detach().requires_grad_() for t in (value, locations, weights)]
    grad_output = torch.randn(
        value.shape[0], locations.shape[1], HEADS * CHANNELS, device=device, dtype=dtype
    )

    def forward_backward():
        value_, locations_, weights_ = leaves
        output = ms_deform_attn(value_, shapes, starts, locations_, weights_, implementation=impl)
        torch.autograd.grad(output, leaves, grad_output)

    results = {}
    for name, fn, backward in (("fwd", forward, False), ("fwd+bwd", forward_backward, True)):
        seconds, peak = time_call(fn, device, iters, warmup)
        results[name] = (seconds, peak, compulsory_bytes(inputs, backward))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device",
        type=str,
        default="all",
        choices=["all", "cpu", "cuda"],
        help="device to run on; 'all' = cpu plus cuda when available",
    )
    parser.add_argument(
        "--dtype",
        type=str,
        nargs="+",
        default=None,
        choices=sorted(DTYPES),
        help="value dtypes (default: float32 on cpu; float32 float16 bfloat16 on cuda)",
    )
    parser.add_argument("--iters", type=int, default=10, help="timed calls per case (median kept)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before timing")
    args = parser.parse_args()

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    num_queries = sum(h * w for h, w in LEVEL_SHAPES)
    print(
        f"mask2former_ops: compiled={mask2former_ops.is_compiled()} "
        f"cuda_kernels_built={mask2former_ops.cuda_kernels_built()} torch={torch.__version__} "
        f"cpu_threads={torch.get_num_threads()}"
    )
    print(
        f"shapes: N={BATCH} S=Lq={num_queries} levels={list(LEVEL_SHAPES)} M={HEADS} D={CHANNELS} "
        f"P={POINTS}; iters={args.iters} (median)"
    )
    header = (
        f"{'device':6} {'dtype':9} {'impl':8} {'pass':8} {'ms':>9} {'speed-up':>9} {'GB/s':>7} "
        f"{'peak MiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for device_name in devices:
        device = torch.device(device_name)
        default_dtypes = ["float32"] if device.type == "cpu" else ["float32", "float16", "bfloat16"]
        dtypes = args.dtype or default_dtypes
        impls = sorted(available_implementations(device), key=lambda name: name != "pytorch")
        for dtype_name in dtypes:
            baseline = {}
            for impl in impls:  # pytorch first: the baseline of the speed-up
                results = run_case(device, DTYPES[dtype_name], impl, args.iters, args.warmup)
                for name, (seconds, peak, nbytes) in results.items():
                    baseline.setdefault(name, seconds)
                    peak_text = f"{peak / 2**20:9.1f}" if peak is not None else f"{'-':>9}"
                    speed_up = baseline[name] / seconds
                    print(
                        f"{device_name:6} {dtype_name:9} {impl:8} {name:8} {seconds * 1e3:9.2f} "
                        f"{speed_up:8.2f}x {nbytes / seconds / 1e9:7.2f} {peak_text}"
                    )


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Time multi-scale deformable attention at the pixel-decoder shapes of the paper's setting.

Shapes (``--shapes``), levels 1/8, 1/16, 1/32 of 384x640 (48x80, 24x40, 12x20; 360x640 frames
padded), 8 heads x 32 channels, 4 points, every pixel of the three levels a query (Lq = S = 5040):

- ``paper``: N = 4 frames (two 2-frame training clips, the paper's per-GPU batch);
- ``t5``: N = 5 frames (the CPU inference window of the R50 benchmarks, T = 5 at 360x640);
- ``video36``: N = 36 frames (whole-video inference of a typical 36-frame YouTube-VIS video).

Sampling locations are each query's own position plus offsets of a few pixels, like a trained
pixel decoder's.

Implementations, each where it can run: ``pytorch`` (the pure-PyTorch path, the speed-up's
baseline), ``cpu`` / ``cuda`` (this project's kernels; on CUDA the vectorised layout, 16-byte
loads of 4 float32 or 8 float16/bfloat16 channels per thread; on the CPU vectors of channels in
the CPU's widest instruction set, printed as ``cpu_isa``), ``cpu-scalar`` (this project's CPU
kernels one channel at a time, no vectors of channels), ``cuda-scalar`` (this project's
CUDA kernels forced to one thread per channel, the original kernel's layout), and ``original``
(the Deformable-DETR CUDA kernel that the official Mask2Former ships, float32 only, when
``--original-ops DIR`` holds its built ``MultiScaleDeformableAttention`` module).

For each it prints the time of the forward pass and of forward + backward (CUDA: median of
``--iters`` calls timed with CUDA events after a warm-up), the speed-up over the PyTorch path and
over the original kernel, both measured in the same run, the achieved bandwidth and, on CUDA, its
fraction of the device-to-device copy bandwidth measured at the start of the run.

The benchmark runs in strict mode (``mask2former_ops.set_strict(True)``): a kernel that fails its
first-use check against the PyTorch path (``mask2former_ops.self_check``) stops it with an error
instead of timing a fallback; the ``cuda-scalar`` layout is checked before it is timed. The
checks (``mask2former_ops.kernel_status()``) are printed at the end and written to the JSON.

Bandwidth counts compulsory traffic only: every input and output tensor read or written once
(forward: value, locations, weights, output; forward + backward adds grad_output read and
value, locations, weights read again, and grad_value, grad_locations, grad_weights written), so it
is a lower bound on the traffic and an upper bound on how far the kernel is from memory-bound.

Example::

    python -m benchmarks.benchmark_ms_deform_attn --device cpu --dtype float32 --iters 5
    python -m benchmarks.benchmark_ms_deform_attn --device cuda --shapes paper video36 \\
        --original-ops /tmp/official_ops --json ms_deform_attn.json
"""

import argparse
import glob
import importlib.util
import os
import statistics
import sys
import time

import torch

import mask2former_ops
from mask2former_ops.functional import _C, available_implementations, ms_deform_attn
from mask2former_ops.reference import compute_dtype_for

from benchmarks.common import table, write_json

LEVEL_SHAPES = ((48, 80), (24, 40), (12, 20))  # 1/8, 1/16, 1/32 of 384x640
SHAPE_SETS = {"paper": 4, "t5": 5, "video36": 36}  # batch N of each shape set
HEADS, CHANNELS, POINTS = 8, 32, 4
OFFSET_STD_PIXELS = 2.0  # spread of the sampling offsets around each query, in pixels
ORIGINAL_IM2COL_STEP = 128  # the official MSDeformAttn module's im2col_step
COPY_BYTES = 2**30  # buffer of the device-to-device copy that measures memory bandwidth
DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


def make_inputs(device, dtype, batch=SHAPE_SETS["paper"], seed=0):
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
    shape = (batch, num_values, HEADS, num_levels, POINTS, 2)
    offsets = torch.randn(shape, generator=gen) * OFFSET_STD_PIXELS
    locations = reference[None, :, None, None, None, :] + offsets / normaliser[:, None, :]
    weights = torch.rand(shape[:-1], generator=gen)
    weights = weights / weights.sum((-1, -2), keepdim=True)
    value = torch.randn(batch, num_values, HEADS, CHANNELS, generator=gen)
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


class _KernelFunction(torch.autograd.Function):
    """Autograd over a pair of forward / backward kernels called directly (for the variants that
    are not an ``implementation`` of :func:`ms_deform_attn`)."""

    @staticmethod
    def forward(ctx, kernels, value, shapes, starts, locations, weights):
        forward_kernel, backward_kernel = kernels
        ctx.backward_kernel = backward_kernel
        ctx.save_for_backward(value, shapes, starts, locations, weights)
        return forward_kernel(value, shapes, starts, locations, weights)

    @staticmethod
    def backward(ctx, grad_output):
        value, shapes, starts, locations, weights = ctx.saved_tensors
        grads = ctx.backward_kernel(
            value, shapes, starts, locations, weights, grad_output.contiguous()
        )
        return None, grads[0], None, None, grads[1], grads[2]


def scalar_cuda_kernels(dtype):
    """This project's CUDA kernels with one thread per channel, checked first (strict)."""
    mask2former_ops.check_kernels("cuda", dtypes=[dtype])
    return (
        lambda *inputs: _C.ms_deform_attn_forward(*inputs, channels_per_thread=1),
        lambda *inputs: _C.ms_deform_attn_backward(*inputs, channels_per_thread=1),
    )


def scalar_cpu_kernels(dtype):
    """This project's CPU kernels one channel at a time, checked first (strict)."""
    mask2former_ops.check_kernels("cpu", dtypes=[dtype])
    return (
        lambda *inputs: _C.ms_deform_attn_forward(*inputs, channels_per_thread=1),
        lambda *inputs: _C.ms_deform_attn_backward(*inputs, channels_per_thread=1),
    )


def original_kernels(ops_dir):
    """The official (Deformable-DETR) kernels from the built ``MultiScaleDeformableAttention``
    extension in ``ops_dir`` (loaded from its file), or None when it is absent."""
    if ops_dir is None:
        return None
    found = sorted(glob.glob(os.path.join(ops_dir, "MultiScaleDeformableAttention*.so")))
    try:
        if not found:
            raise ImportError(f"no MultiScaleDeformableAttention*.so in {ops_dir}")
        spec = importlib.util.spec_from_file_location("MultiScaleDeformableAttention", found[0])
        original = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(original)
    except ImportError as error:
        print(f"original kernel not available ({error})", file=sys.stderr)
        return None
    return (
        lambda *inputs: original.ms_deform_attn_forward(*inputs, ORIGINAL_IM2COL_STEP),
        lambda *inputs: original.ms_deform_attn_backward(*inputs, ORIGINAL_IM2COL_STEP),
    )


def time_call(fn, device, iters, warmup):
    """Median seconds per call, and peak CUDA memory allocated during the calls (or None)."""
    for _ in range(warmup):
        fn()
    if device.type != "cuda":
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times), None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    start_memory = torch.cuda.memory_allocated(device)
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))]
    events += [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        for _ in range(iters - 1)
    ]
    for begin, end in events:
        begin.record()
        fn()
        end.record()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - start_memory
    return statistics.median(b.elapsed_time(e) for b, e in events) / 1e3, peak


def copy_bandwidth(device, iters=20):
    """Device-to-device copy bandwidth in bytes/s (bytes read + bytes written), median."""
    source = torch.empty(COPY_BYTES // 4, device=device).uniform_()
    target = torch.empty_like(source)
    seconds, _ = time_call(lambda: target.copy_(source), device, iters, warmup=3)
    return 2 * source.nbytes / seconds


def run_case(device, dtype, impl, kernels, batch, iters, warmup):
    """Forward and forward + backward of one implementation.

    Args:
        impl: an ``implementation`` of :func:`ms_deform_attn`, or a name for ``kernels``.
        kernels: (forward, backward) callables for the variants run through
            :class:`_KernelFunction`, else None.
    """
    inputs = make_inputs(device, dtype, batch)
    value, shapes, starts, locations, weights = inputs

    def op(value_, locations_, weights_):
        if kernels is not None:
            return _KernelFunction.apply(kernels, value_, shapes, starts, locations_, weights_)
        return ms_deform_attn(value_, shapes, starts, locations_, weights_, implementation=impl)

    def forward():
        with torch.no_grad():
            op(value, locations, weights)

    leaves = [t.detach().requires_grad_() for t in (value, locations, weights)]
    grad_output = torch.randn(
        value.shape[0], locations.shape[1], HEADS * CHANNELS, device=device, dtype=dtype
    )

    def forward_backward():
        output = op(*leaves)
        torch.autograd.grad(output, leaves, grad_output)

    results = {}
    for name, fn, backward in (("fwd", forward, False), ("fwd+bwd", forward_backward, True)):
        seconds, peak = time_call(fn, device, iters, warmup)
        results[name] = (seconds, peak, compulsory_bytes(inputs, backward))
    return results


def implementations(device, dtype_name, original):
    """(name, implementation, kernels) of every variant that runs on ``device`` / dtype."""
    found = [(name, name, None) for name in available_implementations(device)]
    found.sort(key=lambda item: item[0] != "pytorch")  # pytorch first: the speed-up's baseline
    if device.type == "cuda" and "cuda" in available_implementations(device):
        found.append(("cuda-scalar", "cuda", scalar_cuda_kernels(DTYPES[dtype_name])))
        if original is not None and dtype_name in ("float32", "float64"):
            found.append(("original", "cuda", original))
    if device.type == "cpu" and "cpu" in available_implementations(device):
        found.append(("cpu-scalar", "cpu", scalar_cpu_kernels(DTYPES[dtype_name])))
    return found


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
    parser.add_argument(
        "--shapes",
        type=str,
        nargs="+",
        default=["paper"],
        choices=sorted(SHAPE_SETS),
        help="shape sets (batch N): paper = 4 frames, t5 = 5 frames, video36 = 36 frames",
    )
    parser.add_argument("--iters", type=int, default=10, help="timed calls per case (median kept)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before timing")
    parser.add_argument(
        "--original-ops",
        type=str,
        default=None,
        help="folder holding the official code's built MultiScaleDeformableAttention module",
    )
    parser.add_argument("--json", type=str, default=None, help="also write the rows here")
    args = parser.parse_args()
    mask2former_ops.set_strict(True)  # never time a silently wrong kernel or a fallback

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    original = original_kernels(args.original_ops) if "cuda" in devices else None
    num_queries = sum(h * w for h, w in LEVEL_SHAPES)
    print(
        f"mask2former_ops: compiled={mask2former_ops.is_compiled()} "
        f"cuda_kernels_built={mask2former_ops.cuda_kernels_built()} torch={torch.__version__} "
        f"cpu_threads={torch.get_num_threads()} original_kernel={original is not None}"
    )
    if "cpu" in devices and mask2former_ops.is_compiled():
        print(
            f"cpu: {_C.cpu_kernel_isa()} kernels (torch CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}), load average "
            + " ".join(f"{load:.2f}" for load in os.getloadavg())
        )
    bandwidth = {}
    for device_name in devices:
        if device_name == "cuda":
            bandwidth["cuda"] = copy_bandwidth(torch.device("cuda"))
            print(
                f"cuda: {torch.cuda.get_device_name()} copy bandwidth "
                f"{bandwidth['cuda'] / 1e9:.0f} GB/s (read + write, {COPY_BYTES >> 20} MiB)"
            )
    print(
        f"shapes: S=Lq={num_queries} levels={list(LEVEL_SHAPES)} M={HEADS} D={CHANNELS} "
        f"P={POINTS}; iters={args.iters} (median)"
    )
    rows = []
    for device_name in devices:
        device = torch.device(device_name)
        default_dtypes = ["float32"] if device.type == "cpu" else ["float32", "float16", "bfloat16"]
        for shape_set in args.shapes:
            batch = SHAPE_SETS[shape_set]
            for dtype_name in args.dtype or default_dtypes:
                baseline, original_times = {}, {}
                found = implementations(device, dtype_name, original)
                measured = []
                for name, impl, kernels in found:
                    results = run_case(
                        device, DTYPES[dtype_name], impl, kernels, batch, args.iters, args.warmup
                    )
                    measured.append((name, results))
                    if name == "original":
                        original_times = {k: v[0] for k, v in results.items()}
                for name, results in measured:
                    for pass_name, (seconds, peak, nbytes) in results.items():
                        baseline.setdefault(pass_name, seconds)
                        row = {
                            "device": device_name,
                            "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
                            "shapes": shape_set,
                            "batch": batch,
                            "dtype": dtype_name,
                            "impl": name,
                            "pass": pass_name,
                            "ms": seconds * 1e3,
                            "speedup_vs_pytorch": baseline[pass_name] / seconds,
                            "speedup_vs_original": (
                                original_times[pass_name] / seconds if original_times else None
                            ),
                            "gb_per_s": nbytes / seconds / 1e9,
                            "fraction_of_copy_bandwidth": (
                                nbytes / seconds / bandwidth[device_name]
                                if device_name in bandwidth
                                else None
                            ),
                            "peak_mib": peak / 2**20 if peak is not None else None,
                        }
                        rows.append(row)
                print(f"{device_name} {shape_set} {dtype_name} done", file=sys.stderr, flush=True)
    print(format_table(rows))
    print(mask2former_ops.kernel_status())
    write_json(
        args.json,
        {
            "copy_bandwidth_gb_per_s": {k: v / 1e9 for k, v in bandwidth.items()},
            "torch": torch.__version__,
            "rows": rows,
            "kernel_status": mask2former_ops.kernel_status().to_dict(),
        },
    )


# Printed columns: (row key, header, number format); "-" where a figure does not apply.
TABLE_COLUMNS = (
    ("device", "device", ""), ("shapes", "shapes", ""), ("dtype", "dtype", ""),
    ("impl", "impl", ""), ("pass", "pass", ""), ("ms", "ms", ".3f"),
    ("speedup_vs_pytorch", "vs torch", ".2f"), ("speedup_vs_original", "vs orig", ".2f"),
    ("gb_per_s", "GB/s", ".1f"), ("percent_of_copy", "% copy", ".1f"),
    ("peak_mib", "peak MiB", ".1f"),
)  # fmt: skip


def format_table(rows):
    """The result rows as a Markdown table (speed-ups as factors: 8.9 = 8.9 times as fast)."""
    body = []
    for row in rows:
        fraction = row["fraction_of_copy_bandwidth"]
        row = dict(row, percent_of_copy=100 * fraction if fraction is not None else None)
        body.append([row[key] for key, _, _ in TABLE_COLUMNS])
    headers = [header for _, header, _ in TABLE_COLUMNS]
    return table(
        body, headers=headers, floatfmt=[f or "g" for _, _, f in TABLE_COLUMNS], missing="-"
    )


if __name__ == "__main__":
    main()

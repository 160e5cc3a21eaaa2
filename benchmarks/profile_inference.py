#!/usr/bin/env python
"""Profile whole-video inference with ``torch.profiler``: where the time of one video goes.

Runs R50 Video Mask2Former (random weights, seeded) on one random T-frame video through the public
inference path (``model([{"image": frames, "height": H, "width": W}])``: network and
post-processing), once untimed, then once under the profiler, for each ``--amp`` setting. Prints
and saves:

- the time of each part of the call (:func:`part_table`): preprocessing, backbone, pixel decoder
  (and, within it, the deformable-attention op alone), transformer decoder, post-processing (top-k,
  mask upsampling, thresholding), in ms and % of the call;
- the operators that take the most device time (self time, so nothing is counted twice), the wall
  time of the profiled call, and the share of the device time spent in the deformable-attention
  kernels.

The parts are the profiler's ``record_function`` ranges named :data:`PARTS` when the model records
them itself; the ones it does not record are labelled here by wrapping the part's method for the
run (:func:`label_parts`). First the machine's matmul peak is measured (:mod:`benchmarks.hardware`):
a reduced-precision ``--amp`` whose matmul is slower than float32 here is skipped with the reason
(a bf16 run can otherwise take many minutes on CPUs without AVX512-BF16 / AMX), unless
``--force-bf16``.

Example:
    python -m benchmarks.profile_inference --device cpu --frames 5 --amp none bf16 \\
        --json prof.json
"""

import argparse
import contextlib
import functools
import time
from typing import Dict, List, Optional

import torch

from benchmarks.common import autocast, build_model, random_frames, synchronize, table, write_json
from benchmarks.hardware import describe_machine, machine_line, measure_peaks, peaks_line
from benchmarks.hardware import split_modes

TOP_OPERATORS = 25  # rows of the printed table
OPERATOR_NAME_CHARS = 70  # of an operator's name in the table
DEFORMABLE_ATTENTION_KERNELS = ("mask2former_ops", "MSDeformAttn", "ms_deform")
# The deformable-attention op's profiler event (the custom op; inclusive time).
DEFORMABLE_ATTENTION_OP = "ms_deform_attn"
# The parts of a call, in order: record_function names and where this script labels each one the
# model does not record itself (an attribute path from the model to the method to wrap).
PARTS = {
    "preprocess": "preprocess",
    "backbone": "backbone.forward",
    "pixel_decoder": "sem_seg_head.pixel_decoder.forward_features",
    "transformer_decoder": "sem_seg_head.predictor.forward",
    "postprocess": None,  # not one method: the rest of the call after the network
}
# Labels this script adds around the whole call and the network (to derive post-processing).
CALL_LABEL, NETWORK_LABEL = "video_mask2former_call", "network"
NETWORK_METHOD = "predict"


def _time_of(event, name: str) -> float:
    """Microseconds of ``name`` ('self_device' or 'device') on a profiler event (torch renamed
    the CUDA fields to device fields in 2.4)."""
    for attribute in (f"{name}_time_total", f"{name.replace('device', 'cuda')}_time_total"):
        if hasattr(event, attribute):
            return float(getattr(event, attribute))
    return 0.0


def _labelled(label: str, method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with torch.profiler.record_function(label):
            return method(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def label_parts(model, labels: Dict[str, str]):
    """Within the context, each ``label -> "path.to.method"`` of ``labels`` (from ``model``) runs in
    a ``record_function(label)`` range (an instance attribute shadowing the method; removed on
    exit). A path the model does not have is left out."""
    undo = []
    try:
        for label, path in labels.items():
            *owner_path, name = path.split(".")
            owner = model
            for attribute in owner_path:
                owner = getattr(owner, attribute, None)
            method = getattr(owner, name, None) if owner is not None else None
            if method is None:
                continue
            setattr(owner, name, _labelled(label, method))
            undo.append((owner, name))
        yield
    finally:
        for owner, name in undo:
            delattr(owner, name)


def _range_ms(averages, key: str) -> Dict[str, float]:
    """Inclusive ms per event name (summed over calls)."""
    return {e.key: _time_of(e, key) / 1e3 for e in averages}


def part_table(ranges: Dict[str, float], deform_ms: Optional[float]) -> List[dict]:
    """The per-part rows of one profiled call.

    Args:
        ranges: inclusive ms of the profiler's named ranges: :data:`CALL_LABEL` (the whole call),
            the :data:`PARTS` recorded, and :data:`NETWORK_LABEL` (the network: backbone + head).
        deform_ms: the deformable-attention op's inclusive ms (within the pixel decoder), or None
            where it did not show (the pure-PyTorch path).

    Returns:
        list of dict: ``part``, ``ms``, ``share`` (of the call; None for the nested op row). The
        rows other than the op's are disjoint, sum to the call's time, and end with "other" (the
        rest: frame checks, the head's glue) and "total".
    """
    total = ranges.get(CALL_LABEL, 0.0)
    rows = []
    for part in PARTS:
        ms = ranges.get(part)
        if ms is None and part == "postprocess" and NETWORK_LABEL in ranges:
            ms = max(total - ranges[NETWORK_LABEL] - ranges.get("preprocess", 0.0), 0.0)
        rows.append({"part": part, "ms": ms})
        if part == "pixel_decoder":
            rows.append({"part": "  deformable attention op (in pixel decoder)", "ms": deform_ms})
    counted = sum(r["ms"] or 0.0 for r in rows if not r["part"].startswith(" "))
    rows.append({"part": "other", "ms": max(total - counted, 0.0)})
    for row in rows:
        row["share"] = row["ms"] / total if total and row["ms"] is not None else None
    rows.append({"part": "total", "ms": total, "share": 1.0 if total else None})
    return rows


def profile_once(model, video, device, amp: str):
    """Profile one call of ``model([video])`` under ``amp`` (after one untimed call).

    Returns:
        dict: ``amp``, ``wall_ms``, ``self_time_total_ms``, ``deformable_attention_share``,
        ``parts`` (:func:`part_table`), ``top`` (operators by self time).
    """
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)

    def call():
        with torch.no_grad(), autocast(device, amp), torch.profiler.record_function(CALL_LABEL):
            result = model([video])
        synchronize(device)
        return result

    # warm-up (cuDNN autotuning, allocator, lazy initialisation), profiled to see which parts the
    # model records itself
    with torch.profiler.profile(activities=activities) as profiler:
        call()
    recorded = {e.key for e in profiler.key_averages()}
    labels = {part: path for part, path in PARTS.items() if path and part not in recorded}
    labels[NETWORK_LABEL] = NETWORK_METHOD
    with label_parts(model, labels), torch.profiler.profile(activities=activities) as profiler:
        start = time.perf_counter()
        call()
        wall = time.perf_counter() - start
    averages = profiler.key_averages()
    key = "self_device" if device.type == "cuda" else "self_cpu"
    inclusive = _range_ms(averages, "device" if device.type == "cuda" else "cpu")
    deform = [ms for name, ms in inclusive.items() if DEFORMABLE_ATTENTION_OP in name]
    rows = sorted(averages, key=lambda e: _time_of(e, key), reverse=True)
    total = sum(_time_of(e, key) for e in averages)
    deformable = sum(
        _time_of(e, key) for e in averages if any(k in e.key for k in DEFORMABLE_ATTENTION_KERNELS)
    )
    top = [
        {
            "name": e.key,
            "calls": e.count,
            "self_ms": _time_of(e, key) / 1e3,
            "share": _time_of(e, key) / total if total else 0.0,
        }
        for e in rows[:TOP_OPERATORS]
    ]
    return {
        "amp": amp,
        "wall_ms": wall * 1e3,
        "self_time_total_ms": total / 1e3,
        "deformable_attention_share": deformable / total if total else 0.0,
        "parts": part_table(inclusive, max(deform) if deform else None),
        "parts_recorded_by_model": sorted(set(PARTS) & recorded),
        "top": top,
    }


def print_result(args, result: dict) -> None:
    print(
        f"\n{args.backbone} T={args.frames} {args.height}x{args.width} amp={result['amp']}: "
        f"{result['wall_ms']:.0f} ms wall ({result['wall_ms'] / args.frames:.1f} ms/frame), "
        f"device self time {result['self_time_total_ms']:.0f} ms, deformable attention "
        f"{100 * result['deformable_attention_share']:.1f}%\n"
    )
    parts = [
        [r["part"], r["ms"], None if r["share"] is None else 100 * r["share"]]
        for r in result["parts"]
    ]
    print(table(parts, headers=["part", "ms", "share %"], floatfmt=".1f") + "\n")
    top = [
        [row["name"][:OPERATOR_NAME_CHARS], row["calls"], row["self_ms"], 100 * row["share"]]
        for row in result["top"]
    ]
    print(table(top, headers=["operator", "calls", "self ms", "share %"], floatfmt=".2f"))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", type=str, default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--frames", type=int, default=36, help="T, frames of the video")
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--backbone", type=str, default="R50")
    parser.add_argument(
        "--amp", type=str, nargs="+", default=["none"], choices=["none", "bf16", "fp16"]
    )
    parser.add_argument(
        "--force-bf16",
        action="store_true",
        help="profile reduced-precision settings even where their matmul is slower than float32",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=str, default=None, help="also write the results here")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    machine = describe_machine()
    peaks = measure_peaks(device, args.amp)
    amps, skipped = split_modes(args.amp, lambda amp: amp, peaks, force=args.force_bf16)
    print(f"machine: {machine_line(machine)}\n{peaks_line(peaks)}")
    for amp, reason in skipped.items():
        print(f"amp={amp}: skipped, {reason} (--force-bf16 runs it)")
    model, _ = build_model(args.backbone, device=args.device, seed=args.seed)  # random weights
    # A low-precision --amp left in the list runs as asked (the model would otherwise replace a
    # dtype this CPU emulates by float32): it is either fast here or forced.
    model.allow_slow_low_precision = True
    generator = torch.Generator().manual_seed(args.seed)
    frames = random_frames(args.frames, args.height, args.width, generator)
    video = {"image": frames, "height": args.height, "width": args.width}
    results = []
    for amp in amps:
        result = profile_once(model, video, device, amp)
        results.append(result)
        print_result(args, result)
    write_json(
        args.json,
        {
            "backbone": args.backbone,
            "frames": args.frames,
            "size": [args.height, args.width],
            "machine": machine,
            "matmul_peaks": peaks,
            "skipped": skipped,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()

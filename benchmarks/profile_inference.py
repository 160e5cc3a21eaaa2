#!/usr/bin/env python
"""Profile whole-video inference with ``torch.profiler``: where the time of one video goes.

Runs R50 Video Mask2Former (random weights, seeded) on one random T-frame video through the public
inference path (``model([{"image": frames, "height": H, "width": W}])``: network and
post-processing), once untimed, then once under the profiler, for each ``--amp`` setting. Prints
and saves the operators that take the most device time (self time, so nothing is counted twice),
the wall time of the profiled call, and the share of the device time spent in the
deformable-attention kernels.

Example:
    python -m benchmarks.profile_inference --device cuda --frames 36 --amp none bf16 \\
        --json prof.json
"""

import argparse
import time

import torch

from benchmarks.common import autocast, build_model, random_frames, synchronize, table, write_json

TOP_OPERATORS = 25  # rows of the printed table
OPERATOR_NAME_CHARS = 70  # of an operator's name in the table
DEFORMABLE_ATTENTION_KERNELS = ("mask2former_ops", "MSDeformAttn", "ms_deform")


def _time_of(event, name: str) -> float:
    """Microseconds of ``name`` ('self_device' or 'device') on a profiler event (torch renamed
    the CUDA fields to device fields in 2.4)."""
    for attribute in (f"{name}_time_total", f"{name.replace('device', 'cuda')}_time_total"):
        if hasattr(event, attribute):
            return float(getattr(event, attribute))
    return 0.0


def profile_once(model, video, device, amp: str):
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)

    def call():
        with torch.no_grad(), autocast(device, amp):
            result = model([video])
        synchronize(device)
        return result

    call()  # warm-up: cuDNN autotuning, allocator, lazy initialisation
    with torch.profiler.profile(activities=activities) as profiler:
        start = time.perf_counter()
        call()
        wall = time.perf_counter() - start
    averages = profiler.key_averages()
    key = "self_device" if device.type == "cuda" else "self_cpu"
    rows = sorted(averages, key=lambda e: _time_of(e, key), reverse=True)
    total = sum(_time_of(e, key) for e in averages)
    deformable = sum(
        _time_of(e, key) for e in averages if any(k in e.key for k in DEFORMABLE_ATTENTION_KERNELS)
    )
    table = [
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
        "top": table,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", type=str, default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--frames", type=int, default=36, help="T, frames of the video")
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--backbone", type=str, default="R50")
    parser.add_argument(
        "--amp", type=str, nargs="+", default=["none"], choices=["none", "bf16", "fp16"]
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=str, default=None, help="also write the results here")
    args = parser.parse_args()

    device = torch.device(args.device)
    model, _ = build_model(args.backbone, device=args.device, seed=args.seed)  # random weights
    generator = torch.Generator().manual_seed(args.seed)
    frames = random_frames(args.frames, args.height, args.width, generator)
    video = {"image": frames, "height": args.height, "width": args.width}
    results = []
    for amp in args.amp:
        result = profile_once(model, video, device, amp)
        results.append(result)
        print(
            f"\n{args.backbone} T={args.frames} {args.height}x{args.width} amp={amp}: "
            f"{result['wall_ms']:.0f} ms wall ({result['wall_ms'] / args.frames:.1f} ms/frame), "
            f"device self time {result['self_time_total_ms']:.0f} ms, deformable attention "
            f"{100 * result['deformable_attention_share']:.1f}%"
        )
        top = [
            [row["name"][:OPERATOR_NAME_CHARS], row["calls"], row["self_ms"], 100 * row["share"]]
            for row in result["top"]
        ]
        print(table(top, headers=["operator", "calls", "self ms", "share %"], floatfmt=".2f"))
    write_json(
        args.json,
        {
            "backbone": args.backbone,
            "frames": args.frames,
            "size": [args.height, args.width],
            "results": results,
        },
    )


if __name__ == "__main__":
    main()

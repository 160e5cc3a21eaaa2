#!/usr/bin/env python
"""Benchmark R50 Video Mask2Former inference: time per frame and peak memory.

The network (once per frames T, device, autocast) and each post-processing run in fresh
subprocesses (the post-processing on the saved raw outputs), so each peak memory is its own:
peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) on the CPU,
``torch.cuda.max_memory_allocated`` on a GPU. Weights are random (seeded); figures, not
assertions. The lean post-processing (top-k before upsampling, frames in chunks) is compared with
the straightforward one (upsample every query, then select).

Example:
    python tools/benchmark_inference.py --frames 5 20 50 --devices cpu
    python tools/benchmark_inference.py --frames 5 20 50 100 --devices cuda --amp none bf16
"""

import argparse
import json
import os
import subprocess
import tempfile
import time

from _bench_utils import peak_memory_mb, python_command, run_json_child


def run_network(args: argparse.Namespace) -> dict:
    """Run the network once on a random video; save its raw outputs to ``args.raw``."""
    import torch

    from video_mask2former.build import build_inference_model
    from video_mask2former.inference import network_outputs

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    model = build_inference_model("R50", device=device)  # random weights: a measurement
    generator = torch.Generator().manual_seed(args.seed)
    video = {
        "image": [
            torch.randint(0, 256, size, generator=generator, dtype=torch.uint8)
            for size in [(3, args.height, args.width)] * args.frames
        ]
    }
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)

    def forward():
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            outputs, padded_size, sizes = network_outputs(model, [video])
        if device.type == "cuda":
            torch.cuda.synchronize()
        return outputs, padded_size, sizes

    for _ in range(args.warmup):
        forward()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    outputs, padded_size, sizes = forward()
    seconds = time.perf_counter() - start
    raw = {
        "pred_logits": outputs["pred_logits"][0].cpu(),
        "pred_masks": outputs["pred_masks"][0].cpu(),
        "padded_size": padded_size,
        "image_size": sizes[0],
    }
    torch.save(raw, args.raw)
    return {"network_ms_per_frame": 1000 * seconds / args.frames, "peak_mb": peak_memory_mb(device)}


def run_postprocess(args: argparse.Namespace) -> dict:
    """Post-process the raw outputs in ``args.raw`` (its own process: its own peak memory)."""
    import torch

    from video_mask2former.inference.postprocess import video_inference, video_inference_reference

    device = torch.device(args.device)
    raw = torch.load(args.raw, weights_only=True)
    logits, masks = raw["pred_logits"].to(device), raw["pred_masks"].to(device)
    sizes = (raw["padded_size"], raw["image_size"], (args.height, args.width))
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start_mb = peak_memory_mb(device)
    start = time.perf_counter()
    with torch.no_grad():
        if args.postprocess == "lean":
            result = video_inference(logits, masks, *sizes, chunk_size=args.chunk_size)
        else:
            result = video_inference_reference(logits, masks, *sizes)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "post_ms_per_frame": 1000 * seconds / args.frames,
        "post_peak_mb": peak_memory_mb(device),
        "post_start_mb": start_mb,
        "instances": len(result["pred_scores"]),
    }


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--devices", nargs="+", default=["cpu"], choices=["cpu", "cuda"])
    parser.add_argument("--amp", nargs="+", default=["none"], choices=["none", "bf16", "fp16"])
    parser.add_argument(
        "--postprocess", nargs="+", default=["lean", "reference"], choices=["lean", "reference"]
    )
    parser.add_argument("--chunk-size", type=int, default=8, help="frames upsampled at a time")
    parser.add_argument("--warmup", type=int, default=0, help="untimed runs before the timed one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per setting")
    parser.add_argument("--json", type=str, default="", help="also write the rows to this file")
    # Internal: run one stage of one setting (used by the parent process).
    parser.add_argument(
        "--stage", choices=["network", "post"], default=None, help=argparse.SUPPRESS
    )
    parser.add_argument("--device", type=str, default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--raw", type=str, default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _run_child(args, stage, frames, device, amp, post, raw) -> dict:
    command = python_command(__file__) + [
        "--stage", stage, "--raw", raw,
        "--frames", str(frames), "--device", device, "--amp", amp, "--postprocess", post,
        "--height", str(args.height), "--width", str(args.width),
        "--chunk-size", str(args.chunk_size), "--warmup", str(args.warmup),
        "--seed", str(args.seed),
    ]  # fmt: skip
    label = f"{stage} T={frames} {device} {amp}"
    return run_json_child(command, label=label, timeout=args.timeout)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.stage is not None:
        args.amp, args.postprocess, args.frames = args.amp[0], args.postprocess[0], args.frames[0]
        run = run_network if args.stage == "network" else run_postprocess
        print(json.dumps(run(args)))
        return
    rows = []
    print(
        f"R50, {args.height}x{args.width}, peak memory: "
        f"{'CUDA max allocated' if 'cuda' in args.devices else 'peak RSS of a fresh process'}\n"
        "| device | amp | T | network ms/frame | network peak MB | post-proc | "
        "post-proc ms/frame | post-proc peak MB (process start) |\n"
        "|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        for device in args.devices:
            for amp in args.amp:
                for frames in args.frames:
                    raw = os.path.join(tmp, f"raw_{device}_{amp}_{frames}.pt")
                    try:
                        net = _run_child(args, "network", frames, device, amp, "lean", raw)
                    except (RuntimeError, subprocess.TimeoutExpired) as error:
                        print(f"| {device} | {amp} | {frames} | failed: {error} |", flush=True)
                        continue
                    for post in args.postprocess:
                        row = dict(net, frames=frames, device=device, amp=amp, postprocess=post)
                        row.update(_run_child(args, "post", frames, device, amp, post, raw))
                        rows.append(row)
                        print(
                            f"| {device} | {amp} | {frames} | {row['network_ms_per_frame']:.0f} | "
                            f"{row['peak_mb']:.0f} | {post} | {row['post_ms_per_frame']:.1f} | "
                            f"{row['post_peak_mb']:.0f} ({row['post_start_mb']:.0f}) |",
                            flush=True,
                        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Benchmark long-video inference: whole-video vs. windowed, time per frame and peak memory vs. T.

Shapes: T frames in the video, W frames per window, H x W the frame size.

Each (mode, T) runs end to end (network + post-processing) in a fresh child process, so each
peak memory is its own: peak RSS of the child (``ru_maxrss``; the RSS after building the model
and the warm-up is printed beside it) and, on a GPU, ``torch.cuda.max_memory_allocated``.
Weights are random (seeded); these are figures, not assertions. The time per frame is split into
``network`` (the forward passes, ``model.predict``, device work included), ``frames`` (making the
synthetic frames) and ``post`` (the rest: preprocessing, linking windows, resizing and encoding
the masks).

- ``whole``: the paper's inference. The T frames are collected into a list (the input video is
  held whole, as this mode needs it) and passed to ``VideoMaskFormer.forward`` with
  ``window_size == 0``; masks come back as (T, H, W) bool tensors.
- ``windowed``: ``VideoMaskFormer.inference_windowed`` on a generator of frames, W frames at a
  time, masks kept as RLE; neither the input video nor dense masks are ever held whole.

Frames are made on the fly, deterministically (a noisy background and a few rectangles moving
across it). A setting that runs out of memory (CPU children run under an ``RLIMIT_AS`` guard,
``--memory-limit-gb``) or runs longer than ``--max-seconds`` is reported as ``OOM`` or
``timeout``, and the larger T of that mode are skipped.

Example:
    python tools/benchmark_long_video.py --frames 10 20 40 --window-size 10
    python tools/benchmark_long_video.py --frames 20 100 500 1000 --device cuda --amp bf16 \\
        --json long_video.json
"""

import argparse
import json
import math
import subprocess
import sys
import time
from typing import Dict, Iterator, List

from _bench_utils import (
    ChildFailed,
    current_rss_mb,
    is_out_of_memory,
    limit_address_space,
    peak_memory_mb,
    peak_rss_mb,
    python_command,
    run_json_child,
    synchronize,
)

# Frames per window: 10 frames is about 1.7 s of YouTube-VIS footage (annotated at 6 fps) and
# costs the memory of a 10-frame whole-video run; larger W gives the masked attention more
# temporal context at a memory cost that grows with W (not with T).
DEFAULT_WINDOW_SIZE = 10
# Virtual-memory cap of a CPU child (RLIMIT_AS), GiB: keeps a whole-video run at large T from
# exhausting the machine; it fails with an allocation error, reported as OOM. It caps address
# space, not RSS: a child maps about 4 GiB (torch's libraries) before its first frame.
DEFAULT_MEMORY_LIMIT_GB = 18.0
# Moving rectangles drawn on the synthetic frames.
NUM_SHAPES = 3
# Frames of the untimed warm-up run (same mode) before the timed one; 0 skips it.
DEFAULT_WARMUP_FRAMES = 2
STATUS_OK = "ok"


def synthetic_frames(num_frames: int, height: int, width: int, seed: int) -> Iterator:
    """Yield ``num_frames`` deterministic (3, H, W) uint8 RGB frames, one at a time.

    Frame ``t`` is low-amplitude noise (seeded by ``seed`` and ``t``) with ``NUM_SHAPES`` solid
    rectangles moving along straight lines that wrap around the frame.
    """
    import torch

    shapes = torch.Generator().manual_seed(seed)
    size = torch.tensor([height, width])
    starts = torch.rand(NUM_SHAPES, 2, generator=shapes) * size  # (S, 2) y, x
    speeds = (torch.rand(NUM_SHAPES, 2, generator=shapes) - 0.5) * size / 20  # pixels per frame
    extents = (0.1 + 0.2 * torch.rand(NUM_SHAPES, 2, generator=shapes)) * size  # (S, 2) h, w
    colors = torch.randint(0, 256, (NUM_SHAPES, 3), generator=shapes, dtype=torch.uint8)
    for t in range(num_frames):
        noise = torch.Generator().manual_seed(seed * 1_000_003 + t)
        frame = torch.randint(96, 160, (3, height, width), generator=noise, dtype=torch.uint8)
        for (y, x), (h, w), color in zip((starts + t * speeds) % size, extents, colors):
            y0, x0 = int(y), int(x)
            frame[:, y0 : y0 + int(h), x0 : x0 + int(w)] = color[:, None, None]
        yield frame


def _counting(frames: Iterator, every: int) -> Iterator:
    """Pass ``frames`` through, writing ``frames consumed: n`` to stderr every ``every`` frames
    (a timed-out child's stderr then tells how far it got)."""
    count = 0
    for frame in frames:
        if count % every == 0:
            print(f"frames consumed: {count}", file=sys.stderr, flush=True)
        count += 1
        yield frame
    print(f"frames consumed: {count}", file=sys.stderr, flush=True)


def _masks_mb(masks: List) -> float:
    """Memory of the returned masks: bool tensors' bytes, or the RLE counts' bytes."""
    total = 0
    for mask in masks:
        if hasattr(mask, "rles"):
            total += sum(len(rle["counts"]) for rle in mask.rles)
        else:
            total += mask.numel() * mask.element_size()
    return total / 2**20


def _timed_iteration(iterable, seconds: Dict[str, float], key: str) -> Iterator:
    """Pass ``iterable`` through, adding the time spent producing its items to ``seconds[key]``."""
    iterator = iter(iterable)
    while True:
        start = time.perf_counter()
        try:
            item = next(iterator)
        except StopIteration:
            return
        finally:
            seconds[key] += time.perf_counter() - start
        yield item


def _timed_calls(function, device, seconds: Dict[str, float], key: str):
    """``function`` that adds the time of each call, its device work included, to
    ``seconds[key]`` (it synchronizes the device after each call; the inference synchronizes
    right after the network anyway, to link windows or select the top k)."""

    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        synchronize(device)
        seconds[key] += time.perf_counter() - start
        return result

    return timed


def _infer(model, args, num_frames: int, seconds: Dict[str, float]) -> Dict:
    """One end-to-end inference of a synthetic video of ``num_frames`` frames.

    Adds to ``seconds``: ``frames``, making the synthetic frames; ``network``, the network's
    forward passes (``model.predict``), which ``run_setting`` times through a wrapper.
    """
    import torch

    device = model.device
    frames = synthetic_frames(num_frames, args.height, args.width, args.seed)
    frames = _timed_iteration(frames, seconds, "frames")
    dtype = torch.bfloat16 if args.amp == "bf16" else None
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        if args.mode == "whole":
            video = {"image": list(frames), "height": args.height, "width": args.width}
            result = model([video])
        else:
            frames = _counting(frames, args.window_size)
            result = model.inference_windowed(
                frames, (args.height, args.width), window_size=args.window_size
            )
    synchronize(device)
    return result


def run_setting(args: argparse.Namespace) -> Dict:
    """Child: build the model, warm up, time one inference of T frames; return the row."""
    import torch

    from video_mask2former.build import build_inference_model

    device = torch.device(args.device)
    if device.type == "cpu":
        limit_address_space(args.memory_limit_gb)
    torch.manual_seed(args.seed)
    model = build_inference_model(args.backbone, num_classes=args.num_classes, device=device)
    model.window_size = 0  # "whole" goes through forward(); "windowed" passes its W explicitly
    parts = {"frames": 0.0, "network": 0.0}
    model.predict = _timed_calls(model.predict, device, parts, "network")
    row = {"start_rss_mb": current_rss_mb(), "status": STATUS_OK}
    try:
        if args.warmup_frames > 0:
            _infer(model, args, min(args.warmup_frames, args.frames), parts)
        row["start_rss_mb"] = current_rss_mb()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        parts.update(frames=0.0, network=0.0)
        start = time.perf_counter()
        result = _infer(model, args, args.frames, parts)
        seconds = time.perf_counter() - start
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        row.update(status="OOM", error=str(error).splitlines()[0][-200:])
    else:
        row.update(
            seconds=seconds,
            ms_per_frame=1000 * seconds / args.frames,
            network_ms_per_frame=1000 * parts["network"] / args.frames,
            # Everything else but making the frames: preprocessing, linking windows, resizing
            # and encoding the masks.
            post_ms_per_frame=1000 * (seconds - parts["network"] - parts["frames"]) / args.frames,
            frames_ms_per_frame=1000 * parts["frames"] / args.frames,
            instances=len(result["pred_scores"]),
            masks_mb=_masks_mb(result["pred_masks"]),
        )
    row["peak_rss_mb"] = peak_rss_mb()
    if device.type == "cuda":
        row["cuda_peak_mb"] = peak_memory_mb(device)
    return row


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[20, 100, 500, 1000])
    parser.add_argument(
        "--modes", nargs="+", default=["whole", "windowed"], choices=["whole", "windowed"]
    )
    parser.add_argument(
        "--window-size", type=int, default=DEFAULT_WINDOW_SIZE, help="W, frames per window"
    )
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--backbone", type=str, default="R50")
    parser.add_argument("--num-classes", type=int, default=40, help="40: YouTube-VIS 2019")
    parser.add_argument("--device", type=str, default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--amp", type=str, default="none", choices=["none", "bf16"], help="bf16 autocast"
    )
    parser.add_argument(
        "--warmup-frames",
        type=int,
        default=DEFAULT_WARMUP_FRAMES,
        help="frames of an untimed run of the same mode before the timed one (0: none)",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=1800.0, help="time budget per setting (timeout)"
    )
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        default=DEFAULT_MEMORY_LIMIT_GB,
        help="RLIMIT_AS of each CPU child, GiB (0: no limit)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=str, default="", help="also write the rows to this file")
    # Internal: run one setting (used by the parent process).
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--mode", type=str, default="whole", choices=["whole", "windowed"], help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.window_size < 1:
        parser.error(f"--window-size must be >= 1, got {args.window_size}")
    return args


def _child_command(args: argparse.Namespace, mode: str, frames: int) -> List[str]:
    return python_command(__file__) + [
        "--child", "--mode", mode, "--frames", str(frames),
        "--window-size", str(args.window_size), "--height", str(args.height),
        "--width", str(args.width), "--backbone", args.backbone,
        "--num-classes", str(args.num_classes), "--device", args.device, "--amp", args.amp,
        "--warmup-frames", str(args.warmup_frames),
        "--memory-limit-gb", str(args.memory_limit_gb), "--seed", str(args.seed),
    ]  # fmt: skip


def _frames_consumed(stderr) -> str:
    """The last progress line of a timed-out child, or ''."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    lines = [line for line in (stderr or "").splitlines() if line.startswith("frames consumed")]
    return lines[-1] if lines else ""


def run_parent_setting(args: argparse.Namespace, mode: str, frames: int) -> Dict:
    """One (mode, T) in a child; OOM, a timeout or a crash become the row's status."""
    row = {
        "mode": mode,
        "frames": frames,
        "window_size": args.window_size if mode == "windowed" else None,
    }
    label = f"{mode} T={frames}"
    start = time.perf_counter()
    try:
        row.update(
            run_json_child(
                _child_command(args, mode, frames), label=label, timeout=args.max_seconds
            )
        )
    except subprocess.TimeoutExpired as error:
        progress = _frames_consumed(error.stderr)
        row.update(
            status="timeout",
            error=f"> {args.max_seconds:.0f} s" + (f" ({progress})" if progress else ""),
        )
    except ChildFailed as error:
        # SIGKILL without our guard tripping is the kernel's OOM killer in practice.
        status = "OOM (killed)" if error.returncode == -9 else "failed"
        row.update(status=status, error=str(error)[-300:])
    row["wall_s"] = time.perf_counter() - start
    return row


def _cell(row: Dict, key: str, fmt: str) -> str:
    return format(row[key], fmt) if key in row else "-"


def format_row(row: Dict, cuda: bool) -> str:
    window = "-" if row["window_size"] is None else str(row["window_size"])
    cells = [row["mode"], window, str(row["frames"]), row["status"]]
    cells += [
        _cell(row, "ms_per_frame", ".0f"),
        _cell(row, "network_ms_per_frame", ".0f"),
        _cell(row, "post_ms_per_frame", ".0f"),
        _cell(row, "frames_ms_per_frame", ".0f"),
        _cell(row, "start_rss_mb", ".0f"),
        _cell(row, "peak_rss_mb", ".0f"),
    ]
    if cuda:
        cells.append(_cell(row, "cuda_peak_mb", ".0f"))
    cells += [_cell(row, "masks_mb", ".1f"), f"{row['wall_s']:.0f}"]
    line = "| " + " | ".join(cells) + " |"
    if row["status"] != STATUS_OK:
        line += f" {row.get('error', '')}"
    return line


def memory_slope(rows: List[Dict], key: str) -> float:
    """Least-squares growth of ``key`` (MB) per frame over the ok rows; nan with < 2 rows."""
    points = [(r["frames"], r[key]) for r in rows if r["status"] == STATUS_OK and key in r]
    if len(points) < 2:
        return math.nan
    mean_t = sum(t for t, _ in points) / len(points)
    mean_m = sum(m for _, m in points) / len(points)
    variance = sum((t - mean_t) ** 2 for t, _ in points)
    if variance == 0:
        return math.nan
    return sum((t - mean_t) * (m - mean_m) for t, m in points) / variance


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        args.frames = args.frames[0]
        print(json.dumps(run_setting(args)))
        return
    cuda = args.device == "cuda"
    header = ["mode", "W", "T", "status", "ms/frame", "network", "post", "frames"]
    header += ["RSS start MB", "peak RSS MB"]
    header += ["CUDA peak MB"] if cuda else []
    header += ["masks MB", "wall s"]
    print(
        f"{args.backbone}, {args.height}x{args.width}, {args.device}, amp {args.amp}, "
        f"fresh process per setting, warm-up {args.warmup_frames} frames"
        + (
            f", RLIMIT_AS {args.memory_limit_gb:g} GiB"
            if not cuda and args.memory_limit_gb > 0
            else ""
        )
        + "\n| "
        + " | ".join(header)
        + " |\n|"
        + "---|" * len(header),
        flush=True,
    )
    rows = []
    memory_key = "cuda_peak_mb" if cuda else "peak_rss_mb"
    for mode in args.modes:
        failed_at = None
        for frames in sorted(args.frames):
            if failed_at is not None:
                row = {
                    "mode": mode,
                    "frames": frames,
                    "status": "skipped",
                    "wall_s": 0.0,
                    "window_size": args.window_size if mode == "windowed" else None,
                    "error": f"after {failed_at}",
                }
            else:
                row = run_parent_setting(args, mode, frames)
                if row["status"] != STATUS_OK:
                    failed_at = f"{row['status']} at T={frames}"
            row.update(
                height=args.height,
                width=args.width,
                device=args.device,
                amp=args.amp,
                backbone=args.backbone,
            )
            rows.append(row)
            print(format_row(row, cuda), flush=True)
    for mode in args.modes:
        slope = memory_slope([r for r in rows if r["mode"] == mode], memory_key)
        print(f"{mode}: peak memory grows {slope:.1f} MB per frame (least squares over ok rows)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

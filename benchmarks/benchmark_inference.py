"""Inference speed and memory of the three modes (whole video, windowed, streaming) as T grows.

Shapes: T frames in the video, W frames per window, H x W the frame size.

    # whole-video against windowed inference as videos grow (README, "Long videos")
    python -m benchmarks.benchmark_inference --modes whole windowed --frames 20 100 1000 \\
        --window-sizes 10
    # streaming: per-frame latency and throughput (README, "Live video")
    python -m benchmarks.benchmark_inference --modes stream --frames 10 --window-sizes 1 2 5
    # the same on the quick schedule's trained model (a config: needs detectron2)
    python -m benchmarks.benchmark_inference --modes stream --frames 40 --height 128 \\
        --width 160 \\
        --config-file configs/quick_schedules/video_maskformer2_R18_synthetic_quick.yaml \\
        --weights output/quick_schedules/R18_synthetic/model_final.pth
    # the post-processing alone: lean against upsampling every query (README, "Whole-video
    # inference")
    python -m benchmarks.benchmark_inference --modes postprocess --frames 5 20 50
    # on a GPU with bf16 autocast
    python -m benchmarks.benchmark_inference --device cuda --amp bf16 --modes windowed \\
        --frames 100 1000 3000 --json long_video.json

Modes (``--modes``):

- ``whole``: the paper's inference, ``model([{"image": frames, ...}])`` with the T frames in a
  list (this mode holds the video whole); masks come back as (T, H, W) bool tensors.
- ``windowed``: ``model.inference_windowed`` on a generator of frames, W at a time, masks kept as
  RLE; neither the video nor dense masks are ever held whole.
- ``stream``: ``model.stream(W)`` fed the T frames back to back (made beforehand, after an
  untimed warm-up window). A frame's latency is the time from its ``push`` to its result (the
  wait for the rest of its window plus the window's network and post-processing); the throughput
  is frames per second of wall time. From a camera at f frames/s (below the throughput) frame p
  of a window (0-based) waits (W - 1 - p) / f more.
- ``postprocess``: the network once (its raw outputs saved), then each ``--postprocess`` in its
  own process on those outputs: ``lean`` (top-k before upsampling, ``--chunk-size`` frames at a
  time) and ``reference`` (upsample every query, then select).

Each setting (mode, W, T) runs in a fresh child process (this module run again), so each peak
memory is its own: peak RSS of the child (the RSS after building the model and the warm-up is
shown beside it) and, on a GPU, ``torch.cuda.max_memory_allocated``. Weights are random (seeded)
unless ``--weights`` is given; these are figures, not assertions. The time per frame is split into
``network`` (the forward passes, ``model.predict``, device work included), ``frames`` (making the
synthetic frames, :func:`benchmarks.common.synthetic_frames`) and ``post`` (the rest:
preprocessing, linking windows, resizing and encoding the masks). A setting that runs out of
memory (CPU children run under an ``RLIMIT_AS`` guard, ``--memory-limit-gb``) or runs longer than
``--max-seconds`` is reported as ``OOM`` or ``timeout``, and the larger T of that mode and W are
skipped.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, Iterator, List

from benchmarks.common import (
    AMP_DTYPES,
    ChildFailed,
    autocast,
    build_model,
    current_rss_mb,
    is_out_of_memory,
    limit_address_space,
    module_command,
    peak_memory_mb,
    peak_rss_mb,
    random_frames,
    run_json_child,
    synchronize,
    synthetic_frames,
    table,
    write_json,
)

# This module, as its child processes run it (python -m).
MODULE = "benchmarks.benchmark_inference"
MODES = ("whole", "windowed", "stream", "postprocess")
POSTPROCESS = ("lean", "reference")
# Frames per window: 10 frames is about 1.7 s of YouTube-VIS footage (annotated at 6 fps) and
# costs the memory of a 10-frame whole-video run; larger W gives the masked attention more
# temporal context at a memory cost that grows with W (not with T).
DEFAULT_WINDOW_SIZES = (10,)
# Virtual-memory cap of a CPU child (RLIMIT_AS), GiB: keeps a whole-video run at large T from
# exhausting the machine; it fails with an allocation error, reported as OOM. It caps address
# space, not RSS: a child maps about 4 GiB (torch's libraries) before its first frame.
DEFAULT_MEMORY_LIMIT_GB = 18.0
# Frames of the untimed warm-up run (same mode) before the timed one; 0 skips it.
DEFAULT_WARMUP_FRAMES = 2
STATUS_OK = "ok"
MS_PER_S = 1000.0


# ---------------------------------------------------------------------------------------------
# Child: one setting
# ---------------------------------------------------------------------------------------------


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


def masks_mb(masks: List) -> float:
    """Memory of the returned masks: bool tensors' bytes, or the RLE counts' bytes."""
    total = 0
    for mask in masks:
        if hasattr(mask, "rles"):
            total += sum(len(rle["counts"]) for rle in mask.rles)
        else:
            total += mask.numel() * mask.element_size()
    return total / 2**20


def measure_stream(model, frames: List, window_size: int) -> Dict[str, float]:
    """Feed ``frames`` to a fresh stream after an untimed warm-up window; latency and
    throughput (the ``stream`` mode)."""
    size = tuple(frames[0].shape[-2:])
    list(model.stream(window_size, output_size=size).run(frames[:window_size]))
    stream = model.stream(window_size, output_size=size)
    start = time.perf_counter()
    latencies = [result.latency for result in stream.run(frames)]
    seconds = time.perf_counter() - start
    return {
        "mean_latency_ms": MS_PER_S * statistics.mean(latencies),
        "max_latency_ms": MS_PER_S * max(latencies),
        "frames_per_s": len(latencies) / seconds,
    }


def infer(model, args, num_frames: int, seconds: Dict[str, float]) -> Dict:
    """One end-to-end inference (``whole`` or ``windowed``) of a synthetic video of
    ``num_frames`` frames; adds the time of making the frames to ``seconds["frames"]``."""
    import torch

    frames = synthetic_frames(num_frames, args.height, args.width, args.seed)
    frames = _timed_iteration(frames, seconds, "frames")
    with torch.no_grad(), autocast(model.device, args.amp):
        if args.mode == "whole":
            video = {"image": list(frames), "height": args.height, "width": args.width}
            result = model([video])
        else:
            result = model.inference_windowed(
                _counting(frames, args.window_size),
                (args.height, args.width),
                window_size=args.window_size,
            )
    synchronize(model.device)
    return result


def _measure(model, args, parts: Dict[str, float]) -> Dict:
    """The timed run of one setting (``whole``, ``windowed`` or ``stream``), after its warm-up;
    ``start_rss_mb`` is the RSS after the warm-up."""
    import torch

    if args.mode == "stream":
        frames = list(synthetic_frames(args.frames, args.height, args.width, args.seed))
        frames = [frame.to(model.device) for frame in frames]
        start_rss = current_rss_mb()
        start = time.perf_counter()
        with torch.no_grad(), autocast(model.device, args.amp):
            row = measure_stream(model, frames, args.window_size)
        return dict(row, seconds=time.perf_counter() - start, start_rss_mb=start_rss)
    if args.warmup_frames > 0:
        infer(model, args, min(args.warmup_frames, args.frames), parts)
    parts.update(frames=0.0, network=0.0)
    start_rss = current_rss_mb()
    start = time.perf_counter()
    result = infer(model, args, args.frames, parts)
    return {
        "seconds": time.perf_counter() - start,
        "start_rss_mb": start_rss,
        "instances": len(result["pred_scores"]),
        "masks_mb": masks_mb(result["pred_masks"]),
    }


def run_setting(args: argparse.Namespace) -> Dict:
    """Child: build the model, time one setting of T frames; return the row."""
    import torch

    device = torch.device(args.device)
    if device.type == "cpu":
        limit_address_space(args.memory_limit_gb)
    model = _model(args)
    model.window_size = 0  # "whole" goes through forward(); the others pass their W
    parts = {"frames": 0.0, "network": 0.0}
    model.predict = _timed_calls(model.predict, device, parts, "network")
    row = {"start_rss_mb": current_rss_mb(), "status": STATUS_OK}
    try:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        measured = _measure(model, args, parts)
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        row.update(status="OOM", error=str(error).splitlines()[0][-200:])
    else:
        seconds = measured.pop("seconds")
        row.update(measured, ms_per_frame=MS_PER_S * seconds / args.frames)
        if args.mode != "stream":  # the stream's time includes a warm-up window
            row.update(
                network_ms_per_frame=MS_PER_S * parts["network"] / args.frames,
                post_ms_per_frame=MS_PER_S
                * (seconds - parts["network"] - parts["frames"])
                / args.frames,
                frames_ms_per_frame=MS_PER_S * parts["frames"] / args.frames,
            )
    row["peak_rss_mb"] = peak_rss_mb()
    if device.type == "cuda":
        row["cuda_peak_mb"] = peak_memory_mb(device)
    return row


def _model(args):
    return build_model(
        args.backbone,
        config_file=args.config_file,
        weights=args.weights,
        num_classes=args.num_classes,
        device=args.device,
        seed=args.seed,
    )[0]


def run_network(args: argparse.Namespace) -> Dict:
    """Child of ``postprocess``: the network once on random frames; its raw outputs saved to
    ``args.raw``."""
    import torch

    from video_mask2former.inference import network_outputs

    device = torch.device(args.device)
    model = _model(args)
    frames = random_frames(args.frames, args.height, args.width, torch.Generator().manual_seed(0))
    video = {"image": frames}

    def forward():
        with torch.no_grad(), autocast(device, args.amp):
            outputs = network_outputs(model, [video])
        synchronize(device)
        return outputs

    if args.warmup_frames > 0:
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
    return {
        "network_ms_per_frame": MS_PER_S * seconds / args.frames,
        "peak_mb": peak_memory_mb(device),
    }


def run_postprocess(args: argparse.Namespace) -> Dict:
    """Child of ``postprocess``: one post-processing of the raw outputs in ``args.raw``."""
    import torch

    from video_mask2former.inference.postprocess import video_inference, video_inference_reference

    device = torch.device(args.device)
    raw = torch.load(args.raw, weights_only=True)
    logits, masks = raw["pred_logits"].to(device), raw["pred_masks"].to(device)
    sizes = (raw["padded_size"], raw["image_size"], (args.height, args.width))
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start_mb = peak_memory_mb(device)
    start = time.perf_counter()
    with torch.no_grad():
        if args.postprocess == "lean":
            result = video_inference(logits, masks, *sizes, chunk_size=args.chunk_size)
        else:
            result = video_inference_reference(logits, masks, *sizes)
    synchronize(device)
    return {
        "post_ms_per_frame": MS_PER_S * (time.perf_counter() - start) / args.frames,
        "post_peak_mb": peak_memory_mb(device),
        "post_start_mb": start_mb,
        "instances": len(result["pred_scores"]),
    }


CHILDREN = {"setting": run_setting, "network": run_network, "post": run_postprocess}


# ---------------------------------------------------------------------------------------------
# Parent: the settings, their failures, the table
# ---------------------------------------------------------------------------------------------


def _child_command(args, child: str, mode: str, frames: int, window_size: int, **extra) -> List:
    command = module_command(MODULE) + [
        "--child", child, "--modes", mode, "--frames", str(frames),
        "--window-sizes", str(window_size), "--height", str(args.height),
        "--width", str(args.width), "--backbone", args.backbone,
        "--num-classes", str(args.num_classes), "--device", args.device, "--amp", args.amp,
        "--warmup-frames", str(args.warmup_frames), "--chunk-size", str(args.chunk_size),
        "--memory-limit-gb", str(args.memory_limit_gb), "--seed", str(args.seed),
        "--config-file", args.config_file, "--weights", args.weights,
    ]  # fmt: skip
    for key, value in extra.items():
        command += [f"--{key}", str(value)]
    return command


def _frames_consumed(stderr) -> str:
    """The last progress line of a timed-out child, or ''."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    lines = [line for line in (stderr or "").splitlines() if line.startswith("frames consumed")]
    return lines[-1] if lines else ""


def run_child(args, label: str, command: List[str]) -> Dict:
    """One child; OOM, a timeout or a crash become the row's ``status`` and ``error``."""
    try:
        return dict(run_json_child(command, label=label, timeout=args.max_seconds))
    except subprocess.TimeoutExpired as error:
        progress = _frames_consumed(error.stderr)
        text = f"> {args.max_seconds:.0f} s" + (f" ({progress})" if progress else "")
        return {"status": "timeout", "error": text}
    except ChildFailed as error:
        # SIGKILL without our guard tripping is the kernel's OOM killer in practice.
        status = "OOM (killed)" if error.returncode == -9 else "failed"
        return {"status": status, "error": str(error)[-300:]}


def postprocess_rows(args, frames: int, tmp: str) -> List[Dict]:
    """The ``postprocess`` rows of T = ``frames``: the network once, then each post-processing."""
    raw = os.path.join(tmp, f"raw_{frames}.pt")
    label = f"network T={frames}"
    network = run_child(
        args, label, _child_command(args, "network", "postprocess", frames, 0, raw=raw)
    )
    rows = []
    for post in args.postprocess:
        row = dict(network, postprocess=post)
        if "status" not in network:
            command = _child_command(
                args, "post", "postprocess", frames, 0, raw=raw, postprocess=post
            )
            row.update(run_child(args, f"{post} T={frames}", command))
        row.setdefault("status", STATUS_OK)
        rows.append(row)
    return rows


def settings(args) -> List:
    """(mode, W) pairs in order; W is None for the modes without windows."""
    pairs = []
    for mode in args.modes:
        windows = args.window_sizes if mode in ("windowed", "stream") else [None]
        pairs += [(mode, w) for w in windows]
    return pairs


def run_all(args) -> List[Dict]:
    """Every (mode, W, T), printing each row as it comes; a failure skips that mode's larger T."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode, window_size in settings(args):
            failed_at = None
            for frames in sorted(args.frames):
                base = {"mode": mode, "W": window_size, "T": frames}
                if failed_at is not None:
                    new = [dict(base, status="skipped", error=f"after {failed_at}")]
                elif mode == "postprocess":
                    new = [dict(base, **row) for row in postprocess_rows(args, frames, tmp)]
                else:
                    command = _child_command(args, "setting", mode, frames, window_size or 0)
                    new = [
                        dict(base, **run_child(args, f"{mode} W={window_size} T={frames}", command))
                    ]
                for row in new:
                    row.setdefault("status", STATUS_OK)
                    print(format_row(row), flush=True)
                    if row["status"] != STATUS_OK and failed_at is None:
                        failed_at = f"{row['status']} at T={frames}"
                rows += new
    return rows


# Printed columns and their formats (a row shows those it has; the JSON keeps every figure).
COLUMNS = {
    "mode": "", "W": "", "T": "", "status": "", "ms_per_frame": ".0f",
    "network_ms_per_frame": ".0f", "post_ms_per_frame": ".1f", "frames_ms_per_frame": ".0f",
    "mean_latency_ms": ".0f", "max_latency_ms": ".0f", "frames_per_s": ".2f",
    "start_rss_mb": ".0f", "peak_rss_mb": ".0f", "cuda_peak_mb": ".0f", "peak_mb": ".0f",
    "postprocess": "", "post_peak_mb": ".0f", "post_start_mb": ".0f", "masks_mb": ".1f",
}  # fmt: skip


def format_row(row: Dict) -> str:
    """One row as ``key=value`` pairs (the table comes at the end)."""
    cells = []
    for key, spec in COLUMNS.items():
        value = row.get(key)
        if value is not None:
            cells.append(f"{key}={format(value, spec) if spec else value}")
    if row.get("error"):
        cells.append(f"error={row['error']}")
    return " ".join(cells)


def summary_table(rows: List[Dict]) -> str:
    """The rows as a Markdown table over the columns that any row has."""
    columns = [key for key in COLUMNS if any(row.get(key) is not None for row in rows)]
    body = [[row.get(key) for key in columns] for row in rows]
    return table(body, headers=columns, floatfmt=[COLUMNS[key] or "g" for key in columns])


def memory_slope(rows: List[Dict], key: str) -> float:
    """Least-squares growth of ``key`` (MB) per frame over the ok rows; nan with < 2 rows."""
    points = [(r["T"], r[key]) for r in rows if r["status"] == STATUS_OK and key in r]
    if len(points) < 2:
        return math.nan
    mean_t = sum(t for t, _ in points) / len(points)
    mean_m = sum(m for _, m in points) / len(points)
    variance = sum((t - mean_t) ** 2 for t, _ in points)
    if variance == 0:
        return math.nan
    return sum((t - mean_t) * (m - mean_m) for t, m in points) / variance


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", nargs="+", default=["whole", "windowed"], choices=MODES)
    parser.add_argument("--frames", type=int, nargs="+", default=[20, 100, 500, 1000], help="T")
    parser.add_argument("--window-sizes", type=int, nargs="+", default=list(DEFAULT_WINDOW_SIZES),
                        help="W of the windowed and stream modes")  # fmt: skip
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--backbone", type=str, default="R50", help="core build (no detectron2)")
    parser.add_argument("--num-classes", type=int, default=40, help="40: YouTube-VIS 2019")
    parser.add_argument("--config-file", type=str, default="", help="a config instead (detectron2)")
    parser.add_argument("--weights", type=str, default="", help="default: random (seeded)")
    parser.add_argument("--device", type=str, default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--amp", type=str, default="none", choices=AMP_DTYPES, help="autocast")
    parser.add_argument("--postprocess", nargs="+", default=list(POSTPROCESS), choices=POSTPROCESS)
    parser.add_argument(
        "--chunk-size", type=int, default=8, help="lean: frames upsampled at a time"
    )
    parser.add_argument("--warmup-frames", type=int, default=DEFAULT_WARMUP_FRAMES,
                        help="frames of an untimed run first (0: none)")  # fmt: skip
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="per setting (timeout)")
    parser.add_argument("--memory-limit-gb", type=float, default=DEFAULT_MEMORY_LIMIT_GB,
                        help="RLIMIT_AS of each CPU child, GiB (0: no limit)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and frames")
    parser.add_argument("--json", type=str, default="", help="also write the rows to this file")
    # Internal: run one child (used by the parent process).
    parser.add_argument("--child", choices=sorted(CHILDREN), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--raw", type=str, default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.window_sizes) < 1 or min(args.frames) < 1:
        parser.error("--window-sizes and --frames must be >= 1")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        args.mode, args.frames, args.window_size = (
            args.modes[0],
            args.frames[0],
            args.window_sizes[0],
        )
        args.postprocess = args.postprocess[0]
        print(json.dumps(CHILDREN[args.child](args)))
        return
    memory = "CUDA max allocated" if args.device == "cuda" else "peak RSS"
    print(
        f"{args.config_file or args.backbone}, {args.height}x{args.width}, {args.device}, amp "
        f"{args.amp}, fresh process per setting, warm-up {args.warmup_frames} frames, {memory}",
        flush=True,
    )
    rows = run_all(args)
    for row in rows:
        row.update(height=args.height, width=args.width, device=args.device, amp=args.amp)
    print(summary_table(rows))
    memory_key = "cuda_peak_mb" if args.device == "cuda" else "peak_rss_mb"
    for mode, window_size in settings(args):
        if mode in ("whole", "windowed"):
            own = [r for r in rows if r["mode"] == mode and r["W"] == window_size]
            slope = memory_slope(own, memory_key)
            print(f"{mode} W={window_size}: peak memory grows {slope:.1f} MB per frame")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()

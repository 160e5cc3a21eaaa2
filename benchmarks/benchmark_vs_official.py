#!/usr/bin/env python
"""Benchmark this project against the official Mask2Former video code on the same machine.

Each setting (stage, implementation, backbone, mode) runs in a fresh child process so that each
peak memory is its own (``torch.cuda.max_memory_allocated`` on a GPU, peak RSS on the CPU):

- inference: R50, one video of T random uint8 frames through the public path as a user calls it,
  in each of this project's ``--infer-modes`` (fp32, bf16, compiled, ...: :mod:`benchmarks.modes`)
  and the official code in float32 (its own path; ``--official-amp`` adds others): median ms per
  frame, peak memory, the ratios against the official float32 time, the top-10 agreement with the
  official float32 result, this project's FLOPs per video and achieved TFLOP/s;
- training: one step on B videos x T frames with synthetic instances in each ``--train-amp``:
  median seconds per step, and the ratio of each precision against float32.

First the machine is described (CPU model and flags, torch's CPU capability) and its matmul peak
measured in float32 and each reduced precision asked for (:mod:`benchmarks.hardware`); a mode
whose precision is slower than float32 there is skipped with the reason (``--force-bf16`` runs
it). The report is a Markdown table ready for README, the targets of the CPU work with their
verdicts, and ``--json``. The parts live in :mod:`benchmarks.vs_official`.

Example (CPU, as in README; detectron2 installed):
    python -m benchmarks.benchmark_vs_official --official-src ../Mask2Former --device cpu \\
        --threads 2 --frames 5 --height 360 --width 640 --infer-modes fp32 bf16 compiled \\
        --train-backbones R50 --train-amp none bf16 --warmup 1 --iters 3 --json vs.json
GPU (the official op is built in ``--official-work``):
    python -m benchmarks.benchmark_vs_official --official-src .gpu_carry/Mask2Former --json vs.json
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import List

from benchmarks.common import ChildFailed, module_command, run_json_child
from benchmarks.hardware import describe_machine, machine_line, measure_peaks, peaks_line
from benchmarks.hardware import split_modes
from benchmarks.modes import MODES, amp_of, mode_name
from benchmarks.official_source import (
    OFFICIAL_PATCHES,
    build_official_ops,
    built_official_op,
    is_prepared,
    prepare_official_source,
)
from benchmarks.vs_official.measure import CHILD_STAGES
from benchmarks.vs_official.models import OFFICIAL_CONFIGS
from benchmarks.vs_official.report import (
    add_comparisons,
    format_table,
    format_targets,
    parity_summary,
    targets,
)

# The inference benchmark's backbone.
INFERENCE_BACKBONE = "R50"
# Training precisions (autocast names; "none" is float32).
TRAIN_AMPS = ("none", "fp16", "bf16")
# Inference modes of ours measured by default, by device.
DEFAULT_INFER_MODES = {
    "cpu": ("fp32", "bf16", "compiled", "fp32-no-cache"),
    "cuda": ("fp32", "bf16"),
}
# The modes that are a precision alone, the ones the official code runs in too.
PRECISION_MODES = ("fp32", "bf16", "fp16")
# Per-child arguments, left out of the report's settings.
HIDDEN_ARGS = ("stage", "impl", "backbone", "mode", "weights", "official_root", "flops")
# A traceback's exception line, e.g. "torch.OutOfMemoryError: CUDA out of memory." (its other
# lines are indented).
EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)\b"
)


def _error_line(error: BaseException) -> str:
    """The end of a failed child's message on one line: from the last line that starts with an
    exception name (a traceback's last exception, whose message may span lines) to the end."""
    if isinstance(error, subprocess.TimeoutExpired):
        return f"timed out after {error.timeout:.0f} s"
    lines = str(error).splitlines()
    starts = [i for i, line in enumerate(lines) if EXCEPTION_LINE.match(line)]
    tail = lines[starts[-1] :] if starts else lines[-1:]
    last = " ".join(line.strip() for line in tail if line.strip())
    if isinstance(error, ChildFailed) and error.returncode < 0:
        return f"killed by signal {-error.returncode} {last}".strip()
    return last or f"{type(error).__name__} (no message)"


def _child_command(args: argparse.Namespace, stage: str, impl: str, backbone: str, mode: str,
                   weights: str, official: dict) -> List[str]:  # fmt: skip
    return module_command("benchmarks.benchmark_vs_official") + [
        "--stage", stage, "--impl", impl, "--backbone", backbone, "--mode", mode,
        "--weights", weights, "--device", args.device, "--seed", str(args.seed),
        "--threads", str(args.threads),
        "--frames", str(args.frames), "--height", str(args.height), "--width", str(args.width),
        "--train-videos", str(args.train_videos), "--train-frames", str(args.train_frames),
        "--instances", str(args.instances),
        "--warmup", str(args.warmup), "--iters", str(args.iters),
        "--official-root", official.get("root") or "", "--official-op", official["op"],
    ] + ([] if args.no_flops else ["--flops"])  # fmt: skip


def run_child(args, stage, impl, backbone, mode, weights, official) -> dict:
    """One setting in a fresh process: its JSON result, or ``{"error": last line}``."""
    if impl == "official" and official.get("error"):
        return {"error": official["error"]}
    command = _child_command(args, stage, impl, backbone, mode, weights, official)
    label = f"{stage} {impl} {backbone} {mode}"
    # The official code (and its built op) is imported from the prepared copy.
    paths = [official["root"], official.get("op_path") or ""] if impl == "official" else []
    try:
        return run_json_child(
            command, label=label, timeout=args.timeout, extra_paths=[p for p in paths if p]
        )
    except (ChildFailed, subprocess.TimeoutExpired, ValueError) as error:
        return {"error": _error_line(error)}


def resolve_official(args: argparse.Namespace) -> dict:
    """Prepare the patched official copy (and build its op when asked).

    Returns:
        dict: ``root`` (the copy), ``op`` ("stub", "installed" or "build"), ``op_path`` (the
        folder of the built op) and ``error`` (None, or why the official settings cannot run).
    """
    mode = args.official_op
    if mode == "auto":
        mode = "stub" if args.device == "cpu" else "build"
    result = {"root": args.official_work, "op": mode, "op_path": None, "error": None}
    if "official" not in args.impls:
        return result
    try:
        if not is_prepared(args.official_src, args.official_work):
            prepare_official_source(args.official_src, args.official_work)
        if mode == "build":
            op = built_official_op(args.official_work)
            result["op_path"] = (
                os.path.dirname(op) if op else build_official_ops(args.official_work)
            )
    except (OSError, ValueError, RuntimeError) as error:
        result["error"] = f"official source: {_error_line(error)}"
    return result


def plan_settings(args: argparse.Namespace, peaks: dict) -> List[dict]:
    """The rows to measure, in order: ``benchmark``, ``backbone``, ``mode``, and ``skipped``
    (the reason) for a mode whose precision is slow on this machine."""
    settings = []
    if "inference" in args.benchmarks:
        settings += [("inference", INFERENCE_BACKBONE, mode) for mode in args.infer_modes]
    if "training" in args.benchmarks:
        modes = [mode_name(amp) for amp in args.train_amp]
        settings += [("training", b, mode) for b in args.train_backbones for mode in modes]
    _, skipped = split_modes([m for _, _, m in settings], amp_of, peaks, force=args.force_bf16)
    rows = []
    for stage, backbone, mode in settings:
        row = {"benchmark": stage, "backbone": backbone, "mode": mode}
        if mode in skipped:
            row["skipped"] = skipped[mode]
        rows.append(row)
    return rows


def _runs_official(args: argparse.Namespace, mode: str) -> bool:
    """The official code runs in float32 and in the ``--official-amp`` precisions: for the modes
    that are a precision alone (not for ``compiled`` or ``fp32-no-cache``, options of ours)."""
    return (
        "official" in args.impls
        and mode in PRECISION_MODES
        and (mode == "fp32" or amp_of(mode) in args.official_amp)
    )


def run_benchmarks(args: argparse.Namespace, official: dict, rows: List[dict], tmp: str) -> None:
    """Measure the planned ``rows`` (in place): ``ours`` and, where it runs, ``official``."""
    weights, weight_errors = {}, {}
    for backbone in sorted({row["backbone"] for row in rows if not row.get("skipped")}):
        weights[backbone] = os.path.join(tmp, f"weights_{backbone}.pt")
        made = run_child(args, "weights", "ours", backbone, "fp32", weights[backbone], official)
        if "error" in made:
            weight_errors[backbone] = {"error": f"building the weights: {made['error']}"}
            print(f"weights {backbone}: {weight_errors[backbone]['error']}", flush=True)
    for row in rows:
        stage, backbone, mode = row["benchmark"], row["backbone"], row["mode"]
        if row.get("skipped"):
            print(f"{stage} {backbone} {mode}: skipped, {row['skipped']} (--force-bf16 runs it)")
            continue
        impls = ["ours"] if "ours" in args.impls else []
        impls += ["official"] if _runs_official(args, mode) else []
        for impl in impls:
            row[impl] = weight_errors.get(backbone) or run_child(
                args, stage, impl, backbone, mode, weights[backbone], official
            )
            print(f"{stage} {backbone} {mode} {impl}: {_summary(row[impl])}", flush=True)


def _summary(result: dict) -> str:
    if "error" in result:
        return f"failed: {result['error']}"
    time_text = (f"{result['ms_per_frame']:.1f} ms/frame" if "ms_per_frame" in result
                 else f"{result['s_per_step']:.3f} s/step")  # fmt: skip
    return f"{time_text}, peak {result['peak_mb']:.0f} MB"


def _first_info(rows: List[dict], key: str) -> str:
    for row in rows:
        for impl in ("ours", "official"):
            if key in (row.get(impl) or {}):
                return str(row[impl][key])
    return "?"


def _flops_line(rows: List[dict], args: argparse.Namespace) -> str:
    ours = next((r.get("ours") or {} for r in rows
                 if r["benchmark"] == "inference" and r["mode"] == "fp32"), {})  # fmt: skip
    if not ours.get("flops_per_video"):
        return "FLOPs: not counted (no fp32 inference of ours)"
    deform = ours.get("deform_attn_flops")
    if deform is None:
        how = "deformable attention NOT counted (pure-PyTorch path)"
    else:
        how = f"deformable attention counted by hand: {deform / 1e9:.3g} GFLOP"
    return (
        f"FLOPs per video (T={args.frames}, {args.height}x{args.width}, torch FlopCounterMode; "
        f"{how}): {ours['flops_per_video'] / 1e9:.4g} GFLOP"
    )


def print_report(args, rows: List[dict], official: dict, machine: dict, peaks: dict) -> None:
    passed = parity_summary(rows)
    verdict = {True: "passed", False: "FAILED", None: "not run"}[passed]
    print(
        f"\nmachine: {machine_line(machine)}\n{peaks_line(peaks)}\n{_flops_line(rows, args)}\n"
        f"parity (fp32 top-10 scores within {args.parity_atol:g}): {verdict}\n"
        f"device: {_first_info(rows, 'device_name')}, torch {_first_info(rows, 'torch')}; "
        f"inference T={args.frames} at {args.height}x{args.width}; training "
        f"{args.train_videos} videos x {args.train_frames} frames at {args.height}x{args.width}; "
        f"median of {args.iters} after {args.warmup} warm-up; official op: {official['op']}; "
        "ratios: ours / the fp32 reference (below 1: faster / smaller)\n"
    )
    print(format_table(rows, args.device))
    print("\ntargets:\n" + format_targets(targets(rows)), flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official-src", type=str, default="",
                        help="official Mask2Former checkout (commit 9b0651c)")  # fmt: skip
    parser.add_argument(
        "--official-work", type=str,
        default=os.path.join(tempfile.gettempdir(), "video_mask2former_official"),
        help="where the patched official copy (and its built op) is kept between runs",
    )  # fmt: skip
    parser.add_argument(
        "--official-op", type=str, default="auto",
        choices=["auto", "build", "installed", "stub"],
        help="the official MultiScaleDeformableAttention: build it in the copy, use an "
        "installed one, or a stub making the official code take its PyTorch path "
        "(auto: stub on the CPU, build on a GPU)",
    )  # fmt: skip
    parser.add_argument("--impls", type=str, nargs="+", default=["ours", "official"],
                        choices=["ours", "official"])  # fmt: skip
    parser.add_argument("--benchmarks", type=str, nargs="+", default=["inference", "training"],
                        choices=["inference", "training"])  # fmt: skip
    parser.add_argument("--device", type=str, default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--frames", type=int, default=36, help="inference: frames of the video")
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument(
        "--infer-modes",
        "--infer-amp",
        dest="infer_modes",
        type=mode_name,
        nargs="+",
        default=None,
        help=f"this project's inference modes: {', '.join(MODES)} ('none' = "
        "fp32; default: fp32 bf16 compiled fp32-no-cache on the CPU, fp32 bf16 on a GPU)",
    )
    parser.add_argument("--official-amp", type=str, nargs="+", default=None, choices=TRAIN_AMPS,
                        help="precisions the official code runs in besides float32 (default: "
                        "none on the CPU, every precision asked of ours on a GPU)")  # fmt: skip
    parser.add_argument("--train-backbones", type=str, nargs="+", default=["R50", "swin_tiny"],
                        choices=sorted(OFFICIAL_CONFIGS))  # fmt: skip
    parser.add_argument("--train-amp", type=str, nargs="+", default=["none", "fp16", "bf16"],
                        choices=TRAIN_AMPS)  # fmt: skip
    parser.add_argument("--train-videos", type=int, default=2, help="training: videos per batch")
    parser.add_argument("--train-frames", type=int, default=2, help="training: frames per video")
    parser.add_argument("--instances", type=int, default=3, help="training: instances per video")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before the timed ones")
    parser.add_argument("--iters", type=int, default=10, help="timed runs (the median is kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parity-atol", type=float, default=1e-4,
                        help="fp32: allowed difference of the top-10 scores")  # fmt: skip
    parser.add_argument("--force-bf16", action="store_true",
                        help="run reduced-precision modes even where their matmul is slower "
                        "than float32 (they may take very long)")  # fmt: skip
    parser.add_argument("--no-flops", action="store_true", help="do not count the FLOPs")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per setting")
    parser.add_argument("--json", type=str, default="", help="also write all figures here")
    # Internal: run one setting (used by the parent process).
    hidden = {"help": argparse.SUPPRESS}
    parser.add_argument("--stage", type=str, default=None, choices=sorted(CHILD_STAGES), **hidden)
    parser.add_argument("--impl", type=str, default="ours", **hidden)
    parser.add_argument("--backbone", type=str, default=INFERENCE_BACKBONE, **hidden)
    parser.add_argument("--mode", type=mode_name, default="fp32", **hidden)
    parser.add_argument("--weights", type=str, default="", **hidden)
    parser.add_argument("--official-root", type=str, default="", **hidden)
    parser.add_argument("--flops", action="store_true", **hidden)
    args = parser.parse_args(argv)
    if args.infer_modes is None:
        args.infer_modes = list(DEFAULT_INFER_MODES[args.device])
    if args.official_amp is None:
        args.official_amp = list(TRAIN_AMPS) if args.device == "cuda" else ["none"]
    if args.stage is None and "official" in args.impls and not args.official_src:
        parser.error("--official-src is required to run the official implementation")
    if min(args.iters, args.frames, args.train_videos, args.train_frames, args.instances) < 1:
        parser.error("--iters, --frames, --train-videos, --train-frames, --instances must be >= 1")
    return args


def _write_json(path: str, report: dict) -> None:
    """Write ``report`` to ``path`` through a temporary file in the same folder."""
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w") as f:
        json.dump(report, f, indent=1)
    os.replace(temporary, path)


def main(argv=None) -> int:
    """Run the benchmark; the exit code is 1 when the fp32 parity check failed, else 0."""
    args = parse_args(argv)
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    if args.stage is not None:
        print(json.dumps(CHILD_STAGES[args.stage](args)))
        return 0
    import torch

    machine = describe_machine()
    amps = [amp_of(m) for m in args.infer_modes] if "inference" in args.benchmarks else []
    amps += list(args.train_amp) if "training" in args.benchmarks else []
    peaks = measure_peaks(torch.device(args.device), amps)
    print(f"machine: {machine_line(machine)}\n{peaks_line(peaks)}", flush=True)
    official = resolve_official(args)
    if official["error"]:
        print(official["error"], flush=True)
    rows = plan_settings(args, peaks)
    with tempfile.TemporaryDirectory() as tmp:
        run_benchmarks(args, official, rows, tmp)
    add_comparisons(rows, parity_atol=args.parity_atol, frames=args.frames, peaks=peaks)
    print_report(args, rows, official, machine, peaks)
    if args.json:
        _write_json(args.json, {
            "settings": {k: v for k, v in vars(args).items() if k not in HIDDEN_ARGS},
            "machine": machine,
            "matmul_peaks": peaks,
            "official": dict(
                official, patches=[{"path": p.path, "why": p.why} for p in OFFICIAL_PATCHES]
            ),
            "parity_passed": parity_summary(rows),
            "targets": targets(rows),
            "rows": rows,
        })  # fmt: skip
    return 1 if parity_summary(rows) is False else 0


if __name__ == "__main__":
    sys.exit(main())

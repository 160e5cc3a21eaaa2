#!/usr/bin/env python
"""Benchmark this project against the official Mask2Former video code on the same machine.

Two measurements, each setting (implementation, backbone, autocast dtype) in a fresh child process
so that each peak memory is its own (``torch.cuda.max_memory_allocated`` on a GPU, peak RSS on the
CPU):

- inference: R50, one video of T random uint8 frames through the public path as a user calls it,
  ``model([{"image": frames, "height": H, "width": W}])`` in eval mode; median ms per frame over
  ``--iters`` runs after ``--warmup`` runs. The top-10 scores of both are compared (parity).
- training: one step (forward, loss, backward, AdamW step; fp16 with a GradScaler as detectron2's
  AMPTrainer does) on B videos x T frames with synthetic instances; median seconds per step.

Ours is ``build_video_maskformer``; the official is its ``VideoMaskFormer`` built by detectron2's
``build_model`` from the official YouTube-VIS 2019 config, run from a patched copy of
``--official-src`` (see :mod:`benchmarks.official_source`). Both get the same weights: ours built
with a fixed seed, its ``state_dict`` loaded into the official model (the keys are the same by
design).
Ours and the official register classes of the same names in detectron2's registries, so a child
imports one implementation only.

Example (GPU; detectron2 installed; the official op is built in ``--official-work``):
    python -m benchmarks.benchmark_vs_official --official-src .gpu_carry/Mask2Former --json vs.json
CPU smoke test (the official deformable attention takes its own pure-PyTorch path there):
    python -m benchmarks.benchmark_vs_official --official-src ../Mask2Former --device cpu \\
        --frames 2 --height 64 --width 96 --warmup 0 --iters 1
"""

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections import Counter, OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

from benchmarks.common import (
    ChildFailed,
    module_command,
    peak_memory_mb,
    run_json_child,
    synchronize,
)
from benchmarks.official_source import (
    OFFICIAL_PATCHES,
    build_official_ops,
    built_official_op,
    is_prepared,
    prepare_official_source,
)

# Official configs (relative to the official repository) of the benchmarked backbones.
OFFICIAL_CONFIGS = {
    "R50": "configs/youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml",
    "swin_tiny": "configs/youtubevis_2019/swin/video_maskformer2_swin_tiny_bs16_8ep.yaml",
}
# The inference benchmark's backbone.
INFERENCE_BACKBONE = "R50"
# YouTube-VIS 2019 classes (MODEL.SEM_SEG_HEAD.NUM_CLASSES of the official configs).
NUM_CLASSES = 40
# SOLVER.BASE_LR and SOLVER.WEIGHT_DECAY of the official configs (AdamW).
BASE_LR = 1e-4
WEIGHT_DECAY = 0.05
# Side of a synthetic instance's box, as a fraction of the frame side: [min, max).
BOX_FRACTION = (0.125, 0.5)
AMP_CHOICES = ("none", "fp16", "bf16")
# Logger of the official retry_if_cuda_oom: it logs when it re-runs a step on the CPU after OOM.
OFFICIAL_OOM_LOGGER = "mask2former_video.utils.memory"
# Per-child arguments, left out of the report's settings.
HIDDEN_ARGS = ("stage", "impl", "backbone", "amp", "weights", "official_root")
# A traceback's exception line, e.g. "torch.OutOfMemoryError: CUDA out of memory." (its other
# lines are indented).
EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)\b"
)
# Characters of an error message kept in the printed table.
TABLE_ERROR_CHARS = 60


# ----------------------------------------------------------------------------------------------
# Synthetic inputs (the same for both implementations: seeded, made in each child)
# ----------------------------------------------------------------------------------------------
def random_frames(count: int, height: int, width: int, generator) -> list:
    """``count`` random RGB frames, uint8 (3, H, W) tensors."""
    import torch

    return [
        torch.randint(0, 256, (3, height, width), generator=generator, dtype=torch.uint8)
        for _ in range(count)
    ]


def random_instances(num: int, frames: int, height: int, width: int, generator):
    """``num`` instances present in every frame, each a random box per frame.

    Returns:
        tuple: classes (M,) int64 in [0, NUM_CLASSES), masks (M, T, H, W) bool.
    """
    import torch

    classes = torch.randint(0, NUM_CLASSES, (num,), generator=generator)
    masks = torch.zeros((num, frames, height, width), dtype=torch.bool)
    for m in range(num):
        for t in range(frames):
            box = []
            for side in (height, width):
                lo, hi = (max(1, int(side * f)) for f in BOX_FRACTION)
                size = int(torch.randint(lo, hi + 1, (), generator=generator))
                box.append((int(torch.randint(0, side - size + 1, (), generator=generator)), size))
            (y, h), (x, w) = box
            masks[m, t, y : y + h, x : x + w] = True
    return classes, masks


def frame_targets(impl: str, classes, masks) -> list:
    """Per-frame targets as each implementation reads them.

    Ours: :class:`~video_mask2former.structures.FrameInstances`. The official (its
    ``prepare_targets``): detectron2 ``Instances`` with ``gt_classes``, ``gt_ids`` and
    ``gt_masks`` as ``BitMasks``, the fields its YTVIS dataset mapper fills.

    Args:
        classes (Tensor): (M,) int64.
        masks (Tensor): (M, T, H, W) bool.
    """
    import torch

    ids = torch.arange(len(classes))
    size = tuple(masks.shape[-2:])
    if impl == "ours":
        from video_mask2former.structures import FrameInstances

        return [
            FrameInstances(image_size=size, gt_classes=classes, gt_ids=ids, gt_masks=masks[:, t])
            for t in range(masks.shape[1])
        ]
    from detectron2.structures import BitMasks, Instances

    return [
        Instances(size, gt_classes=classes, gt_ids=ids, gt_masks=BitMasks(masks[:, t]))
        for t in range(masks.shape[1])
    ]


def training_batch(args: argparse.Namespace) -> list:
    """``--train-videos`` videos of ``--train-frames`` frames with ``--instances`` instances."""
    import torch

    generator = torch.Generator().manual_seed(args.seed)
    batch = []
    for _ in range(args.train_videos):
        frames = random_frames(args.train_frames, args.height, args.width, generator)
        classes, masks = random_instances(
            args.instances, args.train_frames, args.height, args.width, generator
        )
        video = {"image": frames, "height": args.height, "width": args.width}
        video["instances"] = frame_targets(args.impl, classes, masks)
        batch.append(video)
    return batch


# ----------------------------------------------------------------------------------------------
# Children: build a model, load the shared weights, measure
# ----------------------------------------------------------------------------------------------
def build_ours(args: argparse.Namespace, backbone: str):
    from video_mask2former.modeling.build import build_video_maskformer

    return build_video_maskformer(backbone, num_classes=NUM_CLASSES, num_frames=args.train_frames)


class _CountingHandler(logging.Handler):
    """Counts the records of a logger."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record):
        self.count += 1


def _official_op_stub() -> types.ModuleType:
    """A stand-in for the compiled official op whose functions raise.

    The official ``MSDeformAttn.forward`` calls the op inside a bare ``try`` and falls back to its
    ``ms_deform_attn_core_pytorch`` on any error: what it does on the CPU with the real op too,
    whose CPU functions raise "Not implemented on the CPU". Only used on the CPU.
    """

    def not_compiled(*args, **kwargs):
        raise NotImplementedError("official MultiScaleDeformableAttention: CPU stub")

    stub = types.ModuleType("MultiScaleDeformableAttention")
    stub.ms_deform_attn_forward = not_compiled
    stub.ms_deform_attn_backward = not_compiled
    return stub


def import_official(args: argparse.Namespace) -> Dict[str, Callable[[], int]]:
    """Import the official code and instrument two fallbacks.

    The prepared official copy and the folder of its built op come first on the child's
    ``PYTHONPATH`` (:func:`run_child`); on the CPU a stub stands in for the op.

    Returns:
        dict: name -> function giving how often, so far, the official deformable attention took
        its pure-PyTorch path, and how often ``retry_if_cuda_oom`` re-ran a step on the CPU.
    """
    if args.official_op == "stub":
        sys.modules["MultiScaleDeformableAttention"] = _official_op_stub()
    import mask2former.modeling.pixel_decoder.ops.modules.ms_deform_attn as official_msda

    pytorch_path = official_msda.ms_deform_attn_core_pytorch
    fallbacks = [0]

    def counting_pytorch_path(*inputs):
        fallbacks[0] += 1
        return pytorch_path(*inputs)

    # The module looks the function up at call time, so this counts the fallback calls.
    official_msda.ms_deform_attn_core_pytorch = counting_pytorch_path
    oom_retries = _CountingHandler()
    logging.getLogger(OFFICIAL_OOM_LOGGER).addHandler(oom_retries)
    logging.getLogger(OFFICIAL_OOM_LOGGER).setLevel(logging.INFO)
    return {
        "official_deform_attn_pytorch_calls": lambda: fallbacks[0],
        "official_oom_cpu_retries": lambda: oom_retries.count,
    }


def build_official(args: argparse.Namespace, backbone: str):
    """The official ``VideoMaskFormer`` from its config, set up as in its ``train_net_video.py``."""
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from detectron2.projects.deeplab import add_deeplab_config
    from mask2former import add_maskformer2_config
    from mask2former_video import add_maskformer2_video_config

    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_maskformer2_config(cfg)
    add_maskformer2_video_config(cfg)
    cfg.merge_from_file(os.path.join(args.official_root, OFFICIAL_CONFIGS[backbone]))
    cfg.MODEL.DEVICE = args.device
    cfg.INPUT.SAMPLING_FRAME_NUM = args.train_frames
    return build_model(cfg)


def load_model(args: argparse.Namespace, backbone: str):
    """The model of ``args.impl`` with the shared weights, on the device.

    Returns:
        tuple: the model and a dict of name -> callable giving diagnostics of the run.
    """
    import torch

    if args.impl == "official":
        diagnostics = import_official(args)
        model = build_official(args, backbone)
    else:
        import mask2former_ops

        diagnostics = {
            "ours_ops_compiled": mask2former_ops.is_compiled,
            "ours_cuda_kernels": mask2former_ops.cuda_kernels_built,
        }
        model = build_ours(args, backbone)
    state = torch.load(args.weights, map_location="cpu", weights_only=True)
    if args.impl == "official":
        # The official MaskFormerHead (_version 2) re-prefixes its keys when the state_dict's
        # metadata gives an older version, and ours records nn.Module's default version 1. The
        # keys are already the official ones: load them with the official model's own metadata.
        state = OrderedDict(state)
        state._metadata = model.state_dict()._metadata
    model.load_state_dict(state)
    return model.to(torch.device(args.device)), diagnostics


def timed_calls(fn: Callable, args: argparse.Namespace) -> Tuple[List[float], list]:
    """Run ``fn`` ``--warmup`` times, then ``--iters`` times timed (synchronised around each).

    The peak-memory statistics are reset before the warm-up (after the model is built).

    Returns:
        tuple: the seconds and the results of the timed calls.
    """
    import torch

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup):
        fn()
    seconds, results = [], []
    for _ in range(args.iters):
        synchronize(device)
        start = time.perf_counter()
        results.append(fn())
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds, results


def _autocast(args: argparse.Namespace):
    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.amp)
    return torch.autocast(torch.device(args.device).type, dtype=dtype, enabled=dtype is not None)


def _run_info(args: argparse.Namespace, diagnostics: Dict[str, Callable]) -> dict:
    import torch

    device = torch.device(args.device)
    info = {name: get() for name, get in diagnostics.items()}
    info["peak_mb"] = peak_memory_mb(device)
    info["torch"] = torch.__version__
    info["device_name"] = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (peak RSS)"
    )
    return info


def run_weights(args: argparse.Namespace) -> dict:
    """Build ours with ``--seed`` and save its ``state_dict`` to ``--weights``."""
    import torch

    torch.manual_seed(args.seed)
    state = build_ours(args, args.backbone).state_dict()
    torch.save(state, args.weights)
    return {"tensors": len(state)}


def run_inference(args: argparse.Namespace) -> dict:
    """Time the public inference path on one random video; keep the last result's top-k."""
    import torch

    model, diagnostics = load_model(args, args.backbone)
    model.eval()
    generator = torch.Generator().manual_seed(args.seed)
    frames = random_frames(args.frames, args.height, args.width, generator)
    video = {"image": frames, "height": args.height, "width": args.width}

    def forward():
        with torch.no_grad(), _autocast(args):
            return model([video])

    seconds, results = timed_calls(forward, args)
    result = results[-1]
    return dict(
        _run_info(args, diagnostics),
        ms_per_frame=1000 * statistics.median(seconds) / args.frames,
        seconds=seconds,
        scores=[float(s) for s in result["pred_scores"]],
        labels=[int(label) for label in result["pred_labels"]],
        mask_areas=[int(mask.sum()) for mask in result["pred_masks"]],
    )


def run_training(args: argparse.Namespace) -> dict:
    """Time training steps on a synthetic batch: forward, summed losses, backward, AdamW step."""
    import torch

    model, diagnostics = load_model(args, args.backbone)
    model.train()
    batch = training_batch(args)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=BASE_LR, weight_decay=WEIGHT_DECAY)
    # As detectron2's AMPTrainer: loss scaling for fp16 only.
    scaler = torch.amp.GradScaler(torch.device(args.device).type, enabled=args.amp == "fp16")

    def step():
        with _autocast(args):
            losses = model(batch)
            total = sum(losses.values())
        optimizer.zero_grad()
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        return total.detach()

    torch.manual_seed(args.seed)  # drop path and the losses' point sampling
    seconds, totals = timed_calls(step, args)
    return dict(
        _run_info(args, diagnostics),
        s_per_step=statistics.median(seconds),
        seconds=seconds,
        losses=[float(total) for total in totals],
    )


CHILD_STAGES = {"weights": run_weights, "inference": run_inference, "training": run_training}


# ----------------------------------------------------------------------------------------------
# Parent: settings, failures, parity, table
# ----------------------------------------------------------------------------------------------
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


def _child_command(args: argparse.Namespace, stage: str, impl: str, backbone: str, amp: str,
                   weights: str, official: dict) -> List[str]:  # fmt: skip
    return module_command("benchmarks.benchmark_vs_official") + [
        "--stage", stage, "--impl", impl, "--backbone", backbone, "--amp", amp,
        "--weights", weights, "--device", args.device, "--seed", str(args.seed),
        "--frames", str(args.frames), "--height", str(args.height), "--width", str(args.width),
        "--train-videos", str(args.train_videos), "--train-frames", str(args.train_frames),
        "--instances", str(args.instances),
        "--warmup", str(args.warmup), "--iters", str(args.iters),
        "--official-root", official.get("root") or "", "--official-op", official["op"],
    ]  # fmt: skip


def run_child(args, stage, impl, backbone, amp, weights, official) -> dict:
    """One setting in a fresh process: its JSON result, or ``{"error": last line}``."""
    if impl == "official" and official.get("error"):
        return {"error": official["error"]}
    command = _child_command(args, stage, impl, backbone, amp, weights, official)
    label = f"{stage} {impl} {backbone} {amp}"
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


def ratio(ours: dict, official: dict, key: str) -> Optional[float]:
    """``ours[key] / official[key]``, or None when either is missing (a failed setting)."""
    if key not in ours or key not in official or not official[key]:
        return None
    return ours[key] / official[key]


def parity(ours: dict, official: dict, atol: float, strict: bool) -> Optional[dict]:
    """Compare the top-k of ours and the official on the same video and weights.

    The top-k are compared sorted by score: the k largest scores are a continuous function of
    the logits, unlike their order among near-ties (the official ``topk`` is also unsorted).

    Args:
        ours, official (dict): inference results with ``scores``, ``labels``, ``mask_areas``.
        atol (float): allowed absolute difference of the sorted scores.
        strict (bool): whether ``passed`` is judged (fp32) or left None (reduced precision).

    Returns:
        dict or None (a side failed): ``max_abs_score_diff``, ``labels_match`` (same label
        multiset), ``max_rel_mask_area_diff`` (entries of equal rank and label), ``passed``.
    """
    if "scores" not in ours or "scores" not in official:
        return None
    ranked = [sorted(zip(r["scores"], r["labels"], r["mask_areas"]), reverse=True)
              for r in (ours, official)]  # fmt: skip
    if len(ranked[0]) != len(ranked[1]) or not ranked[0]:
        return {"passed": False, "reason": f"top-k sizes {len(ranked[0])} and {len(ranked[1])}"}
    diff = max(abs(a[0] - b[0]) for a, b in zip(*ranked))
    area_diffs = [abs(a[2] - b[2]) / max(a[2], b[2], 1) for a, b in zip(*ranked) if a[1] == b[1]]
    return {
        "max_abs_score_diff": diff,
        "labels_match": Counter(ours["labels"]) == Counter(official["labels"]),
        "max_rel_mask_area_diff": max(area_diffs) if area_diffs else None,
        "passed": diff <= atol if strict else None,
    }


def run_benchmarks(args: argparse.Namespace, official: dict, tmp: str) -> List[dict]:
    """All settings; each row holds ours, the official and the ratios."""
    backbones = set(args.train_backbones if "training" in args.benchmarks else [])
    if "inference" in args.benchmarks:
        backbones.add(INFERENCE_BACKBONE)
    weights, weight_errors = {}, {}
    for backbone in sorted(backbones):
        weights[backbone] = os.path.join(tmp, f"weights_{backbone}.pt")
        made = run_child(args, "weights", "ours", backbone, "none", weights[backbone], official)
        if "error" in made:
            weight_errors[backbone] = {"error": f"building the weights: {made['error']}"}
            print(f"weights {backbone}: {weight_errors[backbone]['error']}", flush=True)
    settings = []
    if "inference" in args.benchmarks:
        settings += [("inference", INFERENCE_BACKBONE, amp) for amp in args.infer_amp]
    if "training" in args.benchmarks:
        settings += [("training", b, amp) for b in args.train_backbones for amp in args.train_amp]
    rows = []
    for stage, backbone, amp in settings:
        row = {"benchmark": stage, "backbone": backbone, "amp": amp}
        for impl in ("ours", "official"):
            if impl in args.impls:
                row[impl] = weight_errors.get(backbone) or run_child(
                    args, stage, impl, backbone, amp, weights[backbone], official
                )
                print(f"{stage} {backbone} {amp} {impl}: {_summary(row[impl])}", flush=True)
        _add_comparison(args, row)
        rows.append(row)
    return rows


def _summary(result: dict) -> str:
    if "error" in result:
        return f"failed: {result['error']}"
    time_text = (f"{result['ms_per_frame']:.1f} ms/frame" if "ms_per_frame" in result
                 else f"{result['s_per_step']:.3f} s/step")  # fmt: skip
    return f"{time_text}, peak {result['peak_mb']:.0f} MB"


def _add_comparison(args: argparse.Namespace, row: dict) -> None:
    ours, official = row.get("ours", {}), row.get("official", {})
    time_key = "ms_per_frame" if row["benchmark"] == "inference" else "s_per_step"
    row["time_ratio"] = ratio(ours, official, time_key)
    row["memory_ratio"] = ratio(ours, official, "peak_mb")
    if row["benchmark"] == "inference":
        row["parity"] = parity(ours, official, args.parity_atol, strict=row["amp"] == "none")
    elif ours.get("losses") and official.get("losses"):
        # Informational: same weights, batch and seed, so the first step's summed losses are
        # close (the losses sample points at random: equal only if both draw alike).
        first, reference = ours["losses"][0], official["losses"][0]
        row["first_loss_rel_diff"] = abs(first - reference) / max(abs(reference), 1e-12)


def _notes(row: dict, device: str) -> str:
    notes = []
    for impl in ("ours", "official"):
        result = row.get(impl, {})
        if "error" in result:
            notes.append(f"{impl} failed: {result['error'][:TABLE_ERROR_CHARS]}")
        if device == "cuda" and result.get("official_deform_attn_pytorch_calls"):
            notes.append("official fell back to its PyTorch deform-attn")
        if result.get("official_oom_cpu_retries"):
            notes.append("official re-ran on the CPU after OOM")
        if device == "cuda" and result.get("ours_cuda_kernels") is False:
            notes.append("ours without CUDA kernels")
    if row.get("first_loss_rel_diff") is not None:
        notes.append(f"first-step loss rel. diff {row['first_loss_rel_diff']:.1e}")
    check = row.get("parity")
    if check and "max_abs_score_diff" in check:
        verdict = {True: "ok", False: "MISMATCH", None: "info"}[check["passed"]]
        notes.append(f"top-10 scores max|diff| {check['max_abs_score_diff']:.1e} {verdict}")
    elif check:
        notes.append(f"parity failed: {check['reason']}")
    return "; ".join(notes)


def _cell(result: dict, key: str, digits: int) -> str:
    return f"{result[key]:.{digits}f}" if key in result else "failed" if "error" in result else "-"


def format_table(rows: List[dict], device: str) -> str:
    """The rows as a GitHub-style table (ratios ours / official; below 1: ours is better)."""
    from tabulate import tabulate

    header = ["benchmark", "backbone", "amp", "ours", "official", "time ratio",
              "ours peak MB", "official peak MB", "memory ratio", "notes"]  # fmt: skip
    table = []
    for row in rows:
        ours, official = row.get("ours", {}), row.get("official", {})
        key, digits, unit = (("ms_per_frame", 1, "ms/frame") if row["benchmark"] == "inference"
                             else ("s_per_step", 3, "s/step"))  # fmt: skip
        table.append([
            f"{row['benchmark']} ({unit})", row["backbone"], row["amp"],
            _cell(ours, key, digits), _cell(official, key, digits),
            "-" if row["time_ratio"] is None else f"{row['time_ratio']:.2f}",
            _cell(ours, "peak_mb", 0), _cell(official, "peak_mb", 0),
            "-" if row["memory_ratio"] is None else f"{row['memory_ratio']:.2f}",
            _notes(row, device),
        ])  # fmt: skip
    return tabulate(table, headers=header, tablefmt="github", disable_numparse=True)


def parity_summary(rows: List[dict]) -> Optional[bool]:
    """Whether every judged (fp32) parity check passed; None if none was judged."""
    verdicts = [
        row["parity"]["passed"]
        for row in rows
        if row.get("parity") and row["parity"].get("passed") is not None
    ]
    return all(verdicts) if verdicts else None


def _first_info(rows: List[dict], key: str) -> str:
    for row in rows:
        for impl in ("ours", "official"):
            if key in row.get(impl, {}):
                return str(row[impl][key])
    return "?"


def print_report(args: argparse.Namespace, rows: List[dict], official: dict) -> None:
    passed = parity_summary(rows)
    verdict = {True: "passed", False: "FAILED", None: "not run"}[passed]
    print(
        f"\nparity (fp32 top-10 scores within {args.parity_atol:g}): {verdict}\n"
        f"device: {_first_info(rows, 'device_name')}, torch {_first_info(rows, 'torch')}; "
        f"inference T={args.frames} at {args.height}x{args.width}; training "
        f"{args.train_videos} videos x {args.train_frames} frames at {args.height}x{args.width}; "
        f"median of {args.iters} after {args.warmup} warm-up; official op: {official['op']}; "
        "ratios: ours / official (below 1: ours is faster / smaller)\n"
    )
    print(format_table(rows, args.device), flush=True)


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
    parser.add_argument("--frames", type=int, default=36, help="inference: frames of the video")
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--infer-amp", type=str, nargs="+", default=["none", "bf16"],
                        choices=AMP_CHOICES)  # fmt: skip
    parser.add_argument("--train-backbones", type=str, nargs="+", default=["R50", "swin_tiny"],
                        choices=sorted(OFFICIAL_CONFIGS))  # fmt: skip
    parser.add_argument("--train-amp", type=str, nargs="+", default=["none", "fp16", "bf16"],
                        choices=AMP_CHOICES)  # fmt: skip
    parser.add_argument("--train-videos", type=int, default=2, help="training: videos per batch")
    parser.add_argument("--train-frames", type=int, default=2, help="training: frames per video")
    parser.add_argument("--instances", type=int, default=3, help="training: instances per video")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before the timed ones")
    parser.add_argument("--iters", type=int, default=10, help="timed runs (the median is kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parity-atol", type=float, default=1e-4,
                        help="fp32: allowed difference of the top-10 scores")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per setting")
    parser.add_argument("--json", type=str, default="", help="also write all figures here")
    # Internal: run one setting (used by the parent process).
    hidden = {"help": argparse.SUPPRESS}
    parser.add_argument("--stage", type=str, default=None, choices=sorted(CHILD_STAGES), **hidden)
    parser.add_argument("--impl", type=str, default="ours", **hidden)
    parser.add_argument("--backbone", type=str, default=INFERENCE_BACKBONE, **hidden)
    parser.add_argument("--amp", type=str, default="none", **hidden)
    parser.add_argument("--weights", type=str, default="", **hidden)
    parser.add_argument("--official-root", type=str, default="", **hidden)
    args = parser.parse_args(argv)
    if args.stage is None and "official" in args.impls and not args.official_src:
        parser.error("--official-src is required to run the official implementation")
    if min(args.iters, args.frames, args.train_videos, args.train_frames, args.instances) < 1:
        parser.error("--iters, --frames, --train-videos, --train-frames, --instances must be >= 1")
    return args


def main(argv=None) -> int:
    """Run the benchmark; the exit code is 1 when the fp32 parity check failed, else 0."""
    args = parse_args(argv)
    if args.stage is not None:
        print(json.dumps(CHILD_STAGES[args.stage](args)))
        return 0
    official = resolve_official(args)
    if official["error"]:
        print(official["error"], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_benchmarks(args, official, tmp)
    print_report(args, rows, official)
    if args.json:
        report = {
            "settings": {k: v for k, v in vars(args).items() if k not in HIDDEN_ARGS},
            "official": dict(
                official, patches=[{"path": p.path, "why": p.why} for p in OFFICIAL_PATCHES]
            ),
            "parity_passed": parity_summary(rows),
            "rows": rows,
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if parity_summary(rows) is False else 0


if __name__ == "__main__":
    sys.exit(main())

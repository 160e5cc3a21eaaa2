"""What one child process of the benchmark against the official code measures (one setting:
stage, implementation, backbone, mode), returned as a JSON-able dict.

- ``weights``: build ours with ``--seed`` and save its ``state_dict`` (shared by every child);
- ``inference``: the public path as a user calls it, ``model([{"image": frames, "height": H,
  "width": W}])`` in eval mode: median ms per frame over ``--iters`` runs after ``--warmup`` runs
  (a compiled mode gets at least one: the compilation), its top-k, and for ours in fp32 the FLOPs of
  the call (:func:`benchmarks.flops.count_flops`);
- ``training``: one step (forward, loss, backward, AdamW step; fp16 with a GradScaler as
  detectron2's AMPTrainer does) on B videos x T frames with synthetic instances.
"""

import argparse
import statistics
import time
from typing import Callable, Dict, List, Tuple

from benchmarks.common import peak_memory_mb, synchronize
from benchmarks.modes import amp_of, apply_mode, is_compiled_mode
from benchmarks.vs_official.inputs import inference_video, training_batch
from benchmarks.vs_official.models import build_ours, load_model

# SOLVER.BASE_LR and SOLVER.WEIGHT_DECAY of the official configs (AdamW).
BASE_LR = 1e-4
WEIGHT_DECAY = 0.05


def timed_calls(fn: Callable, args: argparse.Namespace, warmup: int) -> Tuple[List[float], list]:
    """Run ``fn`` ``warmup`` times, then ``--iters`` times timed (synchronised around each).

    The peak-memory statistics are reset before the warm-up (after the model is built).

    Returns:
        tuple: the seconds of the warm-up calls and of the timed calls, and the timed results.
    """
    import torch

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def timed():
        synchronize(device)
        start = time.perf_counter()
        result = fn()
        synchronize(device)
        return time.perf_counter() - start, result

    warm = [timed()[0] for _ in range(warmup)]
    seconds, results = zip(*(timed() for _ in range(args.iters)))
    return warm, list(seconds), list(results)


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
    """Time the public inference path on one random video in ``--mode``; keep the last result's
    top-k; count the FLOPs of ours in fp32."""
    import torch

    model, diagnostics = load_model(args, args.backbone)
    model.eval()
    video = inference_video(args)
    precision = apply_mode(model, args.mode, torch.device(args.device))

    def forward():
        with torch.no_grad(), precision():
            return model([video])

    warmup = max(args.warmup, 1) if is_compiled_mode(args.mode) else args.warmup
    warm, seconds, results = timed_calls(forward, args, warmup)
    result = dict(
        _run_info(args, diagnostics),
        ms_per_frame=1000 * statistics.median(seconds) / args.frames,
        seconds=seconds,
        first_call_s=warm[0] if warm else None,
        scores=[float(s) for s in results[-1]["pred_scores"]],
        labels=[int(label) for label in results[-1]["pred_labels"]],
        mask_areas=[int(mask.sum()) for mask in results[-1]["pred_masks"]],
    )
    if args.impl == "ours" and args.mode == "fp32" and args.flops:
        from benchmarks.flops import count_flops

        flops = count_flops(forward)
        result["flops_per_video"] = flops["total"]
        result["deform_attn_flops"] = flops["deform_attn"]
    return result


def run_training(args: argparse.Namespace) -> dict:
    """Time training steps on a synthetic batch: forward, summed losses, backward, AdamW step."""
    import torch

    model, diagnostics = load_model(args, args.backbone)
    model.train()
    batch = training_batch(args)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=BASE_LR, weight_decay=WEIGHT_DECAY)
    amp = amp_of(args.mode)
    precision = apply_mode(model, args.mode, torch.device(args.device))
    # As detectron2's AMPTrainer: loss scaling for fp16 only.
    scaler = torch.amp.GradScaler(torch.device(args.device).type, enabled=amp == "fp16")

    def step():
        with precision():
            losses = model(batch)
            total = sum(losses.values())
        optimizer.zero_grad()
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        return total.detach()

    torch.manual_seed(args.seed)  # drop path and the losses' point sampling
    _, seconds, totals = timed_calls(step, args, args.warmup)
    return dict(
        _run_info(args, diagnostics),
        s_per_step=statistics.median(seconds),
        seconds=seconds,
        losses=[float(total) for total in totals],
    )


CHILD_STAGES = {"weights": run_weights, "inference": run_inference, "training": run_training}

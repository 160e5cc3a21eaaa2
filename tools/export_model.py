#!/usr/bin/env python
"""Export the network of one window of T frames to ONNX or ``torch.export``; check and time it.

The exported network takes ``frames`` (T, 3, H, W) float32 RGB 0..255 (any T from 1 to 1,024,
whatever ``--frames`` the example window has; H x W fixed at export) and returns ``pred_logits``
(Q, K+1), ``pred_masks`` (Q, T, H/4, W/4) rounded up to the padding, and ``pred_embeds`` (Q, C):
what windowed inference consumes (``video_mask2former.export``). After writing the file it runs
it on a random test window of ``--frames`` frames and prints the largest difference from
PyTorch; ``--benchmark-iters N`` also times both (ms/frame, on the CPU, median of N).

The ONNX exporter's progress lines and its notices that need no action are hidden
(``--verbose`` shows them; its errors and other warnings always show). A missing or unreadable
weights file, or weights that do not fit the model, end the script with one line
``export_model.py: error: ...`` (exit status 1); arguments that cannot be used, with exit status 2.

An ONNX file carries the model's number of classes, size divisibility and pixel mean / std in its
metadata (``video_mask2former.export.METADATA_KEYS``), checked when the demo or
``OnnxWindowPredictor`` opens it. The arguments and the output's folder are checked before the
model is built; the file is written under a temporary name beside ``--output`` and renamed.

The model comes from a detectron2 config (``--config-file``, plus ``KEY VALUE`` overrides such as
``MODEL.WEIGHTS model_final.pkl``; needs detectron2), or without detectron2 from ``--backbone``,
``--num-classes`` and ``--weights``.

Examples:
    python tools/export_model.py \\
        --config-file configs/youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml \\
        --format onnx --frames 10 --output r50_w10.onnx MODEL.WEIGHTS model_final_34112b.pkl
    python tools/export_model.py --backbone R50 --num-classes 40 --weights model_final_34112b.pkl \\
        --format torch-export --frames 10 --output r50_w10.pt2
"""

import argparse
import os
import statistics
import sys
import time
import uuid

import torch

from video_mask2former.checkpoint import CheckpointMismatchError, is_url
from video_mask2former.export import (
    OnnxWindowPredictor,
    WindowNetwork,
    check_example_shape,
    export_onnx,
    export_program,
)
from video_mask2former.file_io import check_writable

FORMATS = ("onnx", "torch-export")
# Exit status of an input that cannot be used (the weights, the config); 2 is argparse's usage.
EXIT_BAD_INPUT = 1


class UsageError(ValueError):
    """Arguments that cannot be used together (exit status 2)."""


def check_weights_argument(path: str) -> None:
    """Raise ``FileNotFoundError`` when ``--weights`` is a local path that does not exist (before
    the model is built)."""
    if path and not is_url(path) and not os.path.exists(path):
        raise FileNotFoundError(
            f"--weights {path} does not exist: give an existing .pth/.pkl file or a URL"
        )


def build_model(args: argparse.Namespace) -> torch.nn.Module:
    """The model in eval mode on the CPU, with its weights (for inference: every key must fit).

    Raises:
        UsageError: ``--config-file`` without detectron2, or overrides without it.
        FileNotFoundError, CheckpointFileError, CheckpointMismatchError: the weights are missing,
            not a checkpoint, or do not fit the model.
    """
    if args.config_file:
        try:
            from video_mask2former.d2 import build_inference_model as build_from_config
        except ImportError:
            raise UsageError(
                "--config-file needs detectron2; without it use --backbone / --weights"
            ) from None
        from video_mask2former.d2.config import get_video_cfg

        cfg = get_video_cfg(args.config_file, args.opts)
        cfg.MODEL.DEVICE = "cpu"
        if not cfg.MODEL.WEIGHTS:
            print("MODEL.WEIGHTS is empty: exporting random weights", file=sys.stderr)
        return build_from_config(cfg, random_weights=True)
    if args.opts:
        raise UsageError(f"KEY VALUE overrides {args.opts} need --config-file")
    check_weights_argument(args.weights)
    from video_mask2former.build import build_inference_model

    if not args.weights:
        print("no --weights: exporting random weights", file=sys.stderr)
    return build_inference_model(args.backbone, args.weights, num_classes=args.num_classes)


def test_frames(args: argparse.Namespace, num_frames: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(args.seed)
    frames = torch.randint(0, 256, (num_frames, 3, args.height, args.width), generator=generator)
    return frames.float()


def save_program(program: "torch.export.ExportedProgram", path: str) -> None:
    """``torch.export.save`` under a temporary name beside ``path``, then renamed."""
    folder, name = os.path.split(os.path.abspath(path))
    tmp_path = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        torch.export.save(program, tmp_path)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def median_ms_per_frame(fn, frames: torch.Tensor, iters: int) -> float:
    fn(frames)  # warm-up
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn(frames)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3 / frames.shape[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", type=str, default=None, help="detectron2 YAML config")
    parser.add_argument("--backbone", type=str, default="R50", help="without --config-file")
    parser.add_argument("--num-classes", type=int, default=40, help="without --config-file")
    parser.add_argument("--weights", type=str, default=None, help="without --config-file")
    parser.add_argument("--format", type=str, required=True, choices=FORMATS)
    parser.add_argument(
        "--frames", type=int, default=10, help="T of the example and test windows (1..1024)"
    )
    parser.add_argument("--height", type=int, default=360, help="frame height (fixed at export)")
    parser.add_argument("--width", type=int, default=640, help="frame width (fixed at export)")
    parser.add_argument("--output", type=str, required=True, help="the file to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test window")
    parser.add_argument(
        "--benchmark-iters", type=int, default=0, help="also time PyTorch and the export (CPU)"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show the exporter's progress lines and all its notices (default: only its errors "
        "and the warnings that may need action)",
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args(argv)
    try:
        check_example_shape(args.frames, args.height, args.width)
        check_writable(args.output)
    except (OSError, ValueError) as e:
        parser.error(str(e))
    if args.benchmark_iters < 0:
        parser.error(f"--benchmark-iters must be >= 0, got {args.benchmark_iters}")

    try:
        model = build_model(args)
    except UsageError as e:
        parser.error(str(e))
    except (OSError, ValueError, CheckpointMismatchError) as e:  # FileNotFoundError, ...
        # The weights or the config cannot be used: the message says which and why.
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    frames = test_frames(args, args.frames)
    network = WindowNetwork(model).eval()
    start = time.perf_counter()
    if args.format == "onnx":
        export_onnx(model, frames, args.output, verbose=args.verbose)
        predictor = OnnxWindowPredictor(
            args.output,
            size_divisibility=model.size_divisibility,
            num_classes=model.sem_seg_head.num_classes,
        )

        def run_export(x):
            out = predictor(list(x))
            return out.pred_logits, out.pred_masks, out.pred_embeds

    else:
        program = export_program(model, frames, verbose=args.verbose)
        save_program(program, args.output)
        exported = torch.export.load(args.output).module()

        def run_export(x):
            with torch.no_grad():
                return exported(x)

    print(f"wrote {args.output} ({args.format}) in {time.perf_counter() - start:.1f} s")

    def run_pytorch(x):
        with torch.no_grad():
            return network(x)

    check = test_frames(args, args.frames)
    names = ("pred_logits", "pred_masks", "pred_embeds")
    worst = 0.0
    for name, got, expected in zip(names, run_export(check), run_pytorch(check)):
        diff = (got - expected).abs().max().item()
        worst = max(worst, diff)
        print(f"{name}: shape {tuple(got.shape)}, max abs difference from PyTorch {diff:.2e}")
    if args.benchmark_iters > 0:
        torch_ms = median_ms_per_frame(run_pytorch, check, args.benchmark_iters)
        export_ms = median_ms_per_frame(run_export, check, args.benchmark_iters)
        print(
            f"CPU ({torch.get_num_threads()} threads), {args.height}x{args.width}, "
            f"T={args.frames}: PyTorch {torch_ms:.0f} ms/frame, {args.format} {export_ms:.0f} "
            f"ms/frame ({torch_ms / export_ms:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

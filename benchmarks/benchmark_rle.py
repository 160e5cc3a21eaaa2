#!/usr/bin/env python
"""Benchmark RLE encoding of binary masks: pycocotools on the host vs run lengths on the device.

Shapes: N masks (one frame of Q=100 query maps by default), H x W the mask size.

- ``host``: :func:`video_mask2former.structures.encode_masks` on CPU masks, i.e. the (N, H, W)
  masks copied to the host (timed, for device masks) and encoded by pycocotools.
- ``runs``: :func:`video_mask2former.structures.encode_masks_by_runs` on the device's masks: run
  lengths computed with torch ops there, only they copied to the host and compressed there.

Both give identical RLEs (checked). Masks are random, of three kinds:

- ``object``: one filled ellipse per mask, like a trained model's instance mask (few runs).
- ``smooth``: a random logit field on a coarse grid, upsampled bilinearly and thresholded: many
  blobs over half the frame (more runs than a real mask).
- ``noisy``: independent pixels, half foreground (the worst case; random weights come close).

Example:
    python -m benchmarks.benchmark_rle
    python -m benchmarks.benchmark_rle --device cuda --height 720 --width 1280
"""

import argparse
import sys

import torch
from torch.nn import functional as F

from benchmarks.common import best_ms, table
from video_mask2former.structures import encode_masks, encode_masks_by_runs, rle_counts

KINDS = ("object", "smooth", "noisy")
# Cell of the coarse grid of the "smooth" masks, pixels (blobs of about this size).
SMOOTH_CELL = 32
# Semi-axes of the "object" ellipses, as fractions of the frame size (drawn uniformly).
OBJECT_AXES = (0.05, 0.3)


def random_masks(kind: str, num_masks: int, height: int, width: int, seed: int) -> torch.Tensor:
    """(N, H, W) bool CPU masks of one of :data:`KINDS`."""
    generator = torch.Generator().manual_seed(seed)
    if kind == "noisy":
        return torch.rand(num_masks, height, width, generator=generator) > 0.5
    if kind == "smooth":
        grid = (max(1, height // SMOOTH_CELL), max(1, width // SMOOTH_CELL))
        field = torch.randn(num_masks, 1, *grid, generator=generator)
        return F.interpolate(field, size=(height, width), mode="bilinear")[:, 0] > 0
    size = torch.tensor([height, width], dtype=torch.float32)
    centers = torch.rand(num_masks, 2, generator=generator) * size  # (N, 2) y, x
    low, high = OBJECT_AXES
    axes = (low + (high - low) * torch.rand(num_masks, 2, generator=generator)) * size
    y = torch.arange(height, dtype=torch.float32)[None, :, None]
    x = torch.arange(width, dtype=torch.float32)[None, None, :]
    dy = (y - centers[:, 0, None, None]) / axes[:, 0, None, None]
    dx = (x - centers[:, 1, None, None]) / axes[:, 1, None, None]
    return dy**2 + dx**2 <= 1


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--maps", type=int, default=100, help="N, masks encoded per call")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--device", type=str, default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the best is kept")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    print(
        f"{args.maps} masks of {args.height}x{args.width} on {args.device}, "
        f"best of {args.repeats}, ms per call"
    )
    rows = []
    for kind in args.kinds:
        masks = random_masks(kind, args.maps, args.height, args.width, args.seed).to(device)
        host_rles = encode_masks(masks.cpu())
        if encode_masks_by_runs(masks) != host_rles:
            raise AssertionError(f"benchmark_rle: the two encodings differ on {kind} masks")
        runs = rle_counts(masks)[1].double().mean().item()
        host_ms = best_ms(lambda: encode_masks(masks.cpu()), device, args.repeats)
        runs_ms = best_ms(lambda: encode_masks_by_runs(masks), device, args.repeats)
        rows.append([kind, runs, host_ms, runs_ms, host_ms / runs_ms])
        print(f"{kind} done", file=sys.stderr, flush=True)
    headers = ["masks", "runs per mask", "host (pycocotools) ms", "runs (device) ms", "speed-up"]
    print(table(rows, headers=headers, floatfmt=("", ".0f", ".1f", ".1f", ".2f")))


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Time the YouTube-VIS evaluation and annotation loading at real dataset sizes (figures only).

    python -m benchmarks.benchmark_eval [--videos 300 --frames 30 --height 720 --width 1280]

1. Evaluation: ground truth from the synthetic generator (in memory), 10 predictions per video
   (ground-truth tracks shifted by a few pixels + false positives taken from another video), the
   size of YouTube-VIS 2019 val by default. Also times the video-IoU step both ways on a few
   videos: one ``pycocotools.mask.iou`` call per frame (this project) vs. ``merge`` + ``area``
   per pair and frame (the official code's way).
2. Loading: a 2021-train-sized annotation file (uncompressed RLE, as released) written to a
   temporary folder, read with ``video_mask2former.data.ytvis.load_ytvis_dataset`` and with
   the metric's ``YTVISGroundTruth``.
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np
import pycocotools.mask as mask_util

from video_mask2former.data.synthetic import generate_synthetic_ytvis
from video_mask2former.data.ytvis import load_ytvis_dataset
from video_mask2former.evaluation import (
    YTVISGroundTruth,
    evaluate_ytvis,
    evaluate_ytvis_detailed,
)
from video_mask2former.evaluation.ytvis_metric import results_to_tracks, video_iou


def _shifted_rle(seg: dict, shift: int) -> dict:
    """Compressed RLE of an uncompressed one moved by ``shift`` pixels in column-major order
    (``dy + dx * H`` moves the mask dy rows down and dx columns right, wrapping at column ends)."""
    counts = list(seg["counts"])
    trailing_zeros = counts[-1] if len(counts) % 2 == 1 else 0
    shift = int(np.clip(shift, -counts[0], trailing_zeros))
    counts[0] += shift
    counts[-1] -= shift if len(counts) % 2 == 1 else 0
    h, w = seg["size"]
    rle = mask_util.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    return {"size": [h, w], "counts": rle["counts"].decode("utf-8")}


def make_predictions(dataset, *, per_video: int, max_shift: int, seed: int):
    """``per_video`` results per video: shifted ground-truth tracks, then false positives (tracks
    of another video with a random category). Ground truth must be uncompressed RLE."""
    rng = np.random.default_rng(seed)
    by_video = {}
    for ann in dataset["annotations"]:
        by_video.setdefault(ann["video_id"], []).append(ann)
    num_cats = len(dataset["categories"])
    results = []
    for video in dataset["videos"]:
        vid, height = video["id"], video["height"]
        tracks = [(a["category_id"], a) for a in by_video.get(vid, [])]
        others = by_video[list(by_video)[rng.integers(len(by_video))]]
        tracks += [(int(rng.integers(1, num_cats + 1)), a) for a in others]
        empty = {"size": [height, video["width"]], "counts": [height * video["width"]]}
        for n in range(per_video):
            cat, ann = tracks[n % len(tracks)]
            dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
            segs = [
                _shifted_rle(seg if seg is not None else empty, int(dy + dx * height))
                for seg in ann["segmentations"]
            ]
            results.append(
                {"video_id": vid, "category_id": cat, "score": float(rng.random()),
                 "segmentations": segs}
            )  # fmt: skip
    return results


def time_iou_methods(ground_truth, results, num_videos: int):
    """Seconds for the video IoU of ``num_videos`` videos: per-frame iou vs. per-pair merge."""
    vids = sorted(ground_truth.tracks)[:num_videos]
    subset = [r for r in results if r["video_id"] in set(vids)]
    predictions = results_to_tracks(subset, ground_truth)
    tic = time.perf_counter()
    fast = [video_iou(predictions[v], ground_truth.tracks[v]) for v in vids]
    t_fast = time.perf_counter() - tic

    tic = time.perf_counter()
    slow = []
    for v in vids:
        dts, gts = predictions[v], ground_truth.tracks[v]
        ious = np.zeros((len(dts), len(gts)))
        for i, j in np.ndindex(ious.shape):
            inter = union = 0.0
            for d, g in zip(dts.rles[i], gts.rles[j]):
                if d is not None and g is not None:
                    inter += mask_util.area(mask_util.merge([d, g], True))
                    union += mask_util.area(mask_util.merge([d, g], False))
                elif d is not None or g is not None:
                    union += mask_util.area(d if d is not None else g)
            ious[i, j] = inter / union if union > 0 else 0.0
        slow.append(ious)
    t_slow = time.perf_counter() - tic
    max_diff = max(float(np.abs(a - b).max()) if a.size else 0.0 for a, b in zip(fast, slow))
    return t_fast, t_slow, max_diff


def benchmark_eval(args):
    tic = time.perf_counter()
    dataset, _ = generate_synthetic_ytvis(
        num_videos=args.videos, num_frames=args.frames, height=args.height, width=args.width,
        seed=0, split="val", segmentation_format="uncompressed_rle",
    )  # fmt: skip
    results = make_predictions(dataset, per_video=args.per_video, max_shift=8, seed=1)
    print(
        f"built {len(dataset['videos'])} videos x {args.frames} frames at {args.height}x"
        f"{args.width}, {len(dataset['annotations'])} tracks, {len(results)} predictions "
        f"({time.perf_counter() - tic:.1f} s, not counted)"
    )
    tic = time.perf_counter()
    ground_truth = YTVISGroundTruth(dataset, source="synthetic")
    t_gt = time.perf_counter() - tic
    tic = time.perf_counter()
    stats = evaluate_ytvis(ground_truth, results)
    t_eval = time.perf_counter() - tic
    print(f"prepare ground truth: {t_gt:.2f} s")
    print(f"evaluate (validate + IoU + match + accumulate): {t_eval:.2f} s")
    tic = time.perf_counter()
    evaluate_ytvis_detailed(ground_truth, results, check_counts=False)
    print(
        f"evaluate without the RLE decode-check (the d2 evaluator's way): "
        f"{time.perf_counter() - tic:.2f} s"
    )
    print("  " + ", ".join(f"{k}={v:.3f}" for k, v in stats.items()))
    t_fast, t_slow, diff = time_iou_methods(ground_truth, results, args.iou_videos)
    print(
        f"video IoU on {args.iou_videos} videos: per-frame mask.iou {t_fast:.2f} s, "
        f"per-pair merge+area (official way) {t_slow:.2f} s, max |diff| {diff:.1e}"
    )


def benchmark_loading(args):
    dataset, _ = generate_synthetic_ytvis(
        num_videos=args.load_videos, num_frames=args.frames, height=args.height,
        width=args.width, seed=0, split="train", segmentation_format="uncompressed_rle",
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "train.json")
        with open(path, "w") as f:
            json.dump(dataset, f)
        size_mb = os.path.getsize(path) / 2**20
        del dataset
        tic = time.perf_counter()
        records, _ = load_ytvis_dataset(path, folder)
        t_load = time.perf_counter() - tic
        tic = time.perf_counter()
        YTVISGroundTruth.from_json(path)
        t_gt = time.perf_counter() - tic
    print(
        f"annotation file: {args.load_videos} videos x {args.frames} frames, {size_mb:.0f} MiB: "
        f"load_ytvis_dataset {t_load:.2f} s ({len(records)} records), "
        f"YTVISGroundTruth.from_json {t_gt:.2f} s"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=300, help="videos to evaluate (2019 val)")
    parser.add_argument("--frames", type=int, default=30, help="frames per video")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--per-video", type=int, default=10, help="predictions per video")
    parser.add_argument("--iou-videos", type=int, default=10, help="videos for the IoU timing")
    parser.add_argument("--load-videos", type=int, default=2985, help="videos (2021 train)")
    parser.add_argument("--skip-loading", action="store_true", help="only time the evaluation")
    args = parser.parse_args()
    benchmark_eval(args)
    if not args.skip_loading:
        benchmark_loading(args)


if __name__ == "__main__":
    main()

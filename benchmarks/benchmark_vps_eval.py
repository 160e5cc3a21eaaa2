#!/usr/bin/env python
"""Time VPQ scoring (tools/evaluate_vps.py's library call) against the VIPSeg reference script
``eval_vpq_vspw.py`` on the same synthetic VIPSeg-layout files, in one run.

    python -m benchmarks.benchmark_vps_eval --reference /path/to/eval_vpq_vspw.py \\
        [--reference-stq /path/to/eval_stq_vspw.py] [--videos 12 --frames 16 --height 360 \\
        --width 640] [--workers 2] [--keep DIR]

VIPSeg val's size (343 videos, ~25 frames each at 720p; hours for the reference):

    python -m benchmarks.benchmark_vps_eval --reference ... --videos 343 --frames 25 \\
        --height 720 --width 1280

The files: per video, stuff bands whose borders drift, things (boxes) that move, enter and
leave, a crowd box, void borders; the prediction is the ground truth with shifted boxes, jittered
borders, a track switch, a missed thing and a false positive, under new ids. The reference
scripts are not part of this project (VIPSeg-Dataset/VIPSeg-Dataset, ClipPanoFCN/; DVIS_Plus
has the same file): give their paths; a missing one is skipped with a message. Each side runs in
its own process with the same number of worker processes (the reference's --num_processes);
the figures are wall-clock seconds and the peak resident memory of the process and of its
largest worker. The VPQ means of both sides are printed so that the comparison is of equal
results (the reference writes 4 decimals).
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from benchmarks.common import module_command, run_json_child

WINDOW_SIZES = (1, 2, 4, 6, 8)  # the reference script's, fixed
NUM_THINGS, NUM_STUFF = 58, 66  # VIPSeg's category counts


def _id_rgb(ids: np.ndarray) -> np.ndarray:
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


def _video_frames(rng, frames: int, height: int, width: int):
    """Yield (gt ids, gt segments, pred ids, pred segments) per frame of one synthetic video."""
    stuff = rng.choice(np.arange(NUM_THINGS + 1, NUM_THINGS + NUM_STUFF + 1), 3, replace=False)
    borders = np.sort(rng.uniform(0.2, 0.8, 2))
    things = []
    for k in range(int(rng.integers(3, 8))):
        size = rng.uniform(0.08, 0.25, 2) * (height, width)
        things.append(
            dict(
                id=1000 + k,
                category=int(rng.integers(1, NUM_THINGS + 1)),
                start=rng.uniform(0, 1, 2) * (height, width),
                speed=rng.uniform(-0.02, 0.02, 2) * (height, width),
                size=size,
                alive=sorted(rng.integers(0, frames + 1, 2)),
            )
        )
    crowd = dict(id=999, category=int(rng.integers(1, NUM_THINGS + 1)))
    switch_at, missed = int(rng.integers(1, max(frames, 2))), int(rng.integers(len(things)))
    for t in range(frames):
        gt = np.zeros((height, width), np.int64)
        pred = np.zeros((height, width), np.int64)
        rows = (np.array(borders) + 0.01 * np.sin(t / 3)) * height
        jitter = rng.integers(-3, 4, 2)
        for k, sid in enumerate(stuff):
            top = 0 if k == 0 else int(rows[k - 1])
            bottom = height if k == 2 else int(rows[k])
            gt[top:bottom] = 1 + k
            pred[max(top + jitter[0] * (k > 0), 0) : bottom + jitter[1] * (k < 2)] = 101 + k
        gt_segments = {1 + k: (int(sid), 0) for k, sid in enumerate(stuff)}
        pred_segments = {101 + k: int(sid) for k, sid in enumerate(stuff)}
        gt[: height // 8, : width // 8] = crowd["id"]
        gt_segments[crowd["id"]] = (crowd["category"], 1)
        for k, thing in enumerate(things):
            if not thing["alive"][0] <= t < max(thing["alive"][1], thing["alive"][0] + 1):
                continue
            y, x = (thing["start"] + t * thing["speed"]) % (height, width)
            h, w = thing["size"]
            box = slice(int(y), int(y + h)), slice(int(x), int(x + w))
            gt[box] = thing["id"]
            gt_segments[thing["id"]] = (thing["category"], 0)
            if k == missed:
                continue
            dy, dx = rng.integers(-4, 5, 2)
            pid = 2000 + (k if t < switch_at or k > 1 else 1 - k)  # things 0 and 1 swap ids
            pred[max(int(y) + dy, 0) : int(y + h) + dy, max(int(x) + dx, 0) : int(x + w) + dx] = pid
            pred_segments[pid] = thing["category"]
        pred[-height // 6 :, -width // 6 :] = 3000  # a false positive
        pred_segments[3000] = int(rng.integers(1, NUM_THINGS + 1))
        gt[:, :4] = 0  # void border
        pred[:2] = 0
        gt_segments = {k: v for k, v in gt_segments.items() if (gt == k).any()}
        pred_segments = {k: v for k, v in pred_segments.items() if (pred == k).any()}
        yield gt, gt_segments, pred, pred_segments


def write_dataset(root: str, videos: int, frames: int, height: int, width: int, seed: int):
    """Write gt.json, gt/<video>/<frame>.png, submit/pred.json, submit/pan_pred/... (the
    reference's layout)."""
    rng = np.random.default_rng(seed)
    categories = [
        {"id": c, "name": f"c{c}", "isthing": int(c <= NUM_THINGS), "color": [0, 0, 0]}
        for c in range(1, NUM_THINGS + NUM_STUFF + 1)
    ]
    gt_json = {"videos": [], "annotations": [], "categories": categories}
    pred_json = {"annotations": []}
    for v in range(videos):
        video_id = f"{v:04d}_synthetic"
        gt_dir = os.path.join(root, "gt", video_id)
        pred_dir = os.path.join(root, "submit", "pan_pred", video_id)
        os.makedirs(gt_dir)
        os.makedirs(pred_dir)
        images, gt_frames, pred_frames = [], [], []
        for t, (gt, gs, pred, ps) in enumerate(_video_frames(rng, frames, height, width)):
            name = f"{t:08d}.png"
            Image.fromarray(_id_rgb(gt)).save(os.path.join(gt_dir, name))
            Image.fromarray(_id_rgb(pred)).save(os.path.join(pred_dir, name))
            images.append({"id": name[:-4], "file_name": name, "height": height, "width": width})
            gt_frames.append(
                {
                    "image_id": name[:-4],
                    "file_name": name,
                    "segments_info": [
                        {"id": k, "category_id": c, "iscrowd": crowd, "area": int((gt == k).sum())}
                        for k, (c, crowd) in gs.items()
                    ],
                }
            )
            pred_frames.append(
                {
                    "image_id": name[:-4],
                    "file_name": name,
                    "segments_info": [{"id": k, "category_id": c} for k, c in ps.items()],
                }
            )
        gt_json["videos"].append({"video_id": video_id, "images": images})
        gt_json["annotations"].append({"video_id": video_id, "annotations": gt_frames})
        pred_json["annotations"].append({"video_id": video_id, "annotations": pred_frames})
    with open(os.path.join(root, "gt.json"), "w") as f:
        json.dump(gt_json, f)
    with open(os.path.join(root, "submit", "pred.json"), "w") as f:
        json.dump(pred_json, f)


def _measure(mode: str, root: str, workers: int, script: str) -> dict:
    """Run in a child process: score ``root`` one way; return seconds, peak RSS and VPQ."""
    start = time.perf_counter()
    if mode in ("ours", "ours+stq"):
        from video_mask2former.evaluation.vps_eval import evaluate_vps

        start = time.perf_counter()  # the library is imported: time the scoring only
        imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        scores = evaluate_vps(
            os.path.join(root, "gt.json"),
            os.path.join(root, "gt"),
            os.path.join(root, "submit", "pred.json"),
            os.path.join(root, "submit", "pan_pred"),
            window_sizes=WINDOW_SIZES,
            workers=workers,
            with_stq=mode == "ours+stq",
        )
        values = {k: scores[k] for k in ("VPQ", "VPQ_thing", "VPQ_stuff", "STQ") if k in scores}
    else:
        argv = [sys.executable, script, "--submit_dir", os.path.join(root, "submit")]
        argv += ["--truth_dir", os.path.join(root, "gt")]
        argv += ["--pan_gt_json_file", os.path.join(root, "gt.json")]
        if mode == "reference":  # the STQ script has no pool
            argv += ["--num_processes", str(workers)]
        subprocess.run(
            argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root
        )
        values = _read_reference(os.path.join(root, "submit"), mode)
        imported = 0.0
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "rss_mib": own,
        "import_rss_mib": imported,
        "worker_rss_mib": children,
        "values": values,
    }


def _read_reference(submit: str, mode: str) -> dict:
    if mode == "reference":
        with open(os.path.join(submit, "vpq-final.txt")) as f:
            pairs = [line.strip().split(":") for line in f if ":" in line]
        names = {"vpq_all": "VPQ", "vpq_thing": "VPQ_thing", "vpq_stuff": "VPQ_stuff"}
        return {names[k]: float(v) for k, v in pairs if k in names}
    return {}


def _run_child(mode: str, root: str, workers: int, script: str = "") -> dict:
    command = module_command(__spec__.name if __spec__ else "benchmarks.benchmark_vps_eval")
    command += ["--measure", mode, "--root", root, "--workers", str(workers), "--script", script]
    return run_json_child(command, label=f"{mode} scoring", timeout=24 * 3600)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=str, default=None, help="eval_vpq_vspw.py")
    parser.add_argument("--reference-stq", type=str, default=None, help="eval_stq_vspw.py")
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--frames", type=int, default=16, help="frames per video")
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--workers", type=int, default=2, help="processes, both sides")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=str, default=None, help="write the files here and keep them")
    parser.add_argument("--measure", type=str, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=str, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--script", type=str, default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.frames < max(WINDOW_SIZES):
        parser.error(f"--frames must be at least {max(WINDOW_SIZES)} (the longest VPQ window)")
    return args


def _line(name: str, m: dict) -> str:
    values = ", ".join(f"{k} {v:.4f}" for k, v in m["values"].items())
    return (
        f"{name:<30} {m['seconds']:8.2f} s   peak RSS {m['rss_mib']:5.0f} MiB (after imports "
        f"{m['import_rss_mib']:4.0f}), largest child {m['worker_rss_mib']:4.0f} MiB   {values}"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.measure:
        print(json.dumps(_measure(args.measure, args.root, args.workers, args.script)))
        return 0
    root = args.keep or tempfile.mkdtemp(prefix="vps_bench_")
    try:
        start = time.perf_counter()
        write_dataset(root, args.videos, args.frames, args.height, args.width, args.seed)
        print(
            f"{args.videos} videos x {args.frames} frames at {args.height}x{args.width}, "
            f"written in {time.perf_counter() - start:.1f} s; {args.workers} worker processes; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        ours = _run_child("ours", root, args.workers)
        print(_line("this project, VPQ (5 windows)", ours))
        if args.reference and os.path.isfile(args.reference):
            reference = _run_child("reference", root, args.workers, os.path.abspath(args.reference))
            print(_line("reference eval_vpq_vspw.py", reference))
            print(f"VPQ speed-up: {reference['seconds'] / ours['seconds']:.1f}x")
        else:
            print(f"reference VPQ skipped: --reference {args.reference!r} is not a file")
        both = _run_child("ours+stq", root, args.workers)
        print(_line("this project, VPQ + STQ", both))
        if args.reference_stq and os.path.isfile(args.reference_stq):
            stq = _run_child(
                "reference-stq", root, args.workers, os.path.abspath(args.reference_stq)
            )
            print(_line("reference eval_stq_vspw.py", stq))
            if args.reference and os.path.isfile(args.reference):
                total = reference["seconds"] + stq["seconds"]
                print(f"VPQ + STQ speed-up: {total / both['seconds']:.1f}x")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

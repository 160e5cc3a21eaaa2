#!/usr/bin/env python
"""Does joint training with images help when videos are scarce? A synthetic-data experiment.

Writes a synthetic YouTube-VIS set with few training videos and a synthetic COCO-format image set
(same shapes and classes), then trains the quick CPU schedule with videos only and jointly with
the images (``*_joint_quick.yaml``), for several seeds, the same iterations each, and prints the
AP on the synthetic val split as mean +- std::

    python -m benchmarks.joint_training_experiment --out output/joint_experiment \\
        --train-videos 8 --images 256 --seeds 0 1 2 --iters 400

``--jobs 2 --threads 1`` trains two runs at a time with one thread each (the CPU load of one
default run, with less contention between threads on a small machine). Trailing ``KEY VALUE``
options apply to every run (e.g. smaller frames: ``--height 64 --width 80 INPUT.MIN_SIZE_TRAIN
"(48,56,64)" INPUT.PSEUDO.MIN_SIZE_TRAIN "(48,56,64)" INPUT.MIN_SIZE_TEST 64``).

Further joint variants (e.g. another ratio or a milder pseudo-video augmentation) are given as
``--variant NAME "KEY VALUE ..."`` (options added to the joint configuration). Every run's output
folder keeps its log and metrics; ``results.json`` and ``results.md`` hold the table.
"""

import argparse
import concurrent.futures
import json
import os
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Optional

import numpy as np

from benchmarks.common import ROOT, child_env, table

QUICK = os.path.join(ROOT, "configs", "quick_schedules")
VIDEO_CONFIG = os.path.join(QUICK, "video_maskformer2_R18_synthetic_quick.yaml")
JOINT_CONFIG = os.path.join(QUICK, "video_maskformer2_R18_synthetic_joint_quick.yaml")
# The learning rate drops 10x after this fraction of the iterations (as the quick schedule: 320
# of 400).
STEP_FRACTION = 0.8
# The metric read from metrics.json (written by the final evaluation).
AP_KEY = "segm/AP"


def write_datasets(root: str, args) -> None:
    """The synthetic video and image sets under the datasets root ``root`` (skipped if present)."""
    from video_mask2former.data.synthetic import write_synthetic_ytvis
    from video_mask2former.data.synthetic_images import write_synthetic_coco

    size = dict(height=args.height, width=args.width)
    if not os.path.isdir(os.path.join(root, "ytvis_synthetic")):
        write_synthetic_ytvis(
            os.path.join(root, "ytvis_synthetic"), num_train_videos=args.train_videos,
            num_val_videos=args.val_videos, num_frames=args.frames, seed=args.data_seed, **size,
        )  # fmt: skip
    if not os.path.isdir(os.path.join(root, "coco_synthetic")):
        write_synthetic_coco(os.path.join(root, "coco_synthetic"), num_images=args.images, **size)


def final_ap(output_dir: str) -> Optional[float]:
    """The AP of the run's final evaluation, or None when it has none."""
    path = os.path.join(output_dir, "metrics.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    values = [r[AP_KEY] for r in rows if AP_KEY in r]
    return float(values[-1]) if values else None


def train(config: str, opts: List[str], output_dir: str, root: str, args) -> Optional[float]:
    """One train_net_video.py run (training, then evaluation on ytvis_synthetic_val); its AP."""
    ap = final_ap(output_dir)
    if ap is not None:  # finished earlier: reuse (delete the folder to rerun)
        return ap
    steps = max(1, int(args.iters * STEP_FRACTION))
    cmd = [
        sys.executable, os.path.join(ROOT, "train_net_video.py"), "--config-file", config,
        "SOLVER.MAX_ITER", str(args.iters), "SOLVER.STEPS", f"({steps},)",
        "SOLVER.CHECKPOINT_PERIOD", str(args.iters), "OUTPUT_DIR", output_dir, *args.opts, *opts,
    ]  # fmt: skip
    env = dict(child_env(), DETECTRON2_DATASETS=root)
    if args.threads > 0:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "run.log"), "w") as log:
        proc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        print(f"  failed (exit {proc.returncode}): see {output_dir}/run.log", flush=True)
        return None
    return final_ap(output_dir)


def summarize(results: Dict[str, Dict[int, Optional[float]]]) -> str:
    rows = []
    for name, by_seed in results.items():
        aps = [v for v in by_seed.values() if v is not None]
        mean = f"{np.mean(aps):.1f} ± {np.std(aps, ddof=1) if len(aps) > 1 else 0.0:.1f}"
        seeds = ", ".join(f"{v:.1f}" if v is not None else "-" for v in by_seed.values())
        rows.append((name, len(aps), seeds, mean))
    return table(rows, headers=["run", "seeds", "AP per seed", "AP mean ± std"])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=str, default="output/joint_experiment", help="output folder")
    parser.add_argument("--train-videos", type=int, default=8, help="synthetic training videos")
    parser.add_argument("--val-videos", type=int, default=16, help="synthetic val videos")
    parser.add_argument("--frames", type=int, default=8, help="frames per synthetic video")
    parser.add_argument("--images", type=int, default=256, help="synthetic training images")
    parser.add_argument("--height", type=int, default=128, help="frame / image height")
    parser.add_argument("--width", type=int, default=160, help="frame / image width")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic videos")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--iters", type=int, default=400, help="training iterations per run")
    parser.add_argument(
        "--variant",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "OPTS"),
        help="a further joint run: a name and config options, e.g. ratio_1_3 "
        '"DATASETS.DATASET_RATIO [1.0,3.0]"',
    )
    parser.add_argument("--no-default-runs", action="store_true", help="only the --variant runs")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at the same time")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads per run (0: PyTorch's default)"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config options for every run")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = os.path.abspath(args.out)
    root = os.path.join(out, "datasets")
    write_datasets(root, args)
    runs = (
        [] if args.no_default_runs else [("videos", VIDEO_CONFIG, []), ("joint", JOINT_CONFIG, [])]
    )
    runs += [(name, JOINT_CONFIG, shlex.split(opts)) for name, opts in args.variant]
    results: Dict[str, Dict[int, Optional[float]]] = {name: {} for name, _, _ in runs}

    def run(seed, name, config, opts):
        start = time.time()
        output_dir = os.path.join(out, name, f"seed{seed}")
        ap = train(config, ["SEED", str(seed), *opts], output_dir, root, args)
        print(f"{name} seed {seed}: AP {ap} ({time.time() - start:.0f} s)", flush=True)
        return ap

    jobs = [(seed, *spec) for seed in args.seeds for spec in runs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        aps = list(pool.map(lambda job: run(*job), jobs))
    for (seed, name, _, _), ap in zip(jobs, aps):
        results[name][seed] = ap
    table = summarize(results)
    print(table)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "ap": results}, f, indent=1)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(table + "\n")


if __name__ == "__main__":
    main()

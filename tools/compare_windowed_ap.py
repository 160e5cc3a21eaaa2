#!/usr/bin/env python
"""AP of windowed against whole-video inference on synthetic videos longer than the window.

    python tools/compare_windowed_ap.py \
        --config-file configs/quick_schedules/video_maskformer2_R18_synthetic_quick.yaml \
        --weights output/quick_schedules/R18_synthetic/model_final.pth \
        --frames 32 --videos 16 --window-sizes 0 2 4 8

Writes a synthetic validation split of ``--videos`` videos of ``--frames`` frames (a fresh seed,
so none of them was trained on) and scores the model on it once per window size (0: the whole
video at once) with this project's YouTube-VIS metric. Figures, not assertions. Needs detectron2
(the model is built from a config).
"""

import argparse
import os
import tempfile
import time

import torch
from video_mask2former.d2 import build_inference_model
from video_mask2former.d2.config import get_video_cfg
from video_mask2former.d2.mapper import YTVISDatasetMapper
from video_mask2former.data.builtin_meta import metadata_for
from video_mask2former.data.synthetic import write_synthetic_ytvis
from video_mask2former.data.ytvis import load_ytvis_json
from video_mask2former.evaluation import evaluate_ytvis, video_predictions_to_results

# Printed columns of the metric.
COLUMNS = ("AP", "AP50", "AP75", "AR1", "AR10")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", type=str, required=True, metavar="FILE")
    parser.add_argument("--weights", type=str, required=True, help="trained .pth / .pkl")
    parser.add_argument("--frames", type=int, default=32, help="frames per synthetic video")
    parser.add_argument("--videos", type=int, default=16, help="synthetic validation videos")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the synthetic videos")
    parser.add_argument(
        "--window-sizes", type=int, nargs="+", default=[0, 2, 4, 8], help="0: whole video"
    )
    parser.add_argument("--device", type=str, default="cpu")
    return parser


def build(args):
    cfg = get_video_cfg(args.config_file)
    cfg.MODEL.DEVICE = args.device
    cfg.MODEL.WEIGHTS = args.weights
    cfg.freeze()
    return cfg, build_inference_model(cfg)


def main() -> None:
    args = get_parser().parse_args()
    cfg, model = build(args)
    mapper = YTVISDatasetMapper(cfg, is_train=False)
    id_map = metadata_for("ytvis_synthetic")["thing_dataset_id_to_contiguous_id"]
    contiguous_to_dataset = {c: d for d, c in id_map.items()}
    with tempfile.TemporaryDirectory() as root:
        splits = write_synthetic_ytvis(
            root,
            num_train_videos=1,
            num_val_videos=args.videos,
            num_frames=args.frames,
            seed=args.seed,
        )
        image_root, json_file = splits["val"]
        records = load_ytvis_json(json_file, image_root, dataset_id_to_contiguous_id=id_map)
        inputs = [mapper(record) for record in records]
        print(f"{len(inputs)} synthetic videos of {args.frames} frames ({os.path.basename(root)})")
        print("| window | " + " | ".join(COLUMNS) + " | s/video |")
        print("|---" * (len(COLUMNS) + 2) + "|")
        for window_size in args.window_sizes:
            model.window_size = window_size
            results, start = [], time.perf_counter()
            with torch.no_grad():
                for video in inputs:
                    prediction = model([video])
                    results += video_predictions_to_results(
                        video["video_id"],
                        prediction,
                        contiguous_to_dataset_id=contiguous_to_dataset,
                    )
            seconds = (time.perf_counter() - start) / len(inputs)
            stats = evaluate_ytvis(json_file, results)
            name = "whole" if window_size == 0 else str(window_size)
            cells = " | ".join(f"{100 * stats[k]:.1f}" for k in COLUMNS)
            print(f"| {name} | {cells} | {seconds:.2f} |")


if __name__ == "__main__":
    main()

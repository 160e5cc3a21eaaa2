"""AP of the inference modes on synthetic videos: whole video, windowed, online (streaming).

    python -m benchmarks.benchmark_inference_ap \\
        --config-file configs/quick_schedules/video_maskformer2_R18_synthetic_quick.yaml \\
        --weights output/quick_schedules/R18_synthetic/model_final.pth --seeds 1 2 3 4 5

Per seed, a YouTube-VIS 2022-layout synthetic validation split (``--short-videos`` videos of the
training clips' length and ``--long-videos`` longer ones, a fresh seed so none was trained on) is
scored apart (AP_S, AP_L: :mod:`video_mask2former.evaluation.ytvis2022`) for: whole-video
inference; windowed inference with W frames; and online inference with W frames, with the
default stream policy and with a score threshold of 0. The windowed and online rows of one W come
from the same network outputs (recorded once, replayed), so they differ only in the track
management. Figures, not assertions; the model comes from a config (needs detectron2).
(Speed and memory of the same modes: :mod:`benchmarks.benchmark_inference`.)
"""

import argparse
import statistics
import sys
import time
from typing import Callable, Dict, List

import torch

from benchmarks.common import build_model, table
from video_mask2former.inference.streaming import StreamPolicy, VideoStream, collect_video_result
from video_mask2former.inference.windowed import windowed_inference

# Window sizes compared: per-frame online (MinVIS), short and longer semi-online windows.
DEFAULT_WINDOW_SIZES = (1, 2, 5)
# Synthetic validation videos per seed: of the training clips' length (8) and longer (4x).
DEFAULT_SHORT_VIDEOS, DEFAULT_SHORT_FRAMES = 8, 8
DEFAULT_LONG_VIDEOS, DEFAULT_LONG_FRAMES = 8, 32
DEFAULT_SEEDS = (101, 102, 103)
PERCENT = 100.0


class Recorder:
    """Wraps ``predict_window``, keeping every window's outputs to replay them."""

    def __init__(self, predict_window: Callable):
        self.predict_window = predict_window
        self.windows = []

    def __call__(self, frames):
        output = self.predict_window(frames)
        self.windows.append(output)
        return output

    def replay(self) -> Callable:
        outputs = iter(self.windows)
        return lambda frames: next(outputs)


@torch.no_grad()  # as users run inference (the model's fast CPU path needs it)
def predictions_of_video(model, tensors, size, window_sizes, topk) -> Dict[str, dict]:
    """Every mode's prediction for one video (see the module docstring)."""
    predictions = {}
    video = {"image": tensors, "height": size[0], "width": size[1]}
    model.window_size = 0
    predictions["whole video"] = model([video])
    policies = {
        "online": StreamPolicy(topk=topk),
        "online, threshold 0": StreamPolicy(topk=topk, score_threshold=0.0),
    }
    for window_size in window_sizes:
        recorder = Recorder(model.predict_window)
        predictions[f"windowed, W={window_size}"] = windowed_inference(
            recorder, tensors, window_size, size, topk=topk
        )
        for name, policy in policies.items():
            stream = VideoStream(recorder.replay(), window_size, output_size=size, policy=policy)
            predictions[f"{name}, W={window_size}"] = collect_video_result(stream.run(tensors))
    return predictions


def _split(seed: int, args):
    """A synthetic 2022-layout split in memory: ground-truth dicts and every video's frames."""
    from video_mask2former.data.synthetic import generate_synthetic_ytvis
    from video_mask2former.evaluation.ytvis2022 import combine_2022_split

    parts = []
    for index, (num_videos, num_frames) in enumerate(
        ((args.short_videos, args.short_frames), (args.long_videos, args.long_frames))
    ):
        parts.append(
            generate_synthetic_ytvis(
                num_videos=num_videos,
                num_frames=num_frames,
                seed=seed * 2 + index,  # short and long videos drawn apart
                split="val",
                with_images=True,
            )
        )
    (short, short_frames), (long, long_frames) = parts
    return combine_2022_split(short, long), short_frames + long_frames


def run(args) -> None:
    import numpy as np

    from video_mask2former.d2.mapper import build_clip_augmentation_from_cfg
    from video_mask2former.data.builtin_meta import metadata_for
    from video_mask2former.evaluation import video_predictions_to_results
    from video_mask2former.evaluation.ytvis2022 import evaluate_2022

    if args.threads:
        torch.set_num_threads(args.threads)
    model, cfg = build_model(config_file=args.config_file, weights=args.weights, device=args.device)
    augmentation = build_clip_augmentation_from_cfg(cfg, is_train=False)
    id_map = metadata_for("ytvis_synthetic")["thing_dataset_id_to_contiguous_id"]
    to_dataset = {c: d for d, c in id_map.items()}
    topk = cfg.MODEL.MASK_FORMER.TEST.TOPK
    per_seed: Dict[str, List[Dict[str, float]]] = {}
    for seed in args.seeds:
        files, videos_frames = _split(seed, args)
        results: Dict[str, list] = {}
        start = time.perf_counter()
        for video, frames in zip(files["gt.json"]["videos"], videos_frames):
            resized, _ = augmentation(list(frames), np.random.default_rng(0))
            tensors = [torch.as_tensor(np.ascontiguousarray(f.transpose(2, 0, 1))) for f in resized]
            size = (video["height"], video["width"])
            modes = predictions_of_video(model, tensors, size, args.window_sizes, topk)
            for mode, prediction in modes.items():
                results.setdefault(mode, []).extend(
                    video_predictions_to_results(
                        video["id"], prediction, contiguous_to_dataset_id=to_dataset
                    )
                )
        ground_truth = {"short": files["gt_short.json"], "long": files["gt_long.json"]}
        for mode, entries in results.items():
            scores = evaluate_2022(ground_truth, entries, check_counts=False)
            per_seed.setdefault(mode, []).append(scores)
        seconds = time.perf_counter() - start
        print(f"seed {seed}: {len(videos_frames)} videos in {seconds:.0f} s", file=sys.stderr)
    print(
        f"{len(args.seeds)} seeds x ({args.short_videos} videos of {args.short_frames} frames + "
        f"{args.long_videos} of {args.long_frames}); mean (std) over seeds, x100"
    )
    rows = []
    for mode, scores in per_seed.items():
        row = {"mode": mode}
        for key in ("AP_S", "AP_L", "AP"):
            values = [PERCENT * s[key] for s in scores]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            row[key] = f"{statistics.mean(values):.1f} ({spread:.1f})"
        rows.append(row)
    print(table(rows))


# ---------------------------------------------------------------------------------------------


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", type=str, required=True)
    parser.add_argument("--weights", type=str, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--short-videos", type=int, default=DEFAULT_SHORT_VIDEOS)
    parser.add_argument("--short-frames", type=int, default=DEFAULT_SHORT_FRAMES)
    parser.add_argument("--long-videos", type=int, default=DEFAULT_LONG_VIDEOS)
    parser.add_argument("--long-frames", type=int, default=DEFAULT_LONG_FRAMES)
    parser.add_argument("--window-sizes", type=int, nargs="+", default=list(DEFAULT_WINDOW_SIZES))
    parser.add_argument("--device", type=str, default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    return parser


def main(argv=None) -> None:
    run(get_parser().parse_args(argv))


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Score video semantic segmentation predictions on a VSPW-layout split: mIoU, mVC8, mVC16.

    python tools/evaluate_vss.py --gt-root VSPW_480p --split val.txt --pred-dir preds \
        [--num-classes 124] [--workers 2] [--json scores.json]

Predictions: ``<pred-dir>/<video>/<frame>.png``, one 8-bit single-channel PNG per ground-truth
frame holding class indices 0..K-1 (VSPW mask value v is index v - 1). The numbers are those of the
VSPW authors' scripts (see video_mask2former/evaluation/vss_metrics.py), on the 0-100 scale; a
number that is undefined (no video longer than 16 frames for mVC16) is printed "n/a" and written
as null.

Every input is checked before scoring, and so is the ``--json`` location: a bad input or an
unwritable output ends with one ``error:`` line and exit status 2, and an existing ``--json`` file
is replaced (atomically) only once the scores are known.
"""

import argparse
import json
import math
import os
import sys

from video_mask2former.evaluation.vss_eval import VSPW_NUM_CLASSES, default_workers, evaluate_vss
from video_mask2former.file_io import replace_reserved, reserve_output

KEYS = ("mIoU", "mVC8", "mVC16")  # written to --json


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gt-root", type=str, required=True, help="dataset root holding data/<video>/mask/"
    )
    parser.add_argument(
        "--split", type=str, required=True, help="video list (a bare name is read in --gt-root)"
    )
    parser.add_argument(
        "--pred-dir", type=str, required=True, help="<pred-dir>/<video>/<frame>.png predictions"
    )
    parser.add_argument(
        "--num-classes", type=int, default=VSPW_NUM_CLASSES, help="K (default: %(default)s)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="processes scoring videos in parallel (default: min(2, CPUs) = %(default)s)",
    )
    parser.add_argument("--json", type=str, default=None, help="write mIoU, mVC8, mVC16 here")
    return parser.parse_args(argv)


def _number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def format_table(scores: dict) -> str:
    """Two rows (the keys, then the numbers with two decimals), then what they were computed over.

    (tabulate is a dependency of the detectron2 layer only: this tool runs without it.)
    """
    width = max(len(k) for k in KEYS) + 4
    head = "".join(f"{k:>{width}}" for k in KEYS)
    row = "".join(f"{_number(scores[k]):>{width}}" for k in KEYS)
    counts = ", ".join(f"{n} frames: {w}" for n, w in scores["num_windows"].items())
    return (
        f"{head}\n{row}\n{scores['num_videos']} videos, {scores['num_frames']} frames; "
        f"VC windows ({counts}; a video of <= n frames has none)"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    temporary = None
    try:
        if args.json:
            temporary = reserve_output(args.json)
        scores = evaluate_vss(
            args.gt_root,
            args.split,
            args.pred_dir,
            num_classes=args.num_classes,
            workers=args.workers,
        )
        print(format_table(scores))
        if temporary:
            flat = {k: None if math.isnan(scores[k]) else scores[k] for k in KEYS}
            replace_reserved(temporary, args.json, lambda f: json.dump(flat, f, indent=1))
            temporary = None
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if temporary:
            os.remove(temporary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

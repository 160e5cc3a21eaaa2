#!/usr/bin/env python
"""Score a YouTube-VIS ``results.json`` against an annotation file with the official metric.

    python tools/evaluate_ytvis.py --gt valid.json --results results.json [--json scores.json]

Prints the twelve numbers (AP, AP50, ..., ARl on the 0-1 scale; -1 where no ground truth falls in an
area range) and optionally writes them as a JSON object with those keys.

YouTube-VIS 2022: give ``--gt`` the folder holding ``gt_short.json`` and ``gt_long.json``; the short
and the long videos are scored apart (``AP_S``, ``AP_L``, ``AP`` their mean, and every number
suffixed ``_S`` / ``_L``), as the 2022 challenge reports them.
"""

import argparse
import json
import os
import sys

from video_mask2former.evaluation import (
    STAT_KEYS,
    YTVISFormatError,
    YTVISGroundTruth,
    evaluate_ytvis,
)
from video_mask2former.evaluation.ytvis2022 import evaluate_2022, format_2022_table


def format_table(stats: dict) -> str:
    """Two-row text table: the keys, then the values with three decimals."""
    width = max(len(k) for k in STAT_KEYS) + 2
    head = "".join(f"{k:>{width}}" for k in STAT_KEYS)
    row = "".join(f"{stats[k]:>{width}.3f}" for k in STAT_KEYS)
    return f"{head}\n{row}"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gt",
        type=str,
        required=True,
        help="YouTube-VIS annotation JSON, or a YouTube-VIS 2022 folder with gt_short.json and "
        "gt_long.json",
    )
    parser.add_argument("--results", type=str, required=True, help="results.json to score")
    parser.add_argument("--json", type=str, default=None, help="write the twelve numbers here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.path.isdir(args.gt):
        return _main_2022(args)
    try:
        ground_truth = YTVISGroundTruth.from_json(args.gt)
        if not ground_truth.has_annotations:
            raise YTVISFormatError(
                f"{args.gt} has no 'annotations' (a test split): submit to the server instead"
            )
        stats = evaluate_ytvis(ground_truth, args.results)
    except YTVISFormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(stats))
    if args.json:
        _write_stats(stats, args.json)
    return 0


def _main_2022(args: argparse.Namespace) -> int:
    try:
        scores = evaluate_2022(args.gt, args.results)
    except YTVISFormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_2022_table(scores))
    if args.json:
        _write_stats(scores, args.json, keys=list(scores))
    return 0


def _write_stats(stats: dict, path: str, keys=STAT_KEYS) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w") as f:
        json.dump({k: stats[k] for k in keys}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())

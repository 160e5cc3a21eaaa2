#!/usr/bin/env python
"""Score a YouTube-VIS ``results.json`` against an annotation file with the official metric.

    python tools/evaluate_ytvis.py --gt valid.json --results results.json [--json scores.json]

Prints the twelve numbers (AP, AP50, ..., ARl on the 0-1 scale; -1 where no ground truth falls in an
area range) and optionally writes them as a JSON object with those keys.

YouTube-VIS 2022: give ``--gt`` the folder holding ``gt_short.json`` and ``gt_long.json``; the short
and the long videos are scored apart (``AP_S``, ``AP_L``, ``AP`` their mean, and every number
suffixed ``_S`` / ``_L``), as the 2022 challenge reports them. A subset without a ground-truth
instance has AP -1 (printed "n/a"), and ``AP`` is then the other subset's AP alone.

Every input is checked before scoring, and so is the ``--json`` location (a temporary file is
created next to it): a bad input or an unwritable output ends with one ``error:`` line and exit
status 2, and an existing ``--json`` file is replaced only once the scores are known.
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
from video_mask2former.file_io import replace_reserved, reserve_output


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


def _score(args: argparse.Namespace) -> dict:
    """The scores of ``args.results`` against ``args.gt`` (see the module docstring)."""
    if os.path.isdir(args.gt):
        return evaluate_2022(args.gt, args.results)
    ground_truth = YTVISGroundTruth.from_json(args.gt)
    if not ground_truth.has_annotations:
        raise YTVISFormatError(
            f"{args.gt} has no 'annotations' (a test split): submit to the server instead"
        )
    return evaluate_ytvis(ground_truth, args.results)


def main(argv=None) -> int:
    args = parse_args(argv)
    temporary = None
    try:
        if args.json:
            temporary = reserve_output(args.json)
        scores = _score(args)
        two_subsets = os.path.isdir(args.gt)
        print(format_2022_table(scores) if two_subsets else format_table(scores))
        if temporary:
            _write_stats(
                scores, temporary, args.json, keys=list(scores) if two_subsets else STAT_KEYS
            )
            temporary = None
    except (YTVISFormatError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if temporary:
            os.remove(temporary)
    return 0


def _write_stats(stats: dict, temporary: str, path: str, keys=STAT_KEYS) -> None:
    """Write ``stats`` to ``temporary``, then rename it to ``path``."""
    replace_reserved(temporary, path, lambda f: json.dump({k: stats[k] for k in keys}, f, indent=1))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Score video panoptic segmentation predictions (VIPSeg layout): VPQ and STQ.

    python tools/evaluate_vps.py --gt-json panoptic_gt_VIPSeg_val.json --gt-dir panomasksRGB \\
        --pred-json out/pred.json --pred-dir out/pan_pred [--window-sizes 1 2 4 6 8] \\
        [--workers 2] [--stq-vipseg-numbering] [--json scores.json]

Prints a table (VPQ All / Things / Stuff, SQ and RQ per window size and their mean; STQ, AQ, SQ)
and optionally writes the flat scores (0-100 scale: ``VPQ``, ``VPQ_thing``, ``VPQ_stuff``,
``VPQ@<n>``, ..., ``STQ``, ``AQ``, ``SQ``) as a JSON object; NaN (a subset without any category,
e.g. no stuff) is written as null.

Every input is checked before scoring, and so is the ``--json`` location (a temporary file is
created next to it): a bad input or an unwritable output ends with one ``error:`` line and exit
status 2, and an existing ``--json`` file is replaced only once the scores are known.
"""

import argparse
import json
import math
import os
import sys

from video_mask2former.data.vps import VideoSegFormatError
from video_mask2former.evaluation.vpq import VPQ_WINDOW_SIZES, VPQInputError
from video_mask2former.evaluation.vps_eval import default_workers, evaluate_vps
from video_mask2former.file_io import replace_reserved, reserve_output


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt-json", type=str, required=True, help="ground-truth JSON")
    parser.add_argument(
        "--gt-dir", type=str, required=True, help="ground-truth id PNGs: <dir>/<video>/<frame>.png"
    )
    parser.add_argument("--pred-json", type=str, required=True, help="predictions' pred.json")
    parser.add_argument(
        "--pred-dir", type=str, required=True, help="predicted id PNGs: <dir>/<video>/<frame>.png"
    )
    parser.add_argument(
        "--window-sizes",
        type=int,
        nargs="+",
        default=list(VPQ_WINDOW_SIZES),
        help="VPQ window lengths in frames (VIPSeg: 1 2 4 6 8; Cityscapes-VPS: 1 2 3 4)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="processes scoring videos (default: min(2, CPUs))",
    )
    parser.add_argument(
        "--stq-vipseg-numbering",
        action="store_true",
        help="number STQ instances as the VIPSeg / DVIS script does (drops each video's first "
        "thing segment as crowd; only to compare with published figures)",
    )
    parser.add_argument("--json", type=str, default=None, help="write the flat scores here")
    return parser.parse_args(argv)


def _cell(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def format_table(scores: dict, window_sizes) -> str:
    """Rows: each window size, then the mean; columns: VPQ All / Things / Stuff, SQ, RQ. Then
    one row of STQ, AQ, SQ when present."""
    columns = ("VPQ", "VPQ_thing", "VPQ_stuff", "VPQ_SQ", "VPQ_RQ")
    header = ("window", "All", "Things", "Stuff", "SQ", "RQ")
    rows = [[f"{n} frames"] + [_cell(scores[f"{c}@{n}"]) for c in columns] for n in window_sizes]
    rows.append(["mean"] + [_cell(scores[c]) for c in columns])
    lines = [_row(header), _row(["-" * 9] + ["-" * 9] * len(columns))]
    lines += [_row(r) for r in rows]
    if "STQ" in scores:
        lines += [
            "",
            _row(("", "STQ", "AQ", "SQ")),
            _row(["STQ"] + [_cell(scores[k]) for k in ("STQ", "AQ", "SQ")]),
        ]
    return "\n".join(lines)


def _row(cells) -> str:
    return f"{cells[0]:<10}" + "".join(f"{c:>10}" for c in cells[1:])


def _write_scores(scores: dict, temporary: str, path: str) -> None:
    """Write ``scores`` (NaN as null) to ``temporary``, then rename it to ``path``."""
    clean = {k: (None if math.isnan(v) else v) for k, v in scores.items()}
    replace_reserved(temporary, path, lambda f: json.dump(clean, f, indent=1))


def main(argv=None) -> int:
    args = parse_args(argv)
    temporary = None
    try:
        if args.workers < 1:
            raise VPQInputError(f"--workers must be at least 1, got {args.workers}.")
        if args.json:
            temporary = reserve_output(args.json)
        scores = evaluate_vps(
            args.gt_json,
            args.gt_dir,
            args.pred_json,
            args.pred_dir,
            window_sizes=args.window_sizes,
            workers=args.workers,
            stq_vipseg_numbering=args.stq_vipseg_numbering,
        )
        print(format_table(scores, args.window_sizes))
        if temporary:
            _write_scores(scores, temporary, args.json)
            temporary = None
    except (VideoSegFormatError, VPQInputError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if temporary:
            os.remove(temporary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Split a YouTube-VIS-format annotation file into train and val files by video.

    python tools/split_ytvis.py JSON --val-fraction F --seed S [--stratify]
        --out-train TRAIN.json --out-val VAL.json

Whole videos go to one side with their annotations; both files keep every category and the
frames' paths, so both use the input's image root. The split depends only on the file, F and S;
``--stratify`` gives each category's videos their share of the val side (see
``video_mask2former/data/split.py``). The input and both outputs are checked before anything is
written; each output is written to a temporary file and renamed. Prints how many videos and
instances each side has. Errors: one ``error:`` line, exit status 2.
"""

import argparse
import json
import os
import sys

from video_mask2former.data.split import SplitError, split_ytvis
from video_mask2former.data.ytvis import YTVISFormatError, read_json
from video_mask2former.file_io import atomic_write, check_writable


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file", type=str, help="YouTube-VIS-format annotation file")
    parser.add_argument(
        "--val-fraction", type=float, required=True, help="share of the videos for val, in (0, 1)"
    )
    parser.add_argument("--seed", type=int, required=True, help="seed of the split")
    parser.add_argument(
        "--stratify", action="store_true", help="give every category its share of the val side"
    )
    parser.add_argument("--out-train", type=str, required=True, help="train annotation file")
    parser.add_argument("--out-val", type=str, required=True, help="val annotation file")
    return parser.parse_args(argv)


def _check_outputs(args: argparse.Namespace) -> None:
    outputs = [os.path.abspath(args.out_train), os.path.abspath(args.out_val)]
    if outputs[0] == outputs[1]:
        raise SplitError(f"--out-train and --out-val are the same file ({args.out_train}).")
    if os.path.abspath(args.json_file) in outputs:
        raise SplitError(f"an output is the input {args.json_file}; write the split elsewhere.")
    for path in (args.out_train, args.out_val):
        check_writable(path, create_folders=True)


def _summary(name: str, path: str, side: dict) -> str:
    annotations = side.get("annotations") or []
    return f"{name}: {path} ({len(side['videos'])} videos, {len(annotations)} instances)"


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        _check_outputs(args)
        dataset, source = read_json(args.json_file)
        train, val = split_ytvis(
            dataset,
            val_fraction=args.val_fraction,
            seed=args.seed,
            stratify=args.stratify,
            source=source,
        )
        for path, side in ((args.out_train, train), (args.out_val, val)):
            text = json.dumps(side).encode()
            atomic_write(path, lambda f: f.write(text))
    except (YTVISFormatError, SplitError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(_summary("train", args.out_train, train))
    print(_summary("val", args.out_val, val))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Check a YouTube-VIS-format dataset as training would, and print its figures.

    python tools/inspect_dataset.py JSON IMAGE_ROOT [--frames {none,size,decode}]
        [--json OUT.json] [--plot OUT.png]

Runs the loader's checks of the annotation file (the first problem ends the run with one
``error:`` line naming the file and the entry), checks every frame file (exists and has the
video's size; ``--frames decode``: decodes completely, as the clip mapper reads it), and prints
videos, frames, instances, frames and instances per video, instances per category and per size
(the YouTube-VIS metric's small / medium / large ranges), instances that leave and re-enter, and
what training would drop. ``--json`` writes the whole report, ``--plot`` a PNG of its histograms
(needs matplotlib). Exit status: 0 when everything is readable, 1 when frames have problems (all
listed in the report), 2 for an unreadable annotation file or an output that cannot be written.
Outputs are checked before the dataset is read and replaced atomically.
"""

import argparse
import json
import sys

from video_mask2former.data.inspect import (
    FRAME_CHECKS,
    MissingDependencyError,
    format_report,
    inspect_ytvis_dataset,
    plot_histograms,
    require_matplotlib,
)
from video_mask2former.data.ytvis import YTVISFormatError
from video_mask2former.file_io import atomic_write, check_writable


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file", type=str, help="YouTube-VIS-format annotation file")
    parser.add_argument("image_root", type=str, help="folder the videos' file_names are under")
    parser.add_argument(
        "--frames",
        type=str,
        choices=FRAME_CHECKS,
        default="size",
        help="how the frame files are checked (default: exist and have the video's size)",
    )
    parser.add_argument("--json", type=str, default=None, help="write the report here")
    parser.add_argument("--plot", type=str, default=None, help="write the histograms (PNG) here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        for path in (args.json, args.plot):
            if path:
                check_writable(path, create_folders=True)
        if args.plot:
            require_matplotlib()
        report = inspect_ytvis_dataset(args.json_file, args.image_root, frames=args.frames)
        print(format_report(report))
        if args.json:
            text = json.dumps(report.to_dict(), indent=1).encode()
            atomic_write(args.json, lambda f: f.write(text))
        if args.plot:
            png = plot_histograms(report)
            atomic_write(args.plot, lambda f: f.write(png))
    except (YTVISFormatError, MissingDependencyError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Convert an annotation tool's export (or a video file) to the YouTube-VIS layout.

    python tools/convert_to_ytvis.py png-masks --frames DIR --masks DIR \\
        (--classes FILE | --class NAME) --out OUT [--json FILE] [--link]
    python tools/convert_to_ytvis.py cvat --xml FILE [FILE ...] --frames DIR --out OUT
    python tools/convert_to_ytvis.py mots --txt FILE_OR_DIR --frames DIR --out OUT
    python tools/convert_to_ytvis.py video --input FILE [--every N] --out OUT

Writes ``OUT/JPEGImages/<video>/<frame>.jpg`` (the frames in order; JPEGs copied, or hard-linked
with ``--link``, other images re-encoded as JPEG) and ``OUT/annotations.json`` (``--json`` for
another path), keeping each input video's name as its folder name. ``--frames DIR`` holds one
sub-folder of frames per video; for CVAT, the sub-folder named after the task or after the XML
file (or DIR itself). ``video`` writes frames only. The formats and their rules are described in
``video_mask2former/data/convert/``.

Every input is checked, and the output location too, before anything is written: a bad input
ends with one ``error:`` line naming the file, the video and the frame, and exit status 2. The
annotation file is written last, atomically.
"""

import argparse
import logging
import sys

from video_mask2former.data.convert import (
    ConversionError,
    check_output,
    convert_cvat,
    convert_mots,
    convert_png_masks,
    extract_frames,
    write_ytvis,
)
from video_mask2former.data.ytvis_checks import YTVISFormatError

USER_ERROR_STATUS = 2


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")

    def add(name: str, help: str, annotations: bool = True) -> argparse.ArgumentParser:
        sub = formats.add_parser(name, help=help, description=help)
        sub.add_argument("--out", type=str, required=True, help="the dataset folder to write")
        if annotations:
            sub.add_argument(
                "--json",
                type=str,
                default=None,
                help="annotation file (default OUT/annotations.json)",
            )
            sub.add_argument(
                "--link", action="store_true", help="hard-link JPEG frames instead of copying"
            )
        return sub

    png = add("png-masks", "instance-id PNG masks per frame (DAVIS 2017, YouTube-VOS)")
    png.add_argument("--frames", type=str, required=True, help="one sub-folder of frames per video")
    png.add_argument("--masks", type=str, required=True, help="one sub-folder of masks per video")
    classes = png.add_mutually_exclusive_group(required=True)
    classes.add_argument(
        "--classes",
        type=str,
        help="class mapping: CSV (video,object_id,category) or JSON ({video: {id: name}}, or "
        "YouTube-VOS meta.json)",
    )
    classes.add_argument("--class", dest="class_name", type=str, help="one class for all objects")

    cvat = add("cvat", "CVAT 'for video 1.1' XML: polygon and mask tracks")
    cvat.add_argument(
        "--xml", type=str, nargs="+", required=True, help="XML file(s), one per video"
    )
    cvat.add_argument("--frames", type=str, required=True, help="one sub-folder of frames per task")

    mots = add("mots", "MOTS txt (KITTI-MOTS, MOTSChallenge)")
    mots.add_argument("--txt", type=str, required=True, help="a sequence file or a folder of them")
    mots.add_argument("--frames", type=str, required=True, help="one sub-folder per sequence")

    video = add("video", "a video file to a folder of frames (no annotations)", annotations=False)
    video.add_argument("--input", type=str, required=True, help="the video file (.mp4, ...)")
    video.add_argument("--every", type=int, default=1, help="keep every N-th frame (default 1)")
    return parser.parse_args(argv)


def _read(args: argparse.Namespace):
    """(videos, categories) of the annotation formats."""
    if args.format == "png-masks":
        return convert_png_masks(
            args.frames, args.masks, classes=args.classes, class_name=args.class_name
        )
    if args.format == "cvat":
        return convert_cvat(args.xml, args.frames)
    return convert_mots(args.txt, args.frames)


def run(args: argparse.Namespace) -> None:
    if args.format == "video":
        written = extract_frames(args.input, args.out, every=args.every)
        print(f"Wrote {len(written)} frames under {args.out}.")
        return
    check_output(args.out, args.json)  # before reading anything
    videos, categories = _read(args)
    path = write_ytvis(args.out, videos, categories, json_file=args.json, link=args.link)
    objects = sum(len(v.tracks) for v in videos)
    print(
        f"Wrote {path}: {len(videos)} videos, {objects} objects, "
        f"{len(categories)} categories ({', '.join(name for _, name in categories)})."
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        run(args)
    except (ConversionError, YTVISFormatError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return USER_ERROR_STATUS
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Write a small example of an annotation tool's export, in the DAVIS 2017 layout.

    python datasets/prepare_own_data_example.py --out datasets/own_example

stands in for your own videos in README.md's "Train on your own videos"::

    OUT/JPEGImages/<video>/<frame>.jpg    # the frames, 00000.jpg, 00001.jpg, ...
    OUT/Annotations/<video>/<frame>.png   # palette PNGs: pixel value = object id, 0 background
    OUT/classes.csv                       # video,object_id,category (one row per object)

The videos are those of the synthetic YouTube-VIS set (``video_mask2former.data.synthetic``:
circles, squares and triangles moving over a noisy background, one to three per video, entering,
leaving and occluding each other), named ``shapes-001``, ``shapes-002``, ...; each video's objects
are numbered 1, 2, ... in the order they appear in the synthetic annotations. The output is a pure
function of the arguments. ``OUT`` must be missing or empty: an earlier example is not mixed into
a new one.
"""

import argparse
import csv
import io
import os
import sys
from typing import List, Tuple

import numpy as np
from PIL import Image

from video_mask2former.data.synthetic import SyntheticConfig, generate_synthetic_ytvis
from video_mask2former.data.ytvis import decode_segmentation
from video_mask2former.file_io import atomic_write
from video_mask2former.visualization.draw import track_color

# Defaults: enough videos for the quick model to learn the three shapes in a few CPU minutes.
DEFAULT_VIDEOS = 48
DEFAULT_FRAMES = 8
DEFAULT_HEIGHT = 96
DEFAULT_WIDTH = 128
DEFAULT_SEED = 0
VOID_ID = 255  # DAVIS's "ignored" value, white in the palette (not written by this example)


def palette() -> List[int]:
    """The 768 palette entries of the masks: id 0 black, id n the demo's colour of track n - 1,
    255 (void) white."""
    colors = [(0, 0, 0)] + [track_color(n) for n in range(VOID_ID - 1)] + [(255, 255, 255)]
    return [c for rgb in colors for c in rgb]


def _id_masks(dataset: dict, video: dict) -> Tuple[np.ndarray, List[Tuple[int, str]]]:
    """(T, H, W) uint8 object-id maps of one synthetic video, and its (object id, category) rows.

    The synthetic masks never overlap (a shape hides the shapes below it), so each pixel has at
    most one id.
    """
    names = {c["id"]: c["name"] for c in dataset["categories"]}
    height, width, length = video["height"], video["width"], video["length"]
    ids = np.zeros((length, height, width), dtype=np.uint8)
    rows = []
    anns = [a for a in dataset["annotations"] if a["video_id"] == video["id"]]
    for object_id, ann in enumerate(anns, start=1):
        for t, segm in enumerate(ann["segmentations"]):
            if segm is not None:
                mask = decode_segmentation(segm, height, width)
                assert not ids[t][mask].any(), "synthetic masks overlap"
                ids[t][mask] = object_id
        rows.append((object_id, names[ann["category_id"]]))
    return ids, rows


def write_example(
    out: str,
    *,
    num_videos: int = DEFAULT_VIDEOS,
    num_frames: int = DEFAULT_FRAMES,
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    seed: int = DEFAULT_SEED,
) -> dict:
    """Write the example under ``out`` (see the module docstring).

    Returns:
        dict: ``videos``, ``frames``, ``objects`` (counts) and ``classes`` (the CSV's path).

    Raises:
        ValueError: a size below 1, or ``out`` is a non-empty folder (or a file).
    """
    for name, value in (("videos", num_videos), ("frames", num_frames), ("height", height),
                        ("width", width)):  # fmt: skip
        if value < 1:
            raise ValueError(f"--{name} must be at least 1, got {value}")
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ValueError(
            f"{out} exists and is not an empty folder: remove it or pick another --out"
        )
    dataset, frames = generate_synthetic_ytvis(
        num_videos=num_videos, num_frames=num_frames, height=height, width=width, seed=seed,
        config=SyntheticConfig(), with_images=True,
    )  # fmt: skip
    colours = palette()
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(("video", "object_id", "category"))
    num_objects = 0
    for video, video_frames in zip(dataset["videos"], frames):
        name = f"shapes-{video['id']:03d}"
        ids, rows = _id_masks(dataset, video)
        for sub in ("JPEGImages", "Annotations"):
            os.makedirs(os.path.join(out, sub, name))
        for t, frame in enumerate(video_frames):
            Image.fromarray(frame).save(os.path.join(out, "JPEGImages", name, f"{t:05d}.jpg"))
            mask = Image.fromarray(ids[t], mode="L").convert("P")
            mask.putpalette(colours)
            mask.save(os.path.join(out, "Annotations", name, f"{t:05d}.png"))
        writer.writerows((name, object_id, category) for object_id, category in rows)
        num_objects += len(rows)
    classes = os.path.join(out, "classes.csv")
    atomic_write(classes, lambda f: f.write(table.getvalue().encode("utf-8")))
    return {
        "videos": num_videos,
        "frames": num_videos * num_frames,
        "objects": num_objects,
        "classes": classes,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=str, required=True, help="output folder (missing or empty)")
    parser.add_argument("--videos", type=int, default=DEFAULT_VIDEOS, help="number of videos")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="frames per video")
    parser.add_argument("--height", type=int, default=DEFAULT_HEIGHT, help="frame height")
    parser.add_argument("--width", type=int, default=DEFAULT_WIDTH, help="frame width")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    args = parser.parse_args(argv)
    try:
        written = write_example(
            args.out, num_videos=args.videos, num_frames=args.frames, height=args.height,
            width=args.width, seed=args.seed,
        )  # fmt: skip
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"Wrote {written['videos']} videos ({written['frames']} frames of {args.width}x"
        f"{args.height}, {written['objects']} objects) under {args.out}; classes: "
        f"{written['classes']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

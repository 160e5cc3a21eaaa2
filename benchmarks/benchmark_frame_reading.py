#!/usr/bin/env python
"""Time strict frame reading (``video_mask2former.data.frames.read_frame``) against the readers it
replaced, to show what the completeness check costs (figures only).

    python -m benchmarks.benchmark_frame_reading [--frames 200 --height 720 --width 1280]
    python -m benchmarks.benchmark_frame_reading --folder path/to/jpegs   # real frames instead

Per frame (file read + decode to an (H, W, 3) uint8 RGB array), CPU time of this process (less
disturbed than wall time on a shared machine; the decoders are single-threaded), median over
``--repeats`` passes over all frames, the readers interleaved so that a busy machine slows them
alike:

- ``read_frame``: this project's strict reader (simplejpeg, ``strict=True``);
- the same decode without the check (``strict=False``): the difference is the check's cost;
- Pillow ``open`` + ``exif_transpose`` + ``convert`` (how the clip mapper read frames before);
- OpenCV ``imread`` + ``cvtColor`` (how the demo read frames before).
"""

import argparse
import glob
import os
import statistics
import tempfile
import time

import cv2
import numpy as np
import simplejpeg
from PIL import Image, ImageOps

from benchmarks.common import table
from video_mask2former.data.frames import read_frame


def write_frames(folder: str, num: int, height: int, width: int, quality: int) -> list:
    """``num`` JPEGs with video-like content (smooth gradients, moving texture, sensor noise)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], -1).astype(np.uint8)
    paths = []
    for i in range(num):
        noise = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
        frame = cv2.GaussianBlur(np.roll(base, 7 * i, axis=1) + noise, (5, 5), 0)
        path = os.path.join(folder, f"{i:05d}.jpg")
        cv2.imwrite(path, frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        paths.append(path)
    return paths


def read_unchecked(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        return simplejpeg.decode_jpeg(f.read(), colorspace="RGB", strict=False)


def read_pillow(path: str) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def read_opencv(path: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


READERS = {
    "read_frame (strict)": read_frame,
    "same decode, no check": read_unchecked,
    "Pillow (mapper before)": read_pillow,
    "OpenCV (demo before)": read_opencv,
}


def benchmark(paths: list, repeats: int) -> dict:
    times = {name: [] for name in READERS}
    for _ in range(repeats):
        for name, reader in READERS.items():
            tic = time.process_time()
            for path in paths:
                reader(path)
            times[name].append((time.process_time() - tic) / len(paths))
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="synthetic frames to write")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of the frames")
    parser.add_argument("--folder", type=str, default=None, help="time these *.jpg instead")
    parser.add_argument("--repeats", type=int, default=5, help="passes over all frames")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.folder:
            paths = sorted(glob.glob(os.path.join(args.folder, "*.jpg")))
        else:
            paths = write_frames(tmp, args.frames, args.height, args.width, args.quality)
        size_kb = np.mean([os.path.getsize(p) for p in paths]) / 1024
        print(f"{len(paths)} frames, {size_kb:.0f} KiB each on average, {args.repeats} passes")
        medians = benchmark(paths, args.repeats)
    rows = [[name, seconds * 1e3] for name, seconds in medians.items()]
    print(table(rows, headers=["reader", "ms/frame (CPU)"], floatfmt=".2f"))
    check = medians["read_frame (strict)"] / medians["same decode, no check"] - 1
    print(f"completeness check: {100 * check:+.1f} % of the unchecked decode")


if __name__ == "__main__":
    main()

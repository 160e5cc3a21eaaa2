"""Shared helpers of the data-pipeline tests: damaged JPEG frames."""

import cv2
import numpy as np

# How a frame file gets damaged: cut short (a partial copy or download), or the second half of
# its compressed data overwritten behind valid headers, with zeros (lost disk blocks) or random
# bytes. libjpeg only *warns* about the last two ("Corrupt JPEG data: ...") and returns an image.
# (Compressed JPEG data has no checksum: a damage small enough to leave the decoder in step, e.g.
# a few dozen zero bytes in a tiny image, decodes without a warning and cannot be detected.)
DAMAGES = ("truncated", "zeroed_tail", "random_tail")


def jpeg_bytes(height=48, width=64, seed=0) -> bytes:
    """A small JPEG of blurred noise (enough compressed data to damage)."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (3, 3), 0)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def damage_jpeg(data: bytes, damage: str) -> bytes:
    """``data`` with its compressed (entropy-coded) data damaged, headers left intact."""
    sos = data.index(b"\xff\xda")  # start of scan: its segment length follows the marker
    scan_start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    scan_end = len(data) - 2  # the end-of-image marker FF D9 stays
    middle = (scan_start + scan_end) // 2
    if damage == "truncated":
        return data[:middle]
    if damage == "zeroed_tail":
        return data[:middle] + bytes(scan_end - middle) + data[scan_end:]
    if damage == "random_tail":
        garbage = np.random.default_rng(0).integers(0, 256, scan_end - middle, dtype=np.uint8)
        return data[:middle] + garbage.tobytes() + data[scan_end:]
    raise ValueError(damage)


def write_damaged_jpeg(path, damage: str, height=48, width=64) -> str:
    path.write_bytes(damage_jpeg(jpeg_bytes(height, width), damage))
    return str(path)

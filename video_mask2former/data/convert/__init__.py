"""Converters from annotation tools' formats to the YouTube-VIS layout (no detectron2).

One module per input format, each reading its files into :class:`VideoAnnotations` and checking
them (errors name the file, the video and the frame); :func:`write_ytvis` writes the frames and
``annotations.json``. The command line is ``tools/convert_to_ytvis.py``.

* :func:`convert_png_masks` — instance-id PNG masks per frame (DAVIS 2017, YouTube-VOS);
* :func:`convert_cvat` — CVAT "for video 1.1" XML (polygon and mask tracks);
* :func:`convert_mots` — MOTS txt (KITTI-MOTS, MOTSChallenge);
* :func:`extract_frames` — a video file to a folder of frames.
"""

from .cvat import convert_cvat, decode_cvat_mask
from .mots import convert_mots
from .png_masks import convert_png_masks, read_class_map
from .video import extract_frames
from .ytvis_writer import ConversionError, Track, VideoAnnotations, check_output, write_ytvis

__all__ = [
    "ConversionError",
    "Track",
    "VideoAnnotations",
    "check_output",
    "convert_cvat",
    "convert_mots",
    "convert_png_masks",
    "decode_cvat_mask",
    "extract_frames",
    "read_class_map",
    "write_ytvis",
]

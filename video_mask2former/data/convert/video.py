"""A video file → a folder of frames in the YouTube-VIS layout (frames only, no annotations).

``extract_frames("clip.mp4", "out", every=5)`` writes ``out/JPEGImages/clip/00000.jpg``,
``00005.jpg``, ``00010.jpg``, ...: every ``every``-th frame, named by its index in the video
(zero-padded to 5 digits, as YouTube-VIS names frames, or more for longer videos), as JPEGs at
quality :data:`.ytvis_writer.JPEG_QUALITY`. The folder is what the other converters' ``--frames``
and an annotation tool take, and what the demo predicts on. Frames are decoded with
:class:`video_mask2former.data.frames.FrameSource` (OpenCV), one at a time.
"""

import logging
import os
from typing import List, Optional

from PIL import Image

from ... import file_io
from ..frames import FrameSource, FrameSourceError, is_video_file
from .ytvis_writer import IMAGES_FOLDER, JPEG_QUALITY, ConversionError

__all__ = ["extract_frames", "frame_name"]

logger = logging.getLogger(__name__)

# Digits of a frame's index in its name (YouTube-VIS: 00000.jpg); more when the video is longer.
FRAME_NAME_DIGITS = 5


def frame_name(index: int, num_frames: int) -> str:
    """The file name of frame ``index`` of a video of ``num_frames`` frames."""
    digits = max(FRAME_NAME_DIGITS, len(str(max(num_frames - 1, 0))))
    return f"{index:0{digits}d}.jpg"


def extract_frames(
    video_file: str, out_dir: str, *, every: int = 1, name: Optional[str] = None
) -> List[str]:
    """Write every ``every``-th frame of ``video_file`` to ``out_dir/JPEGImages/<name>/``.

    Args:
        video_file (str): a video file (.mp4, .avi, .mov, ...).
        out_dir (str): the dataset folder (created when missing).
        every (int): keep frames 0, every, 2 * every, ... (>= 1).
        name (str, optional): the video's folder name (default: the file name without its
            extension).

    Returns:
        list[str]: the frame files written, in order.

    Raises:
        ConversionError: ``every`` < 1, or the input is not a readable video file.
        OSError: the output cannot be written.
    """
    if every < 1:
        raise ConversionError(f"every must be >= 1, got {every}")
    if not os.path.isfile(video_file):
        raise FileNotFoundError(f"video file {video_file} does not exist")
    if not is_video_file(video_file):
        raise ConversionError(f"{video_file} is not a video file (.mp4, .avi, .mov, ...)")
    name = name or os.path.splitext(os.path.basename(video_file))[0]
    folder = os.path.join(out_dir, IMAGES_FOLDER, name)
    file_io.check_writable(folder, folder=True)
    try:
        source = FrameSource(video_file)
    except FrameSourceError as e:
        raise ConversionError(str(e)) from None
    os.makedirs(folder, exist_ok=True)
    written = []
    try:
        for index, frame in enumerate(source):
            if index % every:
                continue
            path = os.path.join(folder, frame_name(index, source.num_frames))
            Image.fromarray(frame).save(path, format="JPEG", quality=JPEG_QUALITY)
            written.append(path)
    except FrameSourceError as e:
        raise ConversionError(str(e)) from None
    logger.info(f"Wrote {len(written)} frames of {video_file} to {folder}.")
    return written

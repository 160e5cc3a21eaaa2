"""Frame sources for inference: a folder of frames, a glob pattern, or a video file.

A :class:`FrameSource` knows the number of frames and their size up front and yields RGB frames
one at a time, so a long video is never held in memory whole (the windowed inference consumes
it window by window).
"""

import glob
import os
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
# Frame rate reported for a folder of images (they carry none); used when writing an .mp4.
DEFAULT_FPS = 10.0


class FrameSourceError(ValueError):
    """The input cannot be read as a video; the message names the path and what was expected."""


def read_image_rgb(path: str) -> np.ndarray:
    """One image file as an (H, W, 3) uint8 RGB array; a clear error if it cannot be read."""
    if not os.path.isfile(path):
        raise FrameSourceError(f"frame file not found: {path}")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FrameSourceError(f"cannot decode frame {path}: expected an image file")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class FrameSource:
    """The frames of one video, read lazily.

    Args:
        path (str): a folder of frames (sorted by name), a glob pattern (``"dir/*.jpg"``), or a
            video file.

    Attributes:
        file_names (list[str]): the frame files (empty for a video file).
        num_frames (int): T.
        height, width (int): frame size.
        fps (float): the video's frame rate (``DEFAULT_FPS`` for images).
    """

    def __init__(self, path: str):
        self.path = path
        self.file_names: List[str] = []
        self.fps = DEFAULT_FPS
        if os.path.isfile(path) and path.lower().endswith(VIDEO_EXTENSIONS):
            self._init_video(path)
        else:
            self._init_images(path)

    def _init_images(self, path: str) -> None:
        if os.path.isdir(path):
            names = sorted(
                os.path.join(path, name)
                for name in os.listdir(path)
                if name.lower().endswith(IMAGE_EXTENSIONS)
            )
            what = f"folder {path}"
        elif os.path.isfile(path):
            raise FrameSourceError(
                f"{path}: not a video file ({', '.join(VIDEO_EXTENSIONS)}) nor a folder of frames"
            )
        else:
            names = sorted(p for p in glob.glob(path) if p.lower().endswith(IMAGE_EXTENSIONS))
            what = f"pattern {path}"
        if not names:
            raise FrameSourceError(
                f"no frames found for {what}: expected image files ({', '.join(IMAGE_EXTENSIONS)})"
            )
        self.file_names = names
        self.num_frames = len(names)
        first = read_image_rgb(names[0])
        self.height, self.width = first.shape[:2]

    def _init_video(self, path: str) -> None:
        capture = cv2.VideoCapture(path)
        try:
            if not capture.isOpened():
                raise FrameSourceError(f"cannot open video file {path}")
            self.num_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            self.width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
            self.height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
            fps = capture.get(cv2.CAP_PROP_FPS)
            self.fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
        finally:
            capture.release()
        if self.num_frames <= 0:
            raise FrameSourceError(f"video file {path} has no frames")

    @property
    def is_video_file(self) -> bool:
        return not self.file_names

    @property
    def size(self) -> Tuple[int, int]:
        """(H, W) of the frames."""
        return (self.height, self.width)

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yields (H, W, 3) uint8 RGB frames in order."""
        if self.is_video_file:
            yield from self._iter_video()
            return
        for name in self.file_names:
            frame = read_image_rgb(name)
            if frame.shape[:2] != self.size:
                raise FrameSourceError(
                    f"frame {name} is {frame.shape[1]}x{frame.shape[0]}, expected "
                    f"{self.width}x{self.height} like the first frame of {self.path}"
                )
            yield frame

    def _iter_video(self) -> Iterator[np.ndarray]:
        capture = cv2.VideoCapture(self.path)
        try:
            count = 0
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                count += 1
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()
        if count == 0:
            raise FrameSourceError(f"could not decode any frame of video file {self.path}")
        # Containers often report an approximate frame count; trust what was decoded.
        self.num_frames = count

    def name_of(self, index: int) -> Optional[str]:
        """The file of frame ``index`` (None for a video file)."""
        return self.file_names[index] if self.file_names else None

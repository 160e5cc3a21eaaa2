"""Frame sources for inference: a video file, or frames given as folders, globs or image files.

A :class:`FrameSource` knows the number of frames and their size up front and yields RGB frames
one at a time, so a long video is never held in memory whole (the windowed inference consumes
it window by window). It can be iterated again (e.g. once to predict, once to draw).
"""

import glob
import os
from typing import Iterator, List, Sequence, Tuple, Union

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
# Frame rate reported for frames given as images (they carry none); used when writing an .mp4.
DEFAULT_FPS = 6.0


class FrameSourceError(ValueError):
    """The input cannot be read as a video; the message names the path and what was expected."""


def is_image_file(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def is_video_file(path: str) -> bool:
    return os.path.isfile(path) and path.lower().endswith(VIDEO_EXTENSIONS)


def read_image_rgb(path: str) -> np.ndarray:
    """One image file as an (H, W, 3) uint8 RGB array; a clear error if it cannot be read."""
    if not os.path.isfile(path):
        raise FrameSourceError(f"frame file not found: {path}")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FrameSourceError(f"cannot decode frame {path}: expected an image file")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def list_frame_files(inputs: Sequence[str]) -> List[str]:
    """The frame files of folders (images in name order), glob patterns and image files."""
    files: List[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, n) for n in os.listdir(item) if is_image_file(n))
            if not found:
                raise FrameSourceError(
                    f"folder {item} has no frames: expected image files "
                    f"({', '.join(IMAGE_EXTENSIONS)})"
                )
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(os.path.expanduser(item)) if is_image_file(p))
            if not found:
                raise FrameSourceError(f"pattern {item} matches no image file")
        elif os.path.isfile(item):
            if not is_image_file(item):
                raise FrameSourceError(
                    f"{item}: not an image file ({', '.join(IMAGE_EXTENSIONS)}) nor, alone, a "
                    f"video file ({', '.join(VIDEO_EXTENSIONS)})"
                )
            found = [item]
        else:
            raise FrameSourceError(f"input {item} does not exist")
        files.extend(found)
    return files


class FrameSource:
    """The frames of one video, read lazily.

    Args:
        inputs (str or sequence of str): one video file; or frames given as a folder (its images
            in name order), a glob pattern (``"dir/*.jpg"``), image files, or several of these
            (concatenated in the order given).

    Attributes:
        file_names (list[str]): the frame files (empty for a video file).
        num_frames (int): T.
        height, width (int): frame size.
        fps (float): the video's frame rate (``DEFAULT_FPS`` for images).
    """

    def __init__(self, inputs: Union[str, Sequence[str]]):
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        if not inputs:
            raise FrameSourceError("no input given: expected a video file, a folder or frames")
        self.path = ", ".join(inputs)
        self.file_names: List[str] = []
        self.fps = DEFAULT_FPS
        if len(inputs) == 1 and is_video_file(inputs[0]):
            self._init_video(inputs[0])
        else:
            self.file_names = list_frame_files(inputs)
            self.num_frames = len(self.file_names)
            self.height, self.width = read_image_rgb(self.file_names[0]).shape[:2]

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
                    f"{self.width}x{self.height} like the first frame"
                )
            yield frame

    def _iter_video(self) -> Iterator[np.ndarray]:
        capture = cv2.VideoCapture(self.path)
        count = 0
        try:
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

    def frame_names(self) -> List[str]:
        """A file name per frame: the frames' own, or ``%05d.jpg`` for a video file."""
        if self.file_names:
            return [os.path.basename(name) for name in self.file_names]
        return [f"{i:05d}.jpg" for i in range(self.num_frames)]

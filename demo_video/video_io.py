"""Writing visualised frames: a folder of images or an ``.mp4`` (OpenCV only).

Frames are (H, W, 3) uint8 arrays in RGB order. Reading is
:class:`video_mask2former.data.frames.FrameSource` (lazy, one frame at a time).
"""

import os

import cv2
import numpy as np

from video_mask2former.data.frames import is_image_file

__all__ = ["FrameWriter"]


class FrameWriter:
    """Writes frames one at a time, into a folder (``names[t]``) or an ``.mp4`` at ``fps``.

    Args:
        output (str): a folder, or a path ending in ``.mp4`` (codec mp4v).
        names (sequence of str): a file name per frame (folder output; ``.jpg`` unless it is an
            image name already).
        fps (float): frame rate of the ``.mp4``.
    """

    def __init__(self, output: str, names, fps: float):
        self.output = output
        self.names = list(names)
        self.fps = fps
        self.is_video = output.lower().endswith(".mp4")
        self._writer = None
        self._count = 0
        parent = os.path.dirname(os.path.abspath(output)) if self.is_video else output
        os.makedirs(parent, exist_ok=True)

    def write(self, frame: np.ndarray) -> None:
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if self.is_video:
            if self._writer is None:
                height, width = frame.shape[:2]
                fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                self._writer = cv2.VideoWriter(self.output, fourcc, self.fps, (width, height))
                if not self._writer.isOpened():
                    raise OSError(f"OpenCV cannot write the video {self.output} (codec mp4v)")
            self._writer.write(bgr)
        else:
            name = self.names[self._count]
            if not is_image_file(name):
                name = os.path.splitext(name)[0] + ".jpg"
            path = os.path.join(self.output, name)
            if not cv2.imwrite(path, bgr):
                raise OSError(f"cannot write frame {path}")
        self._count += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
        if self._count == 0:
            raise ValueError(f"no frame was written to {self.output}")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.close()
        elif self._writer is not None:
            self._writer.release()
        return False

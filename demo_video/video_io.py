"""Writing visualised frames (a folder of images or an ``.mp4``, OpenCV only) and per-frame
instances (JSON lines).

Frames are (H, W, 3) uint8 arrays in RGB order. Reading is
:class:`video_mask2former.data.frames.FrameSource` (lazy, one frame at a time) or, for cameras and
streams, :class:`video_mask2former.data.live.LiveSource`. Both writers check that they can write
when they are created, before any frame is read, and raise an ``OSError`` naming the path.
"""

import json
import os

import cv2
import numpy as np

from video_mask2former.data.frames import is_image_file

__all__ = ["FrameWriter", "JsonLinesWriter", "check_writable"]


def _write_error(path: str, error: OSError) -> OSError:
    """An ``OSError`` naming ``path`` and why it cannot be written."""
    ancestor = os.path.dirname(os.path.abspath(path))
    while ancestor and not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if os.path.exists(ancestor) and not os.path.isdir(ancestor):
        return OSError(f"cannot write {path}: {ancestor} is a file, not a folder")
    return OSError(f"cannot write {path}: {error.strerror}")


def check_writable(path: str) -> None:
    """Raise an ``OSError`` naming ``path`` when a file cannot be written there (a parent that
    is a file, a read-only folder, ...); creates the missing parent folders. An existing file is
    left as it is."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        existed = os.path.exists(path)
        with open(path, "ab"):
            pass
        if not existed:
            os.remove(path)
    except OSError as e:
        raise _write_error(path, e) from None


class FrameWriter:
    """Writes frames one at a time, into a folder (``names[t]``) or an ``.mp4`` at ``fps``.

    Args:
        output (str): a folder, or a path ending in ``.mp4`` (codec mp4v).
        names (sequence of str, optional): a file name per frame (folder output; ``.jpg`` unless
            it is an image name already); None: ``00000.jpg``, ``00001.jpg``, ... (a stream of
            unknown length).
        fps (float): frame rate of the ``.mp4``.

    Raises:
        OSError: naming ``output`` when it cannot be written.
    """

    def __init__(self, output: str, names, fps: float):
        self.output = output
        self.names = None if names is None else list(names)
        self.fps = fps
        self.is_video = output.lower().endswith(".mp4")
        self._writer = None
        self._count = 0
        if self.is_video:
            check_writable(output)
        else:
            try:
                os.makedirs(output, exist_ok=True)
            except OSError as e:
                raise _write_error(os.path.join(output, "00000.jpg"), e) from None

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
            name = f"{self._count:05d}.jpg" if self.names is None else self.names[self._count]
            if not is_image_file(name):
                name = os.path.splitext(name)[0] + ".jpg"
            path = os.path.join(self.output, name)
            if not cv2.imwrite(path, bgr):
                raise OSError(f"cannot write frame {path}")
        self._count += 1

    def close(self, allow_empty: bool = False) -> None:
        """Finalise the output; no frame written is an error unless ``allow_empty``."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._count == 0 and not allow_empty:
            raise ValueError(f"no frame was written to {self.output}")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.close()
        elif self._writer is not None:
            self._writer.release()
        return False


class JsonLinesWriter:
    """Writes one JSON object per line, each flushed to the file as soon as it is written (a run
    that stops keeps every line written so far, whole).

    Args:
        path (str): the file (created or truncated; parent folders are created).

    Raises:
        OSError: naming ``path`` when it cannot be written.
    """

    def __init__(self, path: str):
        self.path = path
        self.count = 0
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._file = open(path, "w")
        except OSError as e:
            raise _write_error(path, e) from None

    def write(self, obj) -> None:
        self._file.write(json.dumps(obj) + "\n")  # one call: a line is never written in part
        self._file.flush()
        self.count += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

"""Writing visualised frames (a folder of images or an ``.mp4``, OpenCV only) and per-frame
instances (JSON lines).

Frames are (H, W, 3) uint8 arrays in RGB order. Reading is
:class:`video_mask2former.data.frames.FrameSource` (lazy, one frame at a time) or, for cameras and
streams, :class:`video_mask2former.data.live.LiveSource`.

Files (an ``.mp4``, a JSON-lines file) are written under a hidden temporary name beside the target,
``.<name>.<random>.partial<ext>``, and renamed over the target when the writer is closed with at
least one frame or line written: an existing file is never truncated, and is replaced only by a
finalised file. A writer discarded (an error in the offline demo) removes its temporary. A
process killed with SIGKILL leaves the temporary behind (an ``.mp4`` without its index, which
players cannot open; a JSON-lines file whose every complete line is readable) and the target as
it was. A folder of frames is written frame by frame, in place.
"""

import json
import os
import uuid

import cv2
import numpy as np

from video_mask2former.data.frames import is_image_file

__all__ = ["FrameWriter", "JsonLinesWriter", "check_writable", "check_frame_folder"]

# Marks the temporary files of the writers (before the target's own extension).
PARTIAL_SUFFIX = ".partial"


def _write_error(path: str, error: OSError) -> OSError:
    """An ``OSError`` naming ``path`` and why it cannot be written."""
    ancestor = os.path.dirname(os.path.abspath(path))
    while ancestor and not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if os.path.exists(ancestor) and not os.path.isdir(ancestor):
        return OSError(f"cannot write {path}: {ancestor} is a file, not a folder")
    return OSError(f"cannot write {path}: {error.strerror}")


def partial_path(path: str) -> str:
    """A new hidden temporary name beside ``path`` (its extension kept, for OpenCV's muxer)."""
    folder, name = os.path.split(os.path.abspath(path))
    ext = os.path.splitext(name)[1]
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}{ext}")


def check_writable(path: str) -> None:
    """Raise an ``OSError`` naming ``path`` when a file cannot be written there (a parent that
    is a file, a read-only folder, a folder at ``path``, ...): a temporary file is created beside
    it and removed. Creates the missing parent folders; an existing file is left as it is."""
    if os.path.isdir(path):
        raise OSError(f"cannot write {path}: it is a folder, expected a file name")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        probe = partial_path(path)
        with open(probe, "xb"):
            pass
        os.remove(probe)
    except OSError as e:
        raise _write_error(path, e) from None


def check_frame_folder(folder: str) -> None:
    """Raise an ``OSError`` naming ``folder`` when frames cannot be written into it (it is a file,
    it or its parent is read-only, ...). Creates it when missing."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OSError(f"cannot write frames into {folder}: it is a file, expected a folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise _write_error(os.path.join(folder, "00000.jpg"), e) from None
    check_writable(os.path.join(folder, "00000.jpg"))


class _PartialFile:
    """A temporary file beside ``target``, renamed over it by :meth:`commit`."""

    def __init__(self, target: str):
        check_writable(target)
        self.target = target
        self.path = partial_path(target)

    def commit(self) -> None:
        os.replace(self.path, self.target)

    def discard(self) -> None:
        if os.path.exists(self.path):
            os.remove(self.path)


class FrameWriter:
    """Writes frames one at a time, into a folder (``names[t]``) or an ``.mp4`` at ``fps`` (under
    a temporary name, renamed over ``output`` by :meth:`close`; see the module docstring).

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
        self._file = None
        if self.is_video:
            self._file = _PartialFile(output)
        else:
            check_frame_folder(output)

    @property
    def count(self) -> int:
        """Frames written so far."""
        return self._count

    def write(self, frame: np.ndarray) -> None:
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if self.is_video:
            if self._writer is None:
                height, width = frame.shape[:2]
                fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                self._writer = cv2.VideoWriter(self._file.path, fourcc, self.fps, (width, height))
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
        """Finalise the output: the ``.mp4`` is completed and renamed over ``output`` when a
        frame was written (else an existing ``output`` is left as it is). No frame written is an
        error unless ``allow_empty``."""
        self._release()
        if self._file is not None:
            if self._count > 0:
                self._file.commit()
            else:
                self._file.discard()
        if self._count == 0 and not allow_empty:
            raise ValueError(f"no frame was written to {self.output}")

    def discard(self) -> None:
        """Stop without replacing ``output`` (the ``.mp4``'s temporary is removed; frames already
        written into a folder stay)."""
        self._release()
        if self._file is not None:
            self._file.discard()

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.close()
        else:
            self.discard()
        return False


class JsonLinesWriter:
    """Writes one JSON object per line, each flushed as soon as it is written, into a temporary
    file beside ``path`` that :meth:`close` renames over ``path`` when a line was written (a run
    that stops keeps every line written so far, whole; see the module docstring).

    Args:
        path (str): the file (parent folders are created; an existing file is replaced at close).

    Raises:
        OSError: naming ``path`` when it cannot be written.
    """

    def __init__(self, path: str):
        self.path = path
        self.count = 0
        self._partial = _PartialFile(path)
        try:
            self._file = open(self._partial.path, "x")
        except OSError as e:
            raise _write_error(path, e) from None

    def write(self, obj) -> None:
        self._file.write(json.dumps(obj) + "\n")  # one call: a line is never written in part
        self._file.flush()
        self.count += 1

    def close(self) -> None:
        """Close the file and rename it over ``path`` when a line was written (else remove it)."""
        if self._file.closed:
            return
        self._file.close()
        if self.count > 0:
            self._partial.commit()
        else:
            self._partial.discard()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

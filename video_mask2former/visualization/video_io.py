"""Writing visualised frames (a folder of images or an ``.mp4``) and per-frame instances (JSON
lines).

An ``.mp4`` is H.264 (``avc1``, yuv420p, ``+faststart``: it plays in browsers) when PyAV is
installed (``pip install av``: its wheels bundle FFmpeg with libx264); without it OpenCV writes
MPEG-4 Part 2 (``mp4v``), which desktop players such as VLC play but browsers do not. The writer
logs which one it used. yuv420p needs an even width and height: a frame of odd size is padded by
one pixel at the right and / or bottom (its last column / row repeated), in both cases.

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

import importlib.util
import json
import logging
import os
import uuid
from fractions import Fraction

import cv2
import numpy as np

from .. import file_io
from ..data.frames import is_image_file

__all__ = [
    "FrameWriter",
    "JsonLinesWriter",
    "check_writable",
    "check_frame_folder",
    "h264_available",
]

logger = logging.getLogger("video_mask2former.demo")

# Marks the temporary files of the writers (before the target's own extension).
PARTIAL_SUFFIX = ".partial"
# Writers of an .mp4 (FrameWriter's video_backend): PyAV's H.264, OpenCV's MPEG-4 Part 2.
VIDEO_BACKENDS = ("pyav", "opencv")
# Largest denominator of the frame rate given to PyAV (30000/1001 for NTSC's 29.97 fits).
_MAX_RATE_DENOMINATOR = 10000


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
    is a file, a read-only folder, a folder at ``path``, ...). Creates the missing parent folders;
    an existing file is left as it is (:func:`video_mask2former.file_io.check_writable`)."""
    file_io.check_writable(path, create_folders=True)


def check_frame_folder(folder: str) -> None:
    """Raise an ``OSError`` naming ``folder`` when frames cannot be written into it (it is a file,
    it or its parent is read-only, ...). Creates it when missing."""
    file_io.check_writable(folder, folder=True, create_folders=True)


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


def h264_available() -> bool:
    """Whether PyAV is installed with FFmpeg's libx264 encoder (FrameWriter's H.264 path)."""
    if importlib.util.find_spec("av") is None:
        return False
    import av

    return "libx264" in av.codecs_available


def even_frame(frame: np.ndarray) -> np.ndarray:
    """``frame`` (H, W, C) padded to an even height and width (yuv420p needs them): its last row
    and / or column repeated once; an even-sized frame is returned as it is."""
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if not (pad_h or pad_w):
        return frame
    return np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")


class _H264Encoder:
    """H.264 (libx264, yuv420p) in an ``.mp4`` through PyAV, the index at the start of the file
    (``+faststart``) so that browsers play it while it loads. Frames are (H, W, 3) uint8 RGB
    of even size."""

    codec = "H.264 (avc1, PyAV libx264)"
    note = ""

    def __init__(self, path: str, fps: float, width: int, height: int):
        import av

        self._error = av.FFmpegError
        self.path = path
        self._frame_type = av.VideoFrame
        try:
            self._container = av.open(path, "w", format="mp4", options={"movflags": "+faststart"})
        except self._error as e:
            raise OSError(f"cannot write the video {path}: {e}") from None
        try:
            rate = Fraction(fps).limit_denominator(_MAX_RATE_DENOMINATOR)
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = width, height
            self._stream.pix_fmt = "yuv420p"
        except BaseException:
            self._container.close()
            raise

    def write(self, frame: np.ndarray) -> None:
        picture = self._frame_type.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        self._mux(self._stream.encode(picture))

    def _mux(self, packets) -> None:
        try:
            self._container.mux(packets)
        except self._error as e:  # FFmpeg's own error types; re-raised naming the file
            raise OSError(f"cannot write the video {self.path}: {e}") from None

    def release(self, finish: bool = True) -> None:
        """Close the file; ``finish``: encode the frames still buffered and write the index."""
        try:
            if finish:
                self._mux(self._stream.encode(None))
        finally:
            self._container.close()


class _OpenCVEncoder:
    """MPEG-4 Part 2 (``mp4v``) in an ``.mp4`` through OpenCV: the fallback without PyAV (plays
    in desktop players, not in browsers). Frames are (H, W, 3) uint8 RGB of even size."""

    codec = "MPEG-4 Part 2 (mp4v, OpenCV)"
    note = "; browsers do not play it: pip install av for H.264"

    def __init__(self, path: str, fps: float, width: int, height: int):
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
        self._writer = cv2.VideoWriter(path, fourcc, fps, (width, height))
        if not self._writer.isOpened():
            raise OSError(f"OpenCV cannot write the video {path} (codec mp4v)")

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def release(self, finish: bool = True) -> None:
        self._writer.release()


_ENCODERS = {"pyav": _H264Encoder, "opencv": _OpenCVEncoder}


def choose_video_backend(video_backend=None) -> str:
    """The writer of an ``.mp4``: ``video_backend`` when given (one of :data:`VIDEO_BACKENDS`),
    else "pyav" when :func:`h264_available`, else "opencv".

    Raises:
        ValueError: an unknown ``video_backend``, or "pyav" without PyAV / libx264.
    """
    if video_backend is None:
        return "pyav" if h264_available() else "opencv"
    if video_backend not in VIDEO_BACKENDS:
        raise ValueError(f"video_backend must be one of {VIDEO_BACKENDS}, got {video_backend!r}")
    if video_backend == "pyav" and not h264_available():
        raise ValueError("video_backend 'pyav' needs PyAV with libx264: pip install av")
    return video_backend


class FrameWriter:
    """Writes frames one at a time, into a folder (``names[t]``) or an ``.mp4`` at ``fps`` (under
    a temporary name, renamed over ``output`` by :meth:`close`; see the module docstring).

    The ``.mp4`` is H.264 through PyAV when it is installed, else MPEG-4 Part 2 through OpenCV
    (one log line says which, at the first frame); frames of odd height or width are padded by
    one pixel (:func:`even_frame`).

    Args:
        output (str): a folder, or a path ending in ``.mp4``.
        names (sequence of str, optional): a file name per frame (folder output; ``.jpg`` unless
            it is an image name already); None: ``00000.jpg``, ``00001.jpg``, ... (a stream of
            unknown length).
        fps (float): frame rate of the ``.mp4`` (> 0).
        video_backend (str, optional): "pyav" or "opencv" for the ``.mp4``; None: the best
            available (:func:`choose_video_backend`).

    Attributes:
        codec (str or None): the ``.mp4``'s codec, e.g. "H.264 (avc1, PyAV libx264)"; None for a
            folder.

    Raises:
        OSError: naming ``output`` when it cannot be written.
        ValueError: ``video_backend`` is unknown or not installed.
    """

    def __init__(self, output: str, names, fps: float, video_backend=None):
        self.output = output
        self.names = None if names is None else list(names)
        self.fps = fps
        self.is_video = output.lower().endswith(".mp4")
        self._encoder = None
        self._count = 0
        self._file = None
        self.codec = None
        if self.is_video:
            self._encoder_type = _ENCODERS[choose_video_backend(video_backend)]
            self.codec = self._encoder_type.codec
            self._file = _PartialFile(output)
        else:
            check_frame_folder(output)

    @property
    def count(self) -> int:
        """Frames written so far."""
        return self._count

    def write(self, frame: np.ndarray) -> None:
        """Write one (H, W, 3) uint8 RGB frame (every frame of an ``.mp4`` of the same size)."""
        if self.is_video:
            self._write_video(frame)
        else:
            name = f"{self._count:05d}.jpg" if self.names is None else self.names[self._count]
            if not is_image_file(name):
                name = os.path.splitext(name)[0] + ".jpg"
            path = os.path.join(self.output, name)
            if not cv2.imwrite(path, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
                raise OSError(f"cannot write frame {path}")
        self._count += 1

    def _write_video(self, frame: np.ndarray) -> None:
        even = even_frame(frame)
        if self._encoder is None:
            height, width = even.shape[:2]
            self._size = frame.shape[:2]
            self._encoder = self._encoder_type(self._file.path, self.fps, width, height)
            padded = "" if even is frame else f" (padded from {frame.shape[1]}x{frame.shape[0]})"
            logger.info(
                f"Writing {self.output}: {self.codec}, {width}x{height}{padded}"
                f"{self._encoder_type.note}"
            )
        elif frame.shape[:2] != self._size:
            raise ValueError(
                f"frame {self._count} is {frame.shape[1]}x{frame.shape[0]}, the video "
                f"{self.output} is {self._size[1]}x{self._size[0]}: all its frames must match"
            )
        self._encoder.write(even)

    def close(self, allow_empty: bool = False) -> None:
        """Finalise the output: the ``.mp4`` is completed and renamed over ``output`` when a
        frame was written (else an existing ``output`` is left as it is). No frame written is an
        error unless ``allow_empty``."""
        try:
            self._release(finish=True)
        except BaseException:  # not finalised (a full disk, ...): never renamed over output
            self.discard()
            raise
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
        try:
            self._release(finish=False)
        finally:
            if self._file is not None:
                self._file.discard()

    def _release(self, finish: bool) -> None:
        if self._encoder is not None:
            encoder, self._encoder = self._encoder, None
            encoder.release(finish)

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

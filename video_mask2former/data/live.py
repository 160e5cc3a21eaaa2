"""Live frame sources: a camera, a stream URL, or a video file read as a stream (OpenCV).

Frames are (H, W, 3) uint8 RGB arrays.

A :class:`LiveSource` reads frames one at a time with ``cv2.VideoCapture`` from anything it opens:
a camera index (``0``), a stream URL (``rtsp://``, ``http://``, ``file://``, ... through OpenCV's
FFmpeg backend) or a video file. Unlike :class:`~video_mask2former.data.frames.FrameSource` it
does not need the number of frames up front and is read once. A source that cannot be opened is
an error naming it (:class:`~video_mask2former.data.frames.FrameSourceError`); a stream that stops
delivering frames *ends* the iteration instead of raising, so the frames already read stay usable,
and :attr:`LiveSource.stop_reason` then says why:

- ``"end of stream after N frames"``: the capture had no more frames (the end of a file, a camera
  or server that closed the stream; OpenCV does not tell these apart);
- ``"dropped after N of M frames"``: a file or stream that announced M frames gave only N (a
  truncated file, a lost connection); :attr:`LiveSource.dropped` is then True;
- ``"read error after N frames: ..."``: OpenCV raised while reading (also ``dropped``).

Frames keep the size the capture gives; a stream whose frame size changes mid-way is passed
through as it is (:class:`~video_mask2former.inference.streaming.VideoStream` rejects it, as every
inference mode rejects a video with frames of two sizes).

What the capture gives is turned into (H, W, 3) uint8 RGB, with the rules of
:func:`~video_mask2former.data.frames.read_frame`: 3-channel BGR frames are converted to RGB,
grayscale ones repeated to three channels, BGRA ones lose their alpha, 16-bit ones keep their high
byte (``value >> 8``). A frame of any other kind (another dtype or channel count) is a
:class:`~video_mask2former.data.frames.FrameSourceError` naming the source and the frame, never
a frame passed on that the model would misread.
"""

import os
from typing import Callable, Iterator, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .frames import DEFAULT_FPS, FrameSource, FrameSourceError, is_video_file

# A text input holding a URL scheme separator is a stream URL.
_URL_SEPARATOR = "://"
# Channels of a captured frame -> the conversion to RGB.
_TO_RGB = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}
# 16-bit -> 8-bit: keep the high byte (as read_frame does for 16-bit image files).
_SIXTEEN_TO_EIGHT_BITS_SHIFT = 8


def parse_live_input(text: Union[str, int]) -> Union[int, str]:
    """A camera index (``"0"`` -> 0) or the text unchanged (a URL or a path)."""
    if isinstance(text, int):
        return text
    stripped = text.strip()
    return int(stripped) if stripped.isdigit() else text


def is_camera_or_url(text: Union[str, int]) -> bool:
    """Whether ``text`` names a camera (an index) or a stream URL rather than a file."""
    spec = parse_live_input(text)
    return isinstance(spec, int) or _URL_SEPARATOR in spec


class LiveSource:
    """Frames from a camera, a stream URL or a video file, read once, one at a time.

    Args:
        spec (int or str): a camera index (or its digits as text), a stream URL, or a video file.
        capture_factory (callable): opens ``spec``; ``cv2.VideoCapture`` (tests pass a fake).

    Attributes:
        name (str): what was opened, for messages (``"camera 0"``, the URL or the path).
        kind (str): ``"camera"``, ``"url"`` or ``"file"``.
        fps (float): the capture's frame rate (``DEFAULT_FPS`` when it reports none).
        announced_frames (int, optional): the number of frames the capture announces (files and
            some streams), else None.
        frames_read (int): frames yielded so far.
        stop_reason (str, optional): why the iteration ended (see the module docstring).
        dropped (bool): the stream ended before its announced end or on a read error.

    Raises:
        FrameSourceError: the source does not exist or cannot be opened (the message says which
            and what to check).
    """

    def __init__(self, spec: Union[int, str], capture_factory: Callable = cv2.VideoCapture):
        spec = parse_live_input(spec)
        if isinstance(spec, int):
            self.kind, self.name = "camera", f"camera {spec}"
        elif _URL_SEPARATOR in spec:
            self.kind, self.name = "url", spec
        else:
            self.kind, self.name = "file", spec
            if not os.path.isfile(spec):
                raise FrameSourceError(f"input {spec} does not exist")
        self._capture = capture_factory(spec)
        if not self._capture.isOpened():
            self._capture.release()
            raise FrameSourceError(self._open_error())
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.announced_frames: Optional[int] = count if count > 0 else None
        self.frames_read = 0
        self.stop_reason: Optional[str] = None
        self.dropped = False
        self._started = False

    def _open_error(self) -> str:
        if self.kind == "camera":
            return (
                f"cannot open {self.name}: no camera with that index, or it is in use by another "
                f"program (on Linux the cameras are /dev/video*); expected --input to be a camera "
                f"index, a stream URL, a video file or a folder of frames"
            )
        if self.kind == "url":
            return (
                f"cannot open the stream {self.name}: check the address and that the server is "
                f"up (OpenCV reads rtsp://, http(s)://, file:// and other FFmpeg URLs)"
            )
        return f"cannot open video file {self.name}: OpenCV cannot decode it"

    @property
    def size(self) -> Optional[Tuple[int, int]]:
        """(H, W) the capture reports, or None when it reports none (known after a frame)."""
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        return (height, width) if height > 0 and width > 0 else None

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yields (H, W, 3) uint8 RGB frames until the stream ends; then sets ``stop_reason``."""
        if self._started:
            raise FrameSourceError(f"{self.name} was read already: a live source is read once")
        self._started = True
        try:
            while True:
                try:
                    ok, frame = self._capture.read()
                except cv2.error as e:
                    self._stop(f"read error after {self.frames_read} frames: {e}", dropped=True)
                    return
                if not ok or frame is None:
                    self._stop_at_end()
                    return
                rgb = self._to_rgb(frame)
                self.frames_read += 1
                yield rgb
        finally:
            self.close()

    def _to_rgb(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB of a captured frame (see the module docstring)."""
        frame = np.asarray(frame)
        channels = 1 if frame.ndim == 2 else (frame.shape[2] if frame.ndim == 3 else 0)
        if frame.dtype == np.uint16:
            frame = (frame >> _SIXTEEN_TO_EIGHT_BITS_SHIFT).astype(np.uint8)
        if frame.dtype != np.uint8 or channels not in _TO_RGB or 0 in frame.shape:
            raise FrameSourceError(
                f"{self.name}: frame {self.frames_read} is a {frame.dtype} array of shape "
                f"{frame.shape}: expected a BGR, BGRA or grayscale image of 8 or 16 bits"
            )
        return cv2.cvtColor(frame, _TO_RGB[channels])

    def _stop_at_end(self) -> None:
        if self.announced_frames is not None and self.frames_read < self.announced_frames:
            self._stop(
                f"dropped after {self.frames_read} of {self.announced_frames} frames",
                dropped=True,
            )
        else:
            self._stop(f"end of stream after {self.frames_read} frames", dropped=False)

    def _stop(self, reason: str, dropped: bool) -> None:
        self.stop_reason = reason
        self.dropped = dropped

    def close(self) -> None:
        """Release the capture (also done when the iteration ends)."""
        self._capture.release()

    def __enter__(self) -> "LiveSource":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


def open_stream_input(inputs: Union[str, Sequence[str]]) -> Union[LiveSource, FrameSource]:
    """The source of an online run: a :class:`LiveSource` for one camera index, stream URL or
    video file; a :class:`FrameSource` for folders, globs or image files (read once in order).

    Raises:
        FrameSourceError: naming the input that cannot be read.
    """
    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    if len(inputs) == 1 and (is_camera_or_url(inputs[0]) or is_video_file(inputs[0])):
        return LiveSource(inputs[0])
    for item in inputs:
        if is_camera_or_url(item):
            raise FrameSourceError(
                f"input {item} is a camera or a stream: give it alone, not with other inputs"
            )
    return FrameSource(inputs)

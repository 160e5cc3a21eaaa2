"""Reading frames: the strict frame decoder, and frame sources for inference.

:func:`read_frame` is the one place where a frame file becomes pixels, for training and evaluation
(the clip mapper) and for the demo (:class:`FrameSource`). It is strict: a frame that does not
decode completely (truncated, or damaged data behind valid headers) is an error naming the file,
never a silently grey or smeared image. libjpeg only *warns* about damaged data ("Corrupt JPEG
data: ...", printed to stderr by OpenCV, swallowed by Pillow, and the damaged image returned
either way), so JPEGs are decoded with ``simplejpeg`` (libjpeg-turbo) with ``strict=True``, which
turns those warnings into errors in the same decode that produces the pixels: the check costs no
second pass (``benchmarks/benchmark_frame_reading.py``). The pixels equal Pillow's and OpenCV's
(the same libjpeg-turbo, same default DCT and upsampling). Other formats (PNG, ...) are decoded
by Pillow, whose ``load`` raises on truncated or broken data (unless the process set
``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``). The EXIF orientation is applied, as detectron2's
``read_image`` does.

Every frame comes out as 8-bit RGB, whatever the file holds:

- **16-bit** pixels (16-bit grayscale PNG / TIFF, Pillow's ``I;16`` modes, and ``I`` for a PNG,
  which has no 32-bit mode) keep their high byte: ``value >> 8``, as OpenCV's ``imread`` and
  Pillow's 16-bit colour decoding do (so one file gives the same pixels through either library),
  and the exact inverse of the usual 8 -> 16-bit widening ``v * 257``. Without this, Pillow's
  conversion clips every value above 255: a 16-bit frame read as all white.
- grayscale (``L``, ``1``), palette (``P``, ``PA``), ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` are
  converted by Pillow; an alpha channel (``LA``, ``RGBA``, ...) is dropped, as OpenCV's
  ``IMREAD_COLOR`` and detectron2's ``read_image`` drop it (transparent pixels keep their
  stored colour).
- 32-bit integer (``I`` outside PNG) and float (``F``) images have no fixed range to map to
  0..255: they are refused (:class:`UnsupportedFrameError`, naming the file and its mode).

A :class:`FrameSource` knows the number of frames and their size up front and yields RGB frames
one at a time, so a long video is never held in memory whole (the windowed inference consumes
it window by window). It can be iterated again (e.g. once to predict, once to draw).
"""

import glob
import io
import os
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
# Frame rate reported for frames given as images (they carry none); used when writing an .mp4.
DEFAULT_FPS = 6.0


IMAGE_FORMATS = ("RGB", "BGR")
# Pillow modes of 16-bit single-channel pixels; a PNG's "I" mode (older Pillow) holds them too.
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# 16-bit -> 8-bit: keep the high byte.
_SIXTEEN_TO_EIGHT_BITS_SHIFT = 8
_JPEG_SOI = b"\xff\xd8"
# An EXIF block (which may hold an orientation) starts with this; searched for in a JPEG's head.
_EXIF_HEADER = b"Exif\x00\x00"
_EXIF_SEARCH_BYTES = 1 << 16  # the APP1 segment holding EXIF comes first and is < 64 KiB
_EXIF_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transposition that makes the image upright (ImageOps.exif_transpose's).
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# JPEG colour spaces libjpeg-turbo converts to RGB itself; CMYK / YCCK ones go through Pillow.
_TURBO_COLORSPACES = ("Gray", "YCbCr", "RGB")


class FrameSourceError(ValueError):
    """The input cannot be read as a video; the message names the path and what was expected."""


class CorruptFrameError(OSError):
    """A frame file exists but does not decode completely (truncated, damaged, not an image)."""


class UnsupportedFrameError(CorruptFrameError):
    """A frame file decodes, but into pixels with no 8-bit RGB reading (32-bit, float)."""


def is_image_file(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def is_video_file(path: str) -> bool:
    return os.path.isfile(path) and path.lower().endswith(VIDEO_EXTENSIONS)


def read_frame(file_name: str, image_format: str = "RGB") -> np.ndarray:
    """Read one frame strictly, as an (H, W, 3) uint8 array in ``image_format`` channel order.

    Args:
        file_name (str): an image file (JPEG, PNG, ...).
        image_format (str): "RGB" or "BGR".

    16-bit images are scaled to 8 bits (``value >> 8``); alpha is dropped (see the module
    docstring).

    Raises:
        FileNotFoundError: naming the file when it does not exist.
        CorruptFrameError: naming the file and the decoder's complaint when it is not an image or
            does not decode completely (truncated, corrupt data: any libjpeg warning).
        UnsupportedFrameError: naming the file, for 32-bit integer and float images.
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}.")
    if not os.path.isfile(file_name):
        raise FileNotFoundError(f"Frame {file_name!r} does not exist.")
    with open(file_name, "rb") as f:
        data = f.read()
    if data.startswith(_JPEG_SOI):
        image = _decode_jpeg_strictly(file_name, data, image_format)
        if image is not None:
            return image
    return _read_with_pillow(file_name, data, image_format)


def _decode_jpeg_strictly(file_name: str, data: bytes, image_format: str) -> Optional[np.ndarray]:
    """libjpeg-turbo's decode of a JPEG, any warning an error; None for the colour spaces it
    does not convert to RGB (CMYK, YCCK: rare; Pillow decodes those, less strictly)."""
    try:
        if simplejpeg.decode_jpeg_header(data)[2] not in _TURBO_COLORSPACES:
            return None
        image = simplejpeg.decode_jpeg(data, colorspace=image_format, strict=True)
    except ValueError as e:  # simplejpeg's error for any libjpeg error or warning
        raise CorruptFrameError(
            f"Frame {file_name!r} is a damaged JPEG ({e}): it does not decode completely. "
            f"Re-extract or re-encode it (or remove the video from the dataset)."
        ) from None
    if data.find(_EXIF_HEADER, 0, _EXIF_SEARCH_BYTES) >= 0:
        image = _apply_exif_orientation(image, data)
    return image


def _apply_exif_orientation(image: np.ndarray, data: bytes) -> np.ndarray:
    """``image`` turned upright as the EXIF orientation of the JPEG ``data`` says."""
    with Image.open(io.BytesIO(data)) as header:  # parses the headers only, not the pixels
        orientation = header.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    if orientation not in _EXIF_TRANSPOSE:
        return image
    return np.asarray(Image.fromarray(image).transpose(_EXIF_TRANSPOSE[orientation]))


def _read_with_pillow(file_name: str, data: bytes, image_format: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # decodes everything now: raises on truncated or broken data
            mode, image_type = img.mode, img.format
            upright = ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CorruptFrameError(
            f"Frame {file_name!r} cannot be read as an image ({e}): expected a complete image "
            f"file ({', '.join(IMAGE_EXTENSIONS)})."
        ) from None
    array = _pillow_to_rgb8(upright, mode, image_type, file_name)
    return array[:, :, ::-1].copy() if image_format == "BGR" else array


def _pillow_to_rgb8(img: Image.Image, mode: str, image_type: str, file_name: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of a decoded image (see the module docstring)."""
    if mode in _SIXTEEN_BIT_MODES or (mode == "I" and image_type == "PNG"):
        gray = (np.asarray(img).astype(np.uint32) >> _SIXTEEN_TO_EIGHT_BITS_SHIFT).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("I", "F"):
        kind = "32-bit integer" if mode == "I" else "floating-point"
        raise UnsupportedFrameError(
            f"Frame {file_name!r} is a {kind} image (Pillow mode {mode}): its values have no "
            f"fixed range to read as 8-bit RGB; save it as an 8- or 16-bit image."
        )
    try:
        return np.asarray(img.convert("RGB"))
    except ValueError as e:  # Pillow has no conversion from this mode to RGB
        raise UnsupportedFrameError(
            f"Frame {file_name!r} has pixels of Pillow mode {mode}, which cannot be converted "
            f"to RGB ({e}); save it as an 8-bit RGB or grayscale image."
        ) from None


def read_image_rgb(path: str) -> np.ndarray:
    """One image file as an (H, W, 3) uint8 RGB array (:func:`read_frame`), with the errors of a
    :class:`FrameSource`."""
    try:
        return read_frame(path, "RGB")
    except FileNotFoundError:
        raise FrameSourceError(f"frame file not found: {path}") from None
    except CorruptFrameError as e:  # its message names the file
        raise FrameSourceError(str(e)) from None


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
        if count < self.num_frames:
            # The rule of the live sources too (LiveSource.dropped): a file that ends before the
            # frame count its container announces is truncated or damaged, not a shorter video.
            raise FrameSourceError(
                f"video file {self.path} ended after {count} of its {self.num_frames} frames (a "
                "truncated or damaged file?)"
            )
        self.num_frames = count  # a container may announce fewer frames than it holds

    def frame_names(self) -> List[str]:
        """A file name per frame: the frames' own, or ``%05d.jpg`` for a video file."""
        if self.file_names:
            return [os.path.basename(name) for name in self.file_names]
        return [f"{i:05d}.jpg" for i in range(self.num_frames)]

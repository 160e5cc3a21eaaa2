"""What a frame in memory must be to enter the model: one check for every entry point.

Every inference entry point calls :func:`check_frame` (through :func:`check_video_frames` or
:func:`check_video_frame`) on each frame before it reaches the network: the whole-video forward
(``model([{"image": frames}])``), :meth:`VideoMaskFormer.predict_window`,
:meth:`VideoMaskFormer.inference_windowed` and :func:`windowed_inference`, and
:meth:`VideoStream.push`; so the three inference modes accept and refuse exactly the same frames.

**Accepted frames** (RGB, pixel values on the 0..255 scale):

- a ``numpy.ndarray`` of shape (H, W, 3), or a ``torch.Tensor`` of shape (3, H, W) (any device);
- dtype ``uint8`` (checked by its dtype only: no pass over the pixels), or a float dtype or a
  signed integer dtype (``int64``, e.g. ``torch.randint``'s default) whose values are finite and
  within 0..255 (one min / max pass).

**Refused**, each with a one-line :class:`FrameError` naming the frame and what to do:

- another type, or another layout: (H, W) or (1, H, W) grayscale, (H, W, 4) or (4, H, W) RGBA,
  an (H, W, 3) tensor or a (3, H, W) array (the layouts are not guessed: an (H, W, 3) tensor is
  ambiguous whenever H == 3), a batch (4-D), an empty (0 x W, H x 0) frame;
- ``uint16`` / ``uint32`` / ``uint64`` frames whatever their values (their dtype says 16- or
  32-bit pixels, which read as 8-bit values would be far too bright), ``bool`` and complex ones;
- NaN or infinite values; values below 0 or above 255 (e.g. normalised or 16-bit pixels);
- float frames whose values all lie in 0..1 but are not all 0: the 0..1 scale of many image
  libraries, which the model would see as an almost black frame and find nothing in. An all-zero
  frame is accepted: it is the same black frame on both scales. A genuine 0..255 float frame
  whose maximum is at most 1 (nearly black) is refused too; passing it as ``uint8`` is exact.

**One size per video.** All frames of one video (one call, one window, one stream) must have the
size of its first frame; a frame of another size is a :class:`FrameSizeError` naming its index
and both sizes. Frames are not resized: the masks come back at one output size, and a frame of
another size would get masks that do not line up with its pixels.
"""

from typing import Iterable, Iterator, Optional, Tuple

import numpy as np
import torch

# The largest value of an 8-bit pixel.
MAX_PIXEL_VALUE = 255.0
# Unsigned integer dtypes wider than 8 bits: their pixels are not on the 0..255 scale.
_WIDE_UNSIGNED_NUMPY = (np.uint16, np.uint32, np.uint64)
_WIDE_UNSIGNED_TORCH = tuple(
    getattr(torch, name) for name in ("uint16", "uint32", "uint64") if hasattr(torch, name)
)


class FrameError(ValueError):
    """A frame that the model cannot take: the message names the frame and what was expected."""


class FrameSizeError(FrameError):
    """A frame of a video whose size differs from the video's first frame."""


def frame_size(frame, where: str) -> Tuple[int, int]:
    """(H, W) of a frame with an accepted type and layout (see the module docstring); its dtype
    and values are not checked.

    Args:
        frame: an (H, W, 3) numpy array or a (3, H, W) tensor.
        where (str): names the frame in errors, e.g. ``"frame 3 of the stream"``.

    Raises:
        FrameError: another type, layout or an empty frame.
    """
    if isinstance(frame, np.ndarray):
        height, width = _array_layout(frame, where)
    elif isinstance(frame, torch.Tensor):
        height, width = _tensor_layout(frame, where)
    else:
        shape = getattr(frame, "shape", getattr(frame, "size", None))
        raise FrameError(
            f"{where} is a {type(frame).__module__}.{type(frame).__name__}"
            f"{'' if shape is None else f' of size {shape}'}: expected an (H, W, 3) uint8 RGB "
            f"numpy array or a (3, H, W) RGB tensor (0..255); convert it with np.asarray(...)"
        )
    if height == 0 or width == 0:
        raise FrameError(
            f"{where} is empty ({width}x{height} pixels): expected a frame with pixels"
        )
    return height, width


def _array_layout(frame: np.ndarray, where: str) -> Tuple[int, int]:
    shape = tuple(frame.shape)
    if frame.ndim == 3 and shape[2] == 3:
        return shape[0], shape[1]
    if frame.ndim == 2 or (frame.ndim == 3 and shape[2] == 1):
        hint = "grayscale: make it RGB, e.g. np.repeat(frame[..., None], 3, axis=2)"
    elif frame.ndim == 3 and shape[2] == 4:
        hint = "RGBA: drop the alpha channel, frame[..., :3]"
    elif frame.ndim == 3 and shape[0] in (1, 3, 4):
        hint = "channels first: numpy frames are (H, W, 3), frame.transpose(1, 2, 0)"
    elif frame.ndim == 4:
        hint = "a batch: give the frames one by one (a list of frames)"
    else:
        hint = "not an RGB image"
    raise FrameError(f"{where} is a numpy array of shape {shape} ({hint}): expected (H, W, 3) RGB")


def _tensor_layout(frame: torch.Tensor, where: str) -> Tuple[int, int]:
    shape = tuple(frame.shape)
    if frame.ndim == 3 and shape[0] == 3:
        return shape[1], shape[2]
    if frame.ndim == 2 or (frame.ndim == 3 and shape[0] == 1):
        hint = "grayscale: make it RGB, e.g. frame.expand(3, H, W)"
    elif frame.ndim == 3 and shape[0] == 4:
        hint = "RGBA: drop the alpha channel, frame[:3]"
    elif frame.ndim == 3 and shape[2] in (3, 4):
        hint = "channels last: tensors are (3, H, W), frame.permute(2, 0, 1)"
    elif frame.ndim == 4:
        hint = "a batch: give the frames one by one (a list of frames)"
    else:
        hint = "not an RGB image"
    raise FrameError(f"{where} is a tensor of shape {shape} ({hint}): expected (3, H, W) RGB")


def check_frame(frame, where: str) -> Tuple[int, int]:
    """Check one frame (type, layout, dtype, values; see the module docstring).

    Cheap: a ``uint8`` frame is checked by its shape and dtype only; other dtypes cost one min /
    max pass; nothing is copied.

    Args:
        frame: an (H, W, 3) numpy array or a (3, H, W) tensor, RGB, 0..255.
        where (str): names the frame in errors, e.g. ``"frame 3 of the stream"``.

    Returns:
        tuple: (H, W).

    Raises:
        FrameError: a one-line message naming ``where`` and what to do.
    """
    size = frame_size(frame, where)
    if isinstance(frame, np.ndarray):
        dtype, is_float = frame.dtype, np.issubdtype(frame.dtype, np.floating)
        if dtype == np.uint8:
            return size
        if dtype.type in _WIDE_UNSIGNED_NUMPY or not (is_float or np.issubdtype(dtype, np.integer)):
            _refuse_dtype(dtype, where)
        low, high = float(frame.min()), float(frame.max())
    else:
        dtype, is_float = frame.dtype, frame.is_floating_point()
        if dtype == torch.uint8:
            return size
        if dtype in _WIDE_UNSIGNED_TORCH or dtype == torch.bool or frame.is_complex():
            _refuse_dtype(dtype, where)
        low, high = (float(v) for v in torch.aminmax(frame))
    _check_values(low, high, is_float, dtype, where)
    return size


def _refuse_dtype(dtype, where: str) -> None:
    raise FrameError(
        f"{where} has dtype {dtype}: expected uint8 RGB pixels (0..255); convert it to uint8 "
        f"(16-bit pixels: (frame >> 8).astype(np.uint8))"
    )


def _check_values(low: float, high: float, is_float: bool, dtype, where: str) -> None:
    """Refuse non-finite values, values outside 0..255 and float frames on the 0..1 scale."""
    if not (np.isfinite(low) and np.isfinite(high)):
        raise FrameError(
            f"{where} ({dtype}) has NaN or infinite values: expected finite pixels in 0..255"
        )
    if low < 0 or high > MAX_PIXEL_VALUE:
        raise FrameError(
            f"{where} ({dtype}) has values in {low:g}..{high:g}: expected raw RGB pixels in "
            f"0..255 (not normalised, not 16-bit); convert it to uint8"
        )
    if is_float and 0 < high <= 1.0:
        raise FrameError(
            f"{where} ({dtype}) has all its values in 0..1 (max {high:g}): it looks like a 0..1 "
            f"image; multiply it by 255 (a nearly black 0..255 frame: pass it as uint8)"
        )


def check_video_frame(
    frame, index: int, first_size: Optional[Tuple[int, int]], what: str
) -> Tuple[int, int]:
    """Check frame ``index`` of a video with :func:`check_frame`, and that it has the size of the
    video's first frame.

    Args:
        frame: the frame.
        index (int): its position in the video (0-based), for errors.
        first_size (tuple, optional): (H, W) of frame 0; None when ``frame`` is frame 0.
        what (str): names the video in errors, e.g. ``"the stream"``.

    Returns:
        tuple: (H, W) of the frame.

    Raises:
        FrameError: see :func:`check_frame`.
        FrameSizeError: the frame's size differs from ``first_size``.
    """
    size = check_frame(frame, f"frame {index} of {what}")
    if first_size is not None and size != tuple(first_size):
        raise size_mismatch_error(index, size, first_size, what)
    return size


def size_mismatch_error(
    index: int, size: Tuple[int, int], first_size: Tuple[int, int], what: str
) -> FrameSizeError:
    """The :class:`FrameSizeError` of frame ``index`` of ``what`` (of ``size``, not frame 0's)."""
    return FrameSizeError(
        f"frame {index} of {what} is {size[1]}x{size[0]} (width x height), frame 0 is "
        f"{first_size[1]}x{first_size[0]}: all frames of a video must have one size; resize "
        f"them to one size first (or start a new video / stream)"
    )


def check_video_frames(frames: Iterable, what: str) -> Iterator:
    """Yield the frames of one video, each checked with :func:`check_video_frame` just before it
    is yielded (lazily: a generator reading frames from disk stays one)."""
    first_size = None
    for index, frame in enumerate(frames):
        size = check_video_frame(frame, index, first_size, what)
        first_size = size if first_size is None else first_size
        yield frame


def as_chw_tensor(frame) -> torch.Tensor:
    """A (3, H, W) tensor of an accepted frame (a tensor is returned as it is; an (H, W, 3) array
    is transposed, its dtype kept). Does not check the frame: see :func:`check_frame`."""
    if isinstance(frame, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(frame.transpose(2, 0, 1)))
    return frame

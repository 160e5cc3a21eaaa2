"""Reading the frames of a video input and writing visualised frames (OpenCV / NumPy only).

Frames are (H, W, 3) uint8 arrays in RGB order.
"""
import glob
import os
from typing import List, Sequence, Tuple

import cv2
import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DEFAULT_FPS",
    "list_frame_files",
    "read_image",
    "read_input",
    "write_frames",
    "write_video",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
# Frame rate of an output video made from a folder of frames (which has none of its own).
DEFAULT_FPS = 6.0


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def list_frame_files(inputs: Sequence[str]) -> List[str]:
    """Frame files of ``inputs``: a folder (its images in name order), a glob, or image files.

    Raises:
        FileNotFoundError: when a folder has no image, a glob matches nothing or a file is missing.
    """
    files: List[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, f) for f in os.listdir(item) if _is_image(f))
            if not found:
                raise FileNotFoundError(
                    f"Folder {item!r} has no frames (image files ending in {IMAGE_EXTENSIONS})."
                )
            files.extend(found)
        elif glob.has_magic(item):
            found = sorted(f for f in glob.glob(os.path.expanduser(item)) if _is_image(f))
            if not found:
                raise FileNotFoundError(f"Pattern {item!r} matches no image file.")
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise FileNotFoundError(f"Input {item!r} does not exist.")
    return files


def read_image(path: str) -> np.ndarray:
    """One frame file as RGB; raises ``OSError`` naming the file when it cannot be decoded."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"Cannot read frame {path!r} as an image.")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_video(path: str) -> Tuple[List[np.ndarray], float]:
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise OSError(f"Cannot open video {path!r}.")
    fps = capture.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise OSError(f"Video {path!r} has no readable frame.")
    return frames, float(fps)


def read_input(inputs: Sequence[str], progress=None) -> Tuple[List[np.ndarray], List[str], float]:
    """All frames of the input, their names, and its frame rate.

    Args:
        inputs (sequence of str): one video file, or folders / globs / image files (frames).
        progress (callable, optional): wraps the iterable of frame files (e.g. ``tqdm``).

    Returns:
        tuple: frames (list of (H, W, 3) uint8 RGB, all the same size), frame names (file names,
        or ``"%05d.jpg"`` for a video), frames per second (``DEFAULT_FPS`` for image frames).

    Raises:
        FileNotFoundError / OSError / ValueError: naming the input or frame that is wrong.
    """
    if len(inputs) == 1 and os.path.isfile(inputs[0]) and inputs[0].lower().endswith(
        VIDEO_EXTENSIONS
    ):
        frames, fps = _read_video(inputs[0])
        return frames, [f"{i:05d}.jpg" for i in range(len(frames))], fps
    files = list_frame_files(inputs)
    iterator = progress(files) if progress is not None else files
    frames = [read_image(f) for f in iterator]
    for f, frame in zip(files, frames):
        if frame.shape != frames[0].shape:
            raise ValueError(
                f"Frame {f!r} is {frame.shape[1]}x{frame.shape[0]}, but {files[0]!r} is "
                f"{frames[0].shape[1]}x{frames[0].shape[0]}: all frames of a video need one size."
            )
    return frames, [os.path.basename(f) for f in files], DEFAULT_FPS


def write_frames(frames: Sequence[np.ndarray], names: Sequence[str], folder: str) -> List[str]:
    """Write RGB frames into ``folder`` under ``names`` (as ``.jpg`` unless an image extension)."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for frame, name in zip(frames, names):
        if not _is_image(name):
            name = os.path.splitext(name)[0] + ".jpg"
        path = os.path.join(folder, name)
        if not cv2.imwrite(path, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
            raise OSError(f"Cannot write frame {path!r}.")
        paths.append(path)
    return paths


def write_video(frames: Sequence[np.ndarray], path: str, fps: float) -> str:
    """Write RGB frames as an ``.mp4`` (codec mp4v) at ``fps`` frames per second."""
    if not frames:
        raise ValueError(f"No frame to write to {path!r}.")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write the video {path!r} (codec mp4v).")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path

"""Writing a converted dataset in the YouTube-VIS layout, and what every converter shares.

A converter (:mod:`.png_masks`, :mod:`.cvat`, :mod:`.mots`) reads its format into
:class:`VideoAnnotations` (one per video: its frame files in order, its size, one :class:`Track` per
object with a compressed RLE or None per frame), checking everything on the way; then
:func:`write_ytvis` writes::

    DIR/JPEGImages/<video>/<frame>.jpg    # the input frames in order: JPEGs copied (or
                                          # hard-linked), other images (PNG, ...) re-encoded as
                                          # JPEG at quality JPEG_QUALITY; <frame> is the input
                                          # file's name without its extension
    DIR/annotations.json                  # written last, atomically (file_io.atomic_write)

``annotations.json`` holds ``videos`` (id, width, height, length, file_names relative to
``DIR/JPEGImages``), ``annotations`` (per track: ``segmentations`` as compressed RLE per frame,
null where the object is absent, ``areas`` and ``bboxes`` likewise, ``iscrowd`` 0) and
``categories``. Video ids are 1.. in the order given, annotation ids 1.. in video then track
order. Each input video keeps its name as its folder name. The file is checked with the
YouTube-VIS reader (:func:`video_mask2former.data.ytvis.check_ytvis_dataset`) before it is written.

Frames are re-encoded as JPEG, not kept as PNG, although the loader reads PNG too
(:func:`video_mask2former.data.frames.read_frame`): the YouTube-VIS layout and the tools that
read it (other codebases, the official evaluation scripts) expect ``.jpg`` frames.
"""

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
from PIL import Image

from ... import file_io
from ..frames import IMAGE_EXTENSIONS, read_frame
from ..ytvis_checks import check_ytvis_dataset

__all__ = [
    "ConversionError",
    "JPEG_QUALITY",
    "Track",
    "VideoAnnotations",
    "build_dataset",
    "check_frame_size",
    "check_frames",
    "check_output",
    "encode_mask",
    "frame_size",
    "list_frames",
    "write_ytvis",
]

logger = logging.getLogger(__name__)

# Quality of the JPEGs written for frames that are not JPEGs (PNG, ...): visually lossless.
JPEG_QUALITY = 95
# Name of the annotation file in the output folder (``--json`` gives another).
ANNOTATIONS_NAME = "annotations.json"
IMAGES_FOLDER = "JPEGImages"
_JPEG_EXTENSIONS = (".jpg", ".jpeg")
_EXIF_ORIENTATION_TAG = 0x0112
# EXIF orientations that turn the image by 90 degrees (the loader shows it upright: H and W swap).
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


class ConversionError(ValueError):
    """An input of a converter is not what its format says; the message names the file, the
    video and the frame."""


@dataclass
class Track:
    """One object of a video.

    Attributes:
        category (str): its category name.
        segmentations (list): one compressed RLE dict (``counts`` a str) or None per frame.
        source (str): where it comes from, for messages (e.g. "object 3", "track 0 of a.xml").
    """

    category: str
    segmentations: List[Optional[dict]]
    source: str = ""


@dataclass
class VideoAnnotations:
    """One converted video.

    Attributes:
        name (str): the video's name: its folder under ``JPEGImages``.
        frame_files (list[str]): the input frame files, in order (T).
        height, width (int): the size of every frame.
        tracks (list[Track]): its objects.
    """

    name: str
    frame_files: List[str]
    height: int
    width: int
    tracks: List[Track] = field(default_factory=list)


def list_frames(folder: str, what: str = "frames") -> List[str]:
    """The image files of ``folder`` in name order.

    Raises:
        ConversionError: the folder does not exist or holds no image file.
    """
    if not os.path.isdir(folder):
        raise ConversionError(f"{what} folder {folder} does not exist")
    files = sorted(
        os.path.join(folder, n) for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not files:
        raise ConversionError(
            f"{what} folder {folder} holds no image file ({', '.join(IMAGE_EXTENSIONS)})"
        )
    return files


def frame_size(path: str) -> Tuple[int, int]:
    """(H, W) of a frame as the loader reads it (upright after its EXIF orientation), from the
    file's header only.

    Raises:
        ConversionError: naming the file when it is not an image.
    """
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = img.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except (OSError, SyntaxError, ValueError) as e:
        raise ConversionError(f"frame {path} cannot be read as an image ({e})") from None
    if orientation in _TRANSPOSING_ORIENTATIONS:
        height, width = width, height
    return height, width


def check_frame_size(
    size: Tuple[int, int], frame: str, what: str, video: str, frame_index: int
) -> None:
    """Raise a :class:`ConversionError` when ``what`` (a mask, a MOTS line, ...) has another
    (H, W) ``size`` than its ``frame`` file; the message names both, the video and the frame."""
    expected = frame_size(frame)
    if tuple(size) != expected:
        raise ConversionError(
            f"{what} is {size[1]}x{size[0]} (WxH), but its frame {frame} is "
            f"{expected[1]}x{expected[0]} (video {video!r}, frame {frame_index}): masks must have "
            f"the size of their frame"
        )


def encode_mask(mask: np.ndarray) -> Optional[dict]:
    """A (H, W) bool mask as a compressed RLE dict (``counts`` a str), None when it is empty."""
    if not mask.any():
        return None
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _check_videos(videos: Sequence[VideoAnnotations]) -> None:
    """Names usable as folders, unique; output frame names unique within each video."""
    seen = set()
    for video in videos:
        name = video.name
        if not name or name in (".", "..") or "/" in name or os.sep in name:
            raise ConversionError(f"video name {name!r} cannot be a folder name")
        if name in seen:
            raise ConversionError(f"two input videos are named {name!r}")
        seen.add(name)
        stems: Dict[str, str] = {}
        for path in video.frame_files:
            stem = os.path.splitext(os.path.basename(path))[0]
            if stem in stems:
                raise ConversionError(
                    f"video {name!r}: frames {stems[stem]} and {path} would both be written as "
                    f"{stem}.jpg"
                )
            stems[stem] = path
        for track in video.tracks:
            if len(track.segmentations) != len(video.frame_files):
                raise ConversionError(
                    f"video {name!r}, {track.source}: {len(track.segmentations)} segmentations "
                    f"for {len(video.frame_files)} frames"
                )


def _annotation(track: Track, ann_id: int, video_id: int, category_id: int) -> dict:
    areas, bboxes = [], []
    for segm in track.segmentations:
        if segm is None:
            areas.append(None)
            bboxes.append(None)
            continue
        rle = {"size": segm["size"], "counts": segm["counts"].encode("ascii")}
        areas.append(int(mask_util.area(rle)))
        bboxes.append([float(v) for v in mask_util.toBbox(rle)])
    return {
        "id": ann_id,
        "video_id": video_id,
        "category_id": category_id,
        "iscrowd": 0,
        "segmentations": list(track.segmentations),
        "areas": areas,
        "bboxes": bboxes,
    }


def build_dataset(
    videos: Sequence[VideoAnnotations], categories: Sequence[Tuple[int, str]]
) -> dict:
    """The YouTube-VIS dict of ``videos`` (see the module docstring), checked by the reader.

    Args:
        videos: the converted videos.
        categories: (id, name) of every category; each track's category must be among them.
    """
    _check_videos(videos)
    category_ids = {name: cid for cid, name in categories}
    out_videos, annotations = [], []
    for video_id, video in enumerate(videos, start=1):
        names = [
            f"{video.name}/{os.path.splitext(os.path.basename(p))[0]}.jpg"
            for p in video.frame_files
        ]
        out_videos.append(
            {
                "id": video_id,
                "width": video.width,
                "height": video.height,
                "length": len(names),
                "file_names": names,
            }
        )
        for track in video.tracks:
            if track.category not in category_ids:
                raise ConversionError(
                    f"video {video.name!r}, {track.source}: category {track.category!r} is not "
                    f"among the categories {sorted(category_ids)}"
                )
            annotations.append(
                _annotation(track, len(annotations) + 1, video_id, category_ids[track.category])
            )
    dataset = {
        "videos": out_videos,
        "annotations": annotations,
        "categories": [{"id": cid, "name": name} for cid, name in categories],
    }
    check_ytvis_dataset(dataset, "<converted dataset>")
    return dataset


def check_frames(videos: Sequence[VideoAnnotations]) -> None:
    """Every frame file exists and has its video's size (read from the headers only).

    Raises:
        ConversionError: naming the frame, the video and the frame index.
    """
    for video in videos:
        for t, path in enumerate(video.frame_files):
            if not os.path.isfile(path):
                raise ConversionError(f"frame {path} (video {video.name!r}, frame {t}) is missing")
            size = frame_size(path)
            if size != (video.height, video.width):
                raise ConversionError(
                    f"frame {path} (video {video.name!r}, frame {t}) is {size[1]}x{size[0]} "
                    f"(WxH), the video's other frames are {video.width}x{video.height}"
                )


def _write_frame(source: str, target: str, link: bool) -> None:
    """``source`` as the JPEG ``target``: copied or hard-linked when it is a JPEG, else decoded
    (strictly, :func:`read_frame`) and re-encoded at JPEG_QUALITY."""
    if os.path.lexists(target):
        os.remove(target)
    if source.lower().endswith(_JPEG_EXTENSIONS):
        if link:
            try:
                os.link(source, target)
                return
            except OSError:  # another file system, or links not allowed: copy instead
                pass
        shutil.copyfile(source, target)
        return
    Image.fromarray(read_frame(source, "RGB")).save(target, format="JPEG", quality=JPEG_QUALITY)


def check_output(out_dir: str, json_file: Optional[str] = None) -> str:
    """Check that ``out_dir`` (and ``json_file``) can be written; returns the JSON's path.

    Call it before reading the inputs. Raises an ``OSError`` naming the location.
    """
    file_io.check_writable(out_dir, folder=True)
    json_path = json_file or os.path.join(out_dir, ANNOTATIONS_NAME)
    if json_file is not None:
        file_io.check_writable(json_file, create_folders=False)
    return json_path


def write_ytvis(
    out_dir: str,
    videos: Sequence[VideoAnnotations],
    categories: Sequence[Tuple[int, str]],
    *,
    json_file: Optional[str] = None,
    link: bool = False,
) -> str:
    """Write ``videos`` in the YouTube-VIS layout under ``out_dir`` (see the module docstring).

    The dataset is built and checked before anything is written; the frames are written first
    and the annotation file last, atomically, so an existing file is replaced only by a
    complete one.

    Args:
        out_dir (str): the output folder (created when missing).
        videos: the converted videos (their frame files are read here).
        categories: (id, name) of the categories.
        json_file (str, optional): where to write the annotations (default
            ``out_dir/annotations.json``).
        link (bool): hard-link JPEG frames instead of copying them (copied when linking fails).

    Returns:
        str: the path of the annotation file.
    """
    json_path = check_output(out_dir, json_file)
    dataset = build_dataset(videos, categories)
    check_frames(videos)
    image_root = os.path.join(out_dir, IMAGES_FOLDER)
    for video, record in zip(videos, dataset["videos"]):
        os.makedirs(os.path.join(image_root, video.name), exist_ok=True)
        for source, name in zip(video.frame_files, record["file_names"]):
            _write_frame(source, os.path.join(image_root, name), link)
    data = json.dumps(dataset).encode("utf-8")
    file_io.atomic_write(json_path, lambda f: f.write(data))
    num_tracks = len(dataset["annotations"])
    logger.info(
        f"Wrote {len(videos)} videos, {num_tracks} objects and {len(categories)} categories: "
        f"{json_path} (frames under {image_root})"
    )
    return json_path

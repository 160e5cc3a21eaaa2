"""Video predictions <-> YouTube-VIS ``results.json``: encoding, atomic writes, zip, checks.

Shapes: T frames, H x W frame size (the size the video is annotated at), N predictions of a video.

A ``results.json`` is the list the YouTube-VIS evaluation servers accept: one entry per predicted
instance track::

    {"video_id": int, "category_id": int (the dataset's id, not the contiguous one), "score": float,
     "segmentations": [T compressed RLEs {"size": [H, W], "counts": str}]}

The server wants a zip holding ``results.json`` at its top level. :func:`save_results` writes the
two as a pair, so that a kill never leaves a stale zip beside a new json. Results read from a file
are checked (:func:`validate_results`): types, ids, frame counts, and that every RLE string covers
exactly H x W pixels (pycocotools would silently read past a corrupt one).
"""

import glob
import io
import json
import math
import os
import zipfile
from dataclasses import dataclass
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..data.rle import RLEValidator

# one error type for every YouTube-VIS format problem (annotation files and results files)
from ..data.ytvis import YTVISFormatError, is_int
from ..file_io import atomic_write, remove_temporaries
from ..structures import RLEVideoMask, encode_masks

RESULTS_FILE_NAME = "results.json"
SUBMISSION_ZIP_NAME = "results.zip"


@dataclass(frozen=True)
class VideoSpec:
    """What a result for one video must match: its frame count and frame size."""

    length: int
    height: int
    width: int


# ---------------------------------------------------------------------------------------------
# Model output -> results entries
# ---------------------------------------------------------------------------------------------


def encode_mask_frames(masks: Union[torch.Tensor, np.ndarray, RLEVideoMask]) -> List[dict]:
    """Encode one instance track as one compressed RLE per frame.

    Args:
        masks (Tensor, ndarray or RLEVideoMask): (T, H, W) bool (or 0/1) masks of one instance,
            or the already run-length-encoded masks of the windowed inference.

    Returns:
        list[dict]: T RLEs ``{"size": [H, W], "counts": str}`` (counts decoded as UTF-8 so that the
        entry is JSON-serialisable).
    """
    if isinstance(masks, RLEVideoMask):
        rles = masks.rles
    else:
        masks = torch.as_tensor(masks)
        if masks.ndim != 3:
            raise ValueError(f"expected (T, H, W) masks, got shape {tuple(masks.shape)}")
        rles = encode_masks(masks.detach() != 0)
    return [
        {
            "size": [int(s) for s in r["size"]],
            "counts": (
                r["counts"].decode("utf-8") if isinstance(r["counts"], bytes) else r["counts"]
            ),
        }
        for r in rles
    ]


def video_predictions_to_results(
    video_id: int,
    prediction: Mapping,
    *,
    contiguous_to_dataset_id: Union[Mapping[int, int], Sequence[int]],
) -> List[dict]:
    """Convert one video's predictions (official eval output format) to ``results.json`` entries.

    Args:
        video_id (int): the dataset's id of the video.
        prediction (dict): ``{"image_size": (H, W), "pred_scores": list[float] (N,),
            "pred_labels": list[int] (N,) contiguous class ids, "pred_masks": N (T, H, W) bool
            tensors}``.
        contiguous_to_dataset_id (dict or sequence): contiguous class id -> the dataset's
            category id (e.g. ``{0: 1, 1: 2, ...}`` for YouTube-VIS).

    Returns:
        list[dict]: N entries ``{"video_id", "score", "category_id", "segmentations"}``.
    """
    scores, labels, masks = (prediction[k] for k in ("pred_scores", "pred_labels", "pred_masks"))
    if not len(scores) == len(labels) == len(masks):
        raise ValueError(
            f"video {video_id}: pred_scores ({len(scores)}), pred_labels ({len(labels)}) and "
            f"pred_masks ({len(masks)}) must have the same length"
        )
    entries = []
    for score, label, track in zip(scores, labels, masks):
        label = int(label)
        try:
            category_id = contiguous_to_dataset_id[label]
        except (KeyError, IndexError):
            raise ValueError(
                f"video {video_id}: predicted class {label} has no dataset category id "
                f"(the mapping covers {len(contiguous_to_dataset_id)} classes)"
            ) from None
        entries.append(
            {
                "video_id": int(video_id),
                "score": float(score),
                "category_id": int(category_id),
                "segmentations": encode_mask_frames(track),
            }
        )
    return entries


# ---------------------------------------------------------------------------------------------
# Atomic writing
# ---------------------------------------------------------------------------------------------


def _json_bytes(results: Sequence[dict]) -> bytes:
    return json.dumps(list(results)).encode("utf-8")


def _zip_bytes(json_bytes: bytes) -> bytes:
    """A zip holding ``json_bytes`` as ``results.json`` at its top level (the server's layout)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(RESULTS_FILE_NAME, json_bytes)
    return buffer.getvalue()


def _replace_file(path: str, content: bytes) -> None:
    """Atomically (re)place ``path`` with ``content``, after removing the temporaries that a
    killed earlier write of ``path`` left.

    See :func:`video_mask2former.file_io.atomic_write`: a hidden temporary beside ``path``,
    fsynced, then renamed; the file gets the usual mode (0666 minus the umask).
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _remove_leftovers(path)
    atomic_write(path, lambda f: f.write(content))


def _remove_leftovers(path: str) -> None:
    folder, name = os.path.split(os.path.abspath(path))
    remove_temporaries(folder, glob.escape(name))


def write_results_json(results: Sequence[dict], path: str) -> str:
    """Write ``results`` to ``path`` atomically (a temporary file beside it, then a rename).

    Returns:
        str: ``path``.
    """
    _replace_file(path, _json_bytes(results))
    return path


def write_submission_zip(results_json: str, zip_path: str) -> str:
    """Zip ``results_json`` as ``results.json`` at the archive's top level, written atomically.

    Returns:
        str: ``zip_path``.
    """
    with open(results_json, "rb") as f:
        _replace_file(zip_path, _zip_bytes(f.read()))
    return zip_path


def save_results(results: Sequence[dict], output_dir: str) -> Tuple[str, str]:
    """Write ``output_dir/results.json`` and the server submission ``output_dir/results.zip`` as a
    pair: a ``results.zip`` is never left beside a ``results.json`` it does not hold.

    How: both contents are built in memory first (a results entry that cannot be serialised
    fails here, leaving the previous pair untouched). Then the temporaries that a killed earlier
    save left are removed, and, in this order, the previous ``results.zip`` is deleted, the json
    is written atomically and the zip last (each: a hidden temporary beside the target, fsynced,
    renamed over it).

    Why this order: a process killed at any point leaves the old pair, the old json alone, the
    new json alone, or the new pair. The zip is what users upload, so it is the file that must
    never be stale: it exists only while it matches the json beside it. A missing zip is noticed
    (and the next run writes it); a stale one would be uploaded silently, which is what writing
    the two files one after the other, without deleting the old zip first, allowed.

    Only one process may write to ``output_dir`` at a time (the main process of a distributed
    evaluation does).

    Returns:
        tuple[str, str]: the paths of the JSON file and of the zip.
    """
    json_path = os.path.join(output_dir, RESULTS_FILE_NAME)
    zip_path = os.path.join(output_dir, SUBMISSION_ZIP_NAME)
    json_bytes = _json_bytes(results)
    zip_bytes = _zip_bytes(json_bytes)
    os.makedirs(output_dir, exist_ok=True)
    for path in (json_path, zip_path):
        _remove_leftovers(path)
    if os.path.lexists(zip_path):
        os.remove(zip_path)
    _replace_file(json_path, json_bytes)
    _replace_file(zip_path, zip_bytes)
    return json_path, zip_path


# ---------------------------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------------------------


def read_json(path: str, what: str):
    """``json.load`` with an error naming the file (``what`` says which file it is)."""
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise YTVISFormatError(f"cannot read {what} {path}: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise YTVISFormatError(f"{what} {path} is not valid JSON: {e}") from None


def _check_entry(index: int, entry, videos: Mapping[int, VideoSpec], category_ids, source: str):
    """Check the fields of one results entry; returns its video's spec."""
    where = f"{source}: entry {index}"
    if not isinstance(entry, dict):
        raise YTVISFormatError(f"{where} is a {type(entry).__name__}, expected a dict")
    missing = [k for k in ("video_id", "category_id", "score", "segmentations") if k not in entry]
    if missing:
        raise YTVISFormatError(
            f"{where} (video {entry.get('video_id')!r:.40}) lacks the keys {missing}"
        )
    video_id = entry["video_id"]
    if not is_int(video_id):
        raise YTVISFormatError(
            f"{where}: video_id {video_id!r:.60} is a {type(video_id).__name__}, expected an "
            f"integer video id"
        )
    where = f"{where} (video {video_id})"
    if video_id not in videos:
        raise YTVISFormatError(f"{where}: video id {video_id!r} is not in the ground truth")
    category_id = entry["category_id"]
    if not is_int(category_id):
        raise YTVISFormatError(
            f"{where}: category_id {category_id!r:.60} is a {type(category_id).__name__}, "
            f"expected an integer category id"
        )
    if category_ids is not None and category_id not in category_ids:
        raise YTVISFormatError(
            f"{where}: category_id {category_id!r} is not a category of the dataset "
            f"({sorted(category_ids)}); results must use the dataset's ids, not contiguous ones"
        )
    score = entry["score"]
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise YTVISFormatError(f"{where}: score {score!r:.60} is not a finite number")
    spec = videos[video_id]
    segs = entry["segmentations"]
    if not isinstance(segs, list) or len(segs) != spec.length:
        found = len(segs) if isinstance(segs, list) else type(segs).__name__
        raise YTVISFormatError(
            f"{where}: has {found} segmentations, expected one per frame ({spec.length} frames)"
        )
    for t, seg in enumerate(segs):
        if seg is None:  # the official loader treats a missing frame as an empty mask
            continue
        if not isinstance(seg, dict) or not isinstance(seg.get("counts"), (str, bytes)):
            raise YTVISFormatError(
                f"{where}, frame {t}: expected a compressed RLE {{'size': [H, W], 'counts': str}}"
            )
        size = seg.get("size")
        if not isinstance(size, (list, tuple)) or list(size) != [spec.height, spec.width]:
            raise YTVISFormatError(
                f"{where}, frame {t}: RLE size {size!r:.60} is not the video's size "
                f"[{spec.height}, {spec.width}]"
            )
    return spec


def validate_results(
    results,
    videos: Mapping[int, VideoSpec],
    *,
    category_ids: Optional[Iterable[int]] = None,
    source: str = "results",
    check_counts: bool = True,
) -> List[dict]:
    """Check a list of results entries against the videos of the ground truth.

    Args:
        results (list[dict]): ``results.json`` entries.
        videos (dict[int, VideoSpec]): the dataset's videos by id.
        category_ids (iterable[int], optional): the dataset's category ids; when given an entry
            with another category is an error.
        source (str): the file name (or description) used in error messages.
        check_counts (bool): also prove that every RLE string is well formed and covers exactly
            H x W pixels (:mod:`video_mask2former.data.rle`; the slowest check, one vectorised
            pass over all strings). Skip it only for results this project encoded itself.

    Returns:
        list[dict]: ``results``, unchanged.

    Raises:
        YTVISFormatError: naming the entry index and video id (and frame) of the first bad entry.
    """
    if not isinstance(results, list):
        raise YTVISFormatError(
            f"{source}: expected a list of entries, got {type(results).__name__}"
        )
    category_ids = None if category_ids is None else set(category_ids)
    validator = RLEValidator()
    for index, entry in enumerate(results):
        spec = _check_entry(index, entry, videos, category_ids, source)
        if check_counts:
            for t, seg in enumerate(entry["segmentations"]):
                if seg is not None:
                    validator.add(seg["counts"], (spec.height, spec.width), (index, t))
    bad = validator.first_problem()
    if bad is not None:
        (index, t), problem = bad
        raise YTVISFormatError(
            f"{source}: entry {index} (video {results[index]['video_id']}), frame {t}: "
            f"'counts' {problem}"
        )
    return results


def load_results(
    path: str, videos: Mapping[int, VideoSpec], *, category_ids: Optional[Iterable[int]] = None
) -> List[dict]:
    """Read and validate a ``results.json`` (see :func:`validate_results`)."""
    return validate_results(
        read_json(path, "results file"), videos, category_ids=category_ids, source=path
    )

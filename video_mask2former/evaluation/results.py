"""Video predictions <-> YouTube-VIS ``results.json``: encoding, atomic writes, zip, checks.

Shapes: T frames, H x W frame size (the size the video is annotated at), N predictions of a video.

A ``results.json`` is the list the YouTube-VIS evaluation servers accept: one entry per predicted
instance track::

    {"video_id": int, "category_id": int (the dataset's id, not the contiguous one), "score": float,
     "segmentations": [T compressed RLEs {"size": [H, W], "counts": str}]}

The server wants a zip holding ``results.json`` at its top level (:func:`write_submission_zip`).
"""

import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Callable, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

# one error type for every YouTube-VIS format problem (annotation files and results files)
from ..data.ytvis import YTVISFormatError
from ..structures import RLEVideoMask, encode_masks

RESULTS_FILE_NAME = "results.json"
SUBMISSION_ZIP_NAME = "results.zip"

# One character of a compressed COCO RLE string carries 5 data bits (offset by 48 = "0").
_RLE_CHAR_OFFSET = 48
_RLE_CONTINUE_BIT = 0x20
_RLE_SIGN_BIT = 0x10
_RLE_DATA_BITS = 5
# A count below 2**31 takes at most 7 characters; longer tokens cannot come from pycocotools.
_RLE_MAX_TOKEN_CHARS = 7
# Characters decoded per vectorised pass (bounds the memory of the int64 temporaries).
_RLE_CHECK_CHUNK_CHARS = 1 << 20


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


# Mode of a file created with open(): rw for everyone, minus the process umask.
_DEFAULT_FILE_MODE = 0o666


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Let ``write(tmp_path)`` fill a temporary file next to ``path``, then rename it to ``path``.

    A failure at any point leaves an existing ``path`` untouched and removes the temporary file.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path), suffix=".tmp")
    os.close(fd)
    try:
        write(tmp_path)
        # mkstemp creates the file readable by its owner only; give it a normal file's mode.
        os.chmod(tmp_path, _DEFAULT_FILE_MODE & ~_current_umask())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def write_results_json(results: Sequence[dict], path: str) -> str:
    """Write ``results`` to ``path`` atomically (a temporary file beside it, then ``os.replace``).

    Returns:
        str: ``path``.
    """

    def write(tmp_path: str) -> None:
        with open(tmp_path, "w") as f:
            json.dump(list(results), f)
            f.flush()
            os.fsync(f.fileno())

    _atomic_write(path, write)
    return path


def write_submission_zip(results_json: str, zip_path: str) -> str:
    """Zip ``results_json`` as ``results.json`` at the archive's top level, written atomically.

    Returns:
        str: ``zip_path``.
    """

    def write(tmp_path: str) -> None:
        with zipfile.ZipFile(tmp_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.write(results_json, arcname=RESULTS_FILE_NAME)

    _atomic_write(zip_path, write)
    return zip_path


def save_results(results: Sequence[dict], output_dir: str) -> Tuple[str, str]:
    """Write ``output_dir/results.json`` and the server submission ``output_dir/results.zip``.

    Returns:
        tuple[str, str]: the paths of the JSON file and of the zip.
    """
    json_path = write_results_json(results, os.path.join(output_dir, RESULTS_FILE_NAME))
    zip_path = write_submission_zip(json_path, os.path.join(output_dir, SUBMISSION_ZIP_NAME))
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


def compressed_rle_totals(counts: Sequence[bytes]) -> Tuple[np.ndarray, np.ndarray]:
    """Run-length totals and well-formedness of compressed RLE strings, in bounded chunks.

    See :func:`_compressed_rle_totals_chunk`.
    """
    ends = np.cumsum([len(c) for c in counts])
    totals, oks, start = [], [], 0
    while start < len(counts):
        stop = max(start + 1, int(np.searchsorted(ends, ends[start] + _RLE_CHECK_CHUNK_CHARS)))
        total, ok = _compressed_rle_totals_chunk(counts[start:stop])
        totals.append(total)
        oks.append(ok)
        start = stop
    if not totals:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    return np.concatenate(totals), np.concatenate(oks)


def _compressed_rle_totals_chunk(counts: Sequence[bytes]) -> Tuple[np.ndarray, np.ndarray]:
    """Decode compressed COCO RLE strings far enough to check them, all strings in one pass.

    pycocotools trusts these strings blindly (a bad one gives wrong areas or writes past the mask
    when decoded), so results are checked here before they reach it.

    Args:
        counts (list[bytes]): S compressed ``counts`` strings.

    Returns:
        tuple: ``totals`` (S,) int64, the sum of the run lengths of each string (must be H*W), and
        ``ok`` (S,) bool, False where the string is not a well-formed run-length code (bad
        character, unterminated or over-long number, negative run).
    """
    num = len(counts)
    lengths = np.array([len(c) for c in counts], dtype=np.int64)
    totals = np.zeros(num, dtype=np.int64)
    ok = np.ones(num, dtype=bool)
    if num == 0 or lengths.sum() == 0:
        return totals, ok
    chars = np.frombuffer(b"".join(counts), dtype=np.uint8).astype(np.int64) - _RLE_CHAR_OFFSET
    string_of_char = np.repeat(np.arange(num), lengths)  # (C,)
    bad_char = (chars < 0) | (chars >= 2 * _RLE_CONTINUE_BIT)
    ok &= np.bincount(string_of_char, weights=bad_char, minlength=num) == 0
    more = (chars & _RLE_CONTINUE_BIT) != 0
    ends = np.cumsum(lengths) - 1
    nonempty = lengths > 0
    ok[nonempty] &= ~more[ends[nonempty]]  # the last number of a string must be terminated
    if not ok.all():  # decode the well-formed strings only
        good = np.flatnonzero(ok)
        totals[good], ok[good] = _compressed_rle_totals_chunk([counts[i] for i in good])
        return totals, ok

    # Numbers ("tokens"): a run of characters whose last one has no continuation bit.
    token_end = ~more
    token_of_char = np.cumsum(token_end) - token_end  # (C,) token index of each char
    token_start = np.flatnonzero(np.r_[True, token_end[:-1]])  # (N_tok,) first char of each token
    pos_in_token = np.arange(len(chars)) - token_start[token_of_char]
    token_len = np.bincount(token_of_char)
    too_long = token_len > _RLE_MAX_TOKEN_CHARS
    value = np.bincount(
        token_of_char,
        weights=((chars & 0x1F) << (_RLE_DATA_BITS * np.minimum(pos_in_token, 8))).astype(
            np.float64
        ),
    ).astype(np.int64)
    last_char = chars[np.flatnonzero(token_end)]
    negative = (last_char & _RLE_SIGN_BIT) != 0
    value[negative] -= np.int64(1) << (_RLE_DATA_BITS * np.minimum(token_len[negative], 12))

    # Counts from index 3 on are stored as differences to the count two places before: a run is
    # the running sum of its chain, {0}, {1, 3, 5, ...} or {2, 4, 6, ...}, within its string.
    string_of_token = string_of_char[token_start]
    first_token = np.searchsorted(string_of_token, np.arange(num))  # (S,)
    rank = np.arange(len(value)) - first_token[string_of_token]
    run_lengths = value.copy()
    for chain in (rank % 2 == 1, (rank % 2 == 0) & (rank > 0)):
        running = np.cumsum(np.where(chain, value, 0))
        before_string = np.r_[0, running][first_token]  # (S,) running sum before each string
        run_lengths[chain] = (running - before_string[string_of_token])[chain]
    ok &= np.bincount(string_of_token, weights=(run_lengths < 0) | too_long, minlength=num) == 0
    totals = np.bincount(string_of_token, weights=run_lengths, minlength=num).astype(np.int64)
    return totals, ok


def _check_entry(index: int, entry, videos: Mapping[int, VideoSpec], category_ids, source: str):
    """Check the fields of one results entry; returns its segmentations."""
    where = f"{source}: entry {index}"
    if not isinstance(entry, dict):
        raise YTVISFormatError(f"{where} is a {type(entry).__name__}, expected a dict")
    missing = [k for k in ("video_id", "category_id", "score", "segmentations") if k not in entry]
    if missing:
        raise YTVISFormatError(f"{where} (video {entry.get('video_id')}) lacks the keys {missing}")
    video_id = entry["video_id"]
    where = f"{where} (video {video_id})"
    if video_id not in videos:
        raise YTVISFormatError(f"{where}: video id {video_id!r} is not in the ground truth")
    if category_ids is not None and entry["category_id"] not in category_ids:
        raise YTVISFormatError(
            f"{where}: category_id {entry['category_id']!r} is not a category of the dataset "
            f"({sorted(category_ids)}); results must use the dataset's ids, not contiguous ones"
        )
    score = entry["score"]
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise YTVISFormatError(f"{where}: score {score!r} is not a finite number")
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
        if list(seg.get("size", ())) != [spec.height, spec.width]:
            raise YTVISFormatError(
                f"{where}, frame {t}: RLE size {seg.get('size')} is not the video's size "
                f"[{spec.height}, {spec.width}]"
            )
    return segs


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
        check_counts (bool): also decode every RLE string far enough to prove that it covers
            H x W pixels (the slowest check; skip it for results this project encoded itself).

    Returns:
        list[dict]: ``results``, unchanged.

    Raises:
        YTVISFormatError: naming the entry index and video id of the first bad entry.
    """
    if not isinstance(results, list):
        raise YTVISFormatError(
            f"{source}: expected a list of entries, got {type(results).__name__}"
        )
    category_ids = None if category_ids is None else set(category_ids)
    strings, owners, pixels = [], [], []
    for index, entry in enumerate(results):
        spec = videos.get(entry.get("video_id")) if isinstance(entry, dict) else None
        for t, seg in enumerate(_check_entry(index, entry, videos, category_ids, source)):
            if seg is not None and check_counts:
                counts = seg["counts"]
                strings.append(counts.encode("utf-8") if isinstance(counts, str) else counts)
                owners.append((index, t))
                pixels.append(spec.height * spec.width)
    totals, ok = compressed_rle_totals(strings)
    bad = np.flatnonzero(~ok | (totals != np.asarray(pixels, dtype=np.int64)))
    if len(bad):
        index, t = owners[bad[0]]
        problem = (
            "is not a valid compressed RLE string"
            if not ok[bad[0]]
            else f"covers {totals[bad[0]]} pixels, expected {pixels[bad[0]]} (H x W)"
        )
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

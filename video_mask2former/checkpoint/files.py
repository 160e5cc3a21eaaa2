"""Reading checkpoint files: bytes to Python objects, without running code from them.

* ``.pkl`` files go through the restricted unpickler of :mod:`.safe_pickle` (dicts, lists,
  strings, numbers, NumPy arrays; any other global is refused before it is called), every other
  file through ``torch.load(weights_only=True)``: :func:`read_file`;
* the weights inside what a file holds (under ``"model"`` or ``"state_dict"``, or the content
  itself) are found by :func:`state_dict_of`, the one unwrapping every reader uses, and checked by
  :func:`weights_of`;
* an ``http(s)://`` URL is downloaded once into torch's hub cache (:func:`cached_checkpoint_path`).

Which *layout* a file is in (official, transformers', detectron2's Caffe2 pickles) is decided in
:mod:`.formats`; this module knows none of them, so that every layout can use it.
"""

import logging
import os
import urllib.error
import urllib.parse
import zipfile
from typing import Any, Dict, Mapping, Tuple

import numpy as np
import torch

from .errors import EXPECTED_CONTENT, CheckpointFileError
from .safe_pickle import UnsafePickleError, load_weights_pickle

__all__ = [
    "cached_checkpoint_path",
    "is_url",
    "read_file",
    "split_checkpoint",
    "state_dict_of",
    "unreadable_checkpoint_error",
    "weights_of",
]

logger = logging.getLogger(__package__)

# Where a checkpoint's content keeps its weights: detectron2 and this project's training write
# {"model": ...}; many other trainers (and converters) {"state_dict": ...}.
STATE_DICT_WRAPPERS = ("model", "state_dict")


def unreadable_checkpoint_error(path: str, error: BaseException) -> CheckpointFileError:
    """One line naming ``path``, why it could not be read (from its first bytes) and what was
    expected. ``error`` is what reading it raised."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        reason = "the file is empty"
    elif head.startswith(b"PK") and not zipfile.is_zipfile(path):
        reason = "it is truncated (its torch.save zip archive has no end: an interrupted write?)"
    elif not head.startswith((b"PK", b"\x80")):  # torch.save's zip; pickle protocol >= 2
        reason = f"it is neither a torch.save nor a pickle file (it starts with {head!r})"
    else:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
        # torch's weights-only refusal opens with advice to use weights_only=False; the cause
        # is on its "WeightsUnpickler error" line. Keep the cause's first sentence.
        cause = next((x for x in lines if x.startswith("WeightsUnpickler")), lines[0])
        cause = cause.split(". ")[0][:200]
        reason = f"it cannot be unpickled ({type(error).__name__}: {cause})"
    return CheckpointFileError(f"{path} is not a readable checkpoint: {reason}; {EXPECTED_CONTENT}")


def read_file(path: str) -> Any:
    """The object stored in ``path``: ``.pkl`` through the restricted unpickler of
    :mod:`.safe_pickle`, anything else through ``torch.load(weights_only=True)``: neither runs
    code from the file.

    Raises:
        OSError: no such file, no permission, ... (already clear).
        CheckpointFileError: the file cannot be decoded, or its pickle names a refused global.
    """
    try:
        if path.endswith(".pkl"):
            return load_weights_pickle(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, MemoryError):  # a missing file, no permission, ...: already clear
        raise
    except UnsafePickleError as e:
        raise CheckpointFileError(str(e)) from None
    except Exception as e:  # any decoding failure (zip, pickle, EOF, ...) of a bad file
        raise unreadable_checkpoint_error(path, e) from e


def state_dict_of(data: Any) -> Any:
    """The weights in a checkpoint's content: ``data["model"]`` or ``data["state_dict"]`` when
    present (:data:`STATE_DICT_WRAPPERS`), else ``data`` itself. Not checked: see
    :func:`weights_of`."""
    if isinstance(data, Mapping):
        for wrapper in STATE_DICT_WRAPPERS:
            if wrapper in data:
                return data[wrapper]
    return data


def split_checkpoint(data: Any, path: str) -> Tuple[Mapping[str, Any], Dict[str, Any]]:
    """``(weights, extras)``: the checked weights of ``data`` (:func:`weights_of`) and the other
    entries beside them (``iteration``, ``optimizer``, ``__author__``, ...; none when ``data``
    is the weights themselves)."""
    weights = weights_of(data, path)
    wrapper = next((w for w in STATE_DICT_WRAPPERS if w in data), None)
    return weights, {k: v for k, v in data.items() if wrapper is not None and k != wrapper}


def weights_of(data: Any, path: str) -> Mapping[str, Any]:
    """The state dict in ``data`` (:func:`state_dict_of`), checked to hold arrays.

    Raises:
        CheckpointFileError: no non-empty dict of tensors / arrays in ``data``.
    """
    weights = state_dict_of(data) if isinstance(data, Mapping) else None
    if not isinstance(weights, Mapping) or not weights:
        raise CheckpointFileError(
            f"checkpoint {path}: expected a dict of weights or {{'model': weights}}, found "
            f"{type(data).__name__}"
            + (f" with keys {list(data)[:5]}" if isinstance(data, Mapping) else "")
        )
    for key, value in weights.items():
        if not isinstance(value, (np.ndarray, torch.Tensor)):
            raise CheckpointFileError(
                f"checkpoint {path}: entry {key!r} is a {type(value).__name__}, expected an array"
            )
    return weights


def is_url(path: str) -> bool:
    """Whether ``path`` is an ``http(s)://`` URL (rather than a local file)."""
    return urllib.parse.urlparse(path).scheme in ("http", "https")


def cached_checkpoint_path(url: str) -> str:
    """The local copy of the checkpoint at ``url``, downloaded first if it is not cached.

    The cache is torch's (``torch.hub.get_dir()/checkpoints``, file named as the URL's last
    path component); the download goes to a temporary file renamed when complete, so an
    interrupted one leaves nothing behind.

    Raises:
        CheckpointFileError: the download failed; the message names the URL and the path where
            the file can be put by hand (e.g. on a machine without network).
    """
    name = os.path.basename(urllib.parse.urlparse(url).path)
    if not name:
        raise CheckpointFileError(f"checkpoint URL {url} does not end in a file name")
    target = os.path.join(torch.hub.get_dir(), "checkpoints", name)
    if os.path.isfile(target):
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    logger.info("Downloading %s to %s", url, target)
    try:
        torch.hub.download_url_to_file(url, target, progress=False)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise CheckpointFileError(
            f"could not download checkpoint {url} ({reason}); download it by other means and "
            f"put it at {target}"
        ) from error
    return target

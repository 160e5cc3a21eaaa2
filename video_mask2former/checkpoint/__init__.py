"""Checkpoints: one loading policy, every file format this project reads, no code run from files.

Official Mask2Former checkpoints are detectron2 pickles, ``{"model": {key: numpy array}, ...}``,
whose keys are exactly this project's ``state_dict`` keys; training writes ``.pth`` files
``{"model": state_dict, "iteration": ..., ...}``; transformers' Mask2Former stores another key
layout (folders, ``.safetensors``, ``hf://<repo_id>``), converted on reading. The detectron2
layer loads them through ``VideoCheckpointer``; :func:`load_checkpoint` does the same for library
users. Both read files through :func:`~.formats.read_checkpoint_file` and apply the policy of
:mod:`.policy` (:func:`check_fit`): weights for inference must fit the model exactly, a
training initialisation may lack the class head's shape or everything but the backbone, and the
experts' opt-out loads whatever fits.

A file that is not a checkpoint at all raises :class:`CheckpointFileError` with one line naming
the file and what was expected. Reading a file never runs code from it: ``.pkl`` files go through
a restricted unpickler (:mod:`.safe_pickle`), everything else through
``torch.load(weights_only=True)``. ``path`` may also be an ``http(s)://`` URL (e.g. the official
model zoo's): downloaded once into torch's hub cache (:func:`cached_checkpoint_path`).

Modules (imports point down the list, never up):

* :mod:`.errors`: the exceptions;
* :mod:`.policy`: :class:`LoadReport`, :func:`check_fit`, :func:`load_weights` (no file I/O);
* :mod:`.safe_pickle`, :mod:`.files`: reading bytes into objects, the one unwrapping of
  ``{"model": ...}`` / ``{"state_dict": ...}``, the URL cache;
* :mod:`.layouts`: ``official``, ``hf`` (transformers), ``imagenet`` (torchvision / Swin);
* :mod:`.formats`: which format a file is in (:func:`read_checkpoint`), decided once;
* :mod:`.loading`: :func:`load_checkpoint`.
"""

from .errors import CheckpointFileError, CheckpointMismatchError, HFCheckpointError
from .files import cached_checkpoint_path, is_url, unreadable_checkpoint_error, weights_of
from .formats import CheckpointFile, read_checkpoint, read_checkpoint_file
from .loading import load_checkpoint
from .policy import (
    BACKBONE_PREFIX,
    CLASS_DEPENDENT_KEYS,
    MIN_INIT_FRACTION,
    LoadReport,
    check_fit,
    load_weights,
)
from .safe_pickle import UnsafePickleError

__all__ = [
    "BACKBONE_PREFIX",
    "CLASS_DEPENDENT_KEYS",
    "MIN_INIT_FRACTION",
    "CheckpointFile",
    "CheckpointFileError",
    "CheckpointMismatchError",
    "HFCheckpointError",
    "LoadReport",
    "UnsafePickleError",
    "cached_checkpoint_path",
    "check_fit",
    "is_url",
    "load_checkpoint",
    "load_weights",
    "read_checkpoint",
    "read_checkpoint_file",
    "unreadable_checkpoint_error",
    "weights_of",
]

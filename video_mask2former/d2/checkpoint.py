"""``VideoCheckpointer``: detectron2's DetectionCheckpointer with the core's loading policy and
atomic, verifiable checkpoints.

Loading (see :mod:`video_mask2former.checkpoint` for the policy):

* no code from a weights file runs: ``.pkl`` files are read by the restricted unpickler of
  :mod:`video_mask2former.safe_pickle` (detectron2's own reader calls ``pickle.load``), other
  files by ``torch.load(weights_only=True)``;

* a missing weights file raises ``FileNotFoundError`` naming the path and what to do (instead of
  an assertion from deep inside fvcore); a file that is not a checkpoint (truncated, empty,
  another format) raises :class:`~video_mask2former.checkpoint.CheckpointFileError`, one line;
* weights for inference must fit the model exactly, a training initialisation must cover half of
  it or its backbone (:func:`~video_mask2former.checkpoint.check_fit`), unless ``allow_partial``
  (``MODEL.ALLOW_PARTIAL_WEIGHTS``); what did not fit is logged once, instead of fvcore's lists.

Saving and resuming:

* every checkpoint and ``last_checkpoint`` is written to a hidden temporary file beside it,
  fsynced and renamed (:func:`~video_mask2former.file_io.atomic_write`): a kill never leaves a
  partial file, and the temporaries it leaves are removed by the next save;
* ``resume_or_load`` falls back from an unreadable latest checkpoint to the previous readable
  one, with a warning naming the bad file; :meth:`VideoCheckpointer.ensure_complete` rewrites a
  missing or unreadable ``model_final.pth`` when a run resumes after its last iteration.
"""

import logging
import os
import re
from typing import Any, Dict, List

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.utils.file_io import PathManager

from ..checkpoint import (
    CheckpointFileError,
    LoadReport,
    cached_checkpoint_path,
    check_fit,
    is_url,
    read_checkpoint,
    unreadable_checkpoint_error,
    weights_of,
)
from .. import hf
from ..safe_pickle import UnsafePickleError, load_weights_pickle
from ..file_io import atomic_write, remove_temporaries

__all__ = ["VideoCheckpointer", "check_weights_file"]

logger = logging.getLogger(__name__)

# Path prefixes detectron2's PathManager resolves itself (downloads, model zoo).
_REMOTE_PREFIXES = ("http://", "https://", "detectron2://", "catalog://", "manifold://")

# How the scripts' users set MODEL.WEIGHTS and turn the loading policy off (end of the errors).
SET_WEIGHTS = (
    "train_net_video.py / tools/export_model.py: ... MODEL.WEIGHTS PATH at the end of the "
    "command; demo_video/demo.py: ... --opts MODEL.WEIGHTS PATH"
)
OPT_OUT = "set MODEL.ALLOW_PARTIAL_WEIGHTS True (the demo: --allow-partial-weights)"

# Periodic checkpoints of detectron2's PeriodicCheckpointer: "<prefix>_<iteration:07d>.pth".
_PERIODIC_NAME = re.compile(r"_(\d{7})\.pth$")


def check_weights_file(path: str) -> None:
    """Raise ``FileNotFoundError`` when ``path`` is a local file path that does not exist."""
    if path and not path.startswith(_REMOTE_PREFIXES) and not os.path.isfile(path):
        raise FileNotFoundError(
            f"Checkpoint {path!r} (MODEL.WEIGHTS) does not exist: download it (see README.md) or "
            f"give an existing .pth/.pkl file or a URL ({SET_WEIGHTS})"
        )


class VideoCheckpointer(DetectionCheckpointer):
    """Loads official ``.pkl`` and this project's ``.pth`` checkpoints into a video model.

    Args:
        model (nn.Module): the model (DDP-wrapped or not).
        save_dir (str): where checkpoints are saved and resumed from ("": no saving).
        for_training (bool): ``resume_or_load(path, resume=False)`` loads ``path`` as a training
            initialisation (tolerant policy); False: every load is for inference.
        allow_partial (bool): the experts' opt-out (``MODEL.ALLOW_PARTIAL_WEIGHTS``): load
            whatever fits and warn, instead of raising.
        checkpointables: saved and resumed with the model (optimizer, scheduler, trainer).
    """

    def __init__(
        self, model, save_dir="", *, for_training=False, allow_partial=False, **checkpointables
    ):
        super().__init__(model, save_dir, **checkpointables)
        self.for_training = for_training
        self.allow_partial = allow_partial
        self._loading_init = False  # True while loading a training initialisation
        self._loading_path = None  # the file being loaded, for the messages

    # -- loading -----------------------------------------------------------------------------

    def load(self, path, *args, **kwargs):
        """As detectron2's, under the loading policy; an empty ``path`` is an error for
        inference (unless ``allow_partial``)."""
        if not path and not (self._loading_init or self.allow_partial):
            raise ValueError(
                "No weights to load (MODEL.WEIGHTS is empty): inference needs trained weights; "
                f"set MODEL.WEIGHTS to a .pth/.pkl file ({SET_WEIGHTS}), or {OPT_OUT} to run "
                "the random initialisation."
            )
        self._loading_path = path
        if path and is_url(path):  # one cache and one clear error for the library and the scripts
            path = cached_checkpoint_path(path)
        try:
            if path and hf.is_hf_location(path):  # a folder or hf://: not a file fvcore reads
                return self._load_hf(path)
            check_weights_file(path)
            return super().load(path, *args, **kwargs)
        finally:
            self._loading_path = None
            # DetectionCheckpointer.load leaves this set when loading raises, and asserts it is
            # None on the next call (resume_or_load's fallback tries another file).
            self._parsed_url_during_load = None

    def _load_hf(self, path):
        """Load a transformers-layout checkpoint (folder or ``hf://``) under the policy; it
        holds only the model (no optimizer or iteration)."""
        checkpoint = {"model": hf.load_hf_state_dict(path, target=self._hf_target())}
        incompatible = self._load_model(checkpoint)
        if incompatible is not None:
            self._log_incompatible_keys(incompatible)
        return {}

    def _hf_target(self):
        return self.model if hf.has_hf_backbone(self.model) else None

    def _torch_load(self, f):
        # As fvcore, with weights_only explicit (a checkpoint holds tensors and plain data).
        return torch.load(f, map_location="cpu", weights_only=True)

    def _load_file(self, filename):
        try:
            if filename.endswith(".pkl"):
                checkpoint = self._load_pickle(filename)
            else:
                checkpoint = super()._load_file(filename)
        except (OSError, MemoryError):
            raise
        except UnsafePickleError as e:
            raise CheckpointFileError(str(e)) from None
        except Exception as e:  # any decoding failure (zip, pickle, EOF, ...) of a bad file
            raise unreadable_checkpoint_error(filename, e) from e
        weights = weights_of(checkpoint, filename)  # a non-empty dict of arrays under "model"
        if hf.is_hf_checkpoint(weights):  # one transformers weights file (.bin / .pth)
            model = hf.from_hf_state_dict(weights, source=filename, target=self._hf_target())
            return {"model": model, "__author__": "transformers"}
        return checkpoint

    def _load_pickle(self, filename):
        """A ``.pkl`` as detectron2 reads it, but through the restricted unpickler (no code from
        the file runs): a detectron2 model-zoo file (``"model"`` and ``"__author__"``) as it is;
        otherwise a Caffe2 / Detectron1 file, whose arrays (under ``"blobs"`` for detection
        models) get detectron2's name-matching heuristics, without the ``*_momentum`` entries."""
        with PathManager.open(filename, "rb") as f:
            data = load_weights_pickle(f, source=filename)
        if not isinstance(data, dict):
            return data  # weights_of names the file and what it holds
        if "model" in data and "__author__" in data:
            self.logger.info(f"Reading a file from '{data['__author__']}'")
            return data
        arrays = data.get("blobs", data)
        if not isinstance(arrays, dict):
            return data
        arrays = {k: v for k, v in arrays.items() if not k.endswith("_momentum")}
        return {"model": arrays, "__author__": "Caffe2", "matching_heuristics": True}

    def _load_model(self, checkpoint):
        incompatible = super()._load_model(checkpoint)
        if incompatible is not None:
            # fvcore drops mis-shaped keys before loading, so they also come back as missing.
            mismatched = {k for k, _, _ in incompatible.incorrect_shapes}
            report = LoadReport(
                missing_keys=[k for k in incompatible.missing_keys if k not in mismatched],
                unexpected_keys=list(incompatible.unexpected_keys),
                shape_mismatches=list(incompatible.incorrect_shapes),
                model_sizes={k: v.numel() for k, v in self.model.state_dict().items()},
            )
            check_fit(
                report,
                self._loading_path,
                for_training=self._loading_init,
                allow_partial=self.allow_partial,
                opt_out=OPT_OUT,
            )
        return incompatible

    def _log_incompatible_keys(self, incompatible):
        """Logged once by :func:`~video_mask2former.checkpoint.check_fit` instead."""

    # -- saving ------------------------------------------------------------------------------

    def save(self, name: str, **kwargs: Any) -> None:
        """Write ``save_dir/name.pth`` atomically, then point ``last_checkpoint`` at it."""
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        path = os.path.join(self.save_dir, basename)
        for stale in remove_temporaries(self.save_dir, "*.pth"):
            logger.info(f"Removed {stale}, left by an interrupted checkpoint write.")
        self.logger.info(f"Saving checkpoint to {path}")
        atomic_write(path, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        remove_temporaries(self.save_dir, "last_checkpoint")
        atomic_write(
            os.path.join(self.save_dir, "last_checkpoint"),
            lambda f: f.write(last_filename_basename.encode()),
        )

    # -- resuming ----------------------------------------------------------------------------

    def _resume_candidates(self) -> List[str]:
        """The checkpoint named by ``last_checkpoint``, then the periodic ones, newest first."""
        latest = self.get_checkpoint_file()
        periodic = [p for p in self.get_all_checkpoint_files() if _PERIODIC_NAME.search(p)]
        periodic.sort(key=lambda p: int(_PERIODIC_NAME.search(p).group(1)), reverse=True)
        named = [latest] if latest and os.path.isfile(latest) else []
        if latest and not named:
            logger.warning(f"last_checkpoint names {latest}, which does not exist.")
        return named + [p for p in periodic if p not in named]

    def resume_or_load(self, path: str, *, resume: bool = True) -> Dict[str, Any]:
        """As detectron2's, but a checkpoint that cannot be read is skipped for the previous one.

        Raises:
            CheckpointFileError: resuming, but no checkpoint of ``save_dir`` can be read.
        """
        if not (resume and self.has_checkpoint()):
            self._loading_init = self.for_training
            try:
                return self.load(path, checkpointables=[])
            finally:
                self._loading_init = False
        bad = []
        for candidate in self._resume_candidates():
            try:
                return self.load(candidate)
            except CheckpointFileError as e:
                bad.append(candidate)
                logger.warning(f"Cannot resume from {candidate}: {e}. Trying the previous one.")
        raise CheckpointFileError(
            f"Cannot resume: no readable checkpoint in {self.save_dir} (unreadable: "
            f"{', '.join(bad) or 'none'}). Remove {os.path.join(self.save_dir, 'last_checkpoint')}"
            " to start over from MODEL.WEIGHTS."
        )

    def ensure_complete(self, name: str, **kwargs: Any) -> None:
        """Save ``name`` (e.g. ``"model_final"``) from the current state unless ``save_dir``
        already holds a readable ``name.pth``."""
        if not self.save_dir or not self.save_to_disk:
            return
        path = os.path.join(self.save_dir, f"{name}.pth")
        if not os.path.isfile(path):
            logger.warning(f"{path} is missing: writing it from the resumed state.")
        else:
            try:
                read_checkpoint(path)
                return
            except CheckpointFileError as e:
                logger.warning(f"{e}. Rewriting it from the resumed state.")
        self.save(name, **kwargs)

"""``VideoCheckpointer``: detectron2's DetectionCheckpointer with the core's file reading and
loading policy, and atomic, verifiable checkpoints.

Loading is the core's (:mod:`video_mask2former.checkpoint`), so ``MODEL.WEIGHTS`` accepts exactly
what the library's ``load_checkpoint`` accepts and fails the same way:

* files are read by :func:`~video_mask2former.checkpoint.read_checkpoint_file`, the one place
  that decides a file's format (official ``.pkl`` / ``.pth``, Caffe2 and pycls files, transformers'
  layout, URLs); no code from a weights file runs (detectron2's own reader calls
  ``pickle.load`` on ``.pkl`` files);
* a missing weights file raises ``FileNotFoundError`` naming the path and what to do (instead of
  an assertion from deep inside fvcore); a file that is not a checkpoint (truncated, empty,
  another format) raises :class:`~video_mask2former.checkpoint.CheckpointFileError`, one line;
* weights for inference must fit the model exactly, a training initialisation must cover half of
  it or its backbone (:func:`~video_mask2former.checkpoint.load_weights`), unless
  ``allow_partial`` (``MODEL.ALLOW_PARTIAL_WEIGHTS``); when the policy refuses, nothing is
  loaded; what did not fit is logged once, instead of fvcore's lists.

What stays detectron2's: the name-matching heuristics of Caffe2 / converted ImageNet files
(``align_and_update_state_dicts``), the model-zoo URLs (``detectron2://``, through its
``PathManager``), ``has_checkpoint`` / ``get_checkpoint_file`` and everything the trainer and
``PeriodicCheckpointer`` call. ``load`` is overridden as a whole (reading, the policy, then the
checkpointables, as fvcore's ``Checkpointer.load`` does), so no private method of detectron2 or
fvcore is overridden or reset.

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
from typing import Any, Dict, List, Optional

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.checkpoint.c2_model_loading import align_and_update_state_dicts

from ..checkpoint import CheckpointFileError, is_url, load_weights, read_checkpoint
from ..checkpoint.formats import CheckpointFile, hf_target, read_checkpoint_file
from ..checkpoint.layouts.hf import is_hf_location
from ..file_io import atomic_write, remove_temporaries

__all__ = ["VideoCheckpointer", "check_weights_file"]

logger = logging.getLogger(__name__)

# Path prefixes detectron2's PathManager resolves (model zoo, catalogs); http(s) URLs go through
# the core's cache (video_mask2former.checkpoint.cached_checkpoint_path).
_D2_PREFIXES = ("detectron2://", "catalog://", "manifold://")

# How the scripts' users set MODEL.WEIGHTS and turn the loading policy off (end of the errors).
SET_WEIGHTS = (
    "train_net_video.py / tools/export_model.py: ... MODEL.WEIGHTS PATH at the end of the "
    "command; demo_video/demo.py: ... --opts MODEL.WEIGHTS PATH"
)
OPT_OUT = "set MODEL.ALLOW_PARTIAL_WEIGHTS True (the demo: --allow-partial-weights)"

# Periodic checkpoints of detectron2's PeriodicCheckpointer: "<prefix>_<iteration:07d>.pth".
_PERIODIC_NAME = re.compile(r"_(\d{7})\.pth$")


def check_weights_file(path: str) -> None:
    """Raise ``FileNotFoundError`` when ``path`` is a local file path that does not exist (a
    transformers folder or ``hf://`` name, a URL and a model-zoo path are not checked here)."""
    remote = is_url(path) or path.startswith(_D2_PREFIXES) or is_hf_location(path)
    if path and not remote and not os.path.isfile(path):
        raise FileNotFoundError(
            f"Checkpoint {path!r} (MODEL.WEIGHTS) does not exist: download it (see README.md) or "
            f"give an existing .pth/.pkl file or a URL ({SET_WEIGHTS})"
        )


class VideoCheckpointer(DetectionCheckpointer):
    """Loads official ``.pkl``, this project's ``.pth`` and transformers' checkpoints into a
    video model, under the core's loading policy.

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

    # -- loading -----------------------------------------------------------------------------

    def load(self, path: str, checkpointables: Optional[List[str]] = None) -> Dict[str, Any]:
        """Load ``path`` into the model under the loading policy, then the ``checkpointables``
        it holds (all by default), as detectron2's ``load``.

        Args:
            path (str): what :func:`~video_mask2former.checkpoint.read_checkpoint_file` reads,
                or a ``detectron2://`` model-zoo path. Empty: nothing is loaded, which is an
                error for inference (unless ``allow_partial``).
            checkpointables (list[str], optional): which of the checkpointables to load.

        Returns:
            dict: the file's other entries (e.g. ``iteration``).
        """
        if not path:
            if not (self._loading_init or self.allow_partial):
                raise CheckpointFileError(
                    "No weights to load (MODEL.WEIGHTS is empty): inference needs trained "
                    f"weights; set MODEL.WEIGHTS to a .pth/.pkl file ({SET_WEIGHTS}), or {OPT_OUT}"
                    " to run the random initialisation."
                )
            return super().load(path, checkpointables)  # detectron2: "Initializing from scratch"
        check_weights_file(path)
        local = self.path_manager.get_local_path(path) if path.startswith(_D2_PREFIXES) else path
        self.logger.info(f"Loading {path} ...")
        checkpoint = read_checkpoint_file(local, target=hf_target(self.model))
        load_weights(
            self.model,
            self._matched_weights(checkpoint),
            path,
            for_training=self._loading_init,
            allow_partial=self.allow_partial,
            opt_out=OPT_OUT,
        )
        extras = dict(checkpoint.extras)
        for key in self.checkpointables if checkpointables is None else checkpointables:
            if key in extras:
                self.logger.info(f"Loading {key} from {path} ...")
                self.checkpointables[key].load_state_dict(extras.pop(key))
        return extras

    def _matched_weights(self, checkpoint: CheckpointFile) -> Dict[str, torch.Tensor]:
        """The weights under the model's names: those of a Caffe2 / pycls / converted ImageNet
        file (``matching_heuristics``) renamed by detectron2's heuristics, others as they are."""
        author = checkpoint.extras.get("__author__")
        if author:
            self.logger.info(f"Reading a file from '{author}'")
        if not checkpoint.matching_heuristics:
            return checkpoint.weights
        return align_and_update_state_dicts(
            self.model.state_dict(), checkpoint.weights, c2_conversion=author == "Caffe2"
        )

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

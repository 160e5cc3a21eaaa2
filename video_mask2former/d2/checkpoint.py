"""``VideoCheckpointer``: detectron2's DetectionCheckpointer with clearer loading errors/reports.

* a missing weights file raises ``FileNotFoundError`` naming the path and what to do (instead of
  an assertion from deep inside fvcore);
* after loading, one log line sums up the missing, unexpected and shape-mismatched keys (the
  keys themselves are listed by fvcore just before it).
"""

import logging
import os

from detectron2.checkpoint import DetectionCheckpointer

__all__ = ["VideoCheckpointer", "check_weights_file"]

logger = logging.getLogger(__name__)

# Path prefixes detectron2's PathManager resolves itself (downloads, model zoo).
_REMOTE_PREFIXES = ("http://", "https://", "detectron2://", "catalog://", "manifold://")


def check_weights_file(path: str) -> None:
    """Raise ``FileNotFoundError`` when ``path`` is a local file path that does not exist."""
    if path and not path.startswith(_REMOTE_PREFIXES) and not os.path.isfile(path):
        raise FileNotFoundError(
            f"Checkpoint {path!r} (MODEL.WEIGHTS) does not exist: download it (see README.md) or "
            "set MODEL.WEIGHTS to an existing .pth/.pkl file, e.g. with --opts MODEL.WEIGHTS PATH."
        )


class VideoCheckpointer(DetectionCheckpointer):
    """Loads official ``.pkl`` and this project's ``.pth`` checkpoints into a video model."""

    def load(self, path, *args, **kwargs):
        check_weights_file(path)
        return super().load(path, *args, **kwargs)

    def _load_model(self, checkpoint):
        incompatible = super()._load_model(checkpoint)
        if incompatible is not None:
            mismatched = incompatible.incorrect_shapes
            logger.info(
                f"Loaded weights: {len(incompatible.missing_keys)} missing keys (kept at their "
                f"initial values), {len(incompatible.unexpected_keys)} unexpected keys (ignored), "
                f"{len(mismatched)} keys skipped for a shape mismatch."
            )
        return incompatible

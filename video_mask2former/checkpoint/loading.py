"""``load_checkpoint``: a checkpoint file into a model, under the loading policy."""

from torch import nn

from .formats import hf_target, read_checkpoint_file
from .policy import LoadReport, load_weights

__all__ = ["load_checkpoint"]


def load_checkpoint(
    model: nn.Module, path: str, strict: bool = True, *, for_training: bool = False
) -> LoadReport:
    """Load the weights of ``path`` into ``model`` under the loading policy (:mod:`.policy`).

    Args:
        model (nn.Module): e.g. a :class:`~video_mask2former.modeling.VideoMaskFormer`.
        path (str): an official ``.pkl`` or a ``.pth`` written by training, a transformers
            checkpoint, or an ``http(s)://`` URL of a file (downloaded once to torch's hub cache);
            see :func:`~.formats.read_checkpoint_file`.
        strict (bool): apply the policy; False (experts): load what fits and warn.
        for_training (bool): ``path`` initialises training (e.g. a COCO Mask2Former): the
            class head's shape and everything but the backbone may be missing. False: the
            weights are for inference and must provide every key.

    Returns:
        LoadReport: missing keys (left at their current values), unexpected keys and shape
        mismatches (both ignored).

    Raises:
        CheckpointFileError: ``path`` is not a checkpoint.
        CheckpointMismatchError: the policy is not met (nothing is loaded then).
    """
    checkpoint = read_checkpoint_file(path, target=hf_target(model))
    return load_weights(
        model, checkpoint.weights, path, for_training=for_training, allow_partial=not strict
    )

"""A model ready for inference from a detectron2 config: the detectron2 side of
:func:`video_mask2former.build.build_inference_model`."""

from detectron2.modeling import build_model

from .checkpoint import VideoCheckpointer

__all__ = ["build_inference_model"]


def build_inference_model(cfg, *, random_weights: bool = False):
    """Build ``cfg``'s model on ``MODEL.DEVICE``, load ``MODEL.WEIGHTS`` for inference, eval mode.

    The weights go through :class:`~.checkpoint.VideoCheckpointer` under the inference loading
    policy (every key must fit; ``MODEL.ALLOW_PARTIAL_WEIGHTS`` is the experts' opt-out).

    Args:
        cfg (CfgNode): a config with this project's keys.
        random_weights (bool): with an empty ``MODEL.WEIGHTS``, keep the random initialisation
            (measurements, export tests); False: an empty ``MODEL.WEIGHTS`` is an error.

    Returns:
        nn.Module: the model in eval mode.

    Raises:
        CheckpointFileError: ``MODEL.WEIGHTS`` is empty (unless ``random_weights``) or not a
            checkpoint.
        CheckpointMismatchError: its weights do not fit the model (nothing is loaded then).
    """
    model = build_model(cfg).eval()
    if cfg.MODEL.WEIGHTS or not random_weights:
        checkpointer = VideoCheckpointer(model, allow_partial=cfg.MODEL.ALLOW_PARTIAL_WEIGHTS)
        checkpointer.load(cfg.MODEL.WEIGHTS)
    return model

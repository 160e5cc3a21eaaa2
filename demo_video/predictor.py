"""``VideoPredictor``: run a detectron2-configured video model on a list of RGB frames."""
import contextlib
from typing import Sequence

import numpy as np
import torch
from detectron2.data import MetadataCatalog
from detectron2.modeling import build_model

from video_mask2former.d2.checkpoint import VideoCheckpointer
from video_mask2former.d2.mapper import build_clip_augmentation_from_cfg

__all__ = ["VideoPredictor"]


class VideoPredictor:
    """Builds the model of ``cfg``, loads ``cfg.MODEL.WEIGHTS`` and predicts whole videos.

    The frames are resized like the test loader does (``INPUT.MIN_SIZE_TEST`` /
    ``MAX_SIZE_TEST``) and the masks come back at the original frame size.

    Args:
        cfg (CfgNode): a config with this project's keys; ``MODEL.DEVICE`` picks CPU or GPU.

    Raises:
        ValueError: when ``MODEL.WEIGHTS`` is empty (the demo needs trained weights).
        FileNotFoundError: when ``MODEL.WEIGHTS`` names a file that does not exist.
    """

    def __init__(self, cfg):
        if not cfg.MODEL.WEIGHTS:
            raise ValueError(
                "MODEL.WEIGHTS is empty: give trained weights, e.g. --opts MODEL.WEIGHTS model.pth"
            )
        self.cfg = cfg.clone()
        self.model = build_model(self.cfg).eval()
        VideoCheckpointer(self.model).load(cfg.MODEL.WEIGHTS)
        self.augmentations = build_clip_augmentation_from_cfg(cfg, is_train=False)
        self.input_format = cfg.INPUT.FORMAT
        names = list(cfg.DATASETS.TEST) or list(cfg.DATASETS.TRAIN)
        self.metadata = MetadataCatalog.get(names[0]) if names else None

    def _autocast(self):
        if self.cfg.SOLVER.AMP.ENABLED and self.model.device.type == "cuda":
            return torch.autocast("cuda")
        return contextlib.nullcontext()

    def __call__(self, frames: Sequence[np.ndarray]) -> dict:
        """Predict one video.

        Args:
            frames (sequence of ndarray): T (H, W, 3) uint8 RGB frames.

        Returns:
            dict: ``image_size`` (H, W), ``pred_scores`` (k floats), ``pred_labels`` (k contiguous
            class ids), ``pred_masks`` (k (T, H, W) bool tensors), sorted by decreasing score.
        """
        height, width = frames[0].shape[:2]
        images, _ = self.augmentations([np.asarray(f) for f in frames], np.random.default_rng(0))
        if self.input_format == "BGR":
            images = [im[:, :, ::-1] for im in images]
        tensors = [torch.as_tensor(np.ascontiguousarray(im.transpose(2, 0, 1))) for im in images]
        with torch.no_grad(), self._autocast():
            return self.model([{"image": tensors, "height": height, "width": width}])

"""Load official ``.pkl`` and this project's ``.pth`` checkpoints without detectron2.

Official Mask2Former checkpoints are detectron2 pickles, ``{"model": {key: numpy array}, ...}``,
whose keys are exactly this project's ``state_dict`` keys; training writes ``.pth`` files
``{"model": state_dict, "iteration": ..., ...}``. The detectron2 layer loads both through
``DetectionCheckpointer``; this module does the same for library users, and says exactly which
keys did not fit.
"""

import pickle
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Tuple

import numpy as np
import torch
from torch import nn

__all__ = ["CheckpointMismatchError", "LoadReport", "read_checkpoint", "load_checkpoint"]


class CheckpointMismatchError(RuntimeError):
    """The checkpoint's keys or shapes do not fit the model (the message lists them)."""


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did not load."""

    missing_keys: List[str] = field(default_factory=list)
    unexpected_keys: List[str] = field(default_factory=list)
    shape_mismatches: List[Tuple[str, tuple, tuple]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing_keys or self.unexpected_keys or self.shape_mismatches)

    def describe(self, path: str, limit: int = 10) -> str:
        def listed(keys):
            shown = ", ".join(str(k) for k in keys[:limit])
            return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")

        lines = [f"checkpoint {path} does not fit the model:"]
        if self.missing_keys:
            lines.append(f"  {len(self.missing_keys)} missing keys: {listed(self.missing_keys)}")
        if self.unexpected_keys:
            lines.append(
                f"  {len(self.unexpected_keys)} unexpected keys: {listed(self.unexpected_keys)}"
            )
        if self.shape_mismatches:
            shapes = [f"{k} {list(c)} (model {list(m)})" for k, c, m in self.shape_mismatches]
            lines.append(f"  {len(shapes)} keys of another shape: {listed(shapes)}")
        return "\n".join(lines)


def read_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """The model weights stored in ``path`` (``.pkl`` of detectron2 or ``.pth`` of torch).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds no recognisable weights (the message says what was found).
    """
    if path.endswith(".pkl"):
        with open(path, "rb") as f:
            data = pickle.load(f, encoding="latin1")
    else:
        data = torch.load(path, map_location="cpu", weights_only=False)
    weights = data.get("model", data) if isinstance(data, Mapping) else None
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError(
            f"checkpoint {path}: expected a dict of weights or {{'model': weights}}, found "
            f"{type(data).__name__}"
            + (f" with keys {list(data)[:5]}" if isinstance(data, Mapping) else "")
        )
    tensors = {}
    for key, value in weights.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"checkpoint {path}: entry {key!r} is a {type(value).__name__}, expected an array"
            )
        tensors[key] = value
    return tensors


def load_checkpoint(model: nn.Module, path: str, strict: bool = True) -> LoadReport:
    """Load the weights of ``path`` into ``model``.

    Args:
        model (nn.Module): e.g. a :class:`~video_mask2former.modeling.VideoMaskFormer`.
        path (str): an official ``.pkl`` or a ``.pth`` written by training.
        strict (bool): raise :class:`CheckpointMismatchError` unless every key fits; otherwise
            load what fits and return the report of the rest.

    Returns:
        LoadReport: missing keys (left at their current values), unexpected keys and shape
        mismatches (both ignored).
    """
    weights = read_checkpoint(path)
    own = model.state_dict()
    report = LoadReport(
        missing_keys=[k for k in own if k not in weights],
        unexpected_keys=[k for k in weights if k not in own],
    )
    loadable = {}
    for key, value in weights.items():
        if key not in own:
            continue
        if tuple(value.shape) != tuple(own[key].shape):
            report.shape_mismatches.append((key, tuple(value.shape), tuple(own[key].shape)))
            continue
        loadable[key] = value
    if strict and not report.ok:
        raise CheckpointMismatchError(report.describe(path))
    model.load_state_dict(loadable, strict=False)
    return report

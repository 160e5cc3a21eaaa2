"""The official layout: this project's ``state_dict`` keys, which are the official Mask2Former's.

Files in it: detectron2 model-zoo pickles (``{"model": {key: numpy array}, "__author__": ...}``),
this project's training checkpoints (``{"model": state_dict, "iteration": ..., ...}``), and the
older pickles detectron2 also reads: Caffe2 / Detectron1 (arrays, under ``"blobs"`` for
detection models) and pycls (``.pyth``, under ``"model_state"``), whose names detectron2's
checkpointer matches to the model's by heuristics (``"matching_heuristics": True``).
"""

import pickle
from typing import Any, Dict, Mapping

import numpy as np
import torch

from ...file_io import atomic_write

__all__ = ["d2_pickle_content", "official_state_dict", "pycls_content", "save_official_checkpoint"]

# Prefix of every key of a state dict saved from a (Distributed)DataParallel-wrapped model.
_WRAPPED_PREFIX = "module."


def d2_pickle_content(data: Any) -> Any:
    """What detectron2 makes of an unpickled ``.pkl``: a model-zoo file (``"model"``, usually
    with ``"__author__"``) as it is; otherwise a Caffe2 / Detectron1 file, whose arrays (under
    ``"blobs"`` for detection models) lose their ``*_momentum`` entries and get
    ``"matching_heuristics"``. Anything else is returned unchanged (the reader reports it)."""
    if not isinstance(data, dict) or "model" in data:
        return data
    arrays = data.get("blobs", data)
    if not isinstance(arrays, dict):
        return data
    arrays = {k: v for k, v in arrays.items() if not k.endswith("_momentum")}
    return {"model": arrays, "__author__": "Caffe2", "matching_heuristics": True}


def pycls_content(data: Any) -> Any:
    """What detectron2 makes of a pycls ``.pyth`` checkpoint: ``"model_state"`` without
    ``num_batches_tracked``, matched by heuristics. Anything else is returned unchanged."""
    if not isinstance(data, dict) or not isinstance(data.get("model_state"), dict):
        return data
    weights = {
        k: v for k, v in data["model_state"].items() if not k.endswith("num_batches_tracked")
    }
    return {"model": weights, "__author__": "pycls", "matching_heuristics": True}


def official_state_dict(weights: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """``weights`` (tensors or NumPy arrays) as tensors, without the ``module.`` prefix that a
    state dict of a (Distributed)DataParallel-wrapped model has on every key."""
    if weights and all(k.startswith(_WRAPPED_PREFIX) for k in weights):
        weights = {k[len(_WRAPPED_PREFIX) :]: v for k, v in weights.items()}
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in weights.items()}


def save_official_checkpoint(
    weights: Mapping[str, Any], path: str, *, author: str, matching_heuristics: bool = False
) -> None:
    """Write official weights (tensors or arrays), atomically.

    ``.pkl``: a detectron2 pickle ``{"model": {key: numpy array}, "__author__": author}`` (plus
    ``"matching_heuristics": True`` when asked: keys without the model's prefix, e.g. a backbone's,
    that detectron2's checkpointer finds by name); NumPy has no bfloat16, such tensors are stored
    as float32. Any other name: ``torch.save({"model": state_dict})`` (and the flag).
    """
    flag = {"matching_heuristics": True} if matching_heuristics else {}
    if path.endswith(".pkl"):
        data = {"model": {k: _array(v) for k, v in weights.items()}, "__author__": author, **flag}
        atomic_write(path, lambda f: pickle.dump(data, f))
    else:
        data = {"model": {k: torch.as_tensor(v) for k, v in weights.items()}, **flag}
        atomic_write(path, lambda f: torch.save(data, f))


def _array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return (value.float() if value.dtype == torch.bfloat16 else value).detach().cpu().numpy()
    return np.asarray(value)

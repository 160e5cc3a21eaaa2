"""Reading checkpoints and writing detectron2-style weight pickles, shared by the converters.

The converters are run as scripts (``python tools/convert_*.py``), so they import this module as
a sibling file.
"""

import pickle
from typing import Dict

import numpy as np
import torch


def load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Tensors of a checkpoint: a plain state dict, or one under ``"model"`` / ``"state_dict"``."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    return obj


def save_d2_pickle(weights: Dict[str, np.ndarray], path: str, author: str) -> None:
    """Write ``{"model": weights, "__author__": author, "matching_heuristics": True}``."""
    with open(path, "wb") as f:
        pickle.dump({"model": weights, "__author__": author, "matching_heuristics": True}, f)

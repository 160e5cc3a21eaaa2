"""Reading checkpoints and writing detectron2-style weight pickles, shared by the converters.

The converters are run as scripts (``python tools/convert_*.py``), so they import this module as
a sibling file.
"""

import argparse
import pickle
import sys
from typing import Callable, Dict, List, Optional

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


def run_converter(
    argv: Optional[List[str]],
    *,
    description: str,
    input_help: str,
    convert: Callable[..., Dict[str, np.ndarray]],
    author: str,
) -> int:
    """The command line shared by the converters: ``INPUT OUTPUT [--prefix P]``.

    ``convert(state_dict, source=path)`` maps the input's tensors to this project's names and
    raises ``ValueError`` (printed, exit code 1) for keys it does not know.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("input", type=str, help=input_help)
    parser.add_argument("output", type=str, help="output detectron2-style pickle (.pkl)")
    parser.add_argument(
        "--prefix", type=str, default="", help="prepended to every key, e.g. 'backbone.'"
    )
    args = parser.parse_args(argv)
    try:
        weights = convert(load_state_dict(args.input), source=args.input)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    save_d2_pickle({args.prefix + k: v for k, v in weights.items()}, args.output, author)
    print(f"Wrote {len(weights)} arrays to {args.output}")
    return 0

#!/usr/bin/env python
"""Convert a torchvision ImageNet ResNet-50/101 checkpoint to this project's backbone weights.

Usage::

    python tools/convert_torchvision_resnet.py resnet50-0676ba61.pth R-50-torchvision.pkl

The output is a detectron2-style pickle ``{"model": {key: numpy array}, "__author__":
"torchvision", "matching_heuristics": True}`` with detectron2 ResNet key names (``stem.conv1``,
``stem.conv1.norm``, ``res2.0.conv1.norm``, ``res2.0.shortcut``, ...); ``matching_heuristics``
lets detectron2's checkpointer find them under ``backbone.`` (or pass ``--prefix backbone.``).
The classifier ``fc`` and BatchNorm's ``num_batches_tracked`` are dropped.

torchvision ResNets put the stride in the 3x3 convolution and take RGB inputs normalised with the
ImageNet mean/std, so train with ``RESNETS.STRIDE_IN_1X1: False``, ``INPUT.FORMAT: "RGB"``,
``PIXEL_MEAN: [123.675, 116.280, 103.530]`` and ``PIXEL_STD: [58.395, 57.120, 57.375]``.
"""

import re
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from _weights_io import run_converter

_BN_FIELDS = r"(weight|bias|running_mean|running_var)"
# (torchvision key pattern, detectron2 key template); the first match wins.
_RULES: List[Tuple[str, str]] = [
    (r"conv1\.weight", "stem.conv1.weight"),
    (rf"bn1\.{_BN_FIELDS}", r"stem.conv1.norm.\1"),
    (r"layer(\d)\.(\d+)\.conv(\d)\.weight", "res{stage}.\\2.conv\\3.weight"),
    (rf"layer(\d)\.(\d+)\.bn(\d)\.{_BN_FIELDS}", "res{stage}.\\2.conv\\3.norm.\\4"),
    (r"layer(\d)\.(\d+)\.downsample\.0\.weight", "res{stage}.\\2.shortcut.weight"),
    (rf"layer(\d)\.(\d+)\.downsample\.1\.{_BN_FIELDS}", "res{stage}.\\2.shortcut.norm.\\3"),
]
# Keys that exist in torchvision checkpoints but have no place in the backbone.
_DROPPED = re.compile(r"(fc\.(weight|bias))|(.*num_batches_tracked)")


def convert_key(key: str) -> Optional[str]:
    """detectron2 name of a torchvision ResNet key; None for a dropped key.

    Raises:
        KeyError: the key is not part of a torchvision ResNet.
    """
    if _DROPPED.fullmatch(key):
        return None
    for pattern, template in _RULES:
        match = re.fullmatch(pattern, key)
        if match:
            stage = int(match.group(1)) + 1 if key.startswith("layer") else None
            return match.expand(template.replace("{stage}", str(stage)))
    raise KeyError(key)


def convert(
    state_dict: Dict[str, torch.Tensor], source: str = "<state_dict>"
) -> Dict[str, np.ndarray]:
    """Rename a torchvision ResNet state dict to detectron2 names, as numpy arrays.

    Args:
        state_dict (dict): torchvision ``ResNet.state_dict()`` (e.g. ``resnet50-*.pth``).
        source (str): name of the file, for error messages.

    Returns:
        dict[str, np.ndarray]: detectron2 key -> array.

    Raises:
        ValueError: some keys are not torchvision ResNet keys (all of them are listed).
    """
    converted, unexpected = {}, []
    for key, value in state_dict.items():
        try:
            new_key = convert_key(key)
        except KeyError:
            unexpected.append(key)
            continue
        if new_key is not None:
            converted[new_key] = value.detach().cpu().numpy()
    if unexpected:
        raise ValueError(
            f"{source}: {len(unexpected)} keys are not torchvision ResNet keys (expected conv1, "
            f"bn1, layer1..layer4, fc): {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}"
        )
    if not converted:
        raise ValueError(f"{source}: no ResNet weights found")
    return converted


def main(argv: Optional[List[str]] = None) -> int:
    return run_converter(
        argv,
        description=__doc__.split("\n\n")[0],
        input_help="torchvision ResNet checkpoint (.pth)",
        convert=convert,
        author="torchvision",
    )


if __name__ == "__main__":
    sys.exit(main())

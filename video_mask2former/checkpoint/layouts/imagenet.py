"""ImageNet backbones -> this project's backbone weights (detectron2 key names).

* **torchvision ResNet-50/101** (``resnet50-0676ba61.pth``): renamed to detectron2's ResNet names
  (``stem.conv1``, ``stem.conv1.norm``, ``res2.0.conv1.norm``, ``res2.0.shortcut``, ...); the
  classifier ``fc`` and BatchNorm's ``num_batches_tracked`` are dropped. torchvision ResNets put
  the stride in the 3x3 convolution and take RGB inputs normalised with the ImageNet mean/std, so
  train with ``RESNETS.STRIDE_IN_1X1: False``, ``INPUT.FORMAT: "RGB"``, ``PIXEL_MEAN: [123.675,
  116.280, 103.530]`` and ``PIXEL_STD: [58.395, 57.120, 57.375]``.
* **official Swin Transformer** (github.com/microsoft/Swin-Transformer, ``{"model": state_dict}``,
  e.g. ``swin_base_patch4_window12_384_22k.pth``): the backbone (``SwinTransformer`` with the
  D2SwinTransformer layout) uses the same names for the patch embedding and the stages
  (``patch_embed.*``, ``layers.N.blocks.M.*``, ``layers.N.downsample.*``), which are kept; the
  classifier's final ``norm`` and ``head`` and the precomputed shifted-window ``attn_mask``
  buffers are dropped (the backbone has its own ``norm0``..``norm3`` per output and computes the
  masks). Swin models take RGB inputs normalised with the ImageNet mean/std.

:func:`convert_imagenet_file` reads such a checkpoint and writes a detectron2-style pickle
``{"model": {key: numpy array}, "__author__": ..., "matching_heuristics": True}``: the keys have
no ``backbone.`` prefix (unless one is given) and detectron2's checkpointer finds them by name.
"""

import re
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..files import read_file, weights_of
from .official import save_official_checkpoint

__all__ = [
    "IMAGENET_CONVERTERS",
    "convert_imagenet_file",
    "convert_resnet_key",
    "convert_swin",
    "convert_torchvision_resnet",
]


def _array(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


# --- torchvision ResNet ------------------------------------------------------------------------

_BN_FIELDS = r"(weight|bias|running_mean|running_var)"
# (torchvision key pattern, detectron2 key template); the first match wins.
_RESNET_RULES: List[Tuple[str, str]] = [
    (r"conv1\.weight", "stem.conv1.weight"),
    (rf"bn1\.{_BN_FIELDS}", r"stem.conv1.norm.\1"),
    (r"layer(\d)\.(\d+)\.conv(\d)\.weight", "res{stage}.\\2.conv\\3.weight"),
    (rf"layer(\d)\.(\d+)\.bn(\d)\.{_BN_FIELDS}", "res{stage}.\\2.conv\\3.norm.\\4"),
    (r"layer(\d)\.(\d+)\.downsample\.0\.weight", "res{stage}.\\2.shortcut.weight"),
    (rf"layer(\d)\.(\d+)\.downsample\.1\.{_BN_FIELDS}", "res{stage}.\\2.shortcut.norm.\\3"),
]
# Keys that exist in torchvision checkpoints but have no place in the backbone.
_RESNET_DROPPED = re.compile(r"(fc\.(weight|bias))|(.*num_batches_tracked)")


def convert_resnet_key(key: str) -> Optional[str]:
    """detectron2 name of a torchvision ResNet key; None for a dropped key.

    Raises:
        KeyError: the key is not part of a torchvision ResNet.
    """
    if _RESNET_DROPPED.fullmatch(key):
        return None
    for pattern, template in _RESNET_RULES:
        match = re.fullmatch(pattern, key)
        if match:
            stage = int(match.group(1)) + 1 if key.startswith("layer") else None
            return match.expand(template.replace("{stage}", str(stage)))
    raise KeyError(key)


def convert_torchvision_resnet(
    state_dict: Dict[str, torch.Tensor], source: str = "<state_dict>"
) -> Dict[str, np.ndarray]:
    """Rename a torchvision ResNet state dict to detectron2 names, as numpy arrays.

    Args:
        state_dict (dict): torchvision ``ResNet.state_dict()`` (e.g. ``resnet50-*.pth``), tensors
            or arrays.
        source (str): name of the file, for error messages.

    Returns:
        dict[str, np.ndarray]: detectron2 key -> array.

    Raises:
        ValueError: some keys are not torchvision ResNet keys (all of them are listed).
    """
    converted, unexpected = {}, []
    for key, value in state_dict.items():
        try:
            new_key = convert_resnet_key(key)
        except KeyError:
            unexpected.append(key)
            continue
        if new_key is not None:
            converted[new_key] = _array(value)
    if unexpected:
        raise ValueError(
            f"{source}: {len(unexpected)} keys are not torchvision ResNet keys (expected conv1, "
            f"bn1, layer1..layer4, fc): {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}"
        )
    if not converted:
        raise ValueError(f"{source}: no ResNet weights found")
    return converted


# --- official Swin Transformer -----------------------------------------------------------------

# Backbone keys, kept unchanged.
_SWIN_KEPT = re.compile(
    r"patch_embed\.(proj|norm)\.(weight|bias)"
    r"|absolute_pos_embed"
    r"|layers\.\d+\.blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)"
    r"\.(weight|bias)"
    r"|layers\.\d+\.blocks\.\d+\.attn\.(relative_position_bias_table|relative_position_index)"
    r"|layers\.\d+\.downsample\.(reduction\.weight|norm\.(weight|bias))"
)
# Classification-only keys.
_SWIN_DROPPED = re.compile(r"(norm|head)\.(weight|bias)|layers\.\d+\.blocks\.\d+\.attn_mask")


def convert_swin(
    state_dict: Dict[str, torch.Tensor], source: str = "<state_dict>"
) -> Dict[str, np.ndarray]:
    """Keep the backbone weights of an official Swin state dict, as numpy arrays.

    Args:
        state_dict (dict): the ``"model"`` entry of an official Swin checkpoint, tensors or arrays.
        source (str): name of the file, for error messages.

    Returns:
        dict[str, np.ndarray]: D2SwinTransformer key -> array.

    Raises:
        ValueError: some keys are not Swin Transformer (v1) keys (all of them are listed).
    """
    converted, unexpected = {}, []
    for key, value in state_dict.items():
        if _SWIN_KEPT.fullmatch(key):
            converted[key] = _array(value)
        elif not _SWIN_DROPPED.fullmatch(key):
            unexpected.append(key)
    if unexpected:
        raise ValueError(
            f"{source}: {len(unexpected)} keys are not official Swin Transformer keys (expected "
            f"patch_embed, layers.N.blocks.M, layers.N.downsample, norm, head): "
            f"{unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}"
        )
    if not converted:
        raise ValueError(f"{source}: no Swin Transformer weights found")
    return converted


# --- files -------------------------------------------------------------------------------------

# Converter name -> (function, "__author__" of the written pickle).
IMAGENET_CONVERTERS: Dict[str, Tuple[Callable[..., Dict[str, np.ndarray]], str]] = {
    "torchvision_resnet": (convert_torchvision_resnet, "torchvision"),
    "swin": (convert_swin, "third_party"),
}


def convert_imagenet_file(source: str, output: str, kind: str, *, prefix: str = "") -> int:
    """Convert the ImageNet checkpoint ``source`` and write it to ``output`` (atomically).

    Args:
        source (str): a ``.pth`` (``torch.load``-able state dict, possibly under ``"model"`` or
            ``"state_dict"``).
        output (str): the ``.pkl`` to write (another name: a ``torch.save`` file).
        kind (str): a key of :data:`IMAGENET_CONVERTERS`.
        prefix (str): prepended to every key, e.g. ``"backbone."``.

    Returns:
        int: the number of arrays written.

    Raises:
        CheckpointFileError: ``source`` is not a readable checkpoint.
        ValueError: some of its keys are not of ``kind`` (all of them are listed).
    """
    convert, author = IMAGENET_CONVERTERS[kind]
    weights = convert(weights_of(read_file(source), source), source=source)
    prefixed = {prefix + k: v for k, v in weights.items()}
    save_official_checkpoint(prefixed, output, author=author, matching_heuristics=True)
    return len(prefixed)

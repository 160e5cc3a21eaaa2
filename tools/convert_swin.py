#!/usr/bin/env python
"""Convert an official Swin Transformer ImageNet checkpoint to this project's backbone weights.

Usage::

    python tools/convert_swin.py swin_tiny_patch4_window7_224.pth swin_tiny_patch4_window7_224.pkl

Input: a checkpoint of github.com/microsoft/Swin-Transformer (``{"model": state_dict}``), e.g.
``swin_base_patch4_window12_384_22k.pth``. The backbone (``SwinTransformer`` with the
D2SwinTransformer layout) uses the same names for the patch embedding and the stages
(``patch_embed.*``, ``layers.N.blocks.M.*``, ``layers.N.downsample.*``), which are kept; the
classifier's final ``norm`` and ``head`` and the precomputed shifted-window ``attn_mask`` buffers
are dropped (the backbone has its own ``norm0``..``norm3`` per output and computes the masks).

The output is a detectron2-style pickle ``{"model": {key: numpy array}, "__author__":
"third_party", "matching_heuristics": True}``; pass ``--prefix backbone.`` to store full model keys.
Swin models take RGB inputs normalised with the ImageNet mean/std.
"""

import re
import sys
from typing import Dict, List, Optional

import numpy as np
import torch
from _weights_io import run_converter

# Backbone keys, kept unchanged.
_KEPT = re.compile(
    r"patch_embed\.(proj|norm)\.(weight|bias)"
    r"|absolute_pos_embed"
    r"|layers\.\d+\.blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)"
    r"\.(weight|bias)"
    r"|layers\.\d+\.blocks\.\d+\.attn\.(relative_position_bias_table|relative_position_index)"
    r"|layers\.\d+\.downsample\.(reduction\.weight|norm\.(weight|bias))"
)
# Classification-only keys.
_DROPPED = re.compile(r"(norm|head)\.(weight|bias)|layers\.\d+\.blocks\.\d+\.attn_mask")


def convert(
    state_dict: Dict[str, torch.Tensor], source: str = "<state_dict>"
) -> Dict[str, np.ndarray]:
    """Keep the backbone weights of an official Swin state dict, as numpy arrays.

    Args:
        state_dict (dict): the ``"model"`` entry of an official Swin checkpoint.
        source (str): name of the file, for error messages.

    Returns:
        dict[str, np.ndarray]: D2SwinTransformer key -> array.

    Raises:
        ValueError: some keys are not Swin Transformer (v1) keys (all of them are listed).
    """
    converted, unexpected = {}, []
    for key, value in state_dict.items():
        if _KEPT.fullmatch(key):
            converted[key] = value.detach().cpu().numpy()
        elif not _DROPPED.fullmatch(key):
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


def main(argv: Optional[List[str]] = None) -> int:
    return run_converter(
        argv,
        description=__doc__.split("\n\n")[0],
        input_help="official Swin checkpoint (.pth)",
        convert=convert,
        author="third_party",
    )


if __name__ == "__main__":
    sys.exit(main())

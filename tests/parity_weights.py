"""The deterministic weights the official parity fixtures were measured with.

The rule is written down in ``tests/fixtures/parity/README.md`` (the fixtures' own README): every
floating-point ``state_dict`` entry gets values drawn from a generator seeded with the CRC32 of
its key, scaled by a rule chosen from the key's last two dotted parts. Integer tensors (e.g.
Swin's ``relative_position_index``) keep what the model computed.

:func:`check_r50_raw_outputs` compares a model's raw outputs with the R50 fixture; the core and
the detectron2 parity tests both use it.
"""

import math
import zlib
from typing import Dict

import torch
from torch import nn

from video_mask2former.inference import network_outputs

# Scale of biases, running means and other small tensors (rule 4 of the README).
_SMALL_SCALE = 0.02
# Spread of norm weights and running variances around 1 (rules 1 and 2).
_NORM_SPREAD = 0.1


# The official state_dict of each backbone's configuration (tests/fixtures/parity/keys_*.json).
KEY_FILES = {
    "R50": "keys_r50.json",
    "R101": "keys_r101.json",
    "swin_tiny": "keys_swint.json",
    "swin_small": "keys_swins.json",
    "swin_base_384": "keys_swinb.json",
    "swin_large_384": "keys_swinl.json",
}


def deterministic_value(key: str, shape: torch.Size) -> torch.Tensor:
    """The float32 value the parity rule assigns to a ``state_dict`` entry.

    Args:
        key (str): the full ``state_dict`` key, e.g. ``"sem_seg_head.predictor.query_feat.weight"``.
        shape (torch.Size): the entry's shape.

    Returns:
        Tensor: float32 of ``shape``.
    """
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")))
    x = torch.randn(shape, generator=generator, dtype=torch.float32)
    parts = key.split(".")
    name = parts[-1]
    module = parts[-2] if len(parts) >= 2 else ""
    if name == "running_var":
        return 1 + _NORM_SPREAD * x.abs()
    if name == "weight" and x.dim() == 1 and "norm" in module:
        return 1 + _NORM_SPREAD * x
    if module in ("query_feat", "query_embed") or name == "level_embed":
        return x
    if name in ("bias", "running_mean") or x.dim() < 2:
        return _SMALL_SCALE * x
    return x / math.sqrt(math.prod(shape[1:]))


def deterministic_state_dict(model: nn.Module) -> Dict[str, torch.Tensor]:
    """A ``state_dict`` for ``model`` with every floating-point entry set by the parity rule.

    Args:
        model (nn.Module): any model; its own ``state_dict`` gives the keys, shapes and dtypes.

    Returns:
        dict: key -> tensor, loadable with ``model.load_state_dict(..., strict=True)``. Floating
        entries keep the model's dtype; integer entries are the model's own values (cloned).
    """
    result = {}
    for key, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            result[key] = deterministic_value(key, tensor.shape).to(tensor.dtype)
        else:
            result[key] = tensor.detach().clone()
    return result


# Absolute tolerance of raw outputs against the official CPU fp32 run (the fixtures' README).
OUTPUT_ATOL = 1e-3


def check_r50_raw_outputs(model: nn.Module, fixture: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """Run ``model`` (deterministic weights, eval) on the fixture video; compare the raw outputs.

    Returns:
        dict: the max absolute difference of ``pred_logits``, ``pred_masks`` and the first
        deep-supervision outputs; each is asserted to be below ``OUTPUT_ATOL``.
    """
    height, width = fixture["output_size"]
    video = {"image": [f.float() for f in fixture["video"]], "height": height, "width": width}
    with torch.no_grad():
        outputs, _, _ = network_outputs(model, [video], keep_aux=True)
    pairs = {
        "pred_logits": outputs["pred_logits"][0],
        "pred_masks": outputs["pred_masks"][0],
        "aux0_pred_logits": outputs["aux_outputs"][0]["pred_logits"][0],
        "aux0_pred_masks": outputs["aux_outputs"][0]["pred_masks"][0],
    }
    diffs = {}
    for name, value in pairs.items():
        assert value.shape == fixture[name].shape, name
        diffs[name] = (value.cpu() - fixture[name]).abs().max().item()
        assert diffs[name] < OUTPUT_ATOL, f"{name}: max abs diff {diffs[name]}"
    assert len(outputs["aux_outputs"]) == 9
    return diffs

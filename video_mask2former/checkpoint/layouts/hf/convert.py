"""Converting state dicts between transformers' Mask2Former layout and the official one."""

from typing import Any, Dict, Mapping, Optional, Union

import torch
from torch import nn

from ....modeling.backbone.swin import relative_position_index
from ...errors import HFCheckpointError
from .backbone import backbone_spec, check_backbone, window_size
from .keys import (
    HF_ONLY,
    P,
    RELATIVE_INDEX,
    SWIN_FINAL_NORM,
    hf_file_names,
    listed,
    looks_hf,
    looks_official,
    match_hf,
    match_official,
)


def _as_tensor(value: Any) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value)


def from_hf_state_dict(
    state_dict: Mapping[str, Any],
    *,
    source: str = "<state dict>",
    target: Union[str, nn.Module, Mapping[str, Any], None] = None,
) -> Dict[str, torch.Tensor]:
    """Convert transformers' Mask2Former weights to this project's (official) keys.

    Args:
        state_dict (dict): ``Mask2FormerForUniversalSegmentation`` (or ``Mask2FormerModel``)
            weights, as in its files or in memory (transformers 4 or 5).
        source (str): the file, named in error messages.
        target: when given, the backbone name ("R50", "swin_tiny", ...), model or official state
            dict the weights are for: another backbone architecture raises.

    Returns:
        dict[str, Tensor]: official key -> tensor, Swin's ``relative_position_index`` included.

    Raises:
        HFCheckpointError: keys outside transformers' layout (listed), a fused projection with a
            part missing, or a backbone other than the target's.
    """
    if not looks_hf(state_dict):
        hint = (
            "they are this project's (official) keys: load it as an official checkpoint"
            if looks_official(state_dict)
            else "expected keys starting with 'model.pixel_level_module.'"
        )
        raise HFCheckpointError(
            f"{source} is not in transformers' Mask2Former layout ({hint}); first keys: "
            f"{listed(list(state_dict))}"
        )
    out: Dict[str, torch.Tensor] = {}
    fused: Dict[str, Dict[int, torch.Tensor]] = {}
    fused_parts: Dict[str, int] = {}
    unknown = []
    for key, value in hf_file_names(state_dict).items():
        if HF_ONLY.fullmatch(key):
            continue
        found = match_hf(key)
        if found is None:
            unknown.append(key)
            continue
        rule, part, groups = found
        official = rule.official.format(**groups)
        if len(rule.hf) == 1:
            out[official] = _as_tensor(value)
        else:
            fused.setdefault(official, {})[part] = _as_tensor(value)
            fused_parts[official] = len(rule.hf)
    if unknown:
        raise HFCheckpointError(
            f"{source}: {len(unknown)} keys are not in transformers' Mask2Former layout (this "
            f"converter knows the Swin and ResNet backbones): {listed(unknown)}"
        )
    for official, parts in fused.items():
        if len(parts) != fused_parts[official]:
            raise HFCheckpointError(
                f"{source}: {official} is the concatenation of {fused_parts[official]} "
                f"projections (query, key, value) but only {len(parts)} are in the file"
            )
        out[official] = torch.cat([parts[i] for i in range(len(parts))], dim=0)
    for key in [k for k in out if k.endswith(".attn.relative_position_bias_table")]:
        index_key = key.replace("relative_position_bias_table", "relative_position_index")
        out[index_key] = relative_position_index(window_size(out[key].shape[0]))
    if target is not None:
        check_backbone(out, target, source)
    return out


def to_hf_state_dict(
    state_dict: Mapping[str, Any], backbone: Optional[str] = None, *, source: str = "the state dict"
) -> Dict[str, torch.Tensor]:
    """Convert this project's (official) weights to transformers' Mask2Former layout.

    The result is what ``Mask2FormerForUniversalSegmentation.save_pretrained`` writes (and the Hub
    holds): every key of that model, no other.

    Args:
        state_dict (dict): official key -> tensor or array (e.g. ``model.state_dict()`` or
            :func:`~video_mask2former.checkpoint.read_checkpoint`).
        backbone (str, optional): the backbone it should have ("R50", "swin_tiny", ...); another
            architecture raises. None: whatever the weights are.
        source (str): what the weights are (e.g. their file), named in error messages.

    Returns:
        dict[str, Tensor]: transformers key -> tensor (contiguous, no shared storage).

    Raises:
        HFCheckpointError: keys without counterpart (listed) or another backbone than named.
    """
    if backbone is not None:
        check_backbone(state_dict, backbone, source)
    spec = backbone_spec(state_dict, where=source)
    out: Dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if RELATIVE_INDEX.fullmatch(key):
            continue
        found = match_official(key)
        if found is None:
            unknown.append(key)
            continue
        rule, groups = found
        value = _as_tensor(value)
        parts = value.chunk(len(rule.hf), dim=0) if len(rule.hf) > 1 else (value,)
        for template, part in zip(rule.hf, parts):
            out[template.format(**groups)] = part.contiguous().clone()
    if unknown:
        raise HFCheckpointError(
            f"{source}: {len(unknown)} keys have no counterpart in transformers' Mask2Former "
            f"layout: {listed(unknown)}"
        )
    for key in [k for k in out if k.endswith(".normalization.running_mean")]:
        tracked = key.replace("running_mean", "num_batches_tracked")
        out[tracked] = torch.zeros((), dtype=torch.long)
    if spec.family == "swin":
        dtype = out[P + "encoder.embeddings.norm.weight"].dtype
        out[SWIN_FINAL_NORM + "weight"] = torch.ones(spec.channels[-1], dtype=dtype)
        out[SWIN_FINAL_NORM + "bias"] = torch.zeros(spec.channels[-1], dtype=dtype)
    return out

"""The backbone architecture a state dict, a model or a name has, as far as transformers' layout
can express it (ResNet with batch norm, Swin without absolute position embedding)."""

import math
import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from torch import nn

from ....modeling.backbone.resnet import BLOCKS_PER_DEPTH
from ....modeling.backbone.swin import SWIN_VARIANTS
from ....modeling.build import RESNET_DEPTHS, SWIN_CONFIGS
from ...errors import HFCheckpointError
from .keys import STAGES as _STAGES


@dataclass(frozen=True)
class BackboneSpec:
    """The shape of a backbone, as far as its weights tell.

    Attributes:
        family (str): "resnet" or "swin".
        depths (tuple[int]): blocks of the 4 stages.
        channels (tuple[int]): output channels of res2..res5.
        stem_channels (int): ResNet stem width (0 for Swin).
        num_heads (tuple[int]): Swin attention heads per stage (() for ResNet).
        window_size (int): Swin window side (0 for ResNet).
        block (str): ResNet block, "bottleneck" (R50, R101) or "basic" (ResNet-18/34).
    """

    family: str
    depths: Tuple[int, ...]
    channels: Tuple[int, ...]
    stem_channels: int = 0
    num_heads: Tuple[int, ...] = ()
    window_size: int = 0
    block: str = "bottleneck"

    @property
    def name(self) -> Optional[str]:
        """The name of :data:`~video_mask2former.modeling.build.BACKBONES` it is, if any."""
        return next((n for n in _NAMED_SPECS if _NAMED_SPECS[n] == self), None)

    def describe(self) -> str:
        """E.g. "Swin (swin_tiny: embed_dim 96, depths (2, 2, 6, 2), ...)"."""
        name = f"{self.name}: " if self.name else ""
        if self.family == "swin":
            return (
                f"Swin ({name}embed_dim {self.channels[0]}, depths {self.depths}, heads "
                f"{self.num_heads}, window {self.window_size})"
            )
        return f"ResNet ({name}{self.block} blocks, depths {self.depths}, channels {self.channels})"


def _named_specs() -> Dict[str, BackboneSpec]:
    specs = {}
    for name, depth in RESNET_DEPTHS.items():
        channels = tuple(256 * 2**i for i in range(_STAGES))  # res2_out_channels 256, doubling
        specs[name] = BackboneSpec("resnet", BLOCKS_PER_DEPTH[depth], channels, stem_channels=64)
    for name, variant in SWIN_CONFIGS.items():
        args = SWIN_VARIANTS[variant]
        channels = tuple(args["embed_dim"] * 2**i for i in range(_STAGES))
        specs[name] = BackboneSpec(
            "swin",
            tuple(args["depths"]),
            channels,
            num_heads=tuple(args["num_heads"]),
            window_size=args["window_size"],
        )
    return specs


_NAMED_SPECS = _named_specs()


def count(state_dict: Mapping[str, Any], pattern: str) -> int:
    """1 + the largest ``{n}`` of the keys matching ``pattern`` (a regex with one ``(\\d+)``)."""
    regex = re.compile(pattern)
    found = [int(m.group(1)) for m in map(regex.fullmatch, state_dict) if m]
    return max(found) + 1 if found else 0


def weight(state_dict: Mapping[str, Any], key: str, where: str) -> Any:
    """``state_dict[key]``, or an error naming what is missing."""
    if key not in state_dict:
        raise HFCheckpointError(f"{where}: {key} is missing (an incomplete checkpoint?)")
    return state_dict[key]


def window_size(table_rows: int) -> int:
    """Window side of a relative-position bias table of (2 ws - 1)^2 rows."""
    return (math.isqrt(table_rows) + 1) // 2


def has_hf_backbone(model: nn.Module) -> bool:
    """Whether ``model``'s backbone is one transformers' layout has (ResNet or Swin), so a
    checkpoint can be checked against it (:func:`backbone_spec`)."""
    keys = model.state_dict().keys()
    return "backbone.patch_embed.proj.weight" in keys or "backbone.stem.conv1.weight" in keys


def backbone_spec(
    source: Union[str, nn.Module, Mapping[str, Any]], *, where: str = "<state dict>"
) -> BackboneSpec:
    """The backbone architecture of a name, a model or an official state dict.

    Args:
        source: a name of :data:`~video_mask2former.modeling.build.BACKBONES` ("R50", "swin_tiny",
            ...), a model holding ``backbone.*`` weights (e.g. a ``VideoMaskFormer``), or its
            state dict.
        where (str): what to name in error messages.

    Raises:
        HFCheckpointError: an unknown name, or no ResNet / Swin backbone weights.
    """
    if isinstance(source, str):
        if source not in _NAMED_SPECS:
            raise HFCheckpointError(
                f"unknown backbone {source!r}; expected one of {tuple(_NAMED_SPECS)}"
            )
        return _NAMED_SPECS[source]
    state_dict = source.state_dict() if isinstance(source, nn.Module) else source
    if "backbone.patch_embed.proj.weight" in state_dict:
        if "backbone.absolute_pos_embed" in state_dict:
            raise HFCheckpointError(
                f"{where}: Swin with an absolute position embedding (ape) has no counterpart in "
                "transformers' Mask2Former layout"
            )
        depths = tuple(
            count(state_dict, rf"backbone\.layers\.{i}\.blocks\.(\d+)\.norm1\.weight")
            for i in range(_STAGES)
        )
        tables = [
            weight(
                state_dict, f"backbone.layers.{i}.blocks.0.attn.relative_position_bias_table", where
            )
            for i in range(_STAGES)
        ]
        embed_dim = state_dict["backbone.patch_embed.proj.weight"].shape[0]
        return BackboneSpec(
            "swin",
            depths,
            tuple(embed_dim * 2**i for i in range(_STAGES)),
            num_heads=tuple(t.shape[1] for t in tables),
            window_size=window_size(tables[0].shape[0]),
        )
    if "backbone.stem.conv1.weight" in state_dict:
        # Bottleneck blocks (R50, R101) end in conv3; basic blocks (ResNet-18/34) in conv2.
        block = "bottleneck" if "backbone.res2.0.conv3.weight" in state_dict else "basic"
        last_conv = "conv3" if block == "bottleneck" else "conv2"
        depths = tuple(
            count(state_dict, rf"backbone\.res{s + 2}\.(\d+)\.conv1\.weight")
            for s in range(_STAGES)
        )
        channels = tuple(
            weight(state_dict, f"backbone.res{s + 2}.0.{last_conv}.weight", where).shape[0]
            for s in range(_STAGES)
        )
        if "backbone.stem.conv1.norm.running_var" not in state_dict:
            raise HFCheckpointError(
                f"{where}: its ResNet normalises without running statistics (GroupNorm, as the "
                "quick model's); transformers' ResNet has batch norm only, so its outputs would "
                "differ"
            )
        stem = state_dict["backbone.stem.conv1.weight"]
        if tuple(stem.shape[2:]) != (7, 7):
            raise HFCheckpointError(
                f"{where}: the ResNet stem is not one 7x7 convolution (got kernel "
                f"{tuple(stem.shape[2:])}); transformers' ResNet has no other stem"
            )
        return BackboneSpec("resnet", depths, channels, stem_channels=stem.shape[0], block=block)
    raise HFCheckpointError(
        f"{where}: no ResNet (backbone.stem.*) or Swin (backbone.patch_embed.*) backbone weights; "
        "transformers' Mask2Former layout is supported for those two backbones"
    )


def check_backbone(
    state_dict: Mapping[str, Any], target: Union[str, nn.Module, Mapping[str, Any]], where: str
) -> None:
    found = backbone_spec(state_dict, where=where)
    expected = backbone_spec(target, where="the target model")
    if found != expected:
        raise HFCheckpointError(
            f"{where} holds a {found.describe()} backbone, but the target's is a "
            f"{expected.describe()}; use a checkpoint of the target's architecture"
        )

"""Read and write weights in the layout of transformers' Mask2Former (Hugging Face).

transformers has Mask2Former as an *image* model, ``Mask2FormerForUniversalSegmentation``; the
video checkpoints on the Hub (e.g. ``shivi/video-mask2former-swin-tiny-youtubevis-2021-instance``,
converted by a transformers pull request that was never merged, whose conversion script writes the
image model's key names) and the COCO image checkpoints that the official video models are
fine-tuned from (``facebook/mask2former-swin-*-coco-instance``) store that model's layout. This
module converts between it and this project's (the official, detectron2) layout:

* :func:`is_hf_checkpoint` tells a Hugging Face checkpoint (``hf://<repo_id>``, a folder, a
  ``.safetensors`` file, a file or state dict of transformers' keys) from an official one;
* :func:`load_hf_state_dict` reads one (folder, weights file or ``hf://<repo_id>[@revision]``)
  and returns the official state dict; :func:`from_hf_state_dict` converts one in memory;
* :func:`to_hf_state_dict`, :func:`hf_config` and :func:`save_hf_checkpoint` go the other way
  (a folder with ``config.json`` and ``model.safetensors`` that
  ``Mask2FormerForUniversalSegmentation.from_pretrained`` loads with no missing or unexpected
  key).

The layout written is the one on the Hub and written by ``save_pretrained`` (transformers 4 names
``attention.self.query`` ...; transformers 5 renames them in memory when loading). Reading also
accepts transformers 5's in-memory names (``encoder.swin.*``, ``attention.q_proj`` ...), i.e. a
``torch.save(model.state_dict())``, and the base model (``Mask2FormerModel``, no ``model.``).

Key mapping (official <- transformers; ``P`` = ``model.pixel_level_module``,
``D`` = ``model.transformer_module``):

* Swin: ``backbone.patch_embed.{proj,norm}`` <- ``P.encoder.embeddings.{patch_embeddings.projection,
  norm}``; per block ``norm1``/``norm2`` <- ``layernorm_before``/``layernorm_after``,
  ``attn.relative_position_bias_table`` <- ``attention.self.relative_position_bias_table``,
  ``attn.qkv`` (3C, C) <- the concatenation of ``attention.self.{query,key,value}`` (C, C) each,
  ``attn.proj`` <- ``attention.output.dense``, ``mlp.fc1``/``fc2`` <- ``intermediate.dense``/
  ``output.dense``; ``layers.i.downsample`` <- the same; ``backbone.norm{i}`` <-
  ``P.encoder.hidden_states_norms.stage{i+1}``.
* ResNet: ``backbone.stem.conv1[.norm]`` <- ``P.encoder.embedder.embedder.{convolution,
  normalization}``; ``backbone.res{s}.{b}.conv{c}[.norm]`` <- ``P.encoder.encoder.stages.{s-2}
  .layers.{b}.layer.{c-1}.{convolution,normalization}``; ``shortcut`` likewise.
* Pixel decoder: ``input_proj`` <- ``input_projections``, ``transformer.level_embed`` <-
  ``level_embed``, encoder layers ``norm1``/``linear1``/``linear2``/``norm2`` <-
  ``self_attn_layer_norm``/``fc1``/``fc2``/``final_layer_norm`` (deformable attention: same
  names), ``mask_features`` <- ``mask_projection``, ``adapter_1``/``layer_1`` (detectron2 Conv2d
  with ``.norm``) <- ``adapter_1.{0,1}``/``layer_1.{0,1}`` (Sequential of conv and GroupNorm).
* Transformer decoder: the self-attention ``in_proj_{weight,bias}`` (3C, C) <- the concatenation
  of ``self_attn.{q,k,v}_proj``; the cross-attention (``nn.MultiheadAttention`` in both) keeps its
  names; ``norm`` of the self-/cross-attention/FFN layers <- ``self_attn_layer_norm``/
  ``cross_attn_layer_norm``/``final_layer_norm``; ``linear1``/``linear2`` <- ``fc1``/``fc2``;
  ``decoder_norm`` <- ``D.decoder.layernorm``; ``query_feat``/``query_embed`` <-
  ``queries_features``/``queries_embedder``; ``mask_embed.layers.i`` <-
  ``D.decoder.mask_predictor.mask_embedder.i.0``; ``class_embed`` <- ``class_predictor``.

What one layout has and the other lacks:

* Every learned weight of the video model has its counterpart: the video transformer decoder is
  parameter-compatible with the image one (its 3-D position encoding has no parameters; the
  frame axis only changes what the queries attend to). An image checkpoint therefore loads into
  the video model (the official video models start from COCO image models) and a video checkpoint
  loads into transformers' image model, which then runs it frame by frame with a 2-D position
  encoding: weights it can hold, not the video model's predictions.
* The class head has K + 1 rows in both (``num_labels`` K in ``config.json``); COCO checkpoints
  have K = 80, YouTube-VIS ones 40 (the loading policy of ``video_mask2former.checkpoint`` decides
  whether another K is acceptable).
* Official-only: Swin's ``relative_position_index`` buffers (computed from the window size here;
  transformers 4 files also stored them, they are ignored). transformers-only: ResNet batch-norm
  ``num_batches_tracked`` (written as 0; this project's batch norms are frozen, transformers'
  are ``nn.BatchNorm2d``, the same function in eval mode) and transformers 5's Swin
  ``P.encoder.swin.layernorm`` (the final norm of ``SwinModel``, which the backbone never applies;
  written as the identity, dropped when reading).
* Same function, other modules: transformers' ResNet puts a block's stride in its 3x3
  convolution (``downsample_in_bottleneck=False``), as detectron2's with ``stride_in_1x1=False``
  (the official configs), and the same 7x7 stem and max-pool; its ``nn.BatchNorm2d`` computes what
  ``FrozenBatchNorm2d`` does in eval mode (in train mode it would update its statistics).
  transformers' SwinBackbone partitions windows like the official Swin at every resolution
  (``always_partition``; older releases shrank the window of a stage no larger than one window).
* Not stored by transformers' model: the pixel mean / std (its image processor normalises with
  the same ImageNet values) and the video-only settings (frames per clip, top-k).
* Not expressible (a one-line error): backbones other than ResNet and Swin (transformers'
  Mask2Former accepts any of its backbones; their keys are listed as unknown), ResNet stems other
  than one 7x7 convolution, Swin with an absolute position embedding, pixel decoders reading other
  than three levels.
"""

import importlib.util
import json
import math
import os
import re
import zipfile
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .checkpoint import CheckpointFileError
from .file_io import atomic_write
from .modeling.backbone.resnet import BLOCKS_PER_DEPTH
from .modeling.backbone.swin import SWIN_VARIANTS, relative_position_index
from .modeling.build import RESNET_DEPTHS, SWIN_CONFIGS

__all__ = [
    "HF_SCHEME",
    "BackboneSpec",
    "HFCheckpointError",
    "backbone_spec",
    "from_hf_state_dict",
    "hf_config",
    "is_hf_checkpoint",
    "load_hf_state_dict",
    "save_hf_checkpoint",
    "to_hf_state_dict",
]

# Prefix of a Hub repository given as a path: "hf://<owner>/<name>[@<revision>]".
HF_SCHEME = "hf://"
# config.json "model_type" of transformers' Mask2Former.
HF_MODEL_TYPE = "mask2former"
# Weight files of a transformers folder, in order of preference (safetensors first).
HF_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
HF_CONFIG_FILE = "config.json"
_SAFETENSORS_FILE = "model.safetensors"

_P = "model.pixel_level_module."  # backbone and pixel decoder
_D = "model.transformer_module."  # transformer decoder
# Keys of transformers' model start with these (of its base model, without "model.").
_HF_MARKERS = (_P, _D, "class_predictor.")
_HF_BASE_MARKERS = ("pixel_level_module.", "transformer_module.")
# Keys of this project's (official) model start with these.
_OFFICIAL_MARKERS = ("backbone.", "sem_seg_head.")

# transformers' pixel decoder and the official one: fixed sampling points per head and level of
# the deformable attention, and levels it encodes (res3..res5).
_DEFORMABLE_POINTS = 4
_ENCODER_LEVELS = 3
# Stride of the finest level the deformable encoder reads (res3); the FPN adds levels down to
# common_stride.
_FINEST_ENCODER_STRIDE = 8
_STAGES = 4  # res2..res5 / stage1..stage4


class HFCheckpointError(CheckpointFileError):
    """A Hugging Face checkpoint that cannot be read or converted (the message says why)."""


# ---------------------------------------------------------------------------------------------
# The key mapping: one table, read in both directions.
# ---------------------------------------------------------------------------------------------


class _Rule:
    """An official key template and its transformers template(s).

    ``{name}`` stands for one key segment (no dot). With several transformers templates the
    official tensor is their concatenation along dim 0 (fused q/k/v projections).

    Args:
        official (str): the official template.
        *hf (str): the transformers template(s).
    """

    def __init__(self, official: str, *hf: str):
        self.official = official
        self.hf = hf
        self.official_re = _template_regex(official)
        self.hf_re = tuple(_template_regex(t) for t in hf)


def _template_regex(template: str) -> "re.Pattern":
    """``a.{i}.b`` -> the regex ``a\\.(?P<i>[^.]+)\\.b``."""
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^.]+)", re.escape(template)))


def _swin_rules() -> List[_Rule]:
    block = "backbone.layers.{i}.blocks.{j}."
    hf_block = _P + "encoder.encoder.layers.{i}.blocks.{j}."
    rules = [
        _Rule(
            "backbone.patch_embed.proj.{p}",
            _P + "encoder.embeddings.patch_embeddings.projection.{p}",
        ),
        _Rule("backbone.patch_embed.norm.{p}", _P + "encoder.embeddings.norm.{p}"),
        _Rule(block + "norm1.{p}", hf_block + "layernorm_before.{p}"),
        _Rule(block + "norm2.{p}", hf_block + "layernorm_after.{p}"),
        _Rule(
            block + "attn.relative_position_bias_table",
            hf_block + "attention.self.relative_position_bias_table",
        ),
        _Rule(
            block + "attn.qkv.{p}",
            hf_block + "attention.self.query.{p}",
            hf_block + "attention.self.key.{p}",
            hf_block + "attention.self.value.{p}",
        ),
        _Rule(block + "attn.proj.{p}", hf_block + "attention.output.dense.{p}"),
        _Rule(block + "mlp.fc1.{p}", hf_block + "intermediate.dense.{p}"),
        _Rule(block + "mlp.fc2.{p}", hf_block + "output.dense.{p}"),
        _Rule(
            "backbone.layers.{i}.downsample.{m}.{p}",
            _P + "encoder.encoder.layers.{i}.downsample.{m}.{p}",
        ),
    ]
    rules += [
        _Rule(f"backbone.norm{i}.{{p}}", _P + f"encoder.hidden_states_norms.stage{i + 1}.{{p}}")
        for i in range(_STAGES)
    ]
    return rules


def _resnet_rules() -> List[_Rule]:
    stem = _P + "encoder.embedder.embedder."
    rules = [
        _Rule("backbone.stem.conv1.weight", stem + "convolution.weight"),
        _Rule("backbone.stem.conv1.norm.{p}", stem + "normalization.{p}"),
    ]
    for s in range(_STAGES):
        block, hf_block = (
            f"backbone.res{s + 2}.{{b}}.",
            _P + f"encoder.encoder.stages.{s}.layers.{{b}}.",
        )
        rules += [
            _Rule(block + "shortcut.weight", hf_block + "shortcut.convolution.weight"),
            _Rule(block + "shortcut.norm.{p}", hf_block + "shortcut.normalization.{p}"),
        ]
        for c in range(3):
            rules += [
                _Rule(block + f"conv{c + 1}.weight", hf_block + f"layer.{c}.convolution.weight"),
                _Rule(
                    block + f"conv{c + 1}.norm.{{p}}", hf_block + f"layer.{c}.normalization.{{p}}"
                ),
            ]
    return rules


def _head_rules() -> List[_Rule]:
    pix, hf_pix = "sem_seg_head.pixel_decoder.", _P + "decoder."
    enc, hf_enc = pix + "transformer.encoder.layers.{i}.", hf_pix + "encoder.layers.{i}."
    dec, hf_dec = "sem_seg_head.predictor.", _D
    hf_layer = hf_dec + "decoder.layers.{i}."
    return [
        _Rule(pix + "input_proj.{i}.{j}.{p}", hf_pix + "input_projections.{i}.{j}.{p}"),
        _Rule(pix + "transformer.level_embed", hf_pix + "level_embed"),
        _Rule(enc + "self_attn.{m}.{p}", hf_enc + "self_attn.{m}.{p}"),
        _Rule(enc + "norm1.{p}", hf_enc + "self_attn_layer_norm.{p}"),
        _Rule(enc + "linear1.{p}", hf_enc + "fc1.{p}"),
        _Rule(enc + "linear2.{p}", hf_enc + "fc2.{p}"),
        _Rule(enc + "norm2.{p}", hf_enc + "final_layer_norm.{p}"),
        _Rule(pix + "mask_features.{p}", hf_pix + "mask_projection.{p}"),
        _Rule(pix + "adapter_{i}.weight", hf_pix + "adapter_{i}.0.weight"),
        _Rule(pix + "adapter_{i}.norm.{p}", hf_pix + "adapter_{i}.1.{p}"),
        _Rule(pix + "layer_{i}.weight", hf_pix + "layer_{i}.0.weight"),
        _Rule(pix + "layer_{i}.norm.{p}", hf_pix + "layer_{i}.1.{p}"),
        _Rule(
            dec + "transformer_self_attention_layers.{i}.self_attn.in_proj_{p}",
            hf_layer + "self_attn.q_proj.{p}",
            hf_layer + "self_attn.k_proj.{p}",
            hf_layer + "self_attn.v_proj.{p}",
        ),
        _Rule(
            dec + "transformer_self_attention_layers.{i}.self_attn.out_proj.{p}",
            hf_layer + "self_attn.out_proj.{p}",
        ),
        _Rule(
            dec + "transformer_self_attention_layers.{i}.norm.{p}",
            hf_layer + "self_attn_layer_norm.{p}",
        ),
        _Rule(
            dec + "transformer_cross_attention_layers.{i}.multihead_attn.{n}",
            hf_layer + "cross_attn.{n}",
        ),
        _Rule(
            dec + "transformer_cross_attention_layers.{i}.multihead_attn.out_proj.{p}",
            hf_layer + "cross_attn.out_proj.{p}",
        ),
        _Rule(
            dec + "transformer_cross_attention_layers.{i}.norm.{p}",
            hf_layer + "cross_attn_layer_norm.{p}",
        ),
        _Rule(dec + "transformer_ffn_layers.{i}.linear1.{p}", hf_layer + "fc1.{p}"),
        _Rule(dec + "transformer_ffn_layers.{i}.linear2.{p}", hf_layer + "fc2.{p}"),
        _Rule(dec + "transformer_ffn_layers.{i}.norm.{p}", hf_layer + "final_layer_norm.{p}"),
        _Rule(dec + "decoder_norm.{p}", hf_dec + "decoder.layernorm.{p}"),
        _Rule(dec + "query_feat.weight", hf_dec + "queries_features.weight"),
        _Rule(dec + "query_embed.weight", hf_dec + "queries_embedder.weight"),
        _Rule(dec + "level_embed.weight", hf_dec + "level_embed.weight"),
        _Rule(dec + "input_proj.{i}.{p}", hf_dec + "input_projections.{i}.{p}"),
        _Rule(
            dec + "mask_embed.layers.{i}.{p}",
            hf_dec + "decoder.mask_predictor.mask_embedder.{i}.0.{p}",
        ),
        _Rule(dec + "class_embed.{p}", "class_predictor.{p}"),
        _Rule("criterion.empty_weight", "criterion.empty_weight"),
    ]


_RULES: Tuple[_Rule, ...] = tuple(_swin_rules() + _resnet_rules() + _head_rules())

# Official keys computed here, absent from transformers' layout.
_RELATIVE_INDEX = re.compile(r"backbone\.layers\.\d+\.blocks\.\d+\.attn\.relative_position_index")
# transformers keys without official counterpart (see the module docstring), dropped on reading.
_HF_ONLY = re.compile(
    re.escape(_P) + r"encoder\.("
    r"encoder\.layers\.\d+\.blocks\.\d+\.attention\.self\.relative_position_index"
    r"|.*\.normalization\.num_batches_tracked"
    r"|swin\.layernorm\.(weight|bias))"
)
_SWIN_FINAL_NORM = _P + "encoder.swin.layernorm."

# transformers 5's in-memory names of the Swin backbone -> the names of the files.
_SWIN_MODULE_RENAMES = (
    (re.compile(r"^swin\.(embeddings|encoder)\."), r"\1."),
    (re.compile(r"\.attention\.([qkv])_proj\."), lambda m: f".attention.self.{_QKV[m.group(1)]}."),
    (
        re.compile(r"\.attention\.relative_position_bias\.relative_position_bias_table$"),
        ".attention.self.relative_position_bias_table",
    ),
    (
        re.compile(r"\.attention\.relative_position_bias\.relative_position_index$"),
        ".attention.self.relative_position_index",
    ),
    (re.compile(r"\.attention\.o_proj\."), ".attention.output.dense."),
    (re.compile(r"\.mlp\.fc1\."), ".intermediate.dense."),
    (re.compile(r"\.mlp\.fc2\."), ".output.dense."),
)
_QKV = {"q": "query", "k": "key", "v": "value"}


def _match_official(key: str) -> Optional[Tuple[_Rule, Dict[str, str]]]:
    for rule in _RULES:
        match = rule.official_re.fullmatch(key)
        if match:
            return rule, match.groupdict()
    return None


def _match_hf(key: str) -> Optional[Tuple[_Rule, int, Dict[str, str]]]:
    for rule in _RULES:
        for part, regex in enumerate(rule.hf_re):
            match = regex.fullmatch(key)
            if match:
                return rule, part, match.groupdict()
    return None


def _listed(keys: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _as_tensor(value: Any) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value)


# ---------------------------------------------------------------------------------------------
# Architectures
# ---------------------------------------------------------------------------------------------


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


def _count(state_dict: Mapping[str, Any], pattern: str) -> int:
    """1 + the largest ``{n}`` of the keys matching ``pattern`` (a regex with one ``(\\d+)``)."""
    regex = re.compile(pattern)
    found = [int(m.group(1)) for m in map(regex.fullmatch, state_dict) if m]
    return max(found) + 1 if found else 0


def _weight(state_dict: Mapping[str, Any], key: str, where: str) -> Any:
    """``state_dict[key]``, or an error naming what is missing."""
    if key not in state_dict:
        raise HFCheckpointError(f"{where}: {key} is missing (an incomplete checkpoint?)")
    return state_dict[key]


def _window_size(table_rows: int) -> int:
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
            _count(state_dict, rf"backbone\.layers\.{i}\.blocks\.(\d+)\.norm1\.weight")
            for i in range(_STAGES)
        )
        tables = [
            _weight(
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
            window_size=_window_size(tables[0].shape[0]),
        )
    if "backbone.stem.conv1.weight" in state_dict:
        # Bottleneck blocks (R50, R101) end in conv3; basic blocks (ResNet-18/34) in conv2.
        block = "bottleneck" if "backbone.res2.0.conv3.weight" in state_dict else "basic"
        last_conv = "conv3" if block == "bottleneck" else "conv2"
        depths = tuple(
            _count(state_dict, rf"backbone\.res{s + 2}\.(\d+)\.conv1\.weight")
            for s in range(_STAGES)
        )
        channels = tuple(
            _weight(state_dict, f"backbone.res{s + 2}.0.{last_conv}.weight", where).shape[0]
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


def _check_backbone(
    state_dict: Mapping[str, Any], target: Union[str, nn.Module, Mapping[str, Any]], where: str
) -> None:
    found = backbone_spec(state_dict, where=where)
    expected = backbone_spec(target, where="the target model")
    if found != expected:
        raise HFCheckpointError(
            f"{where} holds a {found.describe()} backbone, but the target's is a "
            f"{expected.describe()}; use a checkpoint of the target's architecture"
        )


# ---------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------


def _hf_file_names(state_dict: Mapping[str, Any]) -> Dict[str, Any]:
    """Keys in the layout of the files: transformers 5's in-memory Swin names renamed back, and
    the base model's keys prefixed with ``model.``."""
    base = not any(k.startswith(_HF_MARKERS) for k in state_dict)
    out = {}
    for key, value in state_dict.items():
        if base and key.startswith(_HF_BASE_MARKERS):
            key = "model." + key
        backbone_prefix = _P + "encoder."
        if key.startswith(backbone_prefix + "swin.") and not key.startswith(_SWIN_FINAL_NORM):
            rest = key[len(backbone_prefix) :]
            for pattern, replacement in _SWIN_MODULE_RENAMES:
                rest = pattern.sub(replacement, rest)
            key = backbone_prefix + rest
        out[key] = value
    return out


def _looks_official(state_dict: Mapping[str, Any]) -> bool:
    """Whether the keys are this project's (official) ones."""
    return any(k.startswith(_OFFICIAL_MARKERS) for k in state_dict)


def _looks_hf(state_dict: Mapping[str, Any]) -> bool:
    """Whether the keys are transformers' Mask2Former ones (model or base model)."""
    return any(k.startswith(_HF_MARKERS + _HF_BASE_MARKERS) for k in state_dict)


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
    if not _looks_hf(state_dict):
        hint = (
            "they are this project's (official) keys: load it as an official checkpoint"
            if _looks_official(state_dict)
            else "expected keys starting with 'model.pixel_level_module.'"
        )
        raise HFCheckpointError(
            f"{source} is not in transformers' Mask2Former layout ({hint}); first keys: "
            f"{_listed(list(state_dict))}"
        )
    out: Dict[str, torch.Tensor] = {}
    fused: Dict[str, Dict[int, torch.Tensor]] = {}
    fused_parts: Dict[str, int] = {}
    unknown = []
    for key, value in _hf_file_names(state_dict).items():
        if _HF_ONLY.fullmatch(key):
            continue
        found = _match_hf(key)
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
            f"converter knows the Swin and ResNet backbones): {_listed(unknown)}"
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
        out[index_key] = relative_position_index(_window_size(out[key].shape[0]))
    if target is not None:
        _check_backbone(out, target, source)
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
        _check_backbone(state_dict, backbone, source)
    spec = backbone_spec(state_dict, where=source)
    out: Dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if _RELATIVE_INDEX.fullmatch(key):
            continue
        found = _match_official(key)
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
            f"layout: {_listed(unknown)}"
        )
    for key in [k for k in out if k.endswith(".normalization.running_mean")]:
        tracked = key.replace("running_mean", "num_batches_tracked")
        out[tracked] = torch.zeros((), dtype=torch.long)
    if spec.family == "swin":
        dtype = out[_P + "encoder.embeddings.norm.weight"].dtype
        out[_SWIN_FINAL_NORM + "weight"] = torch.ones(spec.channels[-1], dtype=dtype)
        out[_SWIN_FINAL_NORM + "bias"] = torch.zeros(spec.channels[-1], dtype=dtype)
    return out


# ---------------------------------------------------------------------------------------------
# config.json
# ---------------------------------------------------------------------------------------------


def _backbone_config(spec: BackboneSpec, state_dict: Mapping[str, Any]) -> Dict[str, Any]:
    out_features = [f"stage{i + 1}" for i in range(_STAGES)]
    if spec.family == "resnet":
        return {
            "model_type": "resnet",
            "embedding_size": spec.stem_channels,
            "hidden_sizes": list(spec.channels),
            "depths": list(spec.depths),
            "layer_type": spec.block,
            "hidden_act": "relu",
            # The stride of a block is in its 3x3 convolution (stride_in_1x1=False, official).
            "downsample_in_bottleneck": False,
            "downsample_in_first_stage": False,
            "out_features": out_features,
        }
    fc1 = state_dict["backbone.layers.0.blocks.0.mlp.fc1.weight"]
    patch = state_dict["backbone.patch_embed.proj.weight"]
    return {
        "model_type": "swin",
        "embed_dim": spec.channels[0],
        "depths": list(spec.depths),
        "num_heads": list(spec.num_heads),
        "window_size": spec.window_size,
        "patch_size": patch.shape[-1],
        "mlp_ratio": fc1.shape[0] / fc1.shape[1],
        "qkv_bias": "backbone.layers.0.blocks.0.attn.qkv.bias" in state_dict,
        "use_absolute_embeddings": False,
        "hidden_act": "gelu",
        "drop_path_rate": 0.3,  # MODEL.SWIN.DROP_PATH_RATE (training only)
        # SwinConfig's pre-training size: 384 for the window-12 variants, 224 otherwise.
        "image_size": 384 if spec.window_size == 12 else 224,
        "out_features": out_features,
    }


def hf_config(
    state_dict: Mapping[str, Any],
    backbone: Optional[str] = None,
    *,
    class_names: Optional[Sequence[str]] = None,
    pre_norm: bool = False,
    source: str = "the state dict",
) -> Dict[str, Any]:
    """A ``Mask2FormerConfig`` (as the dict of ``config.json``) for official weights.

    The sizes are read from the weights' shapes; the attention heads from the deformable
    attention (transformers uses one head count for the pixel and the transformer decoder, as the
    official configs do).

    Args:
        state_dict (dict): official key -> tensor or array.
        backbone (str, optional): as in :func:`to_hf_state_dict`.
        class_names (sequence of str, optional): the K class names (``id2label``); default
            ``LABEL_i``.
        pre_norm (bool): the transformer decoder is pre-norm (not visible in the weights; the
            official configs are post-norm).
        source (str): what the weights are (e.g. their file), named in error messages.

    Raises:
        HFCheckpointError: as :func:`to_hf_state_dict`, or ``class_names`` not of length K.
    """
    if backbone is not None:
        _check_backbone(state_dict, backbone, source)
    spec = backbone_spec(state_dict, where=source)
    pix, dec = "sem_seg_head.pixel_decoder.", "sem_seg_head.predictor."
    where = source
    levels = _count(state_dict, re.escape(pix) + r"input_proj\.(\d+)\.0\.weight")
    if levels != _ENCODER_LEVELS:
        raise HFCheckpointError(
            f"{where}: the pixel decoder encodes {levels} levels; transformers' Mask2Former "
            f"encodes {_ENCODER_LEVELS} (res3..res5)"
        )
    mask_features = _weight(state_dict, pix + "mask_features.weight", where)
    queries = _weight(state_dict, dec + "query_feat.weight", where)
    encoder_layer = pix + "transformer.encoder.layers.0."
    num_classes = _weight(state_dict, dec + "class_embed.weight", where).shape[0] - 1
    if class_names is not None and len(class_names) != num_classes:
        raise HFCheckpointError(
            f"{where}: {len(class_names)} class names for a class head of {num_classes} classes"
        )
    class_names = class_names or [f"LABEL_{i}" for i in range(num_classes)]
    # adapter_1 .. adapter_n: n FPN levels below the encoder's finest (stride 8)
    num_adapters = _count(state_dict, re.escape(pix) + r"adapter_(\d+)\.weight") - 1
    heads = _weight(state_dict, encoder_layer + "self_attn.attention_weights.weight", where).shape[
        0
    ]
    heads //= _ENCODER_LEVELS * _DEFORMABLE_POINTS
    return {
        "model_type": HF_MODEL_TYPE,
        "architectures": ["Mask2FormerForUniversalSegmentation"],
        "backbone_config": _backbone_config(spec, state_dict),
        "feature_size": mask_features.shape[1],
        "mask_feature_size": mask_features.shape[0],
        "hidden_dim": queries.shape[1],
        "num_queries": queries.shape[0],
        "encoder_layers": _count(
            state_dict, re.escape(pix) + r"transformer\.encoder\.layers\.(\d+)\.norm1\.weight"
        ),
        "encoder_feedforward_dim": _weight(
            state_dict, encoder_layer + "linear1.weight", where
        ).shape[0],
        "decoder_layers": _count(
            state_dict, re.escape(dec) + r"transformer_ffn_layers\.(\d+)\.norm\.weight"
        )
        + 1,
        "dim_feedforward": _weight(
            state_dict, dec + "transformer_ffn_layers.0.linear1.weight", where
        ).shape[0],
        "num_attention_heads": heads,
        "pre_norm": pre_norm,
        "enforce_input_projection": dec + "input_proj.0.weight" in state_dict
        and mask_features.shape[1] == queries.shape[1],
        "common_stride": _FINEST_ENCODER_STRIDE // 2**num_adapters,
        "feature_strides": [4, 8, 16, 32],
        "activation_function": "relu",
        "dropout": 0.0,
        "id2label": {str(i): name for i, name in enumerate(class_names)},
        "label2id": {name: i for i, name in enumerate(class_names)},
    }


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def _safetensors_torch(purpose: str):
    """``safetensors.torch``, or a one-line error saying to install it."""
    if importlib.util.find_spec("safetensors") is None:
        raise HFCheckpointError(f"{purpose} needs the safetensors package: pip install safetensors")
    import safetensors.torch

    return safetensors.torch


def save_hf_checkpoint(
    folder: str,
    state_dict: Mapping[str, Any],
    backbone: Optional[str] = None,
    *,
    class_names: Optional[Sequence[str]] = None,
    source: str = "the state dict",
) -> None:
    """Write official weights as a transformers folder: ``config.json`` + ``model.safetensors``.

    Args:
        folder (str): created if needed; existing files of these names are replaced atomically.
        state_dict, backbone, class_names, source: as in :func:`to_hf_state_dict` /
            :func:`hf_config`.
    """
    safetensors_torch = _safetensors_torch(f"writing {folder}")
    config = hf_config(state_dict, backbone, class_names=class_names, source=source)
    tensors = to_hf_state_dict(state_dict, backbone, source=source)
    os.makedirs(folder, exist_ok=True)
    blob = safetensors_torch.save(tensors, metadata={"format": "pt"})
    atomic_write(os.path.join(folder, _SAFETENSORS_FILE), lambda f: f.write(blob))
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    atomic_write(os.path.join(folder, HF_CONFIG_FILE), lambda f: f.write(text.encode("utf-8")))


def _read_json(path: str) -> Any:
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HFCheckpointError(f"{path} is not valid JSON ({e})") from e


def _read_config(folder: str) -> Optional[Dict[str, Any]]:
    """The folder's ``config.json`` (None if it has none), checked to be a Mask2Former's."""
    path = os.path.join(folder, HF_CONFIG_FILE)
    if not os.path.isfile(path):
        return None
    config = _read_json(path)
    if not isinstance(config, dict) or config.get("model_type") != HF_MODEL_TYPE:
        model_type = config.get("model_type") if isinstance(config, dict) else None
        raise HFCheckpointError(
            f"{path} describes a {model_type!r} model, expected model_type {HF_MODEL_TYPE!r} "
            "(transformers' Mask2Former)"
        )
    return config


def _weights_file(folder: str) -> str:
    """The first of :data:`HF_WEIGHT_FILES` in ``folder``."""
    for name in HF_WEIGHT_FILES:
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise HFCheckpointError(
        f"{folder} holds no transformers weights: expected one of {', '.join(HF_WEIGHT_FILES)}"
    )


def _read_weights_file(path: str) -> Mapping[str, Any]:
    """The tensors of one weights file (``.safetensors``, else ``torch.load``) or of the shards
    of an ``*.index.json``."""
    if path.endswith(".index.json"):
        index = _read_json(path)
        folder = os.path.dirname(path)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        shards = sorted(set(weight_map.values())) if isinstance(weight_map, dict) else []
        if not shards:
            raise HFCheckpointError(f"{path}: no 'weight_map' of shards")
        out: Dict[str, Any] = {}
        for shard in shards:
            out.update(_read_weights_file(os.path.join(folder, shard)))
        return out
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        if path.endswith(".safetensors"):
            return _safetensors_torch(f"reading {path}").load_file(path, device="cpu")
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (HFCheckpointError, OSError, MemoryError):  # already clear
        raise
    except Exception as e:  # any decoding failure of a bad file
        cause = (str(e).strip().splitlines() or [""])[0][:200]
        raise HFCheckpointError(
            f"{path} is not a readable weights file ({type(e).__name__}: {cause}); expected a "
            ".safetensors or torch.save file of transformers' Mask2Former weights"
        ) from e
    for wrapper in ("model", "state_dict"):
        if isinstance(data, Mapping) and isinstance(data.get(wrapper), Mapping):
            data = data[wrapper]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise HFCheckpointError(f"{path}: expected a dict of tensors, found {type(data).__name__}")
    return data


def _parse_repo(spec: str) -> Tuple[str, Optional[str]]:
    """``hf://owner/name@rev`` -> ("owner/name", "rev"); without ``@rev`` the revision is None."""
    repo = spec[len(HF_SCHEME) :]
    repo, _, revision = repo.partition("@")
    return repo, revision or None


def _download(spec: str) -> str:
    """The local folder of ``hf://<repo_id>[@revision]`` (config and weights only)."""
    repo, revision = _parse_repo(spec)
    if importlib.util.find_spec("huggingface_hub") is None:
        raise HFCheckpointError(
            f"{spec} needs the huggingface_hub package (pip install huggingface_hub), or download "
            f"the repository {repo} yourself and pass its folder"
        )
    import huggingface_hub

    def snapshot(patterns: List[str]) -> str:
        try:
            return huggingface_hub.snapshot_download(
                repo, revision=revision, allow_patterns=patterns
            )
        except (OSError, ValueError) as e:  # HTTP / offline / bad repo id errors of the hub
            cause = " ".join(str(e).split())[:300]  # one line
            raise HFCheckpointError(
                f"could not download {repo} from the Hugging Face Hub ({type(e).__name__}: "
                f"{cause}); check the repository id and the network (or HF_TOKEN for a gated "
                "repository), or download it yourself and pass its folder"
            ) from e

    folder = snapshot(["*.json", "*.safetensors"])
    if not any(os.path.isfile(os.path.join(folder, n)) for n in HF_WEIGHT_FILES[:2]):
        folder = snapshot(["pytorch_model*.bin"])
    return folder


def load_hf_state_dict(
    path: str, target: Union[str, nn.Module, Mapping[str, Any], None] = None
) -> Dict[str, torch.Tensor]:
    """Read a transformers Mask2Former checkpoint and return it in this project's layout.

    Args:
        path (str): a folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``,
            possibly sharded), one weights file, or ``hf://<repo_id>[@revision]`` (downloaded
            with ``huggingface_hub``, cached).
        target: the backbone name, model or official state dict the weights are for; another
            backbone architecture raises (naming both). None: no check.

    Returns:
        dict[str, Tensor]: official key -> tensor (see :func:`from_hf_state_dict`).

    Raises:
        FileNotFoundError: no such file or folder.
        HFCheckpointError: a config of another model type, no or unreadable weights, keys outside
            transformers' layout, another backbone than the target's, or a failed download.
    """
    folder = _download(path) if path.startswith(HF_SCHEME) else path
    if os.path.isdir(folder):
        _read_config(folder)
        weights_path = _weights_file(folder)
    elif os.path.isfile(folder):
        weights_path = folder
    else:
        raise FileNotFoundError(
            f"{path}: no such file or folder (expected a transformers "
            "Mask2Former folder, weights file or hf://<repo_id>)"
        )
    weights = _read_weights_file(weights_path)
    return from_hf_state_dict(weights, source=weights_path, target=target)


def _file_keys(path: str) -> Iterable[str]:
    """The tensor names of a ``torch.save`` file (memory-mapped when it is a zip archive)."""
    mmap = zipfile.is_zipfile(path)  # torch.save's format since torch 1.6; older files: no mmap
    data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    for wrapper in ("model", "state_dict"):
        if isinstance(data, Mapping) and isinstance(data.get(wrapper), Mapping):
            data = data[wrapper]
    return data.keys() if isinstance(data, Mapping) else ()


def is_hf_location(path: str) -> bool:
    """Whether ``path`` is transformers' by its kind alone, without reading it: ``hf://...``, a
    folder with ``config.json`` or transformers weight files, or a ``.safetensors`` file. (A
    ``.bin`` / ``.pth`` file is told apart only by its keys: :func:`is_hf_checkpoint`.)"""
    if path.startswith(HF_SCHEME):
        return True
    if os.path.isdir(path):
        names = (HF_CONFIG_FILE,) + HF_WEIGHT_FILES
        return any(os.path.isfile(os.path.join(path, n)) for n in names)
    return path.endswith(".safetensors")


def is_hf_checkpoint(path_or_state_dict: Union[str, Mapping[str, Any]]) -> bool:
    """Whether to read this with :func:`load_hf_state_dict` (else it is an official checkpoint).

    True for ``hf://...``, a folder with ``config.json`` or transformers weight files (a config of
    another model then fails loudly in :func:`load_hf_state_dict`), a ``.safetensors`` file, and a
    file or state dict whose keys are transformers' (``model.pixel_level_module.*`` ...). False
    for detectron2 ``.pkl`` files, official keys, and files that cannot be read (for the official
    reader's error message).
    """
    if isinstance(path_or_state_dict, Mapping):
        return _looks_hf(path_or_state_dict) and not _looks_official(path_or_state_dict)
    path = path_or_state_dict
    if is_hf_location(path):
        return True
    if path.endswith(".pkl") or not os.path.isfile(path):
        return False
    try:
        keys = list(_file_keys(path))
    except Exception:  # unreadable: not ours to explain, the official reader names the problem
        return False
    return is_hf_checkpoint(dict.fromkeys(keys, None))

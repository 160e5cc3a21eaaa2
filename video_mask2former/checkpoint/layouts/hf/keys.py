"""transformers' Mask2Former key names <-> the official ones: one table of rules, read in both
directions, and how to tell the two layouts apart by their keys (the mapping is described in
:mod:`video_mask2former.checkpoint.layouts.hf`)."""

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

P = "model.pixel_level_module."  # backbone and pixel decoder
D = "model.transformer_module."  # transformer decoder
_P, _D = P, D  # short names for the rule tables below
# Keys of transformers' model start with these (of its base model, without "model.").
_HF_MARKERS = (_P, _D, "class_predictor.")
_HF_BASE_MARKERS = ("pixel_level_module.", "transformer_module.")
# Keys of this project's (official) model start with these.
_OFFICIAL_MARKERS = ("backbone.", "sem_seg_head.")
STAGES = 4  # res2..res5 / stage1..stage4
_STAGES = STAGES


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
RELATIVE_INDEX = re.compile(r"backbone\.layers\.\d+\.blocks\.\d+\.attn\.relative_position_index")
# transformers keys without official counterpart (see the module docstring), dropped on reading.
HF_ONLY = re.compile(
    re.escape(_P) + r"encoder\.("
    r"encoder\.layers\.\d+\.blocks\.\d+\.attention\.self\.relative_position_index"
    r"|.*\.normalization\.num_batches_tracked"
    r"|swin\.layernorm\.(weight|bias))"
)
SWIN_FINAL_NORM = _P + "encoder.swin.layernorm."

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


def match_official(key: str) -> Optional[Tuple[_Rule, Dict[str, str]]]:
    for rule in _RULES:
        match = rule.official_re.fullmatch(key)
        if match:
            return rule, match.groupdict()
    return None


def match_hf(key: str) -> Optional[Tuple[_Rule, int, Dict[str, str]]]:
    for rule in _RULES:
        for part, regex in enumerate(rule.hf_re):
            match = regex.fullmatch(key)
            if match:
                return rule, part, match.groupdict()
    return None


def listed(keys: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def hf_file_names(state_dict: Mapping[str, Any]) -> Dict[str, Any]:
    """Keys in the layout of the files: transformers 5's in-memory Swin names renamed back, and
    the base model's keys prefixed with ``model.``."""
    base = not any(k.startswith(_HF_MARKERS) for k in state_dict)
    out = {}
    for key, value in state_dict.items():
        if base and key.startswith(_HF_BASE_MARKERS):
            key = "model." + key
        backbone_prefix = _P + "encoder."
        if key.startswith(backbone_prefix + "swin.") and not key.startswith(SWIN_FINAL_NORM):
            rest = key[len(backbone_prefix) :]
            for pattern, replacement in _SWIN_MODULE_RENAMES:
                rest = pattern.sub(replacement, rest)
            key = backbone_prefix + rest
        out[key] = value
    return out


def looks_official(state_dict: Mapping[str, Any]) -> bool:
    """Whether the keys are this project's (official) ones."""
    return any(k.startswith(_OFFICIAL_MARKERS) for k in state_dict)


def looks_hf(state_dict: Mapping[str, Any]) -> bool:
    """Whether the keys are transformers' Mask2Former ones (model or base model)."""
    return any(k.startswith(_HF_MARKERS + _HF_BASE_MARKERS) for k in state_dict)

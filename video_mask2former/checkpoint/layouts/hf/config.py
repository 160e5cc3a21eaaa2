"""``config.json`` of transformers' Mask2Former for official weights, its sizes read from the
weights' shapes."""

import re
from typing import Any, Dict, Mapping, Optional, Sequence

from ...errors import HFCheckpointError
from .backbone import BackboneSpec, backbone_spec, check_backbone, count, weight
from .keys import STAGES as _STAGES

# config.json "model_type" of transformers' Mask2Former.
HF_MODEL_TYPE = "mask2former"

# transformers' pixel decoder and the official one: fixed sampling points per head and level of
# the deformable attention, and levels it encodes (res3..res5).
_DEFORMABLE_POINTS = 4
_ENCODER_LEVELS = 3
# Stride of the finest level the deformable encoder reads (res3); the FPN adds levels down to
# common_stride.
_FINEST_ENCODER_STRIDE = 8


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
        check_backbone(state_dict, backbone, source)
    spec = backbone_spec(state_dict, where=source)
    pix, dec = "sem_seg_head.pixel_decoder.", "sem_seg_head.predictor."
    where = source
    levels = count(state_dict, re.escape(pix) + r"input_proj\.(\d+)\.0\.weight")
    if levels != _ENCODER_LEVELS:
        raise HFCheckpointError(
            f"{where}: the pixel decoder encodes {levels} levels; transformers' Mask2Former "
            f"encodes {_ENCODER_LEVELS} (res3..res5)"
        )
    mask_features = weight(state_dict, pix + "mask_features.weight", where)
    queries = weight(state_dict, dec + "query_feat.weight", where)
    encoder_layer = pix + "transformer.encoder.layers.0."
    num_classes = weight(state_dict, dec + "class_embed.weight", where).shape[0] - 1
    if class_names is not None and len(class_names) != num_classes:
        raise HFCheckpointError(
            f"{where}: {len(class_names)} class names for a class head of {num_classes} classes"
        )
    class_names = class_names or [f"LABEL_{i}" for i in range(num_classes)]
    # adapter_1 .. adapter_n: n FPN levels below the encoder's finest (stride 8)
    num_adapters = count(state_dict, re.escape(pix) + r"adapter_(\d+)\.weight") - 1
    heads = weight(state_dict, encoder_layer + "self_attn.attention_weights.weight", where).shape[0]
    heads //= _ENCODER_LEVELS * _DEFORMABLE_POINTS
    return {
        "model_type": HF_MODEL_TYPE,
        "architectures": ["Mask2FormerForUniversalSegmentation"],
        "backbone_config": _backbone_config(spec, state_dict),
        "feature_size": mask_features.shape[1],
        "mask_feature_size": mask_features.shape[0],
        "hidden_dim": queries.shape[1],
        "num_queries": queries.shape[0],
        "encoder_layers": count(
            state_dict, re.escape(pix) + r"transformer\.encoder\.layers\.(\d+)\.norm1\.weight"
        ),
        "encoder_feedforward_dim": weight(
            state_dict, encoder_layer + "linear1.weight", where
        ).shape[0],
        "decoder_layers": count(
            state_dict, re.escape(dec) + r"transformer_ffn_layers\.(\d+)\.norm\.weight"
        )
        + 1,
        "dim_feedforward": weight(
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

"""Read and write weights in the layout of transformers' Mask2Former (Hugging Face).

transformers has Mask2Former as an *image* model, ``Mask2FormerForUniversalSegmentation``; the
video checkpoints on the Hub (e.g. ``shivi/video-mask2former-swin-tiny-youtubevis-2021-instance``,
converted by a transformers pull request that was never merged, whose conversion script writes the
image model's key names) and the COCO image checkpoints that the official video models are
fine-tuned from (``facebook/mask2former-swin-*-coco-instance``) store that model's layout. This
package converts between it and this project's (the official, detectron2) layout, split along its
concerns: :mod:`.keys` (the key rules, both directions), :mod:`.backbone` (the backbone
architecture of weights, a model or a name), :mod:`.convert` (state dict to state dict),
:mod:`.config` (``config.json``) and :mod:`.files` (folders, weights files, the Hub):

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
  have K = 80, YouTube-VIS ones 40 (the loading policy,
  :mod:`video_mask2former.checkpoint.policy`, decides whether another K is acceptable).
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

from ...errors import HFCheckpointError
from .backbone import BackboneSpec, backbone_spec, has_hf_backbone
from .config import HF_MODEL_TYPE, hf_config
from .convert import from_hf_state_dict, to_hf_state_dict
from .files import (
    HF_CONFIG_FILE,
    HF_SCHEME,
    HF_WEIGHT_FILES,
    is_hf_checkpoint,
    is_hf_location,
    load_hf_state_dict,
    save_hf_checkpoint,
)

__all__ = [
    "HF_CONFIG_FILE",
    "HF_MODEL_TYPE",
    "HF_SCHEME",
    "HF_WEIGHT_FILES",
    "BackboneSpec",
    "HFCheckpointError",
    "backbone_spec",
    "from_hf_state_dict",
    "has_hf_backbone",
    "hf_config",
    "is_hf_checkpoint",
    "is_hf_location",
    "load_hf_state_dict",
    "save_hf_checkpoint",
    "to_hf_state_dict",
]

"""Video Mask2Former's masked-attention transformer decoder and its prediction heads.

Shapes: B videos, T frames, Q queries, K classes (+1 no-object), C channels (``hidden_dim``),
h_l x w_l the size of decoder level l, h x w the mask-feature size (stride 4).

Every decoder layer lets the Q queries of a video cross-attend to the features of all its frames
at one level (T*h_l*w_l keys, with a 3-D sine position encoding), restricted to where the
previous prediction's 3-D mask (sigmoid > 0.5, resized to the level) is on; then the queries
self-attend and pass a feed-forward block. After the learnable queries and after every layer the
heads predict class logits (B, Q, K+1) and 3-D mask logits (B, Q, T, h, w) as the dot product of
each query's mask embedding with every frame's mask features.

State-dict keys are the official ones (``transformer_self_attention_layers.N.self_attn.*``,
``transformer_cross_attention_layers.N.multihead_attn.*``, ``transformer_ffn_layers.N.*``,
``decoder_norm``, ``query_feat``, ``query_embed``, ``level_embed``, ``class_embed``,
``mask_embed``).
"""

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .layers import MLP, Conv2d, CrossAttentionLayer, FFNLayer, SelfAttentionLayer, c2_xavier_fill
from .position_encoding import PositionEmbeddingSine3D

# A mask logit maps to "attend here" when its sigmoid is at least this (official value).
ATTENTION_MASK_THRESHOLD = 0.5
# The decoder cycles over this many pixel-decoder levels (coarse to fine).
NUM_FEATURE_LEVELS = 3
# Layers of the mask-embedding MLP.
MASK_EMBED_LAYERS = 3


def frames_to_videos(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B*T, ...) -> (B, T, ...), frames of a video being consecutive.

    Args:
        x (Tensor): (B*T, ...).
        num_frames (int): T.
    """
    if x.shape[0] % num_frames != 0:
        raise ValueError(
            f"frames_to_videos: {x.shape[0]} frames do not split into videos of {num_frames} frames"
        )
    return x.view(x.shape[0] // num_frames, num_frames, *x.shape[1:])


def videos_to_frames(x: torch.Tensor) -> torch.Tensor:
    """(B, T, ...) -> (B*T, ...)."""
    return x.flatten(0, 1)


def _flatten_video_level(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B*T, C, h, w) -> (T*h*w, B, C): the keys of a video, frame-major (a view, no copy, of a
    channels-last input of one video)."""
    x = frames_to_videos(x, num_frames)  # (B, T, C, h, w)
    return x.permute(1, 3, 4, 0, 2).flatten(0, 2)


def _frames_as_matrix(mask_features: torch.Tensor) -> torch.Tensor:
    """(B, T, C_m, h, w) -> (B, C_m, T*h*w), a view when the memory allows it (see
    :func:`_matrix_friendly`), else a copy."""
    return mask_features.transpose(1, 2).flatten(2)


def _matrix_friendly(mask_features: torch.Tensor) -> torch.Tensor:
    """``mask_features`` (B, T, C_m, h, w), in a memory layout where :func:`_frames_as_matrix` is
    a view: as it is when it already is (a channels-last input), else copied once, so that the
    mask heads of every layer multiply it without a copy of their own."""
    stride = mask_features.stride()
    _, _, _, h, w = mask_features.shape
    if stride[1] == h * stride[3] and stride[3] == w * stride[4]:  # (T, h, w) merge into one
        return mask_features
    return mask_features.transpose(1, 2).contiguous().transpose(1, 2)


def _resized_frames_matrix(mask_features: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """(B, T, C_m, h, w) mask features resized (bilinear, as the attention masks) to ``size``
    (h_l, w_l), as a (B, C_m, T*h_l*w_l) matrix. Bilinear resizing is linear in its input and acts
    on each channel alone, so resizing the features and then applying the mask head equals
    applying the head and resizing its masks (up to float rounding), at a fraction of the cost."""
    b, t, c, h, w = mask_features.shape
    resized = F.interpolate(
        mask_features.flatten(0, 1), size=size, mode="bilinear", align_corners=False
    )  # (B*T, C_m, h_l, w_l)
    return resized.view(b, t, c, -1).transpose(1, 2).flatten(2)  # (B, C_m, T*h_l*w_l)


class VideoMultiScaleMaskedTransformerDecoder(nn.Module):
    """The video masked-attention decoder and its class / mask prediction heads.

    Args:
        in_channels (int): channels of the pixel decoder's multi-scale features.
        num_classes (int): K.
        hidden_dim (int): C.
        num_queries (int): Q.
        nheads (int): attention heads.
        dim_feedforward (int): hidden width of the feed-forward blocks.
        dec_layers (int): number of decoder layers (the official config's DEC_LAYERS minus 1,
            which counts the prediction from the learnable queries as a layer).
        pre_norm (bool): pre-norm layers.
        mask_dim (int): channels of the mask features.
        enforce_input_project (bool): project the features even when ``in_channels == hidden_dim``.
    """

    # The official module's state-dict version: checkpoints saved here record it, so the official
    # code loads them as they are (it renames the keys of versions < 2 as pre-release layouts).
    _version = 2

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        hidden_dim: int = 256,
        num_queries: int = 100,
        nheads: int = 8,
        dim_feedforward: int = 2048,
        dec_layers: int = 9,
        pre_norm: bool = False,
        mask_dim: int = 256,
        enforce_input_project: bool = False,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.pe_layer = PositionEmbeddingSine3D(hidden_dim // 2, normalize=True)
        self.num_heads = nheads
        self.num_layers = dec_layers
        self.transformer_self_attention_layers = nn.ModuleList()
        self.transformer_cross_attention_layers = nn.ModuleList()
        self.transformer_ffn_layers = nn.ModuleList()
        for _ in range(dec_layers):
            self.transformer_self_attention_layers.append(
                SelfAttentionLayer(d_model=hidden_dim, nhead=nheads, normalize_before=pre_norm)
            )
            self.transformer_cross_attention_layers.append(
                CrossAttentionLayer(d_model=hidden_dim, nhead=nheads, normalize_before=pre_norm)
            )
            self.transformer_ffn_layers.append(
                FFNLayer(
                    d_model=hidden_dim, dim_feedforward=dim_feedforward, normalize_before=pre_norm
                )
            )
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.num_queries = num_queries
        self.query_feat = nn.Embedding(num_queries, hidden_dim)  # learnable query features
        self.query_embed = nn.Embedding(num_queries, hidden_dim)  # learnable query positions
        self.num_feature_levels = NUM_FEATURE_LEVELS
        self.level_embed = nn.Embedding(NUM_FEATURE_LEVELS, hidden_dim)
        self.input_proj = nn.ModuleList()
        for _ in range(NUM_FEATURE_LEVELS):
            if in_channels != hidden_dim or enforce_input_project:
                proj = Conv2d(in_channels, hidden_dim, kernel_size=1)
                c2_xavier_fill(proj)
                self.input_proj.append(proj)
            else:
                self.input_proj.append(nn.Sequential())  # identity, no state
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, MASK_EMBED_LAYERS)

    def forward(
        self,
        x: List[torch.Tensor],
        mask_features: torch.Tensor,
        num_frames: int,
        keep_aux: bool = False,
    ) -> Dict[str, object]:
        """Decode the queries of each video.

        Args:
            x (list[Tensor]): 3 levels (B*T, C_in, h_l, w_l), coarse to fine.
            mask_features (Tensor): (B*T, mask_dim, h, w).
            num_frames (int): T.
            keep_aux (bool): also return the predictions before the last layer (deep
                supervision; needed only for training).

        Returns:
            dict: ``pred_logits`` (B, Q, K+1), ``pred_masks`` (B, Q, T, h, w), ``pred_embeds``
            (B, Q, C) the last layer's normalised query features and, with ``keep_aux``,
            ``aux_outputs``: ``dec_layers`` dicts of the same, first to last.
        """
        if len(x) != self.num_feature_levels:
            raise ValueError(
                f"{type(self).__name__}: expected {self.num_feature_levels} feature levels, "
                f"got {len(x)}"
            )
        # (B, T, C_m, h, w), laid out so that the heads multiply it as a (B, C_m, T*h*w) matrix.
        mask_features = _matrix_friendly(frames_to_videos(mask_features, num_frames))
        batch = mask_features.shape[0]
        src, pos, sizes = [], [], []
        for level in range(self.num_feature_levels):
            sizes.append(tuple(x[level].shape[-2:]))
            level_pos = self.pe_layer(frames_to_videos(x[level], num_frames))  # (B,T,C,h,w)
            pos.append(_flatten_video_level(videos_to_frames(level_pos), num_frames))
            projected = self.input_proj[level](x[level])
            projected = projected + self.level_embed.weight[level][None, :, None, None]
            src.append(_flatten_video_level(projected, num_frames))  # (T*h*w, B, C)

        query_embed = self.query_embed.weight.unsqueeze(1).repeat(1, batch, 1)  # (Q, B, C)
        output = self.query_feat.weight.unsqueeze(1).repeat(1, batch, 1)  # (Q, B, C)

        predictions = []
        resized = {}  # level size -> mask features at that size (inference between layers)
        if keep_aux or self.num_layers == 0:
            outputs_class, outputs_mask, attn_mask = self.forward_prediction_heads(
                output, mask_features, sizes[0], need_attn_mask=self.num_layers > 0
            )
            predictions.append((outputs_class, outputs_mask))
        else:  # only the first layer's attention mask is used: at its level's size directly
            resized[sizes[0]] = _resized_frames_matrix(mask_features, sizes[0])
            attn_mask = self._attention_mask_only(output, resized[sizes[0]])
            predictions.append(None)  # replaced by the last layer's predictions
        for i in range(self.num_layers):
            level = i % self.num_feature_levels
            # A query whose mask is empty everywhere would attend to nothing: let it see all.
            # (Written without data-dependent indexing, so the network exports.)
            attn_mask = attn_mask & ~attn_mask.all(dim=-1, keepdim=True)
            output = self.transformer_cross_attention_layers[i](
                output, src[level], memory_mask=attn_mask, pos=pos[level], query_pos=query_embed
            )
            output = self.transformer_self_attention_layers[i](output, query_pos=query_embed)
            output = self.transformer_ffn_layers[i](output)
            is_last = i == self.num_layers - 1
            next_size = sizes[(i + 1) % self.num_feature_levels]
            if not (keep_aux or is_last):
                # Only the attention mask is used: at the next level's size directly.
                if next_size not in resized:
                    resized[next_size] = _resized_frames_matrix(mask_features, next_size)
                attn_mask = self._attention_mask_only(output, resized[next_size])
                continue
            outputs_class, outputs_mask, attn_mask = self.forward_prediction_heads(
                output, mask_features, next_size, need_attn_mask=not is_last
            )
            if keep_aux:
                predictions.append((outputs_class, outputs_mask))
            else:
                predictions[-1] = (outputs_class, outputs_mask)

        out = {
            "pred_logits": predictions[-1][0],
            "pred_masks": predictions[-1][1],
            # (B, Q, C): what the windowed inference matches queries across windows by.
            "pred_embeds": self.decoder_norm(output).transpose(0, 1),
        }
        if keep_aux:
            out["aux_outputs"] = [
                {"pred_logits": logits, "pred_masks": masks} for logits, masks in predictions[:-1]
            ]
        return out

    def forward_prediction_heads(
        self,
        output: torch.Tensor,
        mask_features: torch.Tensor,
        attn_mask_target_size: Tuple[int, int],
        need_attn_mask: bool = True,
    ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Class and 3-D mask predictions, and the attention mask for the next layer.

        Args:
            output (Tensor): (Q, B, C) query features.
            mask_features (Tensor): (B, T, C_m, h, w).
            attn_mask_target_size (tuple): (h_l, w_l) of the next layer's level.
            need_attn_mask (bool): compute the attention mask (not needed after the last layer).

        Returns:
            tuple: class logits (B, Q, K+1), mask logits (B, Q, T, h, w), and the attention
            mask (B*heads, Q, T*h_l*w_l) bool, True where a query may not attend (or None).
        """
        decoder_output = self.decoder_norm(output).transpose(0, 1)  # (B, Q, C)
        outputs_class = self.class_embed(decoder_output)
        mask_embed = self.mask_embed(decoder_output)  # (B, Q, C_m)
        b, t, _, h, w = mask_features.shape
        # (B, Q, C_m) x (B, C_m, T*h*w): one batched product, no copy of either operand.
        outputs_mask = torch.bmm(mask_embed, _frames_as_matrix(mask_features))
        outputs_mask = outputs_mask.view(b, -1, t, h, w)  # (B, Q, T, h, w)
        if not need_attn_mask:
            return outputs_class, outputs_mask, None
        q = outputs_mask.shape[1]
        attn_mask = F.interpolate(
            outputs_mask.flatten(0, 1),  # (B*Q, T, h, w): frames as channels
            size=attn_mask_target_size,
            mode="bilinear",
            align_corners=False,
        ).view(b, q, t * attn_mask_target_size[0] * attn_mask_target_size[1])
        return outputs_class, outputs_mask, self._attention_mask(attn_mask)

    def _attention_mask(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, Q, T*h_l*w_l) mask logits at a level's size -> (B*heads, Q, T*h_l*w_l) bool, True
        where a query may not attend."""
        attn_mask = logits.sigmoid() < ATTENTION_MASK_THRESHOLD
        attn_mask = attn_mask.unsqueeze(1).repeat(1, self.num_heads, 1, 1).flatten(0, 1)
        return attn_mask.detach()

    def _attention_mask_only(
        self, output: torch.Tensor, resized_features: torch.Tensor
    ) -> torch.Tensor:
        """The next layer's attention mask alone (inference between layers, where the class and
        full-size mask predictions are not kept), from ``resized_features`` (B, C_m,
        T*h_l*w_l): see :func:`_resized_frames_matrix`."""
        mask_embed = self.mask_embed(self.decoder_norm(output).transpose(0, 1))  # (B, Q, C_m)
        return self._attention_mask(torch.bmm(mask_embed, resized_features))

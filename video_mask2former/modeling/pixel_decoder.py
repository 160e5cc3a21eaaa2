"""The multi-scale deformable-attention pixel decoder of Mask2Former (``MSDeformAttnPixelDecoder``).

Shapes: N images (B videos x T frames; every frame is decoded on its own), C channels
(``conv_dim``), L levels of the deformable encoder, S = sum of h_l * w_l tokens over the levels,
H x W the padded input size.

The coarsest backbone features (res3..res5 in the official configs) are projected to C
channels, refined by a deformable-attention transformer encoder, and the finer features
(res2) are merged FPN-style. It returns per-pixel mask features at stride ``common_stride`` and
the first three refined levels (coarse to fine) for the transformer decoder's cross-attention.
State-dict keys are the official ones (``input_proj.0.0.weight``, ``transformer.level_embed``,
``transformer.encoder.layers.N.self_attn.*``, ``mask_features``, ``adapter_1``, ``layer_1``).
"""

import copy
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from mask2former_ops import MSDeformAttn

from ..structures import ShapeSpec
from .layers import Conv2d, activation_fn, c2_xavier_fill, get_norm, residual_ffn
from .position_encoding import PositionEmbeddingSine

# Groups of the GroupNorm after each input projection (official value).
INPUT_PROJ_GROUPS = 32
# The transformer decoder always attends to three scales.
NUM_DECODER_LEVELS = 3


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) -> (N, h*w, C), a view of a contiguous or a channels-last map."""
    if x.is_contiguous():
        return x.flatten(2).transpose(1, 2)
    return x.permute(0, 2, 3, 1).flatten(1, 2)


class MSDeformAttnEncoderLayer(nn.Module):
    """Deformable self-attention over all levels followed by a feed-forward block (post-norm).

    Args:
        d_model (int): C.
        d_ffn (int): hidden width of the feed-forward block.
        dropout (float): dropout probability.
        activation (str): "relu", "gelu" or "glu".
        n_levels (int): L.
        n_heads (int): attention heads.
        n_points (int): sampling points per head and level.
    """

    def __init__(
        self,
        *,
        d_model: int = 256,
        d_ffn: int = 1024,
        dropout: float = 0.1,
        activation: str = "relu",
        n_levels: int = 4,
        n_heads: int = 8,
        n_points: int = 4,
    ):
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.activation = activation_fn(activation)
        self.dropout2 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.dropout3 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        reference_points: torch.Tensor,
        spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
        level_shapes: Optional[Sequence[Tuple[int, int]]] = None,
    ) -> torch.Tensor:
        """Refine the flattened multi-level features.

        Args:
            src (Tensor): (N, S, C) features.
            pos (Tensor): (N, S, C) position + level embeddings.
            reference_points (Tensor): (N, S, L, 2) normalised (x, y) in [0, 1].
            spatial_shapes (Tensor): (L, 2) int64 (h_l, w_l).
            level_start_index (Tensor): (L,) int64 offset of each level in S.
            level_shapes (sequence, optional): the L (h_l, w_l) as Python ints (spares the
                PyTorch path of the op reading them back from ``spatial_shapes``).

        Returns:
            Tensor: (N, S, C).
        """
        attended = self.self_attn(
            src + pos,
            reference_points,
            src,
            spatial_shapes,
            level_start_index,
            input_level_shapes=level_shapes,
        )
        src = self.norm1(src + self.dropout1(attended))
        return residual_ffn(
            src,
            self.linear1,
            self.linear2,
            self.norm2,
            self.activation,
            self.dropout2,
            self.dropout3,
        )


class MSDeformAttnEncoder(nn.Module):
    """A stack of :class:`MSDeformAttnEncoderLayer` (keys ``layers.N.*``)."""

    def __init__(self, layer: MSDeformAttnEncoderLayer, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))

    @staticmethod
    def reference_points(
        spatial_shapes: Sequence[Tuple[int, int]], batch: int, device: torch.device
    ) -> torch.Tensor:
        """Normalised pixel centres of every level (no padding inside a level).

        Args:
            spatial_shapes (sequence): L pairs (h_l, w_l).
            batch (int): N.
            device (torch.device): where to create the tensor.

        Returns:
            Tensor: (N, S, L, 2) float32 (x, y) in (0, 1), the same point repeated for every level.
        """
        points = []
        for h, w in spatial_shapes:
            ref_y = torch.linspace(0.5, h - 0.5, h, dtype=torch.float32, device=device) / h
            ref_x = torch.linspace(0.5, w - 0.5, w, dtype=torch.float32, device=device) / w
            grid = torch.stack(
                (ref_x[None, :].expand(h, w), ref_y[:, None].expand(h, w)), dim=-1
            )  # (h, w, 2)
            points.append(grid.reshape(-1, 2))
        ref = torch.cat(points, 0)  # (S, 2)
        return ref[None, :, None, :].expand(batch, -1, len(spatial_shapes), -1)

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
        level_shapes: Optional[Sequence[Tuple[int, int]]] = None,
    ) -> torch.Tensor:
        """(N, S, C) -> (N, S, C); see :meth:`MSDeformAttnEncoderLayer.forward`."""
        if level_shapes is None:
            level_shapes = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
        reference_points = self.reference_points(level_shapes, src.shape[0], src.device)
        for layer in self.layers:
            src = layer(src, pos, reference_points, spatial_shapes, level_start_index, level_shapes)
        return src


class MSDeformAttnTransformerEncoderOnly(nn.Module):
    """Flattens the levels, adds level embeddings and runs the deformable encoder.

    Args:
        d_model (int): C.
        nhead (int): attention heads.
        num_encoder_layers (int): encoder depth.
        dim_feedforward (int): hidden width of the feed-forward blocks.
        dropout (float): dropout probability.
        activation (str): feed-forward activation.
        num_feature_levels (int): L.
        enc_n_points (int): sampling points per head and level.
    """

    def __init__(
        self,
        *,
        d_model: int = 256,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        dim_feedforward: int = 1024,
        dropout: float = 0.1,
        activation: str = "relu",
        num_feature_levels: int = 4,
        enc_n_points: int = 4,
    ):
        super().__init__()
        layer = MSDeformAttnEncoderLayer(
            d_model=d_model,
            d_ffn=dim_feedforward,
            dropout=dropout,
            activation=activation,
            n_levels=num_feature_levels,
            n_heads=nhead,
            n_points=enc_n_points,
        )
        self.encoder = MSDeformAttnEncoder(layer, num_encoder_layers)
        self.level_embed = nn.Parameter(torch.empty(num_feature_levels, d_model))
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)
        for module in self.modules():
            if isinstance(module, MSDeformAttn):
                module._reset_parameters()
        nn.init.normal_(self.level_embed)

    def forward(
        self, srcs: List[torch.Tensor], pos_embeds: List[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode L feature maps jointly.

        Args:
            srcs (list[Tensor]): L maps (N, C, h_l, w_l).
            pos_embeds (list[Tensor]): L maps (N, C, h_l, w_l).

        Returns:
            tuple: memory (N, S, C), spatial_shapes (L, 2) int64, level_start_index (L,) int64.
        """
        src_flatten, pos_flatten, shapes = [], [], []
        for level, (src, pos) in enumerate(zip(srcs, pos_embeds)):
            shapes.append(tuple(src.shape[-2:]))
            src_flatten.append(_tokens(src))  # (N, h*w, C)
            pos = _tokens(pos) + self.level_embed[level].view(1, 1, -1)
            pos_flatten.append(pos)
        src_flatten = torch.cat(src_flatten, 1)  # (N, S, C)
        pos_flatten = torch.cat(pos_flatten, 1)  # (N, S, C)
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=src_flatten.device)
        level_start_index = torch.cat(
            (spatial_shapes.new_zeros((1,)), spatial_shapes.prod(1).cumsum(0)[:-1])
        )
        memory = self.encoder(
            src_flatten, pos_flatten, spatial_shapes, level_start_index, level_shapes=shapes
        )
        return memory, spatial_shapes, level_start_index


class MSDeformAttnPixelDecoder(nn.Module):
    """Mask2Former's pixel decoder.

    Args:
        input_shape (dict): backbone feature name -> :class:`ShapeSpec` (channels, stride) of
            every feature the decoder reads (res2..res5).
        transformer_dropout (float): dropout of the deformable encoder.
        transformer_nheads (int): heads of the deformable encoder.
        transformer_dim_feedforward (int): hidden width of its feed-forward blocks (1024).
        transformer_enc_layers (int): encoder depth (6).
        conv_dim (int): C.
        mask_dim (int): channels of the mask features.
        norm (str): normalisation of the FPN convolutions ("GN").
        transformer_in_features (sequence of str): features the encoder reads (res3..res5).
        common_stride (int): stride of the mask features (4).
        fp32 (bool): run in float32 even under ``torch.autocast``, as the official decoder does
            (its operator had float32 kernels only). False lets autocast run the decoder, the
            deformable attention included, in float16/bfloat16: ``mask2former_ops`` has
            half-precision kernels and keeps sampling locations in float32.
    """

    def __init__(
        self,
        *,
        input_shape: Dict[str, ShapeSpec],
        transformer_dropout: float = 0.0,
        transformer_nheads: int = 8,
        transformer_dim_feedforward: int = 1024,
        transformer_enc_layers: int = 6,
        conv_dim: int = 256,
        mask_dim: int = 256,
        norm: str = "GN",
        transformer_in_features: Sequence[str] = ("res3", "res4", "res5"),
        common_stride: int = 4,
        fp32: bool = False,
    ):
        super().__init__()
        self.fp32 = fp32
        missing = [name for name in transformer_in_features if name not in input_shape]
        if missing:
            raise ValueError(
                f"MSDeformAttnPixelDecoder: transformer_in_features {missing} are not among the "
                f"input features {sorted(input_shape)}"
            )
        by_stride = sorted(input_shape.items(), key=lambda item: item[1].stride)
        self.in_features = [name for name, _ in by_stride]  # fine to coarse
        feature_channels = [spec.channels for _, spec in by_stride]
        encoder_shape = [(n, s) for n, s in by_stride if n in transformer_in_features]
        self.transformer_in_features = [name for name, _ in encoder_shape]  # fine to coarse
        encoder_channels = [spec.channels for _, spec in encoder_shape]
        self.transformer_num_feature_levels = len(self.transformer_in_features)

        # Coarse to fine (res5 first), as the encoder's levels.
        self.input_proj = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, conv_dim, kernel_size=1),
                nn.GroupNorm(INPUT_PROJ_GROUPS, conv_dim),
            )
            for channels in encoder_channels[::-1]
        )
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.constant_(proj[0].bias, 0)

        self.transformer = MSDeformAttnTransformerEncoderOnly(
            d_model=conv_dim,
            dropout=transformer_dropout,
            nhead=transformer_nheads,
            dim_feedforward=transformer_dim_feedforward,
            num_encoder_layers=transformer_enc_layers,
            num_feature_levels=self.transformer_num_feature_levels,
        )
        self.pe_layer = PositionEmbeddingSine(conv_dim // 2, normalize=True)

        self.mask_dim = mask_dim
        self.mask_features = Conv2d(conv_dim, mask_dim, kernel_size=1)
        c2_xavier_fill(self.mask_features)

        self.maskformer_num_feature_levels = NUM_DECODER_LEVELS
        self.common_stride = common_stride
        finest_encoder_stride = min(spec.stride for _, spec in encoder_shape)
        self.num_fpn_levels = int(math.log2(finest_encoder_stride) - math.log2(common_stride))

        use_bias = norm == ""
        lateral_convs, output_convs = [], []
        for index, channels in enumerate(feature_channels[: self.num_fpn_levels]):
            lateral = Conv2d(
                channels, conv_dim, kernel_size=1, bias=use_bias, norm=get_norm(norm, conv_dim)
            )
            output = Conv2d(
                conv_dim,
                conv_dim,
                kernel_size=3,
                padding=1,
                bias=use_bias,
                norm=get_norm(norm, conv_dim),
                activation=F.relu,
            )
            c2_xavier_fill(lateral)
            c2_xavier_fill(output)
            self.add_module(f"adapter_{index + 1}", lateral)
            self.add_module(f"layer_{index + 1}", output)
            lateral_convs.append(lateral)
            output_convs.append(output)
        # Coarse to fine, the order of the top-down pass. Plain lists: the modules are registered
        # above under their official names.
        self.lateral_convs = lateral_convs[::-1]
        self.output_convs = output_convs[::-1]

    def forward_features(
        self, features: Dict[str, torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        """Decode backbone features (in float32 under autocast when ``self.fp32``).

        Args:
            features (dict): name -> (N, C_name, H/stride, W/stride) backbone features.

        Returns:
            tuple:
                mask_features (Tensor): (N, mask_dim, H/common_stride, W/common_stride).
                encoder_features (Tensor): (N, C, h_0, w_0), the coarsest refined level.
                multi_scale_features (list[Tensor]): 3 maps (N, C, h_l, w_l), coarse to fine.
        """
        if not self.fp32:
            return self._forward_features(features)
        device_type = next(iter(features.values())).device.type
        with torch.autocast(device_type=device_type, enabled=False):
            features = {name: x.float() for name, x in features.items()}
            return self._forward_features(features)

    def _forward_features(
        self, features: Dict[str, torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        srcs, pos = [], []
        for index, name in enumerate(self.transformer_in_features[::-1]):
            x = features[name]
            srcs.append(self.input_proj[index](x))
            pos.append(self.pe_layer(x))
        memory, _, _ = self.transformer(srcs, pos)
        shapes = [tuple(src.shape[-2:]) for src in srcs]  # Python ints: no device sync
        # (N, C, h_l, w_l) views of the memory (channels-last strides, no copy).
        out = [
            level.unflatten(1, (h, w)).permute(0, 3, 1, 2)
            for level, (h, w) in zip(torch.split(memory, [h * w for h, w in shapes], dim=1), shapes)
        ]
        for index, name in enumerate(self.in_features[: self.num_fpn_levels][::-1]):
            lateral = self.lateral_convs[index](features[name])
            top_down = F.interpolate(
                out[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False
            )
            out.append(self.output_convs[index](lateral + top_down))
        multi_scale_features = out[: self.maskformer_num_feature_levels]
        return self.mask_features(out[-1]), out[0], multi_scale_features

    def forward(self, features: Dict[str, torch.Tensor]):
        """Same as :meth:`forward_features`."""
        return self.forward_features(features)

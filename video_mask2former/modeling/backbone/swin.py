"""Swin Transformer backbone (Liu et al. 2021), key layout of Mask2Former's D2SwinTransformer.

Shape shorthand in this module:
    N: images (B*T frames of a batch of clips)     C: channels of the current stage
    H x W: token grid of the current stage          L = H * W tokens
    ws: window size (7 or 12)                        nW: windows per image, nH: attention heads

State-dict keys (checkpoints are an API; they equal the official ``backbone.*`` keys):
``patch_embed.proj``, ``patch_embed.norm``, ``layers.{i}.blocks.{j}.{norm1,attn,norm2,mlp}``
(``attn.relative_position_bias_table``, the int64 buffer ``attn.relative_position_index``,
``attn.qkv``, ``attn.proj``, ``mlp.fc1``, ``mlp.fc2``), ``layers.{i}.downsample.{norm,reduction}``
and the per-output norms ``norm0`` .. ``norm3``.

This module assembles the stages; their parts (windows, window attention, blocks, patch merging
and embedding) are in :mod:`.swin_blocks`, the MLP and stochastic depth in :mod:`..layers`.
"""

from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...structures import ShapeSpec
from .swin_blocks import (  # noqa: F401  (re-exported: the block parts' old home)
    BasicLayer,
    PatchEmbed,
    PatchMerging,
    SwinTransformerBlock,
    WindowAttention,
    relative_position_index,
    shifted_window_mask,
    window_merge,
    window_partition,
)

# Arguments of the four official YouTube-VIS configurations (configs/youtubevis_2019/swin/*.yaml);
# everything else takes the SwinTransformer defaults (the official MODEL.SWIN defaults).
SWIN_VARIANTS: Dict[str, dict] = {
    # swin_tiny_patch4_window7_224
    "T": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7,
              pretrain_img_size=224),
    # swin_small_patch4_window7_224
    "S": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), window_size=7,
              pretrain_img_size=224),
    # swin_base_patch4_window12_384_22k
    "B": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size=12,
              pretrain_img_size=384),
    # swin_large_patch4_window12_384_22k
    "L": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), window_size=12,
              pretrain_img_size=384),
}  # fmt: skip

_STAGE_NAMES = ("res2", "res3", "res4", "res5")


class SwinTransformer(nn.Module):
    """Hierarchical shifted-window transformer giving ``res2``..``res5`` at strides 4..32.

    The defaults are the official ``MODEL.SWIN`` defaults (Swin-T); see :data:`SWIN_VARIANTS`
    for the other official sizes, e.g. ``SwinTransformer(**SWIN_VARIANTS["B"])``.
    """

    def __init__(
        self,
        *,
        pretrain_img_size: int = 224,
        patch_size: int = 4,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.3,
        ape: bool = False,
        patch_norm: bool = True,
        out_features: Sequence[str] = _STAGE_NAMES,
        use_checkpoint: bool = False,
    ):
        """
        Args:
            pretrain_img_size (int): image size of the ImageNet pre-training; sets the size of
                the absolute position embedding (only used with ``ape``).
            patch_size (int): stride of the patch embedding (4: res2 is at stride 4).
            in_chans (int): input channels.
            embed_dim (int): channels of the first stage; doubled at every stage.
            depths (sequence of int): blocks per stage (4 stages).
            num_heads (sequence of int): attention heads per stage.
            window_size (int): attention window side (7 for 224 pre-training, 12 for 384).
            mlp_ratio (float): MLP hidden channels / channels.
            qkv_bias (bool): learn a bias for q, k, v.
            qk_scale (float, optional): attention scale; default ``head_dim ** -0.5``.
            drop_rate (float): dropout after the patch embedding, projections and MLPs.
            attn_drop_rate (float): dropout on attention weights.
            drop_path_rate (float): stochastic depth of the last block (linear from 0).
            ape (bool): add a learned absolute position embedding.
            patch_norm (bool): LayerNorm after the patch embedding.
            out_features (sequence of str): which of ``res2``..``res5`` forward returns.
            use_checkpoint (bool): activation checkpointing of every block while training.
        """
        super().__init__()
        if len(depths) != len(_STAGE_NAMES) or len(num_heads) != len(_STAGE_NAMES):
            raise ValueError(f"depths and num_heads need 4 stages, got {depths} and {num_heads}")
        unknown = set(out_features) - set(_STAGE_NAMES)
        if unknown:
            raise ValueError(f"Unknown out_features {sorted(unknown)}; expected {_STAGE_NAMES}")
        self.ape = ape
        self._out_features = tuple(out_features)
        self.num_features = [embed_dim * 2**i for i in range(len(depths))]

        self.patch_embed = PatchEmbed(
            patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim, patch_norm=patch_norm
        )
        if ape:
            grid = pretrain_img_size // patch_size
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, grid, grid))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(p=drop_rate)

        block_drop_path = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        starts = [sum(depths[:i]) for i in range(len(depths) + 1)]
        self.layers = nn.ModuleList(
            BasicLayer(
                dim=self.num_features[i],
                depth=depths[i],
                num_heads=num_heads[i],
                window_size=window_size,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                drop=drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=block_drop_path[starts[i] : starts[i + 1]],
                downsample=i < len(depths) - 1,
                use_checkpoint=use_checkpoint,
            )
            for i in range(len(depths))
        )
        # One LayerNorm per stage output, norm0..norm3 (all four exist, like the official model).
        for i, channels in enumerate(self.num_features):
            self.add_module(f"norm{i}", nn.LayerNorm(channels))

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """
        Args:
            x (Tensor): (N, 3, H, W) normalised images; H, W multiples of ``size_divisibility``.

        Returns:
            dict[str, Tensor]: for each of ``out_features``, ``resK``: (N, C_K, H/2^K, W/2^K).
        """
        if x.dim() != 4:
            raise ValueError(f"SwinTransformer takes (N, C, H, W) input, got {tuple(x.shape)}")
        x = self.patch_embed(x)  # (N, C, H/4, W/4)
        h, w = x.shape[2:]
        if self.ape:
            x = x + F.interpolate(self.absolute_pos_embed, size=(h, w), mode="bicubic")
        x = self.pos_drop(x.flatten(2).transpose(1, 2))  # (N, H*W, C)

        outputs = {}
        for i, (name, layer) in enumerate(zip(_STAGE_NAMES, self.layers)):
            stage_out, x = layer(x, h, w)
            if name in self._out_features:
                stage_out = getattr(self, f"norm{i}")(stage_out)
                outputs[name] = stage_out.view(-1, h, w, self.num_features[i]).permute(0, 3, 1, 2)
            h, w = (h + 1) // 2, (w + 1) // 2
        return {name: out.contiguous() for name, out in outputs.items()}

    def output_shape(self) -> Dict[str, ShapeSpec]:
        """Channels and stride of every output feature."""
        return {
            name: ShapeSpec(channels=self.num_features[i], stride=4 * 2**i)
            for i, name in enumerate(_STAGE_NAMES)
            if name in self._out_features
        }

    @property
    def size_divisibility(self) -> int:
        """Inputs are padded to a multiple of this (the stride of ``res5``), like the official."""
        return 32

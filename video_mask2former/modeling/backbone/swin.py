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
"""

from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as checkpoint
from torch import nn

from ...structures import ShapeSpec

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
# Added to attention scores between tokens from different regions of a shifted window (official).
_SHIFTED_WINDOW_MASK_VALUE = -100.0


def drop_path(x: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples of a residual branch with probability ``drop_prob``.

    Args:
        x (Tensor): (N, ...) branch output.

    Returns:
        Tensor: (N, ...) with dropped samples zeroed and kept ones scaled by ``1 / (1 - p)``.
    """
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1.0 - drop_prob
    keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep_prob)
    return x * keep / keep_prob


class DropPath(nn.Module):
    """Module form of :func:`drop_path`."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Mlp(nn.Module):
    """Two-layer GELU MLP of a transformer block (keys ``fc1``, ``fc2``)."""

    def __init__(self, *, dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Cut a token map into non-overlapping windows.

    Args:
        x (Tensor): (N, H, W, C), H and W multiples of ``window_size``.

    Returns:
        Tensor: (N*nW, ws*ws, C), windows in row-major order.
    """
    n, h, w, c = x.shape
    x = x.view(n, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, c)


def window_merge(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`.

    Args:
        windows (Tensor): (N*nW, ws*ws, C).

    Returns:
        Tensor: (N, H, W, C).
    """
    c = windows.shape[-1]
    x = windows.view(-1, h // window_size, w // window_size, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def relative_position_index(window_size: int) -> torch.Tensor:
    """Index into the relative-position bias table for every (query, key) pair of a window.

    Returns:
        Tensor: (ws*ws, ws*ws) int64, values in [0, (2*ws-1)^2).
    """
    coords = torch.stack(
        torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    ).flatten(
        1
    )  # (2, ws*ws) as (row, col)
    rel = coords[:, :, None] - coords[:, None, :] + (window_size - 1)  # (2, L, L) in [0, 2ws-2]
    return rel[0] * (2 * window_size - 1) + rel[1]


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window, with a learned relative-position bias."""

    def __init__(
        self,
        *,
        dim: int,
        window_size: int,
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ):
        super().__init__()
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )  # ((2ws-1)^2, nH)
        # Stored in the state_dict like the official model (persistent buffer).
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Args:
            x (Tensor): (N*nW, ws*ws, C) window tokens.
            mask (Tensor, optional): (nW, ws*ws, ws*ws) additive mask (0 or -100) of shifted
                windows.

        Returns:
            Tensor: (N*nW, ws*ws, C).
        """
        b, length, c = x.shape
        qkv = self.qkv(x).view(b, length, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (N*nW, nH, L, C/nH)

        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(length, length, -1).permute(2, 0, 1)  # (nH, L, L)
        if mask is None:
            attn_bias = bias.unsqueeze(0)  # (1, nH, L, L)
        else:
            num_windows = mask.shape[0]
            # windows of one image are contiguous: (N*nW, nH, ...) -> (N, nW*nH, ...), so that one
            # (1, nW*nH, L, L) bias serves every image
            attn_bias = (bias.unsqueeze(0) + mask.unsqueeze(1)).flatten(0, 1).unsqueeze(0)
            q, k, v = (t.reshape(b // num_windows, -1, *t.shape[2:]) for t in (q, k, v))
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_bias.to(q.dtype),
            dropout_p=self.attn_drop if self.training else 0.0,
            scale=self.scale,
        )
        out = out.reshape(b, self.num_heads, length, -1).transpose(1, 2).reshape(b, length, c)
        return self.proj_drop(self.proj(out))


class SwinTransformerBlock(nn.Module):
    """(Shifted-)window attention + MLP, both pre-norm residual branches."""

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        qk_scale: Optional[float],
        drop: float,
        attn_drop: float,
        drop_path: float,
    ):
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, {window_size}), got {shift_size}")
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(
            dim=dim,
            window_size=window_size,
            num_heads=num_heads,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            attn_drop=attn_drop,
            proj_drop=drop,
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim=dim, hidden_dim=int(dim * mlp_ratio), dropout=drop)

    def forward(self, x: torch.Tensor, h: int, w: int, shift_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x (Tensor): (N, H*W, C) tokens.
            h, w (int): token grid size.
            shift_mask (Tensor): (nW, ws*ws, ws*ws) mask for the padded grid; used if shifted.

        Returns:
            Tensor: (N, H*W, C).
        """
        n, length, c = x.shape
        ws = self.window_size
        y = self.norm1(x).view(n, h, w, c)
        pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
        y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))  # (N, Hp, Wp, C)
        hp, wp = h + pad_b, w + pad_r
        if self.shift_size > 0:
            y = torch.roll(y, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        y = self.attn(window_partition(y, ws), mask=shift_mask if self.shift_size > 0 else None)
        y = window_merge(y, ws, hp, wp)
        if self.shift_size > 0:
            y = torch.roll(y, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        y = y[:, :h, :w, :].reshape(n, length, c)

        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2x2 merge: (N, H*W, C) -> (N, ceil(H/2)*ceil(W/2), 2C); keys ``norm``, ``reduction``."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, _, c = x.shape
        x = F.pad(x.view(n, h, w, c), (0, 0, 0, w % 2, 0, h % 2))  # even grid
        # concatenation order (official): (even row, even col), (odd, even), (even, odd), (odd, odd)
        x = torch.cat(
            [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1
        )  # (N, H/2, W/2, 4C)
        return self.reduction(self.norm(x.view(n, -1, 4 * c)))


def shifted_window_mask(h: int, w: int, window_size: int, shift_size: int, device) -> torch.Tensor:
    """Additive attention mask keeping shifted windows from mixing regions that are not adjacent.

    Args:
        h, w (int): padded token grid (multiples of ``window_size``).

    Returns:
        Tensor: (nW, ws*ws, ws*ws) float, 0 within a region and -100 across regions.
    """
    region = torch.zeros((1, h, w, 1), device=device)
    bounds = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    label = 0
    for rows in bounds:
        for cols in bounds:
            region[:, rows, cols, :] = label
            label += 1
    region = window_partition(region, window_size).squeeze(-1)  # (nW, ws*ws)
    different = region.unsqueeze(1) != region.unsqueeze(2)
    return torch.zeros_like(different, dtype=torch.float).masked_fill(
        different, _SHIFTED_WINDOW_MASK_VALUE
    )


class BasicLayer(nn.Module):
    """One stage: ``depth`` blocks alternating regular / shifted windows, then optional merging."""

    def __init__(
        self,
        *,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        qk_scale: Optional[float],
        drop: float,
        attn_drop: float,
        drop_path: Sequence[float],
        downsample: bool,
        use_checkpoint: bool,
    ):
        super().__init__()
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim=dim,
                num_heads=num_heads,
                window_size=window_size,
                shift_size=0 if i % 2 == 0 else self.shift_size,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                drop=drop,
                attn_drop=attn_drop,
                drop_path=drop_path[i],
            )
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: torch.Tensor, h: int, w: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x (Tensor): (N, H*W, C).

        Returns:
            tuple: the stage output (N, H*W, C) and the input of the next stage
            (N, ceil(H/2)*ceil(W/2), 2C), or the stage output again for the last stage.
        """
        ws = self.window_size
        hp, wp = -(-h // ws) * ws, -(-w // ws) * ws
        mask = shifted_window_mask(hp, wp, ws, self.shift_size, x.device).to(x.dtype)
        for block in self.blocks:
            if self.use_checkpoint and self.training:
                x = checkpoint.checkpoint(block, x, h, w, mask, use_reentrant=False)
            else:
                x = block(x, h, w, mask)
        return x, (self.downsample(x, h, w) if self.downsample is not None else x)


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection (keys ``proj``, ``norm``); pads to a patch multiple."""

    def __init__(self, *, patch_size: int, in_chans: int, embed_dim: int, patch_norm: bool):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if patch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, C, H/p, W/p)."""
        p = self.patch_size
        x = F.pad(x, (0, (p - x.shape[3] % p) % p, 0, (p - x.shape[2] % p) % p))
        x = self.proj(x)
        if self.norm is not None:
            x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x


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

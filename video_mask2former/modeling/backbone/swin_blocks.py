"""The parts of a Swin Transformer stage: windows, window attention, blocks, patch merging.

Shape shorthand in this module:
    N: images (B*T frames of a batch of clips)     C: channels of the current stage
    H x W: token grid of the current stage          L = H * W tokens
    ws: window size (7 or 12)                        nW: windows per image, nH: attention heads

Key names are the official ones (see :mod:`.swin`, which assembles these parts).
"""

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as checkpoint
from torch import nn

from ..layers import DropPath, Mlp

__all__ = [
    "BasicLayer",
    "PatchEmbed",
    "PatchMerging",
    "SwinTransformerBlock",
    "WindowAttention",
    "relative_position_index",
    "shifted_window_mask",
    "window_merge",
    "window_partition",
]

# Added to attention scores between tokens from different regions of a shifted window (official).
_SHIFTED_WINDOW_MASK_VALUE = -100.0


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

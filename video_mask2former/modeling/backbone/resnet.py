"""ResNet-50/101 with detectron2's module layout, so detectron2 checkpoints load unchanged.

Shapes: N images (B videos x T frames), C channels, H x W input size.

Keys: ``stem.conv1`` (7x7, stride 2, then ReLU and a 3x3 max-pool), stages ``res2`` ... ``res5``
of bottleneck blocks ``resK.i.{shortcut,conv1,conv2,conv3}``, each convolution with its
normalisation as the ``.norm`` submodule. Output strides: res2 4, res3 8, res4 16, res5 32.
"""

from typing import Dict, List, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ...structures import ShapeSpec
from ..layers import Conv2d, FrozenBatchNorm2d, c2_msra_fill, get_norm

# Blocks per stage (res2..res5) of each supported depth.
BLOCKS_PER_DEPTH = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
# Stride of the stem (7x7 stride-2 conv + stride-2 max-pool).
STEM_STRIDE = 4
# Channel expansion from the bottleneck width to a block's output.
BOTTLENECK_EXPANSION = 4


class BasicStem(nn.Module):
    """7x7 stride-2 convolution with norm and ReLU, then a 3x3 stride-2 max-pool.

    Args:
        in_channels (int): input channels (3).
        out_channels (int): C of the output.
        norm (str): normalisation name for :func:`get_norm`.
    """

    def __init__(self, *, in_channels: int = 3, out_channels: int = 64, norm: str = "FrozenBN"):
        super().__init__()
        self.out_channels = out_channels
        self.stride = STEM_STRIDE
        self.conv1 = Conv2d(
            in_channels,
            out_channels,
            kernel_size=7,
            stride=2,
            padding=3,
            bias=False,
            norm=get_norm(norm, out_channels),
        )
        c2_msra_fill(self.conv1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, C, ceil(H/4), ceil(W/4))."""
        x = F.relu_(self.conv1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class BottleneckBlock(nn.Module):
    """1x1 -> 3x3 -> 1x1 residual block with a projection shortcut when channels change.

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        bottleneck_channels (int): width of the 3x3 convolution.
        stride (int): spatial stride of the block.
        norm (str): normalisation name.
        stride_in_1x1 (bool): put the stride in the first 1x1 convolution (MSRA ResNet) instead
            of the 3x3 one (torchvision ResNet, used by the official configs).
        dilation (int): dilation of the 3x3 convolution.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        bottleneck_channels: int,
        stride: int = 1,
        norm: str = "FrozenBN",
        stride_in_1x1: bool = False,
        dilation: int = 1,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        if in_channels != out_channels:
            self.shortcut = Conv2d(
                in_channels,
                out_channels,
                kernel_size=1,
                stride=stride,
                bias=False,
                norm=get_norm(norm, out_channels),
            )
        else:
            self.shortcut = None
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = Conv2d(
            in_channels,
            bottleneck_channels,
            kernel_size=1,
            stride=stride_1x1,
            bias=False,
            norm=get_norm(norm, bottleneck_channels),
        )
        self.conv2 = Conv2d(
            bottleneck_channels,
            bottleneck_channels,
            kernel_size=3,
            stride=stride_3x3,
            padding=dilation,
            dilation=dilation,
            bias=False,
            norm=get_norm(norm, bottleneck_channels),
        )
        self.conv3 = Conv2d(
            bottleneck_channels,
            out_channels,
            kernel_size=1,
            bias=False,
            norm=get_norm(norm, out_channels),
        )
        for layer in (self.conv1, self.conv2, self.conv3, self.shortcut):
            if layer is not None:
                c2_msra_fill(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H/stride, W/stride)."""
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return F.relu_(out + shortcut)

    def freeze(self) -> "BottleneckBlock":
        """Stop gradients to this block and freeze its batch norms."""
        return _freeze(self)


def _freeze(module: nn.Module) -> nn.Module:
    for parameter in module.parameters():
        parameter.requires_grad = False
    return FrozenBatchNorm2d.convert_frozen_batchnorm(module)


class ResNet(nn.Module):
    """ResNet backbone returning the outputs of stages res2..res5.

    Args:
        depth (int): 50 or 101.
        norm (str): normalisation of every convolution ("FrozenBN" in the official configs).
        stem_out_channels (int): C of the stem.
        res2_out_channels (int): C of res2 (doubles at every later stage).
        width_per_group (int): bottleneck width of res2 (doubles at every later stage).
        stride_in_1x1 (bool): see :class:`BottleneckBlock` (False in the official configs).
        res5_dilation (int): dilation of res5 (1 or 2; 2 keeps res5 at stride 16).
        out_features (sequence of str): which of "res2".."res5" to return.
        freeze_at (int): like detectron2: 0 freezes nothing, 1 the stem, 2 the stem and res2, ...
    """

    def __init__(
        self,
        *,
        depth: int = 50,
        norm: str = "FrozenBN",
        stem_out_channels: int = 64,
        res2_out_channels: int = 256,
        width_per_group: int = 64,
        stride_in_1x1: bool = False,
        res5_dilation: int = 1,
        out_features: Sequence[str] = ("res2", "res3", "res4", "res5"),
        freeze_at: int = 0,
    ):
        super().__init__()
        if depth not in BLOCKS_PER_DEPTH:
            raise ValueError(f"ResNet: depth {depth} is not supported; expected one of 50, 101")
        if res5_dilation not in (1, 2):
            raise ValueError(f"ResNet: res5_dilation must be 1 or 2, got {res5_dilation}")
        stage_names = ("res2", "res3", "res4", "res5")
        unknown = [name for name in out_features if name not in stage_names]
        if unknown:
            raise ValueError(
                f"ResNet: unknown out_features {unknown}; expected among {stage_names}"
            )
        self.stem = BasicStem(in_channels=3, out_channels=stem_out_channels, norm=norm)
        self._out_features = list(out_features)
        num_stages = max(stage_names.index(name) for name in out_features) + 1

        self._strides = {}
        self._channels = {}
        self.stage_names: List[str] = []
        in_channels, out_channels = stem_out_channels, res2_out_channels
        bottleneck_channels, current_stride = width_per_group, STEM_STRIDE
        for index in range(num_stages):
            name = stage_names[index]
            dilation = res5_dilation if name == "res5" else 1
            first_stride = 1 if index == 0 or dilation == 2 else 2
            blocks = []
            for block_index in range(BLOCKS_PER_DEPTH[depth][index]):
                blocks.append(
                    BottleneckBlock(
                        in_channels=in_channels,
                        out_channels=out_channels,
                        bottleneck_channels=bottleneck_channels,
                        stride=first_stride if block_index == 0 else 1,
                        norm=norm,
                        stride_in_1x1=stride_in_1x1,
                        dilation=dilation,
                    )
                )
                in_channels = out_channels
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
            current_stride *= first_stride
            self._strides[name] = current_stride
            self._channels[name] = out_channels
            out_channels *= 2
            bottleneck_channels *= 2
        self.freeze(freeze_at)

    def freeze(self, freeze_at: int = 0) -> "ResNet":
        """Freeze the stem (``freeze_at >= 1``) and the first ``freeze_at - 1`` stages.

        Frozen parts get ``requires_grad = False`` and frozen batch norms.
        """
        if freeze_at >= 1:
            _freeze(self.stem)
        for index, name in enumerate(self.stage_names, start=2):
            if freeze_at >= index:
                for block in getattr(self, name):
                    block.freeze()
        return self

    @property
    def size_divisibility(self) -> int:
        """ResNet takes any input size (the meta-architecture pads to its own divisibility)."""
        return 0

    def output_shape(self) -> Dict[str, ShapeSpec]:
        """Channels and stride of each returned feature."""
        return {
            name: ShapeSpec(channels=self._channels[name], stride=self._strides[name])
            for name in self._out_features
        }

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Run the stem and the stages.

        Args:
            x (Tensor): (N, 3, H, W) normalised images.

        Returns:
            dict: name -> (N, C_name, H/stride, W/stride) for each of ``out_features``.
        """
        if x.dim() != 4:
            raise ValueError(f"ResNet expects (N, C, H, W) input, got shape {tuple(x.shape)}")
        outputs = {}
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
            if name in self._out_features:
                outputs[name] = x
        return outputs

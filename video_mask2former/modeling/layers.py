"""Small building blocks shared by the backbone, the pixel decoder and the transformer decoder.

Shapes: N images (B videos x T frames), C channels, H x W spatial size, L tokens, D features.

Key names follow detectron2 (``Conv2d`` keeps its normalisation as the ``.norm`` submodule,
``FrozenBatchNorm2d`` stores ``weight``/``bias``/``running_mean``/``running_var`` as buffers) so
the official checkpoints load unchanged.
"""

from typing import Callable, Optional

import torch
from torch import nn
from torch.nn import functional as F

# detectron2's default epsilon of FrozenBatchNorm2d.
FROZEN_BN_EPS = 1e-5
# Number of groups of the "GN" normalisation (detectron2's get_norm).
GROUP_NORM_GROUPS = 32


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` followed by an optional normalisation and activation.

    The normalisation is the ``norm`` submodule, so its parameters appear as
    ``<conv>.norm.weight`` etc. in the state_dict, like detectron2's wrapper.

    Args:
        *args: positional arguments of ``nn.Conv2d``.
        norm (nn.Module, optional): applied after the convolution.
        activation (callable, optional): applied after the normalisation.
        **kwargs: keyword arguments of ``nn.Conv2d``.
    """

    def __init__(
        self,
        *args,
        norm: Optional[nn.Module] = None,
        activation: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H', W')."""
        x = super().forward(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class FrozenBatchNorm2d(nn.Module):
    """Batch normalisation with fixed statistics and affine parameters (all buffers).

    Computes ``(x - running_mean) / sqrt(running_var + eps) * weight + bias``; initialised to the
    identity.

    Args:
        num_features (int): C.
        eps (float): added to the variance.
    """

    def __init__(self, num_features: int, eps: float = FROZEN_BN_EPS):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features) - eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W), in the dtype of ``x``."""
        if x.requires_grad:
            # An explicit affine map: F.batch_norm's backward would also compute unused gradients.
            scale = self.weight * (self.running_var + self.eps).rsqrt()
            shift = self.bias - self.running_mean * scale
            return x * scale.view(1, -1, 1, 1).to(x.dtype) + shift.view(1, -1, 1, 1).to(x.dtype)
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )

    @classmethod
    def convert_frozen_batchnorm(cls, module: nn.Module) -> nn.Module:
        """Replace every ``BatchNorm2d``/``SyncBatchNorm`` in ``module`` by a frozen copy.

        Args:
            module (nn.Module): converted in place (its children); a batch norm itself is replaced.

        Returns:
            nn.Module: the converted module.
        """
        if isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm)):
            frozen = cls(module.num_features, eps=module.eps)
            if module.affine:
                frozen.weight.data.copy_(module.weight.data)
                frozen.bias.data.copy_(module.bias.data)
            frozen.running_mean.data.copy_(module.running_mean.data)
            frozen.running_var.data.copy_(module.running_var.data)
            return frozen
        for name, child in module.named_children():
            new_child = cls.convert_frozen_batchnorm(child)
            if new_child is not child:
                module.add_module(name, new_child)
        return module

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, eps={self.eps}"


def get_norm(norm: str, channels: int) -> Optional[nn.Module]:
    """A normalisation layer by name.

    Args:
        norm (str): "GN" (32 groups), "FrozenBN", "BN", or "" for none.
        channels (int): C.

    Returns:
        nn.Module or None: None when ``norm`` is "".
    """
    if norm == "":
        return None
    if norm == "GN":
        return nn.GroupNorm(GROUP_NORM_GROUPS, channels)
    if norm == "FrozenBN":
        return FrozenBatchNorm2d(channels)
    if norm == "BN":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"get_norm: unknown norm {norm!r}; expected 'GN', 'FrozenBN', 'BN' or ''")


def c2_xavier_fill(module: nn.Module) -> None:
    """Caffe2's XavierFill: weight ~ U(-sqrt(3/fan_in), sqrt(3/fan_in)), bias 0."""
    nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


def c2_msra_fill(module: nn.Module) -> None:
    """Caffe2's MSRAFill: weight ~ N(0, 2/fan_out), bias 0."""
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


class MLP(nn.Module):
    """A stack of linear layers with ReLU between them (none after the last).

    Args:
        input_dim (int): D_in.
        hidden_dim (int): width of the hidden layers.
        output_dim (int): D_out.
        num_layers (int): number of linear layers (>= 1); they are ``layers.0`` ... in the
            state_dict.
    """

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"MLP: num_layers must be >= 1, got {num_layers}")
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D_in) -> (..., D_out)."""
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < last:
                x = F.relu(x)
        return x


def activation_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation function called ``name`` ("relu", "gelu" or "glu")."""
    functions = {"relu": F.relu, "gelu": F.gelu, "glu": F.glu}
    if name not in functions:
        raise ValueError(
            f"activation_fn: unknown activation {name!r}; expected one of {sorted(functions)}"
        )
    return functions[name]


def xavier_init_matrices(module: nn.Module) -> None:
    """Xavier-uniform initialisation of every parameter of ``module`` with 2 or more dimensions."""
    for parameter in module.parameters():
        if parameter.dim() > 1:
            nn.init.xavier_uniform_(parameter)


def residual_ffn(
    x: torch.Tensor,
    linear1: nn.Linear,
    linear2: nn.Linear,
    norm: nn.LayerNorm,
    activation: Callable[[torch.Tensor], torch.Tensor],
    dropout: nn.Dropout,
    output_dropout: nn.Dropout,
    normalize_before: bool = False,
) -> torch.Tensor:
    """The transformer feed-forward sub-layer with its residual connection and LayerNorm.

    Post-norm: ``norm(x + drop(linear2(drop(act(linear1(x))))))``; pre-norm applies ``norm``
    to the input of the branch instead. The pixel decoder's encoder layer and the transformer
    decoder's :class:`FFNLayer` both compute it here, keeping their own (official) key names.

    Args:
        x (Tensor): (..., D).
        linear1, linear2 (nn.Linear): D -> D_ffn and D_ffn -> D.
        norm (nn.LayerNorm): over D.
        activation (callable): applied after ``linear1``.
        dropout (nn.Dropout): applied to the hidden activations.
        output_dropout (nn.Dropout): applied to the branch output.
        normalize_before (bool): pre-norm instead of post-norm.

    Returns:
        Tensor: (..., D).
    """
    branch = norm(x) if normalize_before else x
    branch = linear2(dropout(activation(linear1(branch))))
    x = x + output_dropout(branch)
    return x if normalize_before else norm(x)

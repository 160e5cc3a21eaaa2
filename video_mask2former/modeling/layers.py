"""Small building blocks shared by the backbone, the pixel decoder and the transformer decoder.

Shapes: N images (B videos x T frames), C channels, H x W spatial size, L tokens, D features,
Q queries, S keys, B batch.

The attention and feed-forward layers live here, once: the decoder's self- / cross-attention
and FFN layers (:class:`SelfAttentionLayer`, :class:`CrossAttentionLayer`, :class:`FFNLayer`,
:func:`residual_ffn`, which the pixel decoder's encoder layer also uses), the prediction
:class:`MLP`, and Swin's :class:`Mlp` and :class:`DropPath`. Each keeps its official key names.

Key names follow detectron2 (``Conv2d`` keeps its normalisation as the ``.norm`` submodule,
``FrozenBatchNorm2d`` stores ``weight``/``bias``/``running_mean``/``running_var`` as buffers) so
the official checkpoints load unchanged.
"""

from typing import Callable, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ..precision import cpu_autocast_dtype

# detectron2's default epsilon of FrozenBatchNorm2d.
FROZEN_BN_EPS = 1e-5
# Number of groups of the "GN" normalisation (detectron2's get_norm).
GROUP_NORM_GROUPS = 32


def _is_compiling() -> bool:
    """Whether ``torch.compile`` / ``torch.export`` is tracing (False on torch < 2.3)."""
    compiler = getattr(torch, "compiler", None)
    return bool(getattr(compiler, "is_compiling", lambda: False)())


def _cpu_inference(x: torch.Tensor) -> bool:
    """Whether ``x`` is a CPU tensor of eager inference: no autograd, and not traced by an
    exporter or the compiler (those see the module as written and do their own folding)."""
    return (
        x.device.type == "cpu"
        and not torch.is_grad_enabled()
        and not torch.jit.is_tracing()
        and not _is_compiling()
        and not torch.onnx.is_in_onnx_export()
    )


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` followed by an optional normalisation and activation.

    The normalisation is the ``norm`` submodule, so its parameters appear as
    ``<conv>.norm.weight`` etc. in the state_dict, like detectron2's wrapper.

    **CPU inference.** In eval mode without autograd (``torch.no_grad`` / ``inference_mode``) on
    the CPU, the convolution runs with an inference copy of its weights, made once and kept
    until a weight, the device, the dtype or the autocast dtype changes: a
    :class:`FrozenBatchNorm2d` ``norm`` folded into the weight and bias (``W * s``,
    ``(b - mean) * s + beta``, ``s = gamma / sqrt(var + eps)``: equal to conv-then-norm within
    float32 rounding), in the channels-last layout that oneDNN's convolutions run fastest in, and
    already in the autocast dtype. The copy is a plain attribute, not part of the state_dict;
    it costs the memory of the weights once more. Training, autograd and other devices use the
    module as written.

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
        self._inference_weights = None  # (key, weight, bias, norm folded): see the class doc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H', W')."""
        if _cpu_inference(x) and not self.training:
            weight, bias, folded = self.inference_weights()
            x = self._conv_forward(x, weight, bias)
            if self.norm is not None and not folded:
                x = self.norm(x)
        else:
            x = super().forward(x)
            if self.norm is not None:
                x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def train(self, mode: bool = True) -> "Conv2d":
        self._inference_weights = None  # training changes the weights: drop the inference copy
        return super().train(mode)

    def inference_weights(self) -> Tuple[torch.Tensor, Optional[torch.Tensor], bool]:
        """The CPU inference copy of (weight, bias) and whether ``norm`` is folded into it
        (made on first use, re-made when a weight, device, dtype or autocast dtype changes)."""
        autocast_dtype = cpu_autocast_dtype()
        tensors = [self.weight, self.bias]
        if isinstance(self.norm, FrozenBatchNorm2d):
            norm = self.norm
            tensors += [norm.weight, norm.bias, norm.running_mean, norm.running_var]
        key = (autocast_dtype,) + tuple(
            None if t is None else (t.data_ptr(), t._version, t.dtype) for t in tensors
        )
        if self._inference_weights is None or self._inference_weights[0] != key:
            weight, bias, folded = self._make_inference_weights(autocast_dtype)
            self._inference_weights = (key, weight, bias, folded)
        return self._inference_weights[1:]

    def _make_inference_weights(self, dtype: Optional[torch.dtype]):
        weight, bias = self.weight.detach(), None if self.bias is None else self.bias.detach()
        folded = isinstance(self.norm, FrozenBatchNorm2d)
        if folded:
            norm = self.norm
            scale = norm.weight * (norm.running_var + norm.eps).rsqrt()  # (C_out,)
            shift = norm.bias - norm.running_mean * scale
            weight = weight * scale.view(-1, 1, 1, 1).to(weight.dtype)
            bias = shift if bias is None else bias * scale + shift
        if dtype is not None and weight.is_floating_point():
            weight, bias = weight.to(dtype), None if bias is None else bias.to(dtype)
        return weight.contiguous(memory_format=torch.channels_last), bias, folded


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


# ---------------------------------------------------------------------------------------------
# Attention and feed-forward layers of the transformer decoder
# ---------------------------------------------------------------------------------------------
def _with_pos(x: torch.Tensor, pos: Optional[torch.Tensor]) -> torch.Tensor:
    return x if pos is None else x + pos


class _ResidualAttentionLayer(nn.Module):
    """Multi-head attention with a residual connection and LayerNorm (post- or pre-norm).

    The self- and cross-attention layers differ only in the name of their attention module
    (``self_attn`` / ``multihead_attn``, the official key names) and in where the keys come from.
    """

    def __init__(
        self,
        attention_name: str,
        *,
        d_model: int,
        nhead: int,
        dropout: float = 0.0,
        normalize_before: bool = False,
    ):
        super().__init__()
        self._attention_name = attention_name
        self.add_module(attention_name, nn.MultiheadAttention(d_model, nhead, dropout=dropout))
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.normalize_before = normalize_before
        xavier_init_matrices(self)

    def _attend(
        self,
        tgt: torch.Tensor,
        query_pos: Optional[torch.Tensor],
        memory: Optional[torch.Tensor],
        pos: Optional[torch.Tensor],
        attn_mask: Optional[torch.Tensor],
        key_padding_mask: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """Attend from ``tgt`` to ``memory`` (to ``tgt`` itself when ``memory`` is None)."""
        x = self.norm(tgt) if self.normalize_before else tgt
        query = _with_pos(x, query_pos)
        if memory is None:
            key, value = query, x
        else:
            key, value = _with_pos(memory, pos), memory
        attention = getattr(self, self._attention_name)
        # need_weights=False: the averaged attention map is not used, and without it PyTorch
        # runs its fused attention instead of materialising the (B*heads, Q, S) scores.
        out = attention(
            query,
            key,
            value=value,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
        )[0]
        tgt = tgt + self.dropout(out)
        return tgt if self.normalize_before else self.norm(tgt)


class SelfAttentionLayer(_ResidualAttentionLayer):
    """Self-attention among the queries (key name ``self_attn``).

    Args:
        d_model (int): C.
        nhead (int): attention heads.
        dropout (float): dropout probability.
        normalize_before (bool): pre-norm instead of post-norm.
    """

    def __init__(self, *, d_model: int, nhead: int, dropout: float = 0.0, normalize_before=False):
        super().__init__(
            "self_attn",
            d_model=d_model,
            nhead=nhead,
            dropout=dropout,
            normalize_before=normalize_before,
        )

    def forward(
        self,
        tgt: torch.Tensor,
        tgt_mask: Optional[torch.Tensor] = None,
        tgt_key_padding_mask: Optional[torch.Tensor] = None,
        query_pos: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """(Q, B, C) -> (Q, B, C); ``query_pos`` (Q, B, C) is added to queries and keys."""
        return self._attend(tgt, query_pos, None, None, tgt_mask, tgt_key_padding_mask)


class CrossAttentionLayer(_ResidualAttentionLayer):
    """Cross-attention from the queries to the features (key name ``multihead_attn``).

    Args: as :class:`SelfAttentionLayer`.
    """

    def __init__(self, *, d_model: int, nhead: int, dropout: float = 0.0, normalize_before=False):
        super().__init__(
            "multihead_attn",
            d_model=d_model,
            nhead=nhead,
            dropout=dropout,
            normalize_before=normalize_before,
        )

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: Optional[torch.Tensor] = None,
        memory_key_padding_mask: Optional[torch.Tensor] = None,
        pos: Optional[torch.Tensor] = None,
        query_pos: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Attend from the queries to the memory.

        Args:
            tgt (Tensor): (Q, B, C) queries.
            memory (Tensor): (S, B, C) keys/values (S = T*h*w for a video level).
            memory_mask (Tensor, optional): (B*heads, Q, S) bool, True = may not attend.
            memory_key_padding_mask (Tensor, optional): (B, S) bool.
            pos (Tensor, optional): (S, B, C) added to the keys.
            query_pos (Tensor, optional): (Q, B, C) added to the queries.

        Returns:
            Tensor: (Q, B, C).
        """
        return self._attend(tgt, query_pos, memory, pos, memory_mask, memory_key_padding_mask)


class FFNLayer(nn.Module):
    """Feed-forward block with residual connection and LayerNorm (see :func:`residual_ffn`).

    Args:
        d_model (int): C.
        dim_feedforward (int): hidden width.
        dropout (float): dropout probability.
        activation (str): "relu", "gelu" or "glu".
        normalize_before (bool): pre-norm instead of post-norm.
    """

    def __init__(
        self,
        *,
        d_model: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.0,
        activation: str = "relu",
        normalize_before: bool = False,
    ):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.activation = activation_fn(activation)
        self.normalize_before = normalize_before
        xavier_init_matrices(self)

    def forward(self, tgt: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., C)."""
        return residual_ffn(
            tgt,
            self.linear1,
            self.linear2,
            self.norm,
            self.activation,
            self.dropout,
            self.dropout,
            self.normalize_before,
        )


# ---------------------------------------------------------------------------------------------
# Swin Transformer block parts
# ---------------------------------------------------------------------------------------------
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

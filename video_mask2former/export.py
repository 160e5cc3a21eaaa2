"""The network of one window of frames as an exportable module; ONNX and ``torch.export``.

Shapes: T frames of the window, Q queries, K classes (+1 no-object), C query channels, H x W the
frames, Hp x Wp the padded frames (multiples of the size divisibility), h x w = Hp/4 x Wp/4.

:class:`WindowNetwork` takes ``frames`` (T, 3, H, W) float32 RGB in 0..255 and returns exactly
what windowed inference consumes (:class:`~video_mask2former.modeling.windowed_inference.
WindowOutput`): ``pred_logits`` (Q, K+1), ``pred_masks`` (Q, T, h, w) and ``pred_embeds`` (Q, C).
Normalisation and padding are inside, so an exported file is used on raw frames.

- ``torch.export`` (:func:`export_program`): the compiled deformable-attention kernels stay one
  custom-op node (``mask2former_ops.ms_deform_attn``).
- ONNX (:func:`export_onnx`): the deformable attention runs through its PyTorch path
  (``grid_sample``), which ONNX expresses with standard operators; the file runs in onnxruntime.
  :class:`OnnxWindowPredictor` runs windowed inference on such a file.

Both take any number of frames T (the last window of a video may be shorter) but are specialised
to the frame size H x W of the example: the deformable attention's level shapes become constants
of the graph (an exported file serves one input resolution; export once per resolution).
"""

import contextlib
import os
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mask2former_ops import MSDeformAttn

from .modeling.windowed_inference import WindowOutput

OUTPUT_NAMES = ("pred_logits", "pred_masks", "pred_embeds")
# Largest window the exported graph accepts (its frame axis is dynamic from 1 to this).
MAX_WINDOW_FRAMES = 1024
# The ONNX opset: grid_sample in 4-D needs 16; 18 is what the dynamo exporter writes by default.
ONNX_OPSET = 18


class WindowNetwork(nn.Module):
    """The network of :class:`~video_mask2former.modeling.video_maskformer.VideoMaskFormer` on one
    window of frames, with its normalisation and padding.

    Args:
        model: a ``VideoMaskFormer`` (its backbone, head, pixel mean / std and size
            divisibility are used; nothing is copied).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            frames (Tensor): (T, 3, H, W) float32 RGB, 0..255.

        Returns:
            tuple: ``pred_logits`` (Q, K+1), ``pred_masks`` (Q, T, h, w), ``pred_embeds`` (Q, C).
        """
        images = (frames - self.model.pixel_mean) / self.model.pixel_std
        divisor = max(1, int(self.model.size_divisibility))
        height, width = images.shape[-2:]
        images = F.pad(images, (0, (-width) % divisor, 0, (-height) % divisor))  # zeros, as
        # pad_images pads the normalised frames
        outputs = self.model.predict(images, frames.shape[0], keep_aux=False)
        return outputs["pred_logits"][0], outputs["pred_masks"][0], outputs["pred_embeds"][0]


@contextlib.contextmanager
def deformable_attention_implementation(model: nn.Module, implementation: str) -> Iterator[None]:
    """Run every :class:`MSDeformAttn` of ``model`` with ``implementation`` inside the block."""
    modules = [m for m in model.modules() if isinstance(m, MSDeformAttn)]
    previous = [m.implementation for m in modules]
    for module in modules:
        module.implementation = implementation
    try:
        yield
    finally:
        for module, value in zip(modules, previous):
            module.implementation = value


def _export(model: nn.Module, frames: torch.Tensor) -> "torch.export.ExportedProgram":
    frames_dim = torch.export.Dim("frames", min=1, max=MAX_WINDOW_FRAMES)
    return torch.export.export(
        WindowNetwork(model).eval(),
        (frames,),
        dynamic_shapes={"frames": {0: frames_dim}},
        strict=False,
    )


def export_program(model: nn.Module, frames: torch.Tensor) -> "torch.export.ExportedProgram":
    """``torch.export`` of :class:`WindowNetwork` (any T, the H x W of ``frames``).

    Args:
        model: a ``VideoMaskFormer`` in eval mode.
        frames (Tensor): (T, 3, H, W) example input.
    """
    with torch.no_grad():
        return _export(model, frames)


def export_onnx(model: nn.Module, frames: torch.Tensor, path: str) -> None:
    """Write :class:`WindowNetwork` as an ONNX file (deformable attention on its PyTorch path).

    Input ``frames`` (T, 3, H, W) float32; outputs :data:`OUTPUT_NAMES`.
    """
    with torch.no_grad(), deformable_attention_implementation(model, "pytorch"):
        program = _export(model, frames)
        onnx_program = torch.onnx.export(
            program,
            (frames,),
            input_names=["frames"],
            output_names=list(OUTPUT_NAMES),
            opset_version=ONNX_OPSET,
            dynamo=True,
            optimize=True,
        )
    onnx_program.save(path)


class OnnxWindowPredictor:
    """``predict_window`` for :func:`~video_mask2former.modeling.windowed_inference.
    windowed_inference` backed by an ONNX file written by :func:`export_onnx`.

    Args:
        path (str): the ONNX file.
        size_divisibility (int): the model's, to report the padded size (32 for the paper's).
        providers (sequence, optional): onnxruntime execution providers (default: CPU).
    """

    def __init__(
        self, path: str, size_divisibility: int = 32, providers: Optional[Sequence[str]] = None
    ):
        import onnxruntime

        if not os.path.isfile(path):
            raise FileNotFoundError(f"ONNX window network not found: {path}")
        try:
            self.session = onnxruntime.InferenceSession(
                path, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as error:  # onnxruntime's own exception types; re-raised with the path
            reason = str(error).strip().splitlines()[0][-300:]
            raise ValueError(f"{path}: not a loadable ONNX model ({reason})") from error
        self.size_divisibility = max(1, int(size_divisibility))
        inputs = self.session.get_inputs()
        if [i.name for i in inputs] != ["frames"]:
            raise ValueError(
                f"{path}: expected an ONNX window network with one input 'frames' (T, 3, H, W), "
                f"got inputs {[i.name for i in inputs]}"
            )
        self.input_shape = inputs[0].shape  # ints where static, names where dynamic

    def __call__(self, frames: Sequence) -> WindowOutput:
        """Predict one window: W frames, each (3, H, W) RGB tensors / arrays or (H, W, 3) uint8."""
        from .modeling.video_maskformer import _as_chw_tensor

        batch = torch.stack([_as_chw_tensor(frame).float() for frame in frames])
        expected = tuple(self.input_shape[2:])
        if all(isinstance(v, int) for v in expected) and tuple(batch.shape[2:]) != expected:
            raise ValueError(
                f"the ONNX window network was exported for {expected[0]}x{expected[1]} frames, "
                f"got {batch.shape[2]}x{batch.shape[3]}: export it again at this size, or "
                "resize the frames"
            )
        logits, masks, embeds = self.session.run(
            list(OUTPUT_NAMES), {"frames": np.ascontiguousarray(batch.numpy())}
        )
        height, width = batch.shape[-2:]
        divisor = self.size_divisibility
        padded = (-(-height // divisor) * divisor, -(-width // divisor) * divisor)
        return WindowOutput(
            pred_logits=torch.from_numpy(logits),
            pred_masks=torch.from_numpy(masks),
            pred_embeds=torch.from_numpy(embeds),
            padded_size=padded,
            image_size=(int(height), int(width)),
        )

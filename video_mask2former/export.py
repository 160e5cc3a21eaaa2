"""The network of one window of frames as an exportable module; ONNX and ``torch.export``.

Shapes: T frames of the window, Q queries, K classes (+1 no-object), C query channels, H x W the
frames, Hp x Wp the padded frames (multiples of the size divisibility), h x w = Hp/4 x Wp/4.

:class:`WindowNetwork` takes ``frames`` (T, 3, H, W) float32 RGB in 0..255 and returns exactly
what windowed inference consumes (:class:`~video_mask2former.inference.windowed.
WindowOutput`): ``pred_logits`` (Q, K+1), ``pred_masks`` (Q, T, h, w) and ``pred_embeds`` (Q, C).
Normalisation and padding are inside, so an exported file is used on raw frames.

- ``torch.export`` (:func:`export_program`): the compiled deformable-attention kernels stay one
  custom-op node (``mask2former_ops.ms_deform_attn``).
- ONNX (:func:`export_onnx`): the deformable attention runs through its PyTorch path
  (``grid_sample``), which ONNX expresses with standard operators; the file runs in onnxruntime.
  :class:`OnnxWindowPredictor` runs windowed inference on such a file. The exporter's progress
  lines and notices that need no action (onnxscript's optimizer and rewriter below ERROR,
  PyTorch's FutureWarning / DeprecationWarning about its own internals) are hidden unless
  ``verbose``; its errors and other warnings are shown.

Both take any number of frames T from 1 to :data:`MAX_WINDOW_FRAMES` (the last window of a video
may be shorter), whatever T the example has, but are specialised to the frame size H x W of the
example: the deformable attention's level shapes become constants of the graph (an exported file
serves one input resolution; export once per resolution).

An ONNX file carries in its ``metadata_props`` what the graph does not say by itself
(:data:`METADATA_KEYS`): the format version, K, the size divisibility and the pixel mean / std.
:class:`OnnxWindowPredictor` reads them and refuses a file whose values differ from the ones it
is given; a file written before these entries existed gets K from its ``pred_logits`` shape and
its size divisibility checked against its ``pred_masks`` shape.
"""

import contextlib
import json
import logging
import os
import uuid
import warnings
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mask2former_ops import MSDeformAttn

from .data.frame_checks import as_chw_tensor, check_frame
from .file_io import check_writable
from .inference.windowed import WindowOutput

OUTPUT_NAMES = ("pred_logits", "pred_masks", "pred_embeds")
# Largest window the exported graph accepts (its frame axis is dynamic from 1 to this).
MAX_WINDOW_FRAMES = 1024
# The ONNX opset: grid_sample in 4-D needs 16; 18 is what the dynamo exporter writes by default.
ONNX_OPSET = 18
# Version of the metadata written into an ONNX file (raise it when their meaning changes).
ONNX_FORMAT_VERSION = 1
# The ONNX metadata_props entries written by export_onnx (values are strings; lists are JSON).
METADATA_KEYS = {
    "format_version": "video_mask2former.format_version",
    "num_classes": "video_mask2former.num_classes",
    "size_divisibility": "video_mask2former.size_divisibility",
    "pixel_mean": "video_mask2former.pixel_mean",
    "pixel_std": "video_mask2former.pixel_std",
}
# Loggers of the ONNX exporter whose records below ERROR are notices about its own work (e.g.
# "Skipping constant folding for op Split", "Applied N of general pattern rewrite rules").
_EXPORTER_LOGGERS = ("onnxscript", "onnx_ir", "torch.onnx")
# Warnings about PyTorch's / onnxscript's own use of deprecated internals during an export.
_EXPORTER_WARNINGS = (FutureWarning, DeprecationWarning)
# Stride of pred_masks relative to the padded input (the pixel decoder's finest level).
MASK_STRIDE = 4
# What OnnxWindowPredictor expects of a file, for error messages.
_EXPECTED_GRAPH = (
    "one input 'frames' (T, 3, H, W) and the outputs "
    + ", ".join(f"'{name}'" for name in OUTPUT_NAMES)
    + " (tools/export_model.py --format onnx)"
)


class OnnxModelError(ValueError):
    """An ONNX file is not this project's window network, or does not fit what it is used with."""


def check_example_shape(num_frames: int, height: int, width: int) -> None:
    """Check the example window of an export: T in 1..MAX_WINDOW_FRAMES, H and W >= 1.

    Raises:
        ValueError: naming the value at fault and what is accepted.
    """
    for name, value, low, high in (
        ("the number of frames T", num_frames, 1, MAX_WINDOW_FRAMES),
        ("the frame height H", height, 1, None),
        ("the frame width W", width, 1, None),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(
                f"{name} of the example window must be an integer >= {low}, got {value!r}"
            )
        if high is not None and value > high:
            raise ValueError(f"{name} of the example window must be at most {high}, got {value}")


def _check_example(frames: torch.Tensor) -> None:
    if not isinstance(frames, torch.Tensor) or frames.dim() != 4 or frames.shape[1] != 3:
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ValueError(f"the example window must be a (T, 3, H, W) tensor, got {shape}")
    check_example_shape(*(int(v) for v in (frames.shape[0], frames.shape[2], frames.shape[3])))


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


@contextlib.contextmanager
def exporter_notices(verbose: bool = False) -> Iterator[None]:
    """Inside the block, hide the ONNX exporter's notices that need no action (unless
    ``verbose``): records below ERROR of :data:`_EXPORTER_LOGGERS`, and FutureWarning /
    DeprecationWarning (PyTorch's and onnxscript's own internals). Errors and other warnings
    (e.g. a ``TracerWarning`` saying a result may be wrong) still show."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in _EXPORTER_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        for category in _EXPORTER_WARNINGS:
            warnings.simplefilter("ignore", category)
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def _export(model: nn.Module, frames: torch.Tensor) -> "torch.export.ExportedProgram":
    _check_example(frames)
    if frames.shape[0] == 1:
        # torch.export makes a dimension of size 1 a constant: trace two copies of the frame (the
        # graph still takes T = 1).
        frames = torch.cat([frames, frames])
    frames_dim = torch.export.Dim("frames", min=1, max=MAX_WINDOW_FRAMES)
    return torch.export.export(
        WindowNetwork(model).eval(),
        (frames,),
        dynamic_shapes={"frames": {0: frames_dim}},
        strict=False,
    )


def export_program(
    model: nn.Module, frames: torch.Tensor, verbose: bool = False
) -> "torch.export.ExportedProgram":
    """``torch.export`` of :class:`WindowNetwork` (any T, the H x W of ``frames``).

    Args:
        model: a ``VideoMaskFormer`` in eval mode.
        frames (Tensor): (T, 3, H, W) example input, 1 <= T <= MAX_WINDOW_FRAMES.
        verbose (bool): show all the exporter's notices (see :func:`exporter_notices`).

    Raises:
        ValueError: ``frames`` is not such a tensor.
    """
    with torch.no_grad(), exporter_notices(verbose):
        return _export(model, frames)


def onnx_metadata(model: nn.Module) -> Dict[str, str]:
    """The :data:`METADATA_KEYS` entries of ``model``'s window network (strings)."""
    return {
        METADATA_KEYS["format_version"]: str(ONNX_FORMAT_VERSION),
        METADATA_KEYS["num_classes"]: str(int(model.sem_seg_head.num_classes)),
        METADATA_KEYS["size_divisibility"]: str(max(1, int(model.size_divisibility))),
        METADATA_KEYS["pixel_mean"]: json.dumps(model.pixel_mean.flatten().tolist()),
        METADATA_KEYS["pixel_std"]: json.dumps(model.pixel_std.flatten().tolist()),
    }


def export_onnx(model: nn.Module, frames: torch.Tensor, path: str, verbose: bool = False) -> None:
    """Write :class:`WindowNetwork` as one ONNX file (deformable attention on its PyTorch path),
    with :func:`onnx_metadata` in its ``metadata_props``.

    Input ``frames`` (T, 3, H, W) float32, 1 <= T <= MAX_WINDOW_FRAMES; outputs
    :data:`OUTPUT_NAMES`. The file is written under a hidden temporary name beside ``path`` and
    renamed when complete: an existing ``path`` is replaced only by a whole file. ``verbose``:
    show the exporter's progress lines and all its notices (see :func:`exporter_notices`).

    Raises:
        ValueError: ``frames`` is not such a tensor.
        OSError: ``path``'s folder does not exist or is not writable (checked before exporting).
    """
    _check_example(frames)
    check_writable(path)  # before the export's minutes of work
    with torch.no_grad(), deformable_attention_implementation(model, "pytorch"):
        with exporter_notices(verbose):
            program = _export(model, frames)
            onnx_program = torch.onnx.export(
                program,
                (frames,),
                input_names=["frames"],
                output_names=list(OUTPUT_NAMES),
                opset_version=ONNX_OPSET,
                dynamo=True,
                optimize=True,
                verbose=verbose,
            )
    onnx_program.model.metadata_props.update(onnx_metadata(model))
    folder, name = os.path.split(os.path.abspath(path))
    tmp_path = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        onnx_program.save(tmp_path, external_data=False)  # one self-contained file
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def _metadata_int(path: str, metadata: Dict[str, str], key: str) -> Optional[int]:
    """The integer metadata entry ``key`` of the file, None when absent."""
    text = metadata.get(METADATA_KEYS[key])
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise OnnxModelError(
            f"{path}: its metadata entry {METADATA_KEYS[key]} is {text!r}, expected an integer"
        ) from None


def _checked_chw_tensor(frame) -> torch.Tensor:
    """A (3, H, W) tensor of a frame given as a (3, H, W) tensor or an (H, W, 3) RGB array,
    checked by :func:`~video_mask2former.data.frame_checks.check_frame` (as the model's modes)."""
    check_frame(frame, "a frame of the window")
    return as_chw_tensor(frame)


def _padded(size: int, divisor: int) -> int:
    return -(-size // divisor) * divisor


class OnnxWindowPredictor:
    """``predict_window`` for :func:`~video_mask2former.inference.windowed.
    windowed_inference` and :class:`~video_mask2former.inference.streaming.VideoStream`, backed by
    an ONNX file written by :func:`export_onnx`.

    The file is checked when it is opened: one input ``frames`` (T, 3, H, W), the outputs
    :data:`OUTPUT_NAMES`, and its K and size divisibility (from its metadata, or for a file
    without metadata from its output shapes) equal to the arguments when they are given.

    Args:
        path (str): the ONNX file.
        size_divisibility (int, optional): the padding the file must have been exported with (0
            and 1: none); None: the file's (a file without metadata: 32, the paper's, checked
            against its ``pred_masks`` shape).
        num_classes (int, optional): K the file must predict (e.g. the config's
            ``MODEL.SEM_SEG_HEAD.NUM_CLASSES``); None: the file's.
        providers (sequence, optional): onnxruntime execution providers (default: CPU).

    Attributes:
        num_classes (int): K of the file.
        size_divisibility (int): its padding (>= 1).
        frame_size (tuple or None): (H, W) the file was exported for (None where dynamic).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        OnnxModelError: (a ``ValueError``) naming ``path``: not an ONNX file, not this project's
            window network, or its K / size divisibility differ from the arguments.
    """

    # The padding of the paper's models, assumed for files written before the metadata existed.
    LEGACY_SIZE_DIVISIBILITY = 32

    def __init__(
        self,
        path: str,
        size_divisibility: Optional[int] = None,
        num_classes: Optional[int] = None,
        providers: Optional[Sequence[str]] = None,
    ):
        import onnxruntime

        self.path = path
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ONNX window network not found: {path}")
        try:
            self.session = onnxruntime.InferenceSession(
                path, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as error:  # onnxruntime's own exception types; re-raised with the path
            reason = str(error).strip().splitlines()[0][-300:]
            raise OnnxModelError(f"{path}: not a loadable ONNX model ({reason})") from error
        self._check_graph()
        metadata = dict(self.session.get_modelmeta().custom_metadata_map or {})
        version = _metadata_int(path, metadata, "format_version")
        if version is not None and version > ONNX_FORMAT_VERSION:
            raise OnnxModelError(
                f"{path}: written with metadata format {version}, this version reads up to "
                f"{ONNX_FORMAT_VERSION}: update video_mask2former or export the file again"
            )
        self.num_classes = self._read_num_classes(metadata, num_classes)
        self.size_divisibility = self._read_size_divisibility(metadata, size_divisibility)
        self.metadata = metadata

    def _check_graph(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        input_ok = [i.name for i in inputs] == ["frames"] and len(inputs[0].shape) == 4
        if not input_ok or tuple(o.name for o in outputs) != OUTPUT_NAMES:
            got = [f"{i.name} {i.shape}" for i in inputs], [o.name for o in outputs]
            raise OnnxModelError(
                f"{self.path}: not a video_mask2former window network: expected "
                f"{_EXPECTED_GRAPH}, got inputs {got[0]} and outputs {got[1]}"
            )
        self.input_shape = inputs[0].shape  # ints where static, names where dynamic
        shape = tuple(self.input_shape[2:])
        self.frame_size = shape if all(isinstance(v, int) for v in shape) else None
        self._logits_shape, self._masks_shape = outputs[0].shape, outputs[1].shape

    def _read_num_classes(self, metadata: Dict[str, str], expected: Optional[int]) -> int:
        num_classes = _metadata_int(self.path, metadata, "num_classes")
        if num_classes is None:  # an older file: K + 1 logits per query
            classes_plus_one = self._logits_shape[-1] if self._logits_shape else None
            if not isinstance(classes_plus_one, int):
                raise OnnxModelError(
                    f"{self.path}: neither its metadata nor its pred_logits shape "
                    f"{self._logits_shape} gives the number of classes: export it again with "
                    "tools/export_model.py"
                )
            num_classes = classes_plus_one - 1
        if expected is not None and int(expected) != num_classes:
            raise OnnxModelError(
                f"{self.path} predicts {num_classes} classes, expected {int(expected)} (e.g. the "
                "config's MODEL.SEM_SEG_HEAD.NUM_CLASSES): use the config the file was exported "
                "from, or export it again"
            )
        return num_classes

    def _read_size_divisibility(self, metadata: Dict[str, str], expected: Optional[int]) -> int:
        stored = _metadata_int(self.path, metadata, "size_divisibility")
        wanted = None if expected is None else max(1, int(expected))
        if stored is not None:
            if wanted is not None and wanted != stored:
                raise OnnxModelError(
                    f"{self.path} was exported with size divisibility {stored}, expected "
                    f"{wanted}: the masks would be shifted; use the file's (leave the argument "
                    "out) or export it again"
                )
            return stored
        divisor = wanted if wanted is not None else self.LEGACY_SIZE_DIVISIBILITY
        self._check_legacy_padding(divisor)
        return divisor

    def _check_legacy_padding(self, divisor: int) -> None:
        """A file without metadata: the padding ``divisor`` gives must give its mask size."""
        mask_size = tuple(self._masks_shape[2:]) if self._masks_shape else ()
        if self.frame_size is None or not all(isinstance(v, int) for v in mask_size):
            return  # dynamic shapes: nothing to check against
        for size, mask in zip(self.frame_size, mask_size):
            padded = _padded(size, divisor)
            if mask not in (padded // MASK_STRIDE, -(-padded // MASK_STRIDE)):
                raise OnnxModelError(
                    f"{self.path}: its masks are {mask_size[0]}x{mask_size[1]} for "
                    f"{self.frame_size[0]}x{self.frame_size[1]} frames, which a size "
                    f"divisibility of {divisor} does not give: pass the size divisibility it "
                    "was exported with, or export it again (files exported now carry it)"
                )

    def check_frame_size(self, size: Tuple[int, int]) -> None:
        """Raise a ``ValueError`` when network inputs of (H, W) ``size`` are not the frame size
        the file was exported for."""
        expected = self.frame_size
        if expected is not None and tuple(int(v) for v in size) != expected:
            raise ValueError(
                f"the ONNX window network {self.path} was exported for {expected[0]}x"
                f"{expected[1]} frames, got {size[0]}x{size[1]}: export it again at this size, "
                "or resize the frames"
            )

    def __call__(self, frames: Sequence) -> WindowOutput:
        """Predict one window: W frames, each (3, H, W) RGB tensors / arrays or (H, W, 3) uint8."""
        batch = torch.stack([_checked_chw_tensor(frame).float() for frame in frames])
        self.check_frame_size(batch.shape[2:])
        logits, masks, embeds = self.session.run(
            list(OUTPUT_NAMES), {"frames": np.ascontiguousarray(batch.numpy())}
        )
        height, width = batch.shape[-2:]
        padded = (_padded(height, self.size_divisibility), _padded(width, self.size_divisibility))
        return WindowOutput(
            pred_logits=torch.from_numpy(logits),
            pred_masks=torch.from_numpy(masks),
            pred_embeds=torch.from_numpy(embeds),
            padded_size=padded,
            image_size=(int(height), int(width)),
        )

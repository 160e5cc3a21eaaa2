"""The tiny model exported to ONNX, once for the whole run (an export takes tens of seconds): read
by tests/test_export.py and tests/bad_inputs/test_export.py through the ``tiny_onnx_export``
fixture of tests/conftest.py."""

import contextlib
import io
import logging
import os
import warnings

import torch

from tests.modeling.tiny_video_model import build_tiny_model

HEIGHT, WIDTH = 70, 100  # not multiples of 32: the network pads inside (to 96 x 128)
EXAMPLE_FRAMES = 2  # T of the example window


def example_frames(num_frames, seed=0, height=HEIGHT, width=WIDTH):
    """``num_frames`` random frames (T, 3, H, W) float32 0..255."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (num_frames, 3, height, width), generator=gen).float()


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@contextlib.contextmanager
def exporter_output():
    """What an export shows: (printed text, log records of the exporter's loggers, warnings)."""
    shown = {"text": io.StringIO(), "records": _Records(), "warnings": []}
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir", "torch.onnx")]
    for logger in loggers:
        logger.addHandler(shown["records"])
    try:
        with contextlib.redirect_stdout(shown["text"]), contextlib.redirect_stderr(shown["text"]):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield shown
                shown["warnings"] = list(caught)
    finally:
        for logger in loggers:
            logger.removeHandler(shown["records"])


def export_tiny_model(folder):
    """``build_tiny_model()`` (K = 3, size divisibility 32) exported for HEIGHT x WIDTH frames from
    an example window of EXAMPLE_FRAMES frames to ``folder``/tiny.onnx: (path, what the export
    showed, see :func:`exporter_output`)."""
    from video_mask2former.export import export_onnx

    path = os.path.join(folder, "tiny.onnx")
    with exporter_output() as shown:
        export_onnx(build_tiny_model().eval(), example_frames(EXAMPLE_FRAMES), path)
    return path, shown

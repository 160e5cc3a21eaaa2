"""Shared test helpers: skip markers for optional capabilities and the fixture folder."""

import importlib.util
import logging
import os

import pytest
import torch

# One intra-op thread in the test process and in the scripts it starts: the tests' tensors are
# tiny, so a second thread costs more in wake-ups than it saves, and on a CPU shared with other jobs
# the waiting threads spin. Measured on 2 cores at load 6: a training step of the tiny model
# 0.06 s with one thread, 1.6-2.4 s with two; an R50 forward on 3 frames of 96x128 1.1 s and 5-8 s.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

FIXTURES_DIR = os.path.join(os.path.dirname(__file__), "fixtures")

HAS_DETECTRON2 = importlib.util.find_spec("detectron2") is not None
HAS_CUDA = torch.cuda.is_available()

requires_detectron2 = pytest.mark.skipif(not HAS_DETECTRON2, reason="detectron2 is not installed")
requires_cuda = pytest.mark.skipif(not HAS_CUDA, reason="CUDA is not available")


@pytest.fixture
def fixtures_dir():
    """Path of ``tests/fixtures``: the data files the tests read (see its README.md)."""
    return FIXTURES_DIR


@pytest.fixture(scope="session")
def tiny_onnx_export(tmp_path_factory):
    """The tiny model exported to ONNX once per run: (path, what the export showed); see
    tests/onnx_helpers.py."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from tests.onnx_helpers import export_tiny_model

    return export_tiny_model(str(tmp_path_factory.mktemp("onnx")))


# Loggers that in-process runs of the scripts configure: detectron2's setup_logger stops their
# propagation to the root logger and adds handlers, which would hide their records from pytest's
# caplog in every later test.
_CONFIGURED_LOGGERS = ("video_mask2former", "detectron2", "fvcore", "d2")


@pytest.fixture(autouse=True)
def _restore_logging():
    """Give every test the logging configuration it started with."""
    saved = []
    for name in _CONFIGURED_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, list(logger.handlers), logger.level))
    yield
    for logger, propagate, handlers, level in saved:
        for handler in logger.handlers:
            if handler not in handlers:
                logger.removeHandler(handler)
        for handler in handlers:
            if handler not in logger.handlers:
                logger.addHandler(handler)
        logger.propagate, logger.level = propagate, level

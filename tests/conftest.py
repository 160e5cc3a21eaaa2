"""Shared test helpers: skip markers for optional capabilities and the fixture folder."""

import importlib.util
import logging
import os

import pytest
import torch

FIXTURES_DIR = os.path.join(os.path.dirname(__file__), "fixtures")

HAS_DETECTRON2 = importlib.util.find_spec("detectron2") is not None
HAS_CUDA = torch.cuda.is_available()

requires_detectron2 = pytest.mark.skipif(not HAS_DETECTRON2, reason="detectron2 is not installed")
requires_cuda = pytest.mark.skipif(not HAS_CUDA, reason="CUDA is not available")


@pytest.fixture
def fixtures_dir():
    """Path of ``tests/fixtures``: the data files the tests read (see its README.md)."""
    return FIXTURES_DIR


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

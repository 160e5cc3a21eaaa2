"""Shared test helpers: skip markers for optional capabilities and the fixture folder."""

import importlib.util
import os

import pytest
import torch

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")

HAS_DETECTRON2 = importlib.util.find_spec("detectron2") is not None
HAS_CUDA = torch.cuda.is_available()

requires_detectron2 = pytest.mark.skipif(not HAS_DETECTRON2, reason="detectron2 is not installed")
requires_cuda = pytest.mark.skipif(not HAS_CUDA, reason="CUDA is not available")


@pytest.fixture
def data_dir():
    """Path of ``tests/data`` (fixtures copied from the official implementation's measurements)."""
    return DATA_DIR

"""Which format a checkpoint is in, decided once: :func:`read_checkpoint_file`.

The library's ``load_checkpoint`` / ``read_checkpoint`` and the detectron2 layer's
``VideoCheckpointer`` all read files through it, so they accept the same files and report the
same errors:

* an ``http(s)://`` URL: downloaded once into torch's hub cache, then read as a file;
* transformers' Mask2Former layout by location (``hf://<repo_id>``, a folder, a ``.safetensors``
  file): read and converted by :mod:`.layouts.hf`;
* any other file: read without running code from it (:func:`.files.read_file`); a ``.pkl`` as
  detectron2 interprets pickles (model zoo, Caffe2) and a ``.pyth`` as pycls's
  (:mod:`.layouts.official`); its weights are then in transformers' layout (a single ``.bin`` /
  ``.pth`` of transformers' keys: converted) or in the official one.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch
from torch import nn

from .files import cached_checkpoint_path, is_url, read_file, split_checkpoint
from .layouts import official
from .layouts.hf import from_hf_state_dict, has_hf_backbone, is_hf_checkpoint, is_hf_location
from .layouts.hf import load_hf_state_dict

__all__ = ["CheckpointFile", "hf_target", "read_checkpoint", "read_checkpoint_file"]

OFFICIAL, TRANSFORMERS = "official", "transformers"


@dataclass
class CheckpointFile:
    """What a checkpoint holds, with its weights in this project's (official) layout.

    Attributes:
        path (str): the local file or folder read (a URL's cached copy).
        layout (str): the layout the weights were stored in: "official" or "transformers".
        weights (dict[str, Tensor]): official key -> tensor.
        extras (dict): the file's other entries (``iteration``, ``optimizer``, ``scheduler``,
            ``__author__``, ``matching_heuristics``, ...): empty for transformers' files.
    """

    path: str
    layout: str
    weights: Dict[str, torch.Tensor]
    extras: Dict[str, Any] = field(default_factory=dict)

    @property
    def matching_heuristics(self) -> bool:
        """The keys are to be matched to the model's by name (Caffe2, ImageNet backbones):
        something only detectron2's checkpointer does."""
        return bool(self.extras.get("matching_heuristics", False))


def hf_target(model: Optional[nn.Module]) -> Optional[nn.Module]:
    """What a transformers checkpoint is checked against: the model when its backbone is one
    that layout has (ResNet / Swin), else nothing (the key comparison still applies)."""
    return model if model is not None and has_hf_backbone(model) else None


def read_checkpoint_file(path: str, target=None) -> CheckpointFile:
    """Read the checkpoint at ``path`` in whichever format it is (module docstring).

    Args:
        path (str): a ``.pkl`` / ``.pth`` file, a transformers folder, file or
            ``hf://<repo_id>[@revision]``, or an ``http(s)://`` URL of a file.
        target: the model (or backbone name) the weights are for; a transformers checkpoint of
            another backbone architecture is then an error naming both.

    Raises:
        FileNotFoundError: no such file.
        CheckpointFileError: the file is unreadable or holds no weights (the message says why).
    """
    if is_url(path):
        path = cached_checkpoint_path(path)
    if is_hf_location(path):
        return CheckpointFile(path, TRANSFORMERS, load_hf_state_dict(path, target=target))
    data = read_file(path)
    if path.endswith(".pkl"):
        data = official.d2_pickle_content(data)
    elif path.endswith(".pyth"):
        data = official.pycls_content(data)
    weights, extras = split_checkpoint(data, path)
    if is_hf_checkpoint(weights):  # a single transformers weights file (.bin / .pth)
        converted = from_hf_state_dict(weights, source=path, target=target)
        return CheckpointFile(path, TRANSFORMERS, converted, extras)
    return CheckpointFile(path, OFFICIAL, official.official_state_dict(weights), extras)


def read_checkpoint(path: str, target=None) -> Dict[str, torch.Tensor]:
    """The model weights stored in ``path``, in this project's (official) key layout.

    ``path`` is a ``.pkl`` of detectron2 or a ``.pth`` of torch (official keys), a checkpoint in
    transformers' Mask2Former layout (a folder, a ``.safetensors`` / ``.bin`` file or
    ``hf://<repo_id>``, converted by :mod:`.layouts.hf`), or an ``http(s)://`` URL of a file
    (cached, :func:`~.files.cached_checkpoint_path`).

    Args:
        target: the model (or backbone name) the weights are for; a transformers checkpoint of
            another backbone architecture is then an error naming both.

    Raises:
        FileNotFoundError: no such file.
        CheckpointFileError: the file is unreadable or holds no weights (the message says why).
    """
    return read_checkpoint_file(path, target).weights

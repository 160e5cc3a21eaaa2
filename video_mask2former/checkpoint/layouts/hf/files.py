"""transformers' Mask2Former files: a folder (``config.json`` + weights, possibly sharded), one
weights file (``.safetensors`` / ``.bin``), or ``hf://<repo_id>[@revision]`` on the Hub."""

import importlib.util
import json
import os
import zipfile
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ....file_io import atomic_write
from ...errors import HFCheckpointError
from ...files import state_dict_of
from .config import HF_MODEL_TYPE, hf_config
from .convert import from_hf_state_dict, to_hf_state_dict
from .keys import looks_hf, looks_official

# Prefix of a Hub repository given as a path: "hf://<owner>/<name>[@<revision>]".
HF_SCHEME = "hf://"
# Weight files of a transformers folder, in order of preference (safetensors first).
HF_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
HF_CONFIG_FILE = "config.json"
_SAFETENSORS_FILE = "model.safetensors"


def _safetensors_torch(purpose: str):
    """``safetensors.torch``, or a one-line error saying to install it."""
    if importlib.util.find_spec("safetensors") is None:
        raise HFCheckpointError(f"{purpose} needs the safetensors package: pip install safetensors")
    import safetensors.torch

    return safetensors.torch


def save_hf_checkpoint(
    folder: str,
    state_dict: Mapping[str, Any],
    backbone: Optional[str] = None,
    *,
    class_names: Optional[Sequence[str]] = None,
    source: str = "the state dict",
) -> None:
    """Write official weights as a transformers folder: ``config.json`` + ``model.safetensors``.

    Args:
        folder (str): created if needed; existing files of these names are replaced atomically.
        state_dict, backbone, class_names, source: as in :func:`to_hf_state_dict` /
            :func:`hf_config`.
    """
    safetensors_torch = _safetensors_torch(f"writing {folder}")
    config = hf_config(state_dict, backbone, class_names=class_names, source=source)
    tensors = to_hf_state_dict(state_dict, backbone, source=source)
    os.makedirs(folder, exist_ok=True)
    blob = safetensors_torch.save(tensors, metadata={"format": "pt"})
    atomic_write(os.path.join(folder, _SAFETENSORS_FILE), lambda f: f.write(blob))
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    atomic_write(os.path.join(folder, HF_CONFIG_FILE), lambda f: f.write(text.encode("utf-8")))


def _read_json(path: str) -> Any:
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HFCheckpointError(f"{path} is not valid JSON ({e})") from e


def _read_config(folder: str) -> Optional[Dict[str, Any]]:
    """The folder's ``config.json`` (None if it has none), checked to be a Mask2Former's."""
    path = os.path.join(folder, HF_CONFIG_FILE)
    if not os.path.isfile(path):
        return None
    config = _read_json(path)
    if not isinstance(config, dict) or config.get("model_type") != HF_MODEL_TYPE:
        model_type = config.get("model_type") if isinstance(config, dict) else None
        raise HFCheckpointError(
            f"{path} describes a {model_type!r} model, expected model_type {HF_MODEL_TYPE!r} "
            "(transformers' Mask2Former)"
        )
    return config


def _weights_file(folder: str) -> str:
    """The first of :data:`HF_WEIGHT_FILES` in ``folder``."""
    for name in HF_WEIGHT_FILES:
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise HFCheckpointError(
        f"{folder} holds no transformers weights: expected one of {', '.join(HF_WEIGHT_FILES)}"
    )


def _read_weights_file(path: str) -> Mapping[str, Any]:
    """The tensors of one weights file (``.safetensors``, else ``torch.load``) or of the shards
    of an ``*.index.json``."""
    if path.endswith(".index.json"):
        index = _read_json(path)
        folder = os.path.dirname(path)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        shards = sorted(set(weight_map.values())) if isinstance(weight_map, dict) else []
        if not shards:
            raise HFCheckpointError(f"{path}: no 'weight_map' of shards")
        out: Dict[str, Any] = {}
        for shard in shards:
            out.update(_read_weights_file(os.path.join(folder, shard)))
        return out
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        if path.endswith(".safetensors"):
            return _safetensors_torch(f"reading {path}").load_file(path, device="cpu")
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (HFCheckpointError, OSError, MemoryError):  # already clear
        raise
    except Exception as e:  # any decoding failure of a bad file
        cause = (str(e).strip().splitlines() or [""])[0][:200]
        raise HFCheckpointError(
            f"{path} is not a readable weights file ({type(e).__name__}: {cause}); expected a "
            ".safetensors or torch.save file of transformers' Mask2Former weights"
        ) from e
    data = state_dict_of(data)
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise HFCheckpointError(f"{path}: expected a dict of tensors, found {type(data).__name__}")
    return data


def _parse_repo(spec: str) -> Tuple[str, Optional[str]]:
    """``hf://owner/name@rev`` -> ("owner/name", "rev"); without ``@rev`` the revision is None."""
    repo = spec[len(HF_SCHEME) :]
    repo, _, revision = repo.partition("@")
    return repo, revision or None


def _download(spec: str) -> str:
    """The local folder of ``hf://<repo_id>[@revision]`` (config and weights only)."""
    repo, revision = _parse_repo(spec)
    if importlib.util.find_spec("huggingface_hub") is None:
        raise HFCheckpointError(
            f"{spec} needs the huggingface_hub package (pip install huggingface_hub), or download "
            f"the repository {repo} yourself and pass its folder"
        )
    import huggingface_hub

    def snapshot(patterns: List[str]) -> str:
        try:
            return huggingface_hub.snapshot_download(
                repo, revision=revision, allow_patterns=patterns
            )
        except (OSError, ValueError) as e:  # HTTP / offline / bad repo id errors of the hub
            cause = " ".join(str(e).split())[:300]  # one line
            raise HFCheckpointError(
                f"could not download {repo} from the Hugging Face Hub ({type(e).__name__}: "
                f"{cause}); check the repository id and the network (or HF_TOKEN for a gated "
                "repository), or download it yourself and pass its folder"
            ) from e

    folder = snapshot(["*.json", "*.safetensors"])
    if not any(os.path.isfile(os.path.join(folder, n)) for n in HF_WEIGHT_FILES[:2]):
        folder = snapshot(["pytorch_model*.bin"])
    return folder


def load_hf_state_dict(
    path: str, target: Union[str, nn.Module, Mapping[str, Any], None] = None
) -> Dict[str, torch.Tensor]:
    """Read a transformers Mask2Former checkpoint and return it in this project's layout.

    Args:
        path (str): a folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``,
            possibly sharded), one weights file, or ``hf://<repo_id>[@revision]`` (downloaded
            with ``huggingface_hub``, cached).
        target: the backbone name, model or official state dict the weights are for; another
            backbone architecture raises (naming both). None: no check.

    Returns:
        dict[str, Tensor]: official key -> tensor (see :func:`from_hf_state_dict`).

    Raises:
        FileNotFoundError: no such file or folder.
        HFCheckpointError: a config of another model type, no or unreadable weights, keys outside
            transformers' layout, another backbone than the target's, or a failed download.
    """
    folder = _download(path) if path.startswith(HF_SCHEME) else path
    if os.path.isdir(folder):
        _read_config(folder)
        weights_path = _weights_file(folder)
    elif os.path.isfile(folder):
        weights_path = folder
    else:
        raise FileNotFoundError(
            f"{path}: no such file or folder (expected a transformers "
            "Mask2Former folder, weights file or hf://<repo_id>)"
        )
    weights = _read_weights_file(weights_path)
    return from_hf_state_dict(weights, source=weights_path, target=target)


def _file_keys(path: str) -> Iterable[str]:
    """The tensor names of a ``torch.save`` file (memory-mapped when it is a zip archive)."""
    mmap = zipfile.is_zipfile(path)  # torch.save's format since torch 1.6; older files: no mmap
    data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    data = state_dict_of(data)
    return data.keys() if isinstance(data, Mapping) else ()


def is_hf_location(path: str) -> bool:
    """Whether ``path`` is transformers' by its kind alone, without reading it: ``hf://...``, a
    folder with ``config.json`` or transformers weight files, or a ``.safetensors`` file. (A
    ``.bin`` / ``.pth`` file is told apart only by its keys: :func:`is_hf_checkpoint`.)"""
    if path.startswith(HF_SCHEME):
        return True
    if os.path.isdir(path):
        names = (HF_CONFIG_FILE,) + HF_WEIGHT_FILES
        return any(os.path.isfile(os.path.join(path, n)) for n in names)
    return path.endswith(".safetensors")


def is_hf_checkpoint(path_or_state_dict: Union[str, Mapping[str, Any]]) -> bool:
    """Whether to read this with :func:`load_hf_state_dict` (else it is an official checkpoint).

    True for ``hf://...``, a folder with ``config.json`` or transformers weight files (a config of
    another model then fails loudly in :func:`load_hf_state_dict`), a ``.safetensors`` file, and a
    file or state dict whose keys are transformers' (``model.pixel_level_module.*`` ...). False
    for detectron2 ``.pkl`` files, official keys, and files that cannot be read (for the official
    reader's error message).
    """
    if isinstance(path_or_state_dict, Mapping):
        return looks_hf(path_or_state_dict) and not looks_official(path_or_state_dict)
    path = path_or_state_dict
    if is_hf_location(path):
        return True
    if path.endswith(".pkl") or not os.path.isfile(path):
        return False
    try:
        keys = list(_file_keys(path))
    except Exception:  # unreadable: not ours to explain, the official reader names the problem
        return False
    return is_hf_checkpoint(dict.fromkeys(keys, None))

"""Load official ``.pkl`` and this project's ``.pth`` checkpoints, with one loading policy.

Official Mask2Former checkpoints are detectron2 pickles, ``{"model": {key: numpy array}, ...}``,
whose keys are exactly this project's ``state_dict`` keys; training writes ``.pth`` files
``{"model": state_dict, "iteration": ..., ...}``. The detectron2 layer loads both through
``VideoCheckpointer``; this module does the same for library users. Both apply
:func:`check_fit`:

* weights **for inference** (``--eval-only``, the demo, :func:`load_checkpoint`) must be those of
  exactly this model: every parameter and buffer with its shape and no other key, else
  :class:`CheckpointMismatchError` lists the missing, unexpected and mis-shaped keys;
* an **initialisation for training** (``MODEL.WEIGHTS`` of a new run) may lack the class head's
  shape (a COCO model for a 40-class video model) or everything but the backbone (an ImageNet
  backbone); what it lacks is summarised in one log message, and it is an error only when it
  provides less than :data:`MIN_INIT_FRACTION` of the model and not the whole backbone;
* the expert opt-out (``strict=False`` here, ``MODEL.ALLOW_PARTIAL_WEIGHTS`` for the scripts)
  loads whatever fits and only warns.

A file that is not a checkpoint at all raises :class:`CheckpointFileError` with one line naming
the file and what was expected. Reading a file never runs code from it: ``.pkl`` files go through
a restricted unpickler (:mod:`~video_mask2former.safe_pickle`: dicts, lists, strings, numbers,
NumPy arrays; any other global is refused before it is called), everything else through
``torch.load(weights_only=True)``.

``path`` may also be an ``http(s)://`` URL (e.g. the official model zoo's): the file is downloaded
once into torch's hub cache (``$TORCH_HOME/hub/checkpoints``, as ``torch.hub`` caches weights) and
read from there; see :func:`cached_checkpoint_path`.
"""

import logging
import os
import urllib.error
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .safe_pickle import UnsafePickleError, load_weights_pickle

__all__ = [
    "CLASS_DEPENDENT_KEYS",
    "MIN_INIT_FRACTION",
    "CheckpointFileError",
    "CheckpointMismatchError",
    "LoadReport",
    "cached_checkpoint_path",
    "check_fit",
    "is_url",
    "load_checkpoint",
    "read_checkpoint",
    "unreadable_checkpoint_error",
    "weights_of",
]

logger = logging.getLogger(__name__)

# A training initialisation must provide at least this fraction of the model's weights (counted
# in values, i.e. parameters) unless it provides the whole backbone: below it the file is
# almost certainly of another architecture (e.g. another HIDDEN_DIM), not a fine-tuning start.
MIN_INIT_FRACTION = 0.5

# Weights whose shape is set by the number of classes: they differ, as expected, when a COCO
# model (80 classes) initialises a YouTube-VIS one (40), and keep their initialisation.
CLASS_DEPENDENT_KEYS = (
    "sem_seg_head.predictor.class_embed.weight",
    "sem_seg_head.predictor.class_embed.bias",
    "criterion.empty_weight",
)

# Prefix of the backbone's weights: all an ImageNet backbone file provides.
BACKBONE_PREFIX = "backbone."

# What a checkpoint file must hold, for error messages.
EXPECTED_CONTENT = (
    "expected a .pth or .pkl file holding a model state dict ({'model': {name: tensor}} or "
    "{name: tensor})"
)


class CheckpointFileError(ValueError):
    """The file is not a checkpoint: unreadable (truncated, empty, another format) or no weights."""


class CheckpointMismatchError(RuntimeError):
    """The checkpoint's keys or shapes do not fit the model (the message lists them)."""


@dataclass
class LoadReport:
    """What a checkpoint did not provide to a model.

    Attributes:
        missing_keys (list[str]): model keys absent from the checkpoint (left as they were).
        unexpected_keys (list[str]): checkpoint keys the model does not have (ignored).
        shape_mismatches (list): ``(key, checkpoint shape, model shape)`` (left as they were).
        model_sizes (dict[str, int]): number of values of every model key (for the fractions).
    """

    missing_keys: List[str] = field(default_factory=list)
    unexpected_keys: List[str] = field(default_factory=list)
    shape_mismatches: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    model_sizes: Dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every key matches: nothing missing, unexpected or of another shape."""
        return not (self.missing_keys or self.unexpected_keys or self.shape_mismatches)

    @property
    def not_loaded(self) -> List[str]:
        """Model keys that kept their values: missing or of another shape."""
        return self.missing_keys + [k for k, _, _ in self.shape_mismatches]

    @property
    def loaded_fraction(self) -> float:
        """Fraction of the model's values that the checkpoint provided."""
        total = sum(self.model_sizes.values())
        if total == 0:
            return 1.0
        return 1.0 - sum(self.model_sizes.get(k, 0) for k in self.not_loaded) / total

    @property
    def backbone_complete(self) -> bool:
        """The model has a backbone and the checkpoint provided all of it."""
        has_backbone = any(k.startswith(BACKBONE_PREFIX) for k in self.model_sizes)
        return has_backbone and not any(k.startswith(BACKBONE_PREFIX) for k in self.not_loaded)

    @classmethod
    def compare(cls, model_state: Mapping[str, torch.Tensor], weights: Mapping[str, Any]):
        """The report of loading ``weights`` (tensors or arrays) into a model of ``model_state``."""
        report = cls(
            missing_keys=[k for k in model_state if k not in weights],
            unexpected_keys=[k for k in weights if k not in model_state],
            model_sizes={k: v.numel() for k, v in model_state.items()},
        )
        for key, value in weights.items():
            if key in model_state and tuple(value.shape) != tuple(model_state[key].shape):
                shapes = (tuple(value.shape), tuple(model_state[key].shape))
                report.shape_mismatches.append((key, *shapes))
        return report

    def describe(self, path: str, limit: int = 10) -> str:
        """``checkpoint PATH does not fit the model:`` and the lines of :meth:`key_lines`."""
        return "\n".join([f"checkpoint {path} does not fit the model:"] + self.key_lines(limit))

    def key_lines(self, limit: int = 10) -> List[str]:
        """One line per kind of key that did not fit, listing at most ``limit`` keys."""

        def listed(keys):
            shown = ", ".join(str(k) for k in keys[:limit])
            return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")

        lines = []
        if self.missing_keys:
            lines.append(f"  {len(self.missing_keys)} missing keys: {listed(self.missing_keys)}")
        if self.unexpected_keys:
            lines.append(
                f"  {len(self.unexpected_keys)} unexpected keys: {listed(self.unexpected_keys)}"
            )
        if self.shape_mismatches:
            shapes = [f"{k} {list(c)} (model {list(m)})" for k, c, m in self.shape_mismatches]
            lines.append(f"  {len(shapes)} keys of another shape: {listed(shapes)}")
        return lines


def _expected_for_training(report: LoadReport) -> bool:
    """Only the usual differences of a fine-tuning start: class-dependent shapes, and keys
    outside a complete backbone (a backbone-only file)."""
    class_keys = set(CLASS_DEPENDENT_KEYS)
    shapes_expected = all(k in class_keys for k, _, _ in report.shape_mismatches)
    missing_expected = report.backbone_complete or all(k in class_keys for k in report.missing_keys)
    return shapes_expected and missing_expected


def _loaded(report: LoadReport) -> str:
    """How much of the model the checkpoint provided, e.g. "127 of the model's 129 weights
    (>99% of its values)"."""
    fraction = report.loaded_fraction
    percent = ">99%" if 0.99 < fraction < 1 else "<1%" if 0 < fraction < 0.01 else f"{fraction:.0%}"
    return (
        f"{len(report.model_sizes) - len(report.not_loaded)} of the model's "
        f"{len(report.model_sizes)} weights ({percent} of its values)"
    )


def _policy_problem(report: LoadReport, path: str, for_training: bool) -> Optional[str]:
    """Why ``report`` breaks the loading policy, or None."""
    loaded = _loaded(report)
    if not for_training:
        if report.ok:
            return None
        others = len(report.unexpected_keys)
        return (
            "inference needs the weights of exactly this model (every key, with its shape); "
            f"{path} provides {loaded}" + (f" and {others} others" if others else "")
        )
    if report.backbone_complete or report.loaded_fraction >= MIN_INIT_FRACTION:
        return None
    return (
        f"a training initialisation must provide at least {MIN_INIT_FRACTION:.0%} of the "
        f"model's weights or its whole backbone; {path} provides {loaded}. Is it for another "
        "architecture? (ImageNet backbones must first be converted with "
        "tools/convert_torchvision_resnet.py or tools/convert_swin.py)"
    )


def check_fit(
    report: LoadReport,
    path: str,
    *,
    for_training: bool = False,
    allow_partial: bool = False,
    opt_out: str = "pass strict=False",
) -> None:
    """Apply the loading policy (module docstring) to ``report``: raise, or log one summary.

    Args:
        report (LoadReport): what loading ``path`` did not provide.
        path (str): the checkpoint, named in the messages.
        for_training (bool): the checkpoint initialises a training run (else: inference).
        allow_partial (bool): the opt-out: never raise, warn instead.
        opt_out (str): how the caller turns the opt-out on (ends the error message).

    Raises:
        CheckpointMismatchError: for inference, when a key is missing, unexpected or of another
            shape; for training, when less than :data:`MIN_INIT_FRACTION` of the model and not its
            whole backbone were provided.
    """
    problem = _policy_problem(report, path, for_training)
    if problem and not allow_partial:
        raise CheckpointMismatchError(
            f"{report.describe(path)}\n{problem}.\nTo load what fits anyway (experts), {opt_out}."
        )
    if report.ok:
        return
    if problem:
        header = f"Loading only what fits, as allowed: {problem}."
    else:
        header = (
            f"Initialised training from {path}: it provides {_loaded(report)}; the rest keeps "
            "its initialisation."
        )
    quiet = for_training and not problem and _expected_for_training(report)
    logger.log(logging.INFO if quiet else logging.WARNING, "\n".join([header] + report.key_lines()))


def unreadable_checkpoint_error(path: str, error: BaseException) -> CheckpointFileError:
    """One line naming ``path``, why it could not be read (from its first bytes) and what was
    expected. ``error`` is what reading it raised."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        reason = "the file is empty"
    elif head.startswith(b"PK") and not zipfile.is_zipfile(path):
        reason = "it is truncated (its torch.save zip archive has no end: an interrupted write?)"
    elif not head.startswith((b"PK", b"\x80")):  # torch.save's zip; pickle protocol >= 2
        reason = f"it is neither a torch.save nor a pickle file (it starts with {head!r})"
    else:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
        # torch's weights-only refusal opens with advice to use weights_only=False; the cause
        # is on its "WeightsUnpickler error" line. Keep the cause's first sentence.
        cause = next((x for x in lines if x.startswith("WeightsUnpickler")), lines[0])
        cause = cause.split(". ")[0][:200]
        reason = f"it cannot be unpickled ({type(error).__name__}: {cause})"
    return CheckpointFileError(f"{path} is not a readable checkpoint: {reason}; {EXPECTED_CONTENT}")


def _read_file(path: str) -> Any:
    """The object stored in ``path``: ``.pkl`` through the restricted unpickler of
    :mod:`~video_mask2former.safe_pickle`, anything else through ``torch.load(weights_only=True)``:
    neither runs code from the file."""
    try:
        if path.endswith(".pkl"):
            return load_weights_pickle(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, MemoryError):  # a missing file, no permission, ...: already clear
        raise
    except UnsafePickleError as e:
        raise CheckpointFileError(str(e)) from None
    except Exception as e:  # any decoding failure (zip, pickle, EOF, ...) of a bad file
        raise unreadable_checkpoint_error(path, e) from e


def weights_of(data: Any, path: str) -> Mapping[str, Any]:
    """The state dict in ``data`` (``{"model": weights}`` or the weights themselves).

    Raises:
        CheckpointFileError: no non-empty dict of tensors / arrays in ``data``.
    """
    weights = data.get("model", data) if isinstance(data, Mapping) else None
    if not isinstance(weights, Mapping) or not weights:
        raise CheckpointFileError(
            f"checkpoint {path}: expected a dict of weights or {{'model': weights}}, found "
            f"{type(data).__name__}"
            + (f" with keys {list(data)[:5]}" if isinstance(data, Mapping) else "")
        )
    for key, value in weights.items():
        if not isinstance(value, (np.ndarray, torch.Tensor)):
            raise CheckpointFileError(
                f"checkpoint {path}: entry {key!r} is a {type(value).__name__}, expected an array"
            )
    return weights


def is_url(path: str) -> bool:
    """Whether ``path`` is an ``http(s)://`` URL (rather than a local file)."""
    return urllib.parse.urlparse(path).scheme in ("http", "https")


def cached_checkpoint_path(url: str) -> str:
    """The local copy of the checkpoint at ``url``, downloaded first if it is not cached.

    The cache is torch's (``torch.hub.get_dir()/checkpoints``, file named as the URL's last
    path component); the download goes to a temporary file renamed when complete, so an
    interrupted one leaves nothing behind.

    Raises:
        CheckpointFileError: the download failed; the message names the URL and the path where
            the file can be put by hand (e.g. on a machine without network).
    """
    name = os.path.basename(urllib.parse.urlparse(url).path)
    if not name:
        raise CheckpointFileError(f"checkpoint URL {url} does not end in a file name")
    target = os.path.join(torch.hub.get_dir(), "checkpoints", name)
    if os.path.isfile(target):
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    logger.info("Downloading %s to %s", url, target)
    try:
        torch.hub.download_url_to_file(url, target, progress=False)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise CheckpointFileError(
            f"could not download checkpoint {url} ({reason}); download it by other means and "
            f"put it at {target}"
        ) from error
    return target


def read_checkpoint(path: str, target=None) -> Dict[str, torch.Tensor]:
    """The model weights stored in ``path``, in this project's (official) key layout.

    ``path`` is a ``.pkl`` of detectron2 or a ``.pth`` of torch (official keys), a checkpoint in
    transformers' Mask2Former layout (a folder, a ``.safetensors`` / ``.bin`` file or
    ``hf://<repo_id>``, converted by :mod:`video_mask2former.hf`), or an ``http(s)://`` URL of a
    file (cached, :func:`cached_checkpoint_path`).

    Args:
        target: the model (or backbone name) the weights are for; a transformers checkpoint of
            another backbone architecture is then an error naming both.

    Raises:
        FileNotFoundError: no such file.
        CheckpointFileError: the file is unreadable or holds no weights (the message says why).
    """
    from . import hf  # here, not at the top: hf imports this module

    if is_url(path):
        path = cached_checkpoint_path(path)
    if hf.is_hf_location(path):
        return hf.load_hf_state_dict(path, target=target)
    weights = weights_of(_read_file(path), path)
    if hf.is_hf_checkpoint(weights):  # a single transformers weights file (.bin / .pth)
        return hf.from_hf_state_dict(weights, source=path, target=target)
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in weights.items()}


def _hf_target(model: nn.Module):
    """What a transformers checkpoint is checked against: the model when its backbone is one
    that layout has (ResNet / Swin), else nothing (the key comparison still applies)."""
    from . import hf

    return model if hf.has_hf_backbone(model) else None


def load_checkpoint(
    model: nn.Module, path: str, strict: bool = True, *, for_training: bool = False
) -> LoadReport:
    """Load the weights of ``path`` into ``model`` under the loading policy (module docstring).

    Args:
        model (nn.Module): e.g. a :class:`~video_mask2former.modeling.VideoMaskFormer`.
        path (str): an official ``.pkl`` or a ``.pth`` written by training, or an
            ``http(s)://`` URL of one (downloaded once to torch's hub cache).
        strict (bool): apply the policy; False (experts): load what fits and warn.
        for_training (bool): ``path`` initialises training (e.g. a COCO Mask2Former): the
            class head's shape and everything but the backbone may be missing. False: the
            weights are for inference and must provide every key.

    Returns:
        LoadReport: missing keys (left at their current values), unexpected keys and shape
        mismatches (both ignored).

    Raises:
        CheckpointFileError: ``path`` is not a checkpoint.
        CheckpointMismatchError: the policy is not met (nothing is loaded then).
    """
    weights = read_checkpoint(path, target=_hf_target(model))
    report = LoadReport.compare(model.state_dict(), weights)
    check_fit(report, path, for_training=for_training, allow_partial=not strict)
    skipped = set(report.unexpected_keys) | {k for k, _, _ in report.shape_mismatches}
    model.load_state_dict({k: v for k, v in weights.items() if k not in skipped}, strict=False)
    return report

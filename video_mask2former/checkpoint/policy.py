"""The loading policy: what a checkpoint must provide to a model (no file I/O here).

* weights **for inference** (``--eval-only``, the demo, :func:`~video_mask2former.checkpoint.
  load_checkpoint`) must be those of exactly this model: every parameter and buffer with its shape
  and no other key, else :class:`CheckpointMismatchError` lists the missing, unexpected and
  mis-shaped keys;
* an **initialisation for training** (``MODEL.WEIGHTS`` of a new run) may lack the class head's
  shape (a COCO model for a 40-class video model) or everything but the backbone (an ImageNet
  backbone); what it lacks is summarised in one log message, and it is an error only when it
  provides less than :data:`MIN_INIT_FRACTION` of the model and not the whole backbone. Fine-tuning
  an official YouTube-VIS or COCO checkpoint on a dataset of another class count therefore needs
  only ``MODEL.SEM_SEG_HEAD.NUM_CLASSES`` set to the dataset's count: the class head
  (:data:`CLASS_DEPENDENT_KEYS`) keeps its fresh initialisation, reported in one line (INFO);
* the expert opt-out (``strict=False`` for the library, ``MODEL.ALLOW_PARTIAL_WEIGHTS`` for the
  scripts) loads whatever fits and only warns.

:func:`load_weights` applies it and loads what fits; the library's ``load_checkpoint`` and the
detectron2 layer's ``VideoCheckpointer`` both call it, so the two cannot disagree.
"""

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from .errors import CheckpointMismatchError

__all__ = [
    "BACKBONE_PREFIX",
    "CLASS_DEPENDENT_KEYS",
    "MIN_INIT_FRACTION",
    "LoadReport",
    "check_fit",
    "load_weights",
]

# One logger for the package ("video_mask2former.checkpoint"), whichever module logs: users
# filter on the name they always had.
logger = logging.getLogger(__package__)

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


# The class head's classifier: (K + 1, C) weights, K classes and "no object".
_CLASS_EMBED_KEY = CLASS_DEPENDENT_KEYS[0]


def _only_class_head(report: LoadReport) -> bool:
    """The checkpoint fits but for the class-dependent shapes (another number of classes)."""
    class_keys = set(CLASS_DEPENDENT_KEYS)
    return (
        not report.missing_keys
        and not report.unexpected_keys
        and all(k in class_keys for k, _, _ in report.shape_mismatches)
    )


def _class_head_line(report: LoadReport, path: str) -> str:
    """One line for a fine-tuning start of another class count: the class head re-initialised."""
    shapes = {k: (c, m) for k, c, m in report.shape_mismatches}
    classes = ""
    if _CLASS_EMBED_KEY in shapes:
        theirs, ours = (shape[0] - 1 for shape in shapes[_CLASS_EMBED_KEY])
        classes = f" for {ours} classes (the checkpoint's is for {theirs})"
    listed = ", ".join(f"{k} {list(c)} (model {list(m)})" for k, (c, m) in shapes.items())
    return (
        f"Initialised training from {path}: it provides {_loaded(report)}; the class head is "
        f"re-initialised{classes}: {len(shapes)} keys of another shape: {listed}."
    )


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
    if for_training and not problem and _only_class_head(report):
        logger.info(_class_head_line(report, path))
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


def load_weights(
    model: nn.Module,
    weights: Mapping[str, torch.Tensor],
    path: str,
    *,
    for_training: bool = False,
    allow_partial: bool = False,
    opt_out: str = "pass strict=False",
) -> LoadReport:
    """Load ``weights`` (official keys) into ``model`` under the loading policy.

    The policy is checked first (:func:`check_fit`): when it raises, nothing is loaded. Otherwise
    the keys that fit are loaded; unexpected and mis-shaped keys are ignored and the model's
    missing keys keep their values.

    Args:
        model (nn.Module): the model.
        weights (dict[str, Tensor]): official key -> tensor (e.g. from ``read_checkpoint``).
        path (str): where the weights come from, named in the messages.
        for_training, allow_partial, opt_out: as in :func:`check_fit`.

    Returns:
        LoadReport: what the weights did not provide.
    """
    report = LoadReport.compare(model.state_dict(), weights)
    check_fit(report, path, for_training=for_training, allow_partial=allow_partial, opt_out=opt_out)
    skipped = set(report.unexpected_keys) | {k for k, _, _ in report.shape_mismatches}
    model.load_state_dict({k: v for k, v in weights.items() if k not in skipped}, strict=False)
    return report

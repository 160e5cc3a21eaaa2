"""detectron2's config with this project's keys: the one place the scripts build their cfg."""

from typing import Optional, Sequence

from detectron2.config import CfgNode, get_cfg

from ..config import add_maskformer2_config, add_maskformer2_video_config
from ..data.mixing import check_ratios
from ..precision import PrecisionError, check_precision

__all__ = ["ConfigError", "check_video_config", "get_video_cfg"]


class ConfigError(ValueError):
    """A config file or command-line option that cannot be used (names the key)."""


def get_video_cfg(config_file: Optional[str] = None, opts: Sequence = ()) -> CfgNode:
    """``get_cfg()`` with every Mask2Former and video key, merged with ``config_file`` (a YAML)
    and ``opts`` (``[KEY, VALUE, ...]``), then checked (:func:`check_video_config`); not frozen.

    Raises:
        ConfigError: a value of the wrong type or an unknown key (naming the file or the
            options, and the key).
    """
    cfg = get_cfg()
    add_maskformer2_config(cfg)
    add_maskformer2_video_config(cfg)
    if config_file is not None:
        _merge(cfg.merge_from_file, config_file, f"config file {config_file}")
    _merge(cfg.merge_from_list, list(opts), "command-line options")
    check_video_config(cfg)
    return cfg


def _merge(merge, source, what: str) -> None:
    try:
        merge(source)
    except ValueError as e:  # yacs: "Type mismatch ... for config key: K"
        raise ConfigError(f"{what}: {e}") from None
    except (AssertionError, KeyError) as e:  # yacs: "Non-existent key: K", an odd-length list
        raise ConfigError(f"{what}: {str(e).strip(chr(39) + chr(34))}") from None


def check_video_config(cfg: CfgNode) -> None:
    """Check the keys whose values yacs cannot check by type alone (before any data is loaded):
    ``DATASETS.DATASET_RATIO`` (empty, or one number >= 0 per ``DATASETS.TRAIN`` entry) and
    ``SOLVER.CHECKPOINT_MAX_TO_KEEP`` (>= 0), ``MODEL.INFERENCE_PRECISION`` (one of
    ``video_mask2former.precision.PRECISIONS``).

    The categories of the datasets are checked against ``MODEL.SEM_SEG_HEAD.NUM_CLASSES`` when
    the data is built (:func:`video_mask2former.d2.datasets.check_dataset_classes`).

    Raises:
        ConfigError: naming the key and what was expected.
    """
    if cfg.DATASETS.DATASET_RATIO:
        try:
            check_ratios(
                cfg.DATASETS.DATASET_RATIO, list(cfg.DATASETS.TRAIN), key="DATASETS.DATASET_RATIO"
            )
        except ValueError as e:
            raise ConfigError(str(e)) from None
    try:
        check_precision(cfg.MODEL.INFERENCE_PRECISION, key="MODEL.INFERENCE_PRECISION")
    except PrecisionError as e:
        raise ConfigError(str(e)) from None
    if cfg.SOLVER.CHECKPOINT_MAX_TO_KEEP < 0:
        raise ConfigError(
            f"SOLVER.CHECKPOINT_MAX_TO_KEEP must be >= 0 (0 keeps every periodic checkpoint), got "
            f"{cfg.SOLVER.CHECKPOINT_MAX_TO_KEEP}."
        )

"""YouTube-VIS results files and the official AP/AR metric (and the 2022 short / long split),
without detectron2."""

from .results import (
    VideoSpec,
    YTVISFormatError,
    load_results,
    save_results,
    validate_results,
    video_predictions_to_results,
    write_results_json,
    write_submission_zip,
)
from .ytvis2022 import evaluate_2022
from .ytvis_metric import (
    STAT_KEYS,
    YTVISEvaluation,
    YTVISGroundTruth,
    evaluate_ytvis,
    evaluate_ytvis_detailed,
)

__all__ = [
    "STAT_KEYS",
    "VideoSpec",
    "YTVISEvaluation",
    "YTVISFormatError",
    "YTVISGroundTruth",
    "evaluate_2022",
    "evaluate_ytvis",
    "evaluate_ytvis_detailed",
    "load_results",
    "save_results",
    "validate_results",
    "video_predictions_to_results",
    "write_results_json",
    "write_submission_zip",
]

"""Scoring without detectron2: YouTube-VIS results files and the official AP/AR metric (and the
2022 short / long split); video panoptic segmentation (VPQ, STQ) and video semantic
segmentation (mIoU, mVC) as their reference scripts compute them, and writers of their
prediction formats."""

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
from .stq import STQAccumulator, panoptic_to_semantic_instance, vipseg_segment_order
from .video_seg_predictions import VpsPredictionWriter, write_vss_prediction
from .vpq import VPQ_WINDOW_SIZES, VPQAccumulator, VPQInputError
from .vps_eval import evaluate_vps
from .vss_eval import evaluate_vss
from .vss_metrics import ConfusionAccumulator, VCAccumulator
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
    "ConfusionAccumulator",
    "STQAccumulator",
    "VCAccumulator",
    "VPQAccumulator",
    "VPQInputError",
    "VPQ_WINDOW_SIZES",
    "VideoSpec",
    "VpsPredictionWriter",
    "YTVISEvaluation",
    "YTVISFormatError",
    "YTVISGroundTruth",
    "evaluate_2022",
    "evaluate_vps",
    "evaluate_vss",
    "evaluate_ytvis",
    "evaluate_ytvis_detailed",
    "load_results",
    "panoptic_to_semantic_instance",
    "save_results",
    "validate_results",
    "video_predictions_to_results",
    "vipseg_segment_order",
    "write_results_json",
    "write_submission_zip",
    "write_vss_prediction",
]

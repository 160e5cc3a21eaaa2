"""detectron2 ``DatasetEvaluator`` for YouTube-VIS, a thin adapter over the core evaluation.

Collects the per-video predictions (official eval output format) on every process, writes
``results.json`` and the server submission ``results.zip`` to ``output_dir``, and scores them with
this project's implementation of the official metric when the dataset's annotation file has
annotations. Reported like detectron2's evaluators: ``{"segm": {"AP": ..., ...}}`` on the 0-100
scale, NaN where no ground truth falls in an area range, plus ``"AP-<class name>"``. A dataset
whose metadata names ``subset_json_files`` (YouTube-VIS 2022: ``{"short": ..., "long": ...}``)
is scored per subset when those files exist: ``AP_S``, ``AP_L``, ``AP`` (their mean), ...
"""

import itertools
import logging
from collections import OrderedDict
from typing import Dict, List, Optional

import detectron2.utils.comm as comm
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils.file_io import PathManager
from detectron2.utils.logger import create_small_table

from ..evaluation import (
    YTVISGroundTruth,
    evaluate_ytvis_detailed,
    save_results,
    video_predictions_to_results,
)
from ..evaluation.ytvis2022 import evaluate_2022, format_2022_table

logger = logging.getLogger(__name__)

# detectron2 reports percentages
_PERCENT = 100.0
# The statistics of the logged table (the copypaste lines of detectron2 list all twelve).
TABLE_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10")


class YTVISEvaluator(DatasetEvaluator):
    """Writes YouTube-VIS results files and computes video AP / AR."""

    def __init__(
        self,
        dataset_name: str,
        tasks=None,
        distributed: bool = True,
        output_dir: Optional[str] = None,
    ):
        """
        Args:
            dataset_name (str): a registered dataset; its metadata may have ``json_file`` (the
                annotation file) and ``thing_dataset_id_to_contiguous_id``.
            tasks: accepted for detectron2 compatibility; only "segm" is evaluated.
            distributed (bool): gather predictions from all processes and evaluate on the main one.
            output_dir (str, optional): where ``results.json`` and ``results.zip`` are written.
        """
        self._dataset_name = dataset_name
        self._distributed = distributed
        self._output_dir = output_dir
        self._metadata = MetadataCatalog.get(dataset_name)
        id_map = self._metadata.get("thing_dataset_id_to_contiguous_id", None)
        # contiguous id -> dataset id; identity when the dataset has no mapping
        self._to_dataset_id = {v: k for k, v in id_map.items()} if id_map else _IdentityMapping()
        self._json_file = self._metadata.get("json_file", None)
        self.reset()

    def reset(self):
        self._results: List[dict] = []

    def process(self, inputs, outputs):
        """
        Args:
            inputs (list[dict]): video dicts with ``"video_id"``.
            outputs (dict or list[dict]): per video ``{"image_size", "pred_scores",
                "pred_labels", "pred_masks": list of (T, H, W) bool tensors}`` (one dict when the
                batch holds one video, as the official model returns).
        """
        outputs = [outputs] if isinstance(outputs, dict) else outputs
        for video, prediction in zip(inputs, outputs):
            self._results.extend(
                video_predictions_to_results(
                    video["video_id"], prediction, contiguous_to_dataset_id=self._to_dataset_id
                )
            )

    def evaluate(self) -> Dict:
        if self._distributed:
            comm.synchronize()
            results = list(itertools.chain(*comm.gather(self._results, dst=0)))
            if not comm.is_main_process():
                return {}
        else:
            results = self._results
        if self._output_dir:
            PathManager.mkdirs(self._output_dir)
            json_path, zip_path = save_results(results, self._output_dir)
            logger.info(f"Wrote {len(results)} results to {json_path} and {zip_path}")
        subsets = self._metadata.get("subset_json_files", None)
        if subsets and all(PathManager.exists(path) for path in subsets.values()):
            return self._evaluate_subsets(results, subsets)
        if not self._json_file:
            return {}
        ground_truth = YTVISGroundTruth.from_json(PathManager.get_local_path(self._json_file))
        if not ground_truth.has_annotations:
            logger.info(f"{self._json_file} has no annotations: submit the zip to the server")
            return {}
        # the RLEs were encoded by pycocotools just above: their counts need no decode-check
        evaluation = evaluate_ytvis_detailed(ground_truth, results, check_counts=False)
        # x100 with NaN where the metric is -1 (no ground truth in an area range), as detectron2's
        # COCOEvaluator reports
        segm = {k: v * _PERCENT if v >= 0 else float("nan") for k, v in evaluation.stats.items()}
        logger.info(
            f"Evaluation results for segm on {self._dataset_name}:\n"
            + create_small_table({k: segm[k] for k in TABLE_KEYS})
        )
        per_category = evaluation.per_category_ap()  # dataset category id -> AP
        for contiguous_id, name in enumerate(self._metadata.get("thing_classes", None) or []):
            ap = per_category.get(self._to_dataset_id[contiguous_id])
            if ap is not None:
                segm[f"AP-{name}"] = ap * _PERCENT
        return OrderedDict({"segm": segm})

    def _evaluate_subsets(self, results: List[dict], subsets: Dict[str, str]) -> Dict:
        """YouTube-VIS 2022: the short and long videos scored apart (``AP_S``, ``AP_L``, and
        ``AP`` their mean, the challenge's mAP; every statistic suffixed ``_S`` / ``_L``)."""
        local = {name: PathManager.get_local_path(path) for name, path in subsets.items()}
        # the RLEs were encoded by pycocotools: their counts need no decode-check
        scores = evaluate_2022(local, results, check_counts=False)
        logger.info(f"{self._dataset_name}, short and long videos:\n{format_2022_table(scores)}")
        segm = {k: v * _PERCENT if v >= 0 else float("nan") for k, v in scores.items()}
        return OrderedDict({"segm": segm})


class _IdentityMapping:
    """Maps every class id to itself (datasets whose category ids are already contiguous)."""

    def __getitem__(self, key: int) -> int:
        return key

    def __len__(self) -> int:
        return 0

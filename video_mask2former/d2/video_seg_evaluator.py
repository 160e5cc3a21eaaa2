"""detectron2 ``DatasetEvaluator`` for video panoptic (VIPSeg layout) and video semantic (VSPW
layout) datasets, a thin adapter over ``video_mask2former.evaluation``.

Shapes: T frames of a video, H x W its size.

For each video the model's per-frame maps are written as they come, in the formats the scorers
(and the reference scripts) read, under ``output_dir``:

* panoptic (``evaluator_type`` "vps"): ``pan_pred/<video>/<frame>.png`` (RGB id PNGs) and
  ``pred.json`` (:class:`~video_mask2former.evaluation.video_seg_predictions.VpsPredictionWriter`);
  scored with :func:`~video_mask2former.evaluation.vps_eval.evaluate_vps` (VPQ over
  ``TEST.VPQ_WINDOW_SIZES``, STQ);
* semantic ("vss"): ``sem_pred/<video>/<frame>.png`` (class indices), scored with
  :func:`~video_mask2former.evaluation.vss_eval.evaluate_vss` (mIoU, mVC8, mVC16).

A split without ground truth (registered with ``annotated=False``: VIPSeg / VSPW test) is only
written. Results are reported as detectron2's panoptic / semantic evaluators do, on the 0-100
scale: ``{"panoptic_seg": {"VPQ": ..., "VPQ@1": ..., "STQ": ..., ...}}`` or ``{"sem_seg":
{"mIoU": ..., "mVC8": ..., "mVC16": ..., "IoU-<class>": ...}}``.

Distributed: every process writes the PNGs of its own videos into ``output_dir`` (which must be
one folder that all processes see, as ``OUTPUT_DIR`` is for checkpoints); the per-frame segment
lists are gathered on the main process, which writes ``pred.json`` and scores.
"""

import itertools
import logging
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import detectron2.utils.comm as comm
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils.logger import create_small_table

from ..evaluation.video_seg_predictions import VpsPredictionWriter, write_vss_prediction
from ..evaluation.vps_eval import evaluate_vps
from ..evaluation.vss_eval import evaluate_vss
from .config import ConfigError

__all__ = [
    "SEMANTIC_PNG_FOLDER",
    "TASK_OF_EVALUATOR_TYPE",
    "VideoSegEvaluator",
    "check_task_for_dataset",
]

logger = logging.getLogger(__name__)

# Folder of the semantic prediction PNGs under the evaluator's output folder.
SEMANTIC_PNG_FOLDER = "sem_pred"
# The video task (registration.video_task) each dataset kind is scored on.
TASK_OF_EVALUATOR_TYPE = {"ytvis": "instance", "vps": "panoptic", "vss": "semantic"}
# The config key that selects each task.
_TASK_KEY = {
    "instance": "MODEL.MASK_FORMER.TEST.INSTANCE_ON",
    "panoptic": "MODEL.MASK_FORMER.TEST.PANOPTIC_ON",
    "semantic": "MODEL.MASK_FORMER.TEST.SEMANTIC_ON",
}
# Metrics of the logged tables.
VPS_TABLE_KEYS = ("VPQ", "VPQ_thing", "VPQ_stuff", "STQ", "AQ", "SQ")
VSS_TABLE_KEYS = ("mIoU", "mVC8", "mVC16")


def check_task_for_dataset(task: str, dataset_name: str) -> None:
    """Check that the model's video ``task`` ("instance", "panoptic", "semantic") is the one
    dataset ``dataset_name`` is scored on (by its ``evaluator_type``), before any inference.

    Raises:
        ConfigError: naming the dataset and the key to set.
    """
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type", None)
    wanted = TASK_OF_EVALUATOR_TYPE.get(evaluator_type)
    if wanted is None or wanted == task:
        return
    raise ConfigError(
        f"Dataset {dataset_name!r} is scored on video {wanted} segmentation (evaluator_type "
        f"{evaluator_type!r}), but the config selects {task} ({_TASK_KEY[task]}). Set "
        f"{_TASK_KEY[wanted]} True and the other two False."
    )


def _class_to_category(metadata) -> List[int]:
    """Dataset category id of each class index (panoptic metadata)."""
    id_map = metadata.get("stuff_dataset_id_to_contiguous_id", None)
    if not id_map:
        raise ConfigError(
            f"Dataset {metadata.name!r} has no stuff_dataset_id_to_contiguous_id in its metadata; "
            f"register it with register_vps_video."
        )
    to_category = {int(v): int(k) for k, v in id_map.items()}
    return [to_category[i] for i in range(len(to_category))]


class VideoSegEvaluator(DatasetEvaluator):
    """Writes video panoptic / semantic predictions frame by frame and scores them."""

    def __init__(
        self,
        dataset_name: str,
        output_dir: str,
        *,
        distributed: bool = True,
        vpq_window_sizes: Sequence[int] = (1, 2, 4, 6, 8),
        num_classes: Optional[int] = None,
        workers: Optional[int] = None,
    ):
        """
        Args:
            dataset_name (str): a dataset registered with ``register_vps_video`` or
                ``register_vss_video`` (``evaluator_type`` "vps" / "vss").
            output_dir (str): where the predictions are written (see the module docstring).
            distributed (bool): gather from all processes and score on the main one.
            vpq_window_sizes (sequence of int): VPQ window lengths (``TEST.VPQ_WINDOW_SIZES``).
            num_classes (int, optional): K of the semantic maps; default the dataset's
                ``stuff_classes`` count.
            workers (int, optional): processes of the scorers (their default when None).

        Raises:
            ConfigError: the dataset is not a video panoptic / semantic dataset.
        """
        self._metadata = MetadataCatalog.get(dataset_name)
        self._kind = self._metadata.get("evaluator_type", None)
        if self._kind not in ("vps", "vss"):
            raise ConfigError(
                f"VideoSegEvaluator scores video panoptic / semantic datasets (evaluator_type "
                f"'vps' / 'vss'); {dataset_name!r} has evaluator_type {self._kind!r}."
            )
        self._dataset_name = dataset_name
        self._output_dir = output_dir
        self._distributed = distributed
        self._window_sizes = tuple(int(n) for n in vpq_window_sizes)
        classes = self._metadata.get("stuff_classes", None) or []
        self._num_classes = int(num_classes) if num_classes is not None else len(classes)
        self._workers = workers
        self.reset()

    @property
    def prediction_dir(self) -> str:
        """The folder of the per-video PNG folders (``pan_pred`` or ``sem_pred``)."""
        if self._kind == "vps":
            return self._writer.png_root
        return os.path.join(self._output_dir, SEMANTIC_PNG_FOLDER)

    def reset(self):
        self._writer = None
        if self._kind == "vps":
            self._writer = VpsPredictionWriter(self._output_dir, _class_to_category(self._metadata))
        self._num_videos = 0

    def process(self, inputs, outputs):
        """
        Args:
            inputs (list[dict]): video dicts of the test loader: ``video_id``, ``file_names``
                (T frame paths; each prediction PNG takes its frame's stem).
            outputs (dict or list[dict]): per video ``panoptic_seg`` (T, H, W) +
                ``segments_info`` (T lists), or ``sem_seg`` (T, H, W) (one dict for one video).
        """
        outputs = [outputs] if isinstance(outputs, dict) else outputs
        for video, prediction in zip(inputs, outputs):
            self._write_video(video, prediction)
            self._num_videos += 1

    def _write_video(self, video: dict, prediction: dict) -> None:
        key = "panoptic_seg" if self._kind == "vps" else "sem_seg"
        task = "panoptic" if self._kind == "vps" else "semantic"
        if key not in prediction:
            raise ConfigError(
                f"Dataset {self._dataset_name!r} is scored on video {task} segmentation but the "
                f"model returned {sorted(prediction)} for video {video['video_id']!r}; set "
                f"{_TASK_KEY[task]} True and the other two False."
            )
        maps = prediction[key]  # (T, H, W)
        file_names = video["file_names"]
        if len(maps) != len(file_names):
            raise ValueError(
                f"Video {video['video_id']!r}: the model returned {len(maps)} frames for "
                f"{len(file_names)} input frames."
            )
        for t, frame_name in enumerate(file_names):
            if self._kind == "vps":
                self._writer.write_frame(
                    video["video_id"], frame_name, maps[t], prediction["segments_info"][t]
                )
            else:
                write_vss_prediction(
                    self.prediction_dir, video["video_id"], frame_name, maps[t], self._num_classes
                )

    def evaluate(self) -> Dict:
        frames = self._writer_frames()
        if self._distributed:
            comm.synchronize()
            gathered = comm.gather((self._num_videos, frames), dst=0)
            if not comm.is_main_process():
                return {}
            num_videos = sum(n for n, _ in gathered)
            frames = dict(itertools.chain(*(f.items() for _, f in gathered)))
        else:
            num_videos = self._num_videos
        if self._kind == "vps":
            _set_writer_frames(self._writer, frames)
            self._writer.close()
        logger.info(
            f"Wrote the predictions of {num_videos} videos of {self._dataset_name} to "
            f"{self._output_dir}"
        )
        if not self._metadata.get("annotated", True):
            logger.info(f"{self._dataset_name} has no ground truth: the predictions are not scored")
            return {}
        if self._kind == "vps":
            return OrderedDict({"panoptic_seg": self._score_vps()})
        return OrderedDict({"sem_seg": self._score_vss()})

    def _writer_frames(self) -> Dict[str, List[dict]]:
        """video id -> the ``pred.json`` entries of its frames written by this process."""
        return self._writer.frames if self._writer is not None else {}

    def _score_vps(self) -> Dict[str, float]:
        meta = self._metadata
        scores = evaluate_vps(
            meta.json_file,
            meta.panoptic_root,
            self._writer.json_file,
            self.prediction_dir,
            window_sizes=self._window_sizes,
            workers=self._workers,
        )
        logger.info(
            f"Video panoptic segmentation on {self._dataset_name}:\n"
            + create_small_table({k: scores[k] for k in VPS_TABLE_KEYS if k in scores})
        )
        return {k: float(v) for k, v in scores.items()}

    def _score_vss(self) -> Dict[str, float]:
        meta = self._metadata
        scores = evaluate_vss(
            meta.root,
            meta.split_file,
            self.prediction_dir,
            num_classes=self._num_classes,
            workers=self._workers,
        )
        logger.info(
            f"Video semantic segmentation on {self._dataset_name}:\n"
            + create_small_table({k: scores[k] for k in VSS_TABLE_KEYS if k in scores})
        )
        # flat numbers only (detectron2 prints and verifies floats); per class with a "-", which
        # detectron2's print_csv_format leaves out of its summary line, as "AP-<class>"
        flat = {k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}
        names = meta.get("stuff_classes", None) or []
        for index, iou in enumerate(scores.get("IoU_per_class", [])):
            name = names[index] if index < len(names) else str(index)
            flat[f"IoU-{name}"] = float(iou)
        return flat


def _set_writer_frames(writer: VpsPredictionWriter, frames: Dict[str, List[dict]]) -> None:
    """Give the main process's writer the frames of every process before it writes pred.json."""
    writer.add_frames({v: f for v, f in frames.items() if v not in writer.frames})

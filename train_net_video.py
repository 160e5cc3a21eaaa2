#!/usr/bin/env python
"""Train / evaluate Video Mask2Former with detectron2.

    python train_net_video.py --num-gpus 8 \
        --config-file configs/youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml
    python train_net_video.py --config-file ... --eval-only MODEL.WEIGHTS model_final.pth
    python train_net_video.py \
        --config-file configs/quick_schedules/video_maskformer2_R18_synthetic_quick.yaml

Trainer overrides (data loaders over whole videos, the YouTube-VIS evaluator, the optimizer with
backbone multiplier and full-model gradient clipping, AMP evaluation), ``setup`` and ``main``.
"""

import contextlib
import importlib.util
import logging
import os
import weakref

import detectron2.utils.comm as comm
import torch
from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.engine import DefaultTrainer, default_argument_parser, default_setup, launch
from detectron2.evaluation import verify_results
from detectron2.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter
from detectron2.utils.logger import setup_logger

from video_mask2former.d2.checkpoint import VideoCheckpointer
from video_mask2former.d2.config import get_video_cfg
from video_mask2former.d2.datasets import check_dataset_classes, get_video_dataset_dicts
from video_mask2former.d2.distributed import device_aware_ddp
from video_mask2former.d2.evaluator import YTVISEvaluator
from video_mask2former.d2.joint import build_joint_train_loader, uses_joint_loader
from video_mask2former.d2.mapper import YTVISDatasetMapper
from video_mask2former.d2.solver import build_optimizer

logger = logging.getLogger("video_mask2former")


def inference_autocast(cfg):
    """Mixed precision for evaluation: on CUDA when ``SOLVER.AMP.ENABLED`` (as official)."""
    if cfg.SOLVER.AMP.ENABLED and torch.device(cfg.MODEL.DEVICE).type == "cuda":
        return torch.autocast("cuda")
    return contextlib.nullcontext()


class Trainer(DefaultTrainer):
    """DefaultTrainer over videos: clip loaders, YTVISEvaluator, the Mask2Former optimizer."""

    def __init__(self, cfg):
        with device_aware_ddp():  # DDP on CPU too (GLOO): no device_ids for a CPU model
            super().__init__(cfg)

    def build_hooks(self):
        # DefaultTrainer.__init__ calls this once, just after making its DetectionCheckpointer:
        # the hooks (PeriodicCheckpointer) and resume_or_load use a VideoCheckpointer instead
        # (loading policy, atomic checkpoints, resuming past unreadable ones).
        self.checkpointer = VideoCheckpointer(
            self._trainer.model,
            self.cfg.OUTPUT_DIR,
            for_training=True,
            allow_partial=self.cfg.MODEL.ALLOW_PARTIAL_WEIGHTS,
            trainer=weakref.proxy(self),
        )
        return super().build_hooks()

    def resume_or_load(self, resume=True):
        super().resume_or_load(resume=resume)
        if resume and self.start_iter >= self.max_iter:
            # No step is left, so PeriodicCheckpointer will not write model_final.pth again (a
            # kill may have cut it): rewrite it from the resumed state unless it is readable.
            self.checkpointer.ensure_complete("model_final", iteration=self.iter)

    def build_writers(self):
        """Console and metrics.json writers, plus TensorBoard when it is installed (optional)."""
        writers = [
            CommonMetricPrinter(self.max_iter),
            JSONWriter(os.path.join(self.cfg.OUTPUT_DIR, "metrics.json")),
        ]
        if importlib.util.find_spec("tensorboard") is not None:
            writers.append(TensorboardXWriter(self.cfg.OUTPUT_DIR))
        return writers

    @classmethod
    def build_train_loader(cls, cfg):
        """Clips of DATASETS.TRAIN; every dataset's categories (and those of DATASETS.TEST that
        are known before loading) are checked against MODEL.SEM_SEG_HEAD.NUM_CLASSES first."""
        check_dataset_classes(cfg, cfg.DATASETS.TEST, training=False)
        if uses_joint_loader(cfg):  # image datasets as pseudo-videos, DATASETS.DATASET_RATIO
            return build_joint_train_loader(cfg)
        dataset = get_video_dataset_dicts(
            cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
        )
        check_dataset_classes(cfg, cfg.DATASETS.TRAIN, training=True)
        mapper = YTVISDatasetMapper(cfg, is_train=True)
        return build_detection_train_loader(cfg, mapper=mapper, dataset=dataset)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        """Yields one whole video (every frame) per batch; the dataset's categories are checked
        against MODEL.SEM_SEG_HEAD.NUM_CLASSES first."""
        dataset = get_video_dataset_dicts(dataset_name)
        check_dataset_classes(cfg, [dataset_name], training=False)
        mapper = YTVISDatasetMapper(cfg, is_train=False)
        return build_detection_test_loader(
            dataset=dataset, mapper=mapper, num_workers=cfg.DATALOADER.NUM_WORKERS
        )

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return YTVISEvaluator(dataset_name, output_dir=output_folder)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        with inference_autocast(cfg):
            return super().test(cfg, model, evaluators)


def setup(args):
    """The frozen config of ``args``, with detectron2's default logging / output setup."""
    cfg = get_video_cfg(args.config_file, args.opts)
    if cfg.SOLVER.AMP.ENABLED and torch.device(cfg.MODEL.DEVICE).type != "cuda":
        # detectron2's AMPTrainer (GradScaler, CUDA autocast) only works on CUDA.
        cfg.SOLVER.AMP.ENABLED = False
        amp_note = f"SOLVER.AMP.ENABLED set to False: MODEL.DEVICE is {cfg.MODEL.DEVICE!r}."
    else:
        amp_note = None
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="video_mask2former")
    if amp_note:
        logger.warning(amp_note)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        checkpointer = VideoCheckpointer(
            model, cfg.OUTPUT_DIR, allow_partial=cfg.MODEL.ALLOW_PARTIAL_WEIGHTS
        )
        checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        results = Trainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, results)
        return results
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )

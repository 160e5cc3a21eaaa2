#!/usr/bin/env python
"""Train / evaluate Video Mask2Former with detectron2.

    python train_net_video.py --num-gpus 8 \
        --config-file configs/youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml
    python train_net_video.py --config-file ... --eval-only MODEL.WEIGHTS model_final.pth
    python train_net_video.py \
        --config-file configs/quick_schedules/video_maskformer2_R18_synthetic_quick.yaml
    python train_net_video.py \
        --config-file configs/quick_schedules/video_maskformer2_R18_vps_synthetic_quick.yaml
    python train_net_video.py --config-file ... --dataset mine_train train.json JPEGImages \
        --dataset mine_val val.json JPEGImages DATASETS.TRAIN "('mine_train',)" \
        DATASETS.TEST "('mine_val',)" MODEL.SEM_SEG_HEAD.NUM_CLASSES 3

The same script trains and scores video instance (YouTube-VIS layout), video panoptic (VIPSeg
layout) and video semantic (VSPW layout) datasets: the train / test mapper and the evaluator follow
each dataset's ``evaluator_type`` ("ytvis", "vps", "vss"); the model's output follows
MODEL.MASK_FORMER.TEST.{INSTANCE_ON, PANOPTIC_ON, SEMANTIC_ON}, which must match it.

Trainer overrides (data loaders over whole videos, the evaluators, the optimizer with
backbone multiplier and full-model gradient clipping, AMP evaluation, the last
SOLVER.CHECKPOINT_MAX_TO_KEEP periodic checkpoints kept), ``setup`` and ``main``.

The built-in synthetic datasets are written on first use (``prepare_synthetic_datasets``). A
user's mistake (a missing file, a config or dataset that does not fit: ``USER_ERRORS``) ends the
run with one ``error: ...`` line on stderr and exit status 2; Ctrl-C with one line naming the
last checkpoint (exit status 130); other exceptions keep their traceback.
"""

import contextlib
import importlib.util
import logging
import os
import sys
import weakref

import detectron2.utils.comm as comm
import torch
import torch.multiprocessing as mp
from detectron2.data import (
    MetadataCatalog,
    build_detection_test_loader,
    build_detection_train_loader,
)
from detectron2.engine import DefaultTrainer, default_argument_parser, hooks, launch
from detectron2.evaluation import verify_results
from detectron2.modeling import build_model
from detectron2.utils.collect_env import collect_env_info
from detectron2.utils.env import seed_all_rng
from detectron2.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter
from detectron2.utils.logger import setup_logger

from video_mask2former.checkpoint import CheckpointFileError, CheckpointMismatchError
from video_mask2former.d2.checkpoint import VideoCheckpointer
from video_mask2former.d2.config import ConfigError, get_video_cfg
from video_mask2former.d2.datasets import (
    DatasetConfigError,
    check_dataset_classes,
    get_video_dataset_dicts,
    prepare_synthetic_datasets,
    register_user_datasets,
)
from video_mask2former.d2.distributed import device_aware_ddp
from video_mask2former.d2.evaluator import YTVISEvaluator
from video_mask2former.d2.joint import build_joint_train_loader, uses_joint_loader
from video_mask2former.d2.mapper import SEGMENTATION_EVALUATOR_TYPES, build_video_mapper
from video_mask2former.d2.registration import video_task
from video_mask2former.d2.solver import build_optimizer
from video_mask2former.d2.video_seg_evaluator import VideoSegEvaluator, check_task_for_dataset
from video_mask2former.data.coco_images import ImageDatasetFormatError
from video_mask2former.data.frames import FrameSourceError
from video_mask2former.data.vps import VideoSegFormatError
from video_mask2former.data.ytvis import YTVISFormatError, add_dataset_argument
from video_mask2former.precision import inference_autocast as precision_autocast

logger = logging.getLogger("video_mask2former")

# A user's mistake, not a bug: a missing file (weights, dataset), weights or a dataset that do not
# fit, a bad option. Reported as one "error: ..." line (their messages say what to do); any other
# exception keeps its traceback.
USER_ERRORS = (
    FileNotFoundError,
    ConfigError,
    DatasetConfigError,
    CheckpointFileError,
    CheckpointMismatchError,
    YTVISFormatError,
    ImageDatasetFormatError,
    FrameSourceError,
    VideoSegFormatError,
)
# Exit status of a run ended by a user error (as argparse's), and by Ctrl-C (128 + SIGINT).
USER_ERROR_STATUS = 2
INTERRUPTED_STATUS = 130
# Logger of what goes to OUTPUT_DIR/log.txt only (the environment, the model's structure).
FILE_LOG = "video_mask2former.run"


def inference_autocast(cfg):
    """The precision of evaluation, ``MODEL.INFERENCE_PRECISION`` ("auto": float16 on CUDA when
    ``SOLVER.AMP.ENABLED``, as official; else float32): see ``video_mask2former.precision``."""
    return precision_autocast(
        cfg.MODEL.INFERENCE_PRECISION, cfg.MODEL.DEVICE, amp_enabled=cfg.SOLVER.AMP.ENABLED
    )


class Trainer(DefaultTrainer):
    """DefaultTrainer over videos: clip loaders, YTVISEvaluator / VideoSegEvaluator, the
    Mask2Former optimizer."""

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
        return [self._keep_last_checkpoints(hook) for hook in super().build_hooks()]

    def _keep_last_checkpoints(self, hook):
        """DefaultTrainer's PeriodicCheckpointer keeps every checkpoint: keep the last
        SOLVER.CHECKPOINT_MAX_TO_KEEP (0: all)."""
        keep = self.cfg.SOLVER.CHECKPOINT_MAX_TO_KEEP
        if not isinstance(hook, hooks.PeriodicCheckpointer) or keep == 0:
            return hook
        return hooks.PeriodicCheckpointer(hook.checkpointer, hook.period, max_to_keep=keep)

    def resume_or_load(self, resume=True):
        super().resume_or_load(resume=resume)
        if resume and self.start_iter >= self.max_iter:
            # No step is left, so PeriodicCheckpointer will not write model_final.pth again (a
            # kill may have cut it): rewrite it from the resumed state unless it is readable.
            self.checkpointer.ensure_complete("model_final", iteration=self.iter)

    @classmethod
    def build_model(cls, cfg):
        """The model; its structure goes to log.txt only (DefaultTrainer prints it on screen)."""
        model = build_model(cfg)
        num_params = sum(p.numel() for p in model.parameters())
        logger.info(f"Model: {type(model).__name__}, {num_params / 1e6:.2f} M parameters")
        logging.getLogger(FILE_LOG).info(f"Model:\n{model}")
        return model

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
            _check_no_segmentation_datasets(cfg.DATASETS.TRAIN)
            return build_joint_train_loader(cfg)
        # video panoptic / semantic datasets: one target tube per thing segment / stuff class
        mapper = build_video_mapper(cfg, cfg.DATASETS.TRAIN, is_train=True)
        dataset = get_video_dataset_dicts(
            cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
        )
        check_dataset_classes(cfg, cfg.DATASETS.TRAIN, training=True)
        return build_detection_train_loader(cfg, mapper=mapper, dataset=dataset)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        """Yields one whole video (every frame) per batch; the dataset's categories are checked
        against MODEL.SEM_SEG_HEAD.NUM_CLASSES first."""
        dataset = get_video_dataset_dicts(dataset_name)
        check_dataset_classes(cfg, [dataset_name], training=False)
        mapper = build_video_mapper(cfg, [dataset_name], is_train=False)
        return build_detection_test_loader(
            dataset=dataset, mapper=mapper, num_workers=cfg.DATALOADER.NUM_WORKERS
        )

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        """YTVISEvaluator, or VideoSegEvaluator for a video panoptic / semantic dataset (by its
        evaluator_type); the config's video task must be the dataset's (checked first)."""
        check_task_for_dataset(video_task(cfg), dataset_name)
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        if MetadataCatalog.get(dataset_name).get("evaluator_type", None) in (
            SEGMENTATION_EVALUATOR_TYPES
        ):
            return VideoSegEvaluator(
                dataset_name,
                output_folder,
                vpq_window_sizes=cfg.TEST.VPQ_WINDOW_SIZES,
                num_classes=cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
            )
        return YTVISEvaluator(dataset_name, output_dir=output_folder)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        with inference_autocast(cfg):
            return super().test(cfg, model, evaluators)


def _check_no_segmentation_datasets(names):
    """Joint training (image sets as pseudo-videos) takes video instance datasets only."""
    seg = [
        n
        for n in names
        if MetadataCatalog.get(n).get("evaluator_type", None) in (SEGMENTATION_EVALUATOR_TYPES)
    ]
    if seg:
        raise ConfigError(
            f"Joint training (DATASETS.DATASET_RATIO, or an image set in DATASETS.TRAIN) takes "
            f"video instance datasets only; {seg} are video panoptic / semantic datasets."
        )


def _quiet_cuda_home_warning():
    """Silence torch's "No CUDA runtime is found" warning (logged when torch.utils.cpp_extension
    is first imported, e.g. by detectron2's collect_env_info) on machines without a GPU."""
    if torch.cuda.is_available():
        return contextlib.nullcontext()
    return _logger_level("torch.utils.cpp_extension", logging.ERROR)


@contextlib.contextmanager
def _logger_level(name, level):
    target = logging.getLogger(name)
    before = target.level
    target.setLevel(level)
    try:
        yield
    finally:
        target.setLevel(before)


def _setup_logging_and_output(cfg, args):
    """What detectron2's ``default_setup`` does, with a quieter screen: the loggers (colours only
    on a terminal, and not with ``$NO_COLOR``), OUTPUT_DIR/config.yaml and OUTPUT_DIR/log.txt
    named in one line each (the environment and the full config go to those files, not to the
    screen), the seeds and cuDNN benchmarking."""
    rank = comm.get_rank()
    output_dir = cfg.OUTPUT_DIR
    if comm.is_main_process() and output_dir:
        os.makedirs(output_dir, exist_ok=True)
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    for name in ("fvcore", "detectron2", "video_mask2former"):
        setup_logger(output_dir, distributed_rank=rank, color=color, name=name)
    # log.txt only: what a bug report needs, too long for the screen.
    file_log = setup_logger(
        output_dir, distributed_rank=rank, name=FILE_LOG, configure_stdout=False
    )
    logger.info(f"Rank {rank} of {comm.get_world_size()}; command line arguments: {args}")
    with _quiet_cuda_home_warning():
        file_log.info("Environment info:\n" + collect_env_info())
    if comm.is_main_process() and output_dir:
        path = os.path.join(output_dir, "config.yaml")
        with open(path, "w") as f:
            f.write(cfg.dump())
        logger.info(f"Full config: {path}; log: {os.path.join(output_dir, 'log.txt')}")
    seed_all_rng(None if cfg.SEED < 0 else cfg.SEED + rank)
    if not args.eval_only:
        torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK
    precision = cfg.get("FLOAT32_PRECISION", "")  # "": PyTorch's default
    if precision and torch.cuda.is_available():
        torch.set_float32_matmul_precision(precision)
        torch.backends.cudnn.allow_tf32 = precision != "highest"


def setup(args):
    """The frozen config of ``args``, with logging, OUTPUT_DIR/config.yaml and the seeds set up."""
    cfg = get_video_cfg(args.config_file, args.opts)
    task = video_task(cfg)  # exactly one of MODEL.MASK_FORMER.TEST.{INSTANCE,PANOPTIC,SEMANTIC}_ON
    for dataset_name in cfg.DATASETS.TEST:  # before training, not after it
        check_task_for_dataset(task, dataset_name)
    if cfg.SOLVER.AMP.ENABLED and torch.device(cfg.MODEL.DEVICE).type != "cuda":
        # detectron2's AMPTrainer (GradScaler, CUDA autocast) only works on CUDA.
        cfg.SOLVER.AMP.ENABLED = False
        amp_note = f"SOLVER.AMP.ENABLED set to False: MODEL.DEVICE is {cfg.MODEL.DEVICE!r}."
    else:
        amp_note = None
    cfg.freeze()
    _setup_logging_and_output(cfg, args)
    if amp_note:
        logger.warning(amp_note)
    return cfg


def _log_outputs(cfg):
    """Name the files a user looks for once the run is over."""
    for dataset_name in cfg.DATASETS.TEST:
        folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        # YouTube-VIS results, video panoptic pred.json (+ pan_pred/), video semantic sem_pred/
        for name in ("results.json", "pred.json", "sem_pred"):
            if os.path.exists(os.path.join(folder, name)):
                logger.info(f"Results on {dataset_name}: {os.path.join(folder, name)}")
    final = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    if os.path.isfile(final):
        logger.info(f"Trained weights: {final} (MODEL.WEIGHTS {final} to evaluate or run the demo)")


def _report_interrupt(trainer):
    """One line after Ctrl-C (detectron2's hooks have run their after_train)."""
    last = trainer.checkpointer.get_checkpoint_file()
    if last:
        where = f"the last checkpoint is {last}; resume with --resume"
    else:
        where = "no checkpoint was written yet"
    print(f"Interrupted at iteration {trainer.iter}; {where}.", file=sys.stderr)


def argument_parser():
    """detectron2's arguments plus ``--dataset NAME JSON IMAGE_ROOT`` (repeatable)."""
    parser = default_argument_parser()
    add_dataset_argument(parser)
    return parser


def register_command_line_datasets(args) -> None:
    """Register the ``--dataset`` entries (in every process: each runs ``main``)."""
    register_user_datasets(getattr(args, "dataset", None) or [])


def main(args):
    register_command_line_datasets(args)
    cfg = setup(args)
    prepare_synthetic_datasets(list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST))
    if args.eval_only:
        model = Trainer.build_model(cfg)
        checkpointer = VideoCheckpointer(
            model, cfg.OUTPUT_DIR, allow_partial=cfg.MODEL.ALLOW_PARTIAL_WEIGHTS
        )
        checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        results = Trainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, results)
            _log_outputs(cfg)
        return results
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    try:
        results = trainer.train()
    except KeyboardInterrupt:
        if comm.is_main_process():
            _report_interrupt(trainer)
        raise SystemExit(INTERRUPTED_STATUS) from None
    if comm.is_main_process():
        _log_outputs(cfg)
    return results


def run(args):
    """``main`` in each process; a user error or Ctrl-C is reported in one line (by the first
    process) and ends the process with USER_ERROR_STATUS / INTERRUPTED_STATUS."""
    try:
        return main(args)
    except USER_ERRORS as e:
        if comm.is_main_process():
            print(f"error: {e}", file=sys.stderr)
        raise SystemExit(USER_ERROR_STATUS) from None
    except KeyboardInterrupt:  # before or after training (main reports one in training)
        if comm.is_main_process():
            print("Interrupted.", file=sys.stderr)
        raise SystemExit(INTERRUPTED_STATUS) from None


if __name__ == "__main__":
    args = argument_parser().parse_args()
    try:
        launch(
            run,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(args,),
        )
    except mp.ProcessExitedException as e:  # a worker ended with its own message (above)
        sys.exit(e.exit_code or 1)
    except KeyboardInterrupt:  # the launcher of the workers (they report the interrupt)
        sys.exit(INTERRUPTED_STATUS)

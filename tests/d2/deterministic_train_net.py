"""train_net_video.py training with its randomness tied to the clips, for comparing process counts.

Run by ``tests/d2/test_distributed.py`` with the command line of train_net_video.py::

    python -m tests.d2.deterministic_train_net --num-gpus 2 --dist-url auto \
        --config-file ... OUTPUT_DIR out

Training draws random numbers in three places, from streams that depend on how the global batch
is split over processes: the clip mapper (frame choice, augmentation; NumPy's global state), the
matcher (points per video) and the mask losses (points per matched mask; both ``torch.rand`` over
the process's batch). In every process this entry point

* maps each video with a generator seeded by its ``video_id``;
* makes the matcher and the mask losses use the same fixed points for every video / mask,

so that the clips and points of a video do not depend on the process that handles it. The library
code and train_net_video.py's ``setup`` and ``Trainer`` are used unchanged otherwise.

Each process writes ``OUTPUT_DIR/record_rank{rank}.pth``: the world size, a digest of its final
weights and, on rank 0, the first update (weights after iteration 0 minus before, by parameter name)
and the losses of iteration 0 (averaged over processes, as logged).
"""

import hashlib
import os

import numpy as np
import torch
from detectron2.engine import HookBase, default_argument_parser, launch
from detectron2.utils import comm
from torch.nn.parallel import DistributedDataParallel

import train_net_video
import video_mask2former.modeling.criterion as criterion_module
from video_mask2former.d2.mapper import YTVISDatasetMapper
from video_mask2former.modeling.matcher import VideoHungarianMatcher

# Seed of the fixed points of the matcher and the mask losses.
POINTS_SEED = 0


def fixed_points(num_rows: int, num_points: int, device: torch.device) -> torch.Tensor:
    """The same ``num_points`` (x, y) points in [0, 1] for every row: (num_rows, P, 2)."""
    generator = torch.Generator().manual_seed(POINTS_SEED)
    points = torch.rand(num_points, 2, generator=generator)  # (P, 2)
    return points.to(device).expand(num_rows, -1, -1)


def _fixed_uncertain_points(
    coarse_logits, uncertainty_func, num_points, oversample_ratio, importance_sample_ratio
):
    """Stands in for ``get_uncertain_point_coords_with_randomness``: (N, P, 2) fixed points."""
    return fixed_points(coarse_logits.shape[0], num_points, coarse_logits.device)


def fix_training_randomness():
    """Tie the mapper's generator to the video and fix the points (see the module docstring)."""
    map_record = YTVISDatasetMapper.__call__

    def map_with_video_seed(self, record, rng=None):
        return map_record(self, record, np.random.default_rng(record["video_id"]))

    YTVISDatasetMapper.__call__ = map_with_video_seed

    criterion_module.get_uncertain_point_coords_with_randomness = _fixed_uncertain_points
    cost_matrix = VideoHungarianMatcher.cost_matrix

    def cost_matrix_at_fixed_points(self, pred_logits, pred_masks, labels, gt_masks, points):
        points = fixed_points(1, points.shape[1], points.device)  # (1, P, 2)
        return cost_matrix(self, pred_logits, pred_masks, labels, gt_masks, points)

    VideoHungarianMatcher.cost_matrix = cost_matrix_at_fixed_points


def _weights(model: torch.nn.Module) -> dict:
    if isinstance(model, DistributedDataParallel):
        model = model.module
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _digest(weights: dict) -> str:
    sha = hashlib.sha256()
    for name in sorted(weights):
        sha.update(name.encode())
        sha.update(weights[name].cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


class RecordTraining(HookBase):
    """Writes ``record_rank{rank}.pth`` (see the module docstring) after training."""

    def __init__(self, output_dir: str):
        self.path = os.path.join(output_dir, f"record_rank{comm.get_rank()}.pth")
        self.record = {"world_size": comm.get_world_size()}

    def before_train(self):
        self.initial = _weights(self.trainer._trainer.model)

    def after_step(self):
        if self.trainer.iter != 0 or not comm.is_main_process():
            return
        after = _weights(self.trainer._trainer.model)
        self.record["first_update"] = {k: after[k] - self.initial[k] for k in after}
        self.record["first_losses"] = {
            k: v for k, (v, _) in self.trainer.storage.latest().items() if "loss" in k
        }

    def after_train(self):
        self.record["final_digest"] = _digest(_weights(self.trainer._trainer.model))
        torch.save(self.record, self.path)


class RecordingTrainer(train_net_video.Trainer):
    def build_hooks(self):
        return super().build_hooks() + [RecordTraining(self.cfg.OUTPUT_DIR)]


def main(args):
    fix_training_randomness()
    cfg = train_net_video.setup(args)
    trainer = RecordingTrainer(cfg)
    trainer.resume_or_load(resume=False)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )

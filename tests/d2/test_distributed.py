"""Multi-process training and evaluation on CPU (detectron2's ``launch`` with the GLOO backend).

The training runs go through ``tests/d2/deterministic_train_net.py`` (train_net_video.py's
``setup`` and ``Trainer`` with the clips and sampled points tied to each video), so that a run in
2 processes of 2 clips each and a run in 1 process of the same 4 clips compute the same update:

* detectron2's ``TrainingSampler`` shards one seeded permutation (``SEED``) over the processes, so
  both runs' first global batch holds the same 4 synthetic videos (4 in the dataset);
* the mask losses are normalised by the instance count all-reduced over processes and DDP
  averages gradients, so the mask losses are the same function of the global batch;
* ``loss_ce`` is a weighted mean over each process's queries; with ``NO_OBJECT_WEIGHT`` 1 all
  weights are 1 and every process has as many queries, so it is too (with the official 0.1 it
  is only when every process has as many instances);
* SGD without weight decay, gradient clipping or warm-up: the first update is ``-BASE_LR`` times
  the gradient (Adam's first step, about ``-lr * sign(grad)``, would hide a wrong scale).
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2

# Seconds before a run is considered hung.
RUN_TIMEOUT_S = 600
# 4 clips in one global batch: 1 process x 4 or 2 processes x 2.
COMPARABLE_OPTS = [
    "SEED", "0",
    "SOLVER.IMS_PER_BATCH", "4",
    "SOLVER.OPTIMIZER", "SGD",
    "SOLVER.BASE_LR", "0.01",
    "SOLVER.WEIGHT_DECAY", "0.0",
    "SOLVER.WEIGHT_DECAY_NORM", "0.0",
    "SOLVER.WEIGHT_DECAY_EMBED", "0.0",
    "SOLVER.CLIP_GRADIENTS.ENABLED", "False",
    "SOLVER.WARMUP_FACTOR", "1.0",
    "SOLVER.CHECKPOINT_PERIOD", "100",
    "MODEL.MASK_FORMER.NO_OBJECT_WEIGHT", "1.0",
    "DATASETS.TEST", "()",
]  # fmt: skip
# Largest difference allowed between the 1- and 2-process first updates, relative to the largest
# update: float32 sums over the batch in another order (measured: 1e-6, one float32 rounding of
# the largest parameters; a wrong loss normalisation or gradient average gives the order of 1).
UPDATE_RTOL = 1e-5


def _run(root, entry, num_processes, *opts):
    """Run ``python *entry --num-gpus N --dist-url auto ...`` (smoke config); returns the log."""
    from tests.d2.helpers import REPO_ROOT, SMOKE_CONFIG

    env = dict(
        os.environ,
        DETECTRON2_DATASETS=str(root),
        PYTHONPATH=REPO_ROOT,
        CUDA_VISIBLE_DEVICES="",  # launch picks NCCL, which has no CPU tensors, when CUDA is seen
        OMP_NUM_THREADS="1",  # one thread per process: the processes share the CPU cores
    )
    cmd = [
        sys.executable,
        *entry,
        "--num-gpus",
        str(num_processes),
        "--dist-url",
        "auto",
        "--config-file",
        SMOKE_CONFIG,
        *opts,
    ]
    proc = subprocess.run(
        cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    return log


def _train(root, output_dir, num_processes, max_iter):
    _run(
        root,
        ["-m", "tests.d2.deterministic_train_net"],
        num_processes,
        *COMPARABLE_OPTS,
        "SOLVER.MAX_ITER",
        str(max_iter),
        "OUTPUT_DIR",
        str(output_dir),
    )
    return [torch.load(output_dir / f"record_rank{r}.pth") for r in range(num_processes)]


@pytest.fixture(scope="module")
def one_process(synthetic_root, tmp_path_factory):
    """Records of 1 iteration in 1 process on the 4 clips."""
    return _train(synthetic_root, tmp_path_factory.mktemp("one_process"), 1, max_iter=1)


@pytest.fixture(scope="module")
def two_processes(synthetic_root, tmp_path_factory):
    """Output folder and records of 2 iterations in 2 processes of 2 clips each."""
    output_dir = tmp_path_factory.mktemp("two_processes")
    return output_dir, _train(synthetic_root, output_dir, 2, max_iter=2)


def test_device_aware_ddp_restores_detectron2s_function():
    import detectron2.engine.defaults as d2_defaults

    from video_mask2former.d2.distributed import create_ddp_model, device_aware_ddp

    original = d2_defaults.create_ddp_model
    with pytest.raises(RuntimeError):
        with device_aware_ddp():
            assert d2_defaults.create_ddp_model is create_ddp_model
            raise RuntimeError
    assert d2_defaults.create_ddp_model is original


def test_create_ddp_model_is_the_model_in_one_process():
    from video_mask2former.d2.distributed import create_ddp_model

    model = torch.nn.Linear(2, 2)
    assert create_ddp_model(model, broadcast_buffers=False) is model


def test_two_processes_end_with_the_same_weights(two_processes):
    _, records = two_processes
    assert [r["world_size"] for r in records] == [2, 2]
    assert records[0]["final_digest"] == records[1]["final_digest"]


def test_first_update_equals_the_one_process_update(one_process, two_processes):
    single = one_process[0]
    parallel = two_processes[1][0]
    assert single["world_size"] == 1
    # Logged losses: the 2-process values are averaged over the processes.
    assert parallel["first_losses"] == pytest.approx(single["first_losses"], rel=1e-5)

    expected, actual = single["first_update"], parallel["first_update"]
    assert expected.keys() == actual.keys()
    scale = max(u.abs().max().item() for u in expected.values())
    assert scale > 0
    max_diff = max((actual[k] - expected[k]).abs().max().item() for k in expected)
    print(f"first update: max |2 processes - 1 process| = {max_diff:.3g} (largest {scale:.3g})")
    assert max_diff <= UPDATE_RTOL * scale


def test_two_process_eval_only(two_processes, synthetic_root, tmp_path):
    output_dir, _ = two_processes
    log = _run(
        synthetic_root,
        ["train_net_video.py"],
        2,
        "--eval-only",
        "MODEL.WEIGHTS",
        str(output_dir / "model_final.pth"),
        "OUTPUT_DIR",
        str(tmp_path),
    )
    assert "copypaste: AP" in log
    with open(tmp_path / "inference" / "ytvis_synthetic_val" / "results.json") as f:
        results = json.load(f)
    assert {r["video_id"] for r in results} == {1, 2}

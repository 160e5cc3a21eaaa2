"""train_net_video.py on video panoptic and video semantic data (CPU, subprocesses): the vps smoke
schedule trains on the VIPSeg-layout synthetic split and its final evaluation prints VPQ / STQ;
``--eval-only`` of the same weights with the vss smoke config scores the VSPW-layout split
(mIoU / mVC); a config whose task is not its test set's ends in one line before anything runs.

``DETECTRON2_DATASETS`` points at a root holding tiny ``vps_synthetic`` / ``vss_synthetic`` sets
(2 videos of 3 frames per split), so the built-in splits are not written with their defaults.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2

RUN_TIMEOUT_S = 600
VPS_SMOKE = os.path.join(
    "configs", "quick_schedules", "video_maskformer2_R18_vps_synthetic_smoke.yaml"
)
VSS_SMOKE = os.path.join(
    "configs", "quick_schedules", "video_maskformer2_R18_vss_synthetic_smoke.yaml"
)
# 3-frame videos: VPQ windows of at most 3 frames; two iterations
OPTS = ["TEST.VPQ_WINDOW_SIZES", "[1, 2]", "SOLVER.MAX_ITER", "2", "SOLVER.STEPS", "(1,)"]


def _run(root, config, *args):
    from tests.d2.helpers import REPO_ROOT

    env = dict(os.environ, DETECTRON2_DATASETS=str(root), PYTHONPATH=REPO_ROOT)
    cmd = [sys.executable, os.path.join(REPO_ROOT, "train_net_video.py"), "--config-file", config]
    return subprocess.run(
        cmd + list(args), env=env, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from tests.d2.video_seg_helpers import TINY
    from video_mask2former.data.synthetic_video_seg import write_synthetic_vps, write_synthetic_vss

    root = tmp_path_factory.mktemp("datasets")
    write_synthetic_vps(str(root / "vps_synthetic"), **TINY)
    write_synthetic_vss(str(root / "vss_synthetic"), **TINY)
    return root


@pytest.fixture(scope="module")
def trained(tiny_root, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("vps_train")
    proc = _run(tiny_root, VPS_SMOKE, *OPTS, "OUTPUT_DIR", str(output_dir))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    return output_dir, log


def test_panoptic_training_and_final_evaluation(trained):
    output_dir, log = trained
    with open(output_dir / "metrics.json") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    assert any("loss_mask" in r for r in rows)
    assert "copypaste: Task: panoptic_seg" in log and "VPQ@2" in log and "STQ" in log
    folder = output_dir / "inference" / "vps_synthetic_val"
    assert (folder / "pred.json").is_file()
    assert sorted(os.listdir(folder / "pan_pred")) == ["val_000", "val_001"]
    assert f"Results on vps_synthetic_val: {folder / 'pred.json'}" in log


def test_semantic_eval_only(trained, tiny_root, tmp_path):
    output_dir, _ = trained
    weights = str(
        output_dir / "model_final.pth"
    )  # same model: the vss config only changes the task
    proc = _run(
        tiny_root, VSS_SMOKE, "--eval-only", "MODEL.WEIGHTS", weights, "OUTPUT_DIR", str(tmp_path)
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "copypaste: Task: sem_seg" in log and "mIoU,mVC8,mVC16" in log
    folder = tmp_path / "inference" / "vss_synthetic_val" / "sem_pred" / "val_000"
    assert sorted(os.listdir(folder)) == ["00000000.png", "00000001.png", "00000002.png"]


def test_task_of_another_dataset_is_one_line(tiny_root, tmp_path):
    opts = [
        "MODEL.MASK_FORMER.TEST.PANOPTIC_ON",
        "False",
        "MODEL.MASK_FORMER.TEST.INSTANCE_ON",
        "True",
    ]
    proc = _run(tiny_root, VPS_SMOKE, *opts, "OUTPUT_DIR", str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: Dataset 'vps_synthetic_val' is scored on video panoptic")
    assert "Traceback" not in proc.stderr and not (tmp_path / "metrics.json").exists()

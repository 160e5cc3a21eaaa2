"""The scripts of joint training: datasets/prepare_synthetic_coco.py and the experiment's table."""

import importlib.util
import json
import os
import subprocess
import sys

from video_mask2former.data.coco_images import load_coco_image_dataset

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_prepare_synthetic_coco(tmp_path):
    out = tmp_path / "coco_synthetic"
    cmd = [
        sys.executable, os.path.join(REPO_ROOT, "datasets", "prepare_synthetic_coco.py"),
        "--out", str(out), "--images", "4", "--height", "32", "--width", "40",
        "--segmentation-format", "polygon",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO_ROOT)
    )
    assert proc.returncode == 0, proc.stderr
    records, meta = load_coco_image_dataset(out / "annotations.json", out / "images")
    assert meta["thing_classes"] == ["circle", "square", "triangle"]
    assert records and all(
        isinstance(o["segmentation"], list) for r in records for o in r["annotations"]
    )
    assert sorted(os.listdir(out / "images"))[0] == "000001.jpg"


def _experiment_module():
    path = os.path.join(REPO_ROOT, "tools", "joint_training_experiment.py")
    spec = importlib.util.spec_from_file_location("joint_training_experiment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_experiment_reads_the_final_ap_and_tabulates(tmp_path):
    tool = _experiment_module()
    rows = [{"iteration": 9, "total_loss": 1.0}, {"iteration": 9, "segm/AP": 42.5}]
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(r) for r in rows))
    assert tool.final_ap(str(tmp_path)) == 42.5
    assert tool.final_ap(str(tmp_path / "missing")) is None
    table = tool.summarize({"videos": {0: 40.0, 1: 44.0}, "joint": {0: 50.0, 1: None}})
    assert "42.0 ± 2.8" in table and "50.0 ± 0.0" in table and "40.0, 44.0" in table

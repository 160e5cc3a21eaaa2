"""datasets/prepare_synthetic_coco.py: the synthetic COCO-format image set of joint training."""

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

"""End to end: a DAVIS-style PNG-mask dataset converted by tools/convert_to_ytvis.py, registered
with ``register_ytvis_instances`` (categories from the JSON) and trained for 2 iterations of the
smoke config through train_net_video.py, then evaluated on itself (CPU)."""

import json
import os
import subprocess
import sys

from tests.conftest import requires_detectron2
from tests.data_pipeline.convert.helpers import write_davis

pytestmark = requires_detectron2

RUN_TIMEOUT_S = 600
# train_net_video.main with the converted dataset registered first (argv: JSON, image root, then
# train_net_video.py's command line).
DRIVER = """
import sys
import train_net_video
from detectron2.engine import default_argument_parser
from video_mask2former.d2.datasets import register_ytvis_instances

register_ytvis_instances("converted", {}, sys.argv[1], sys.argv[2])
train_net_video.main(default_argument_parser().parse_args(sys.argv[3:]))
"""


def test_convert_then_train(tmp_path):
    from tests.d2.helpers import REPO_ROOT, SMOKE_CONFIG

    write_davis(str(tmp_path / "davis"))
    classes = tmp_path / "classes.csv"
    classes.write_text("video,object_id,category\nbear,1,bear\nbear,2,bird\ncows,3,cow\n")
    out = tmp_path / "dataset"
    convert = [sys.executable, os.path.join(REPO_ROOT, "tools", "convert_to_ytvis.py")]
    convert += ["png-masks", "--frames", str(tmp_path / "davis/JPEGImages")]
    convert += ["--masks", str(tmp_path / "davis/Annotations"), "--classes", str(classes)]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    proc = subprocess.run(convert + ["--out", str(out)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with open(out / "annotations.json") as f:
        assert len(json.load(f)["categories"]) == 3  # the smoke config's NUM_CLASSES

    output_dir = tmp_path / "train"
    cmd = [sys.executable, "-c", DRIVER, str(out / "annotations.json"), str(out / "JPEGImages")]
    cmd += ["--config-file", SMOKE_CONFIG, "DATASETS.TRAIN", '("converted",)']
    cmd += ["DATASETS.TEST", '("converted",)', "SOLVER.MAX_ITER", "2", "SOLVER.STEPS", "(1,)"]
    cmd += ["SOLVER.IMS_PER_BATCH", "2", "OUTPUT_DIR", str(output_dir)]
    proc = subprocess.run(
        cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert os.path.isfile(output_dir / "model_final.pth")
    with open(output_dir / "metrics.json") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    assert [r["iteration"] for r in rows if "total_loss" in r][-1] == 1
    assert os.path.isfile(output_dir / "inference" / "converted" / "results.json")
    assert "copypaste: AP" in log

"""End to end: a DAVIS-style PNG-mask dataset converted by tools/convert_to_ytvis.py, registered
with train_net_video.py's ``--dataset`` (categories from the JSON) and trained for 2 iterations of
the smoke config, then evaluated on itself (CPU); ``--dataset``'s bad inputs."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import requires_detectron2
from tests.data.convert.helpers import write_davis

pytestmark = requires_detectron2

RUN_TIMEOUT_S = 600


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
    cmd = [sys.executable, os.path.join(REPO_ROOT, "train_net_video.py"), "--dataset"]
    cmd += ["converted", str(out / "annotations.json"), str(out / "JPEGImages")]
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


@pytest.mark.parametrize(
    "name, json_name, folder, message",
    [
        ("ytvis_synthetic_train", "a.json", "frames", "already registered"),
        ("mine", "missing.json", "frames", "annotation file"),
        ("mine", "a.json", "missing", "frame folder"),
    ],
)
def test_dataset_option_bad_inputs_are_one_line(tmp_path, name, json_name, folder, message):
    from tests.d2.helpers import REPO_ROOT, SMOKE_CONFIG

    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "frames").mkdir()
    cmd = [sys.executable, os.path.join(REPO_ROOT, "train_net_video.py"), "--dataset", name]
    cmd += [str(tmp_path / json_name), str(tmp_path / folder), "--config-file", SMOKE_CONFIG]
    cmd += ["OUTPUT_DIR", str(tmp_path / "out")]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: --dataset") and message in lines[-1]

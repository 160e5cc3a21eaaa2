"""The quick start in one command: train_net_video.py writes the synthetic dataset on first use,
trains, evaluates and names its outputs, with a quiet log; user errors and Ctrl-C end with one
line; the last SOLVER.CHECKPOINT_MAX_TO_KEEP periodic checkpoints are kept.

The scripts run in subprocesses with ``DETECTRON2_DATASETS`` pointing at a temporary folder.
"""

import filecmp
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2

# Seconds before a run is considered hung.
RUN_TIMEOUT_S = 600
QUICK_CONFIG = os.path.join(
    "configs", "quick_schedules", "video_maskformer2_R18_synthetic_quick.yaml"
)
# The quick config, cut to two iterations of two clips (the dataset is the full default one).
QUICK_OPTS = ["SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0"]
ESC = "\x1b"


def _env(root):
    from tests.d2.helpers import REPO_ROOT

    env = dict(os.environ, DETECTRON2_DATASETS=str(root), PYTHONPATH=REPO_ROOT)
    env.pop("NO_COLOR", None)
    return env


def _train_cmd(config):
    from tests.d2.helpers import REPO_ROOT

    return [sys.executable, os.path.join(REPO_ROOT, "train_net_video.py"), "--config-file", config]


def _run_train(root, config, *args):
    from tests.d2.helpers import REPO_ROOT

    cmd = _train_cmd(config) + list(args)
    return subprocess.run(
        cmd, env=_env(root), cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )


def _same_tree(a, b):
    """Whether folders a and b hold the same files, byte for byte."""
    names_a = sorted(os.path.relpath(os.path.join(d, f), a) for d, _, fs in os.walk(a) for f in fs)
    names_b = sorted(os.path.relpath(os.path.join(d, f), b) for d, _, fs in os.walk(b) for f in fs)
    assert names_a == names_b
    match, mismatch, errors = filecmp.cmpfiles(a, b, names_a, shallow=False)
    return not mismatch and not errors and len(match) == len(names_a)


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory):
    """The quick-start command (2 iterations) on an empty datasets root."""
    root = tmp_path_factory.mktemp("datasets")
    output_dir = tmp_path_factory.mktemp("quick")
    proc = _run_train(root, QUICK_CONFIG, *QUICK_OPTS, "OUTPUT_DIR", str(output_dir))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return root, output_dir, proc


def test_quick_start_writes_the_dataset_trains_and_evaluates(quick_start):
    root, output_dir, proc = quick_start
    log = proc.stdout + proc.stderr
    writing = [line for line in log.splitlines() if "Writing the synthetic dataset" in line]
    assert len(writing) == 1 and str(root / "ytvis_synthetic") in writing[0]
    assert "prepare_synthetic_ytvis.py" in writing[0]
    assert os.path.isfile(root / "ytvis_synthetic" / "train.json")
    assert not [n for n in os.listdir(root) if n.endswith(".tmp")]
    results = output_dir / "inference" / "ytvis_synthetic_val" / "results.json"
    final = output_dir / "model_final.pth"
    assert results.is_file() and final.is_file()
    assert "copypaste: AP" in log
    last_lines = "\n".join(proc.stdout.splitlines()[-2:])
    assert str(results) in last_lines and str(final) in last_lines


def test_quick_start_dataset_is_the_scripts(quick_start, tmp_path):
    """Byte for byte the files of datasets/prepare_synthetic_ytvis.py with its defaults."""
    from tests.d2.helpers import REPO_ROOT

    root, _, _ = quick_start
    out = tmp_path / "ytvis_synthetic"
    script = os.path.join(REPO_ROOT, "datasets", "prepare_synthetic_ytvis.py")
    subprocess.run(
        [sys.executable, script, "--out", str(out)], env=_env(tmp_path), cwd=REPO_ROOT, check=True
    )
    assert _same_tree(str(out), str(root / "ytvis_synthetic"))


def test_quick_start_log_is_quiet(quick_start):
    """No colour codes in a piped log, no config dump or CUDA-runtime warning on screen; the
    config and the environment are in OUTPUT_DIR, named in the log."""
    _, output_dir, proc = quick_start
    log = proc.stdout + proc.stderr
    assert ESC not in log and ESC not in (output_dir / "log.txt").read_text()
    assert "No CUDA runtime is found" not in log
    assert "Running with full config" not in log and "MASK_FORMER:" not in log
    assert str(output_dir / "config.yaml") in log and (output_dir / "config.yaml").is_file()
    assert "Environment info" in (output_dir / "log.txt").read_text()
    assert len(log.splitlines()) < 100


def test_second_run_reuses_the_dataset(quick_start, tmp_path):
    root, output_dir, _ = quick_start
    weights = str(output_dir / "model_final.pth")
    proc = _run_train(root, QUICK_CONFIG, "--eval-only", *QUICK_OPTS, "MODEL.WEIGHTS", weights,
                      "OUTPUT_DIR", str(tmp_path))  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "Writing the synthetic dataset" not in proc.stdout + proc.stderr
    assert str(tmp_path / "inference" / "ytvis_synthetic_val" / "results.json") in proc.stdout


def test_joint_quick_start_writes_the_image_set(tmp_path):
    """coco_synthetic (the joint quick config) is written on first use as its script writes it."""
    from tests.d2.helpers import REPO_ROOT

    code = (
        "from video_mask2former.d2.datasets import prepare_synthetic_datasets; "
        "prepare_synthetic_datasets(['coco_synthetic_train'])"
    )
    root = tmp_path / "datasets"
    subprocess.run([sys.executable, "-c", code], env=_env(root), cwd=REPO_ROOT, check=True)
    script = os.path.join(REPO_ROOT, "datasets", "prepare_synthetic_coco.py")
    out = tmp_path / "by_script"
    subprocess.run(
        [sys.executable, script, "--out", str(out)], env=_env(root), cwd=REPO_ROOT, check=True
    )
    assert _same_tree(str(out), str(root / "coco_synthetic"))
    assert sorted(os.listdir(root)) == ["coco_synthetic"]


def test_missing_real_dataset_is_one_line_naming_the_path(synthetic_root, tmp_path):
    from tests.d2.helpers import SMOKE_CONFIG

    proc = _run_train(synthetic_root, SMOKE_CONFIG, "DATASETS.TRAIN", "('ytvis_2019_train',)",
                      "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "40", "DATASETS.TEST", "()",
                      "OUTPUT_DIR", str(tmp_path))  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "datasets/README.md" in line
    assert os.path.join(str(synthetic_root), "ytvis_2019", "train.json") in line
    assert not (synthetic_root / "ytvis_2019").exists()  # only synthetic sets are written


def test_ctrl_c_ends_with_one_line_and_keeps_the_last_checkpoints(synthetic_root, tmp_path):
    """SIGINT while training: detectron2's after_train hooks run (metrics.json), then one line
    names the last checkpoint; SOLVER.CHECKPOINT_MAX_TO_KEEP 2 keeps the last two."""
    from tests.d2.helpers import REPO_ROOT, SMOKE_CONFIG

    cmd = _train_cmd(SMOKE_CONFIG) + [
        "SOLVER.MAX_ITER", "1000", "SOLVER.CHECKPOINT_PERIOD", "1",
        "SOLVER.CHECKPOINT_MAX_TO_KEEP", "2", "OUTPUT_DIR", str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=_env(synthetic_root), cwd=REPO_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        for line in proc.stdout:
            if "model_0000003.pth" in line or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-4000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    (line,) = stderr.strip().splitlines()
    last = (tmp_path / "last_checkpoint").read_text()
    assert line.startswith("Interrupted at iteration ")
    assert f"the last checkpoint is {tmp_path / last}; resume with --resume" in line
    periodic = sorted(n for n in os.listdir(tmp_path) if n.startswith("model_"))
    assert len(periodic) == 2 and periodic[-1] == last
    assert (tmp_path / "metrics.json").is_file()


@pytest.fixture
def fake_synthetic(tmp_path, monkeypatch):
    """A split 'fake_synthetic_train' under tmp_path/fake/ registered as a synthetic one, written
    by a fake writer (which fails when ``calls`` holds "fail"); returns (folder, calls)."""
    from video_mask2former.d2 import datasets

    folder = tmp_path / "fake"
    calls = []

    def writer(out):
        calls.append(out)
        os.makedirs(os.path.join(out, "half"))
        if "fail" in calls:
            raise KeyboardInterrupt  # a kill in the middle
        with open(os.path.join(out, "train.json"), "w") as f:
            f.write("{}")

    name = "fake_synthetic_train"
    datasets.register_ytvis_instances(name, {}, str(folder / "train.json"), str(folder))
    monkeypatch.setitem(datasets.SYNTHETIC_WRITERS, name, writer)
    monkeypatch.setitem(datasets.SYNTHETIC_SCRIPTS, writer, "datasets/prepare_fake.py")
    yield folder, calls
    datasets.DatasetCatalog.remove(name)
    datasets.MetadataCatalog.remove(name)


def test_synthetic_dataset_is_written_once(fake_synthetic):
    from video_mask2former.d2.datasets import prepare_synthetic_datasets

    folder, calls = fake_synthetic
    prepare_synthetic_datasets(["fake_synthetic_train", "fake_synthetic_train"])
    prepare_synthetic_datasets(["fake_synthetic_train"])
    assert len(calls) == 1 and (folder / "train.json").is_file()
    assert sorted(os.listdir(folder.parent)) == ["fake"]  # no temporary folder left


def test_killed_generation_leaves_no_dataset(fake_synthetic):
    from video_mask2former.d2.datasets import prepare_synthetic_datasets

    folder, calls = fake_synthetic
    calls.append("fail")
    with pytest.raises(KeyboardInterrupt):
        prepare_synthetic_datasets(["fake_synthetic_train"])
    assert os.listdir(folder.parent) == []  # neither a partial dataset nor its temporary folder


def test_existing_folder_without_annotations_is_not_overwritten(fake_synthetic):
    from video_mask2former.d2.datasets import prepare_synthetic_datasets

    folder, calls = fake_synthetic
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match=f"{folder} exists"):
        prepare_synthetic_datasets(["fake_synthetic_train"])
    assert not calls

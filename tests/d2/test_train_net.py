"""End to end: train_net_video.py trains, resumes and evaluates on a tiny synthetic dataset (CPU).

Each case runs the script in a subprocess with ``DETECTRON2_DATASETS`` pointing at the dataset
written by the ``synthetic_root`` fixture (the built-in ``ytvis_synthetic_*`` splits).
"""

import json
import math
import os
import subprocess
import sys

import pytest

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2

# Seconds before a run is considered hung.
RUN_TIMEOUT_S = 600


def _run(root, output_dir, *args):
    """Run the script; return its log after checking that it succeeded."""
    proc = _run_process(root, output_dir, *args)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    return log


def _run_process(root, output_dir, *args):
    from tests.d2.helpers import REPO_ROOT, SMOKE_CONFIG

    env = dict(os.environ, DETECTRON2_DATASETS=str(root), PYTHONPATH=REPO_ROOT)
    cmd = [
        sys.executable,
        os.path.join(REPO_ROOT, "train_net_video.py"),
        "--config-file",
        SMOKE_CONFIG,
        *args,
        "OUTPUT_DIR",
        str(output_dir),
    ]
    return subprocess.run(
        cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )


def _metrics(output_dir):
    with open(os.path.join(output_dir, "metrics.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


def _check_results_json(path, root):
    from video_mask2former.evaluation import VideoSpec, validate_results

    with open(os.path.join(root, "ytvis_synthetic", "valid.json")) as f:
        videos = {
            v["id"]: VideoSpec(len(v["file_names"]), v["height"], v["width"])
            for v in json.load(f)["videos"]
        }
    with open(path) as f:
        results = json.load(f)
    validate_results(results, videos, category_ids=[1, 2, 3])
    assert {r["video_id"] for r in results} == set(videos)
    assert len(results) == 10 * len(videos)  # TOPK per video


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    """A 4-iteration training run (checkpoints after iterations 2 and 4), then its final eval."""
    output_dir = tmp_path_factory.mktemp("train")
    log = _run(synthetic_root, output_dir)
    return output_dir, log


def test_training_run(trained, synthetic_root):
    output_dir, log = trained
    rows = [r for r in _metrics(output_dir) if "total_loss" in r]
    assert rows and rows[-1]["iteration"] == 3
    losses = {k: v for k, v in rows[-1].items() if k.startswith("loss_")}
    assert {"loss_ce", "loss_mask", "loss_dice", "loss_ce_0"} <= set(losses)
    assert all(math.isfinite(v) for v in losses.values())
    for name in ("model_0000001.pth", "model_final.pth", "last_checkpoint"):
        assert os.path.isfile(os.path.join(output_dir, name)), name
    # The final evaluation of DefaultTrainer on DATASETS.TEST (annotated synthetic val).
    _check_results_json(
        os.path.join(output_dir, "inference", "ytvis_synthetic_val", "results.json"), synthetic_root
    )
    assert "copypaste: AP" in log


@pytest.mark.parametrize("window_size", ["0", "2"])  # whole video; windowed long-video mode
def test_eval_only(trained, synthetic_root, tmp_path, window_size):
    output_dir, _ = trained
    weights = os.path.join(output_dir, "model_final.pth")
    log = _run(
        synthetic_root,
        tmp_path,
        "--eval-only",
        "MODEL.WEIGHTS",
        weights,
        "MODEL.MASK_FORMER.TEST.WINDOW_SIZE",
        window_size,
    )
    _check_results_json(
        os.path.join(tmp_path, "inference", "ytvis_synthetic_val", "results.json"), synthetic_root
    )
    assert "copypaste: AP" in log


def test_missing_weights_is_a_clear_error(synthetic_root, tmp_path):
    from tests.d2.helpers import REPO_ROOT, SMOKE_CONFIG

    env = dict(os.environ, DETECTRON2_DATASETS=str(synthetic_root), PYTHONPATH=REPO_ROOT)
    cmd = [
        sys.executable,
        os.path.join(REPO_ROOT, "train_net_video.py"),
        "--config-file",
        SMOKE_CONFIG,
        "--eval-only",
        "MODEL.WEIGHTS",
        "no_such_model.pkl",
        "OUTPUT_DIR",
        str(tmp_path),
    ]
    proc = subprocess.run(
        cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    # One line with the syntax to fix it, no traceback.
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: Checkpoint 'no_such_model.pkl'") and "MODEL.WEIGHTS PATH" in line


def test_resume_continues_with_the_same_schedule(trained, synthetic_root, tmp_path):
    """Resuming from the checkpoint after iteration 2 runs iterations 2-3 with the same LR."""
    import shutil

    output_dir, _ = trained
    for name in ("model_0000001.pth", "config.yaml"):
        shutil.copy(os.path.join(output_dir, name), tmp_path / name)
    (tmp_path / "last_checkpoint").write_text("model_0000001.pth")
    log = _run(synthetic_root, tmp_path, "--resume")
    assert "Starting training from iteration 2" in log
    first = [r for r in _metrics(output_dir) if "lr" in r][-1]
    resumed = [r for r in _metrics(tmp_path) if "lr" in r][-1]
    assert resumed["iteration"] == first["iteration"] == 3
    # STEPS (3,): iteration 3 runs at BASE_LR * GAMMA; a scheduler restarted from 0 would not.
    assert resumed["lr"] == pytest.approx(first["lr"]) and first["lr"] == pytest.approx(3e-5)


@pytest.mark.parametrize("weights", ["another_architecture", "no_weights"])
def test_eval_only_with_weights_that_do_not_fit_fails(synthetic_root, tmp_path, weights):
    """No random model is scored; the error names the file."""
    import torch
    from detectron2.modeling import build_model

    from tests.d2.helpers import SMOKE_CONFIG, video_cfg

    path = tmp_path / f"{weights}.pth"
    if weights == "no_weights":
        torch.save({"model": {}}, path)
    else:
        opts = ["MODEL.MASK_FORMER.HIDDEN_DIM", 32, "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", 5]
        torch.save({"model": build_model(video_cfg(SMOKE_CONFIG, opts)).state_dict()}, path)
    output_dir = tmp_path / "output"
    proc = _run_process(synthetic_root, output_dir, "--eval-only", "MODEL.WEIGHTS", str(path))
    assert proc.returncode == 2  # a user error: "error: ..." without a traceback
    assert proc.stderr.startswith("error: ") and str(path) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (output_dir / "inference").exists()  # no results.json


def test_resume_past_a_truncated_final_checkpoint(trained, synthetic_root, tmp_path):
    """A kill while model_final.pth was written (older versions wrote in place): --resume skips
    it for model_0000003.pth, has no step left, and rewrites a complete model_final.pth."""
    import shutil

    import torch

    from video_mask2former.checkpoint import read_checkpoint

    output_dir, _ = trained
    for name in ("model_0000001.pth", "model_0000003.pth", "model_final.pth", "last_checkpoint"):
        shutil.copy(os.path.join(output_dir, name), tmp_path / name)
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    final = tmp_path / "model_final.pth"
    final.write_bytes(final.read_bytes()[: final.stat().st_size // 2])
    log = _run(synthetic_root, tmp_path, "--resume")
    assert f"Cannot resume from {final}" in log
    assert "Starting training from iteration 4" in log
    resumed = read_checkpoint(str(tmp_path / "model_0000003.pth"))
    rewritten = read_checkpoint(str(final))
    assert resumed.keys() == rewritten.keys()
    assert all(torch.equal(v, rewritten[k]) for k, v in resumed.items())
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def _train_net_module():
    import importlib.util

    from tests.d2.helpers import REPO_ROOT

    spec = importlib.util.spec_from_file_location(
        "train_net_video", os.path.join(REPO_ROOT, "train_net_video.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys):
    """Every USER_ERRORS type ends run() with "error: <message>" and status 2; any
    other exception propagates (its traceback is printed)."""
    train_net = _train_net_module()
    for error_type in train_net.USER_ERRORS:

        def fail(args, error_type=error_type):
            raise error_type("what is wrong and what to do")

        monkeypatch.setattr(train_net, "main", fail)
        with pytest.raises(SystemExit) as exit_info:
            train_net.run(None)
        assert exit_info.value.code == 2, error_type
        assert capsys.readouterr().err == "error: what is wrong and what to do\n"

    def bug(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(train_net, "main", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        train_net.run(None)

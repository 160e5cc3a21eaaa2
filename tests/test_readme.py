"""README.md's shell commands, run as a user would run them.

Every command of README.md's ```bash blocks is covered by the first rule of :data:`RULES` whose
pattern finds it: either it runs here, in
README order, in a temporary folder laid out like the repository (its scripts and configs linked,
its outputs and datasets fresh), with only smaller sizes or fewer iterations appended the way a
user would (config overrides at the end of the command); or it is skipped for a stated reason
(network, GPUs, hours of training). A README command that no rule covers, or a rule that covers no
command, fails :func:`test_every_readme_command_has_a_rule`, so a new command cannot escape the
test and a wrong path or flag fails CI.

Running the commands needs detectron2 (training, evaluation, the demo); without it only the
coverage test runs, plus the commands of "Train on your own videos" that need no detectron2
(the example, the conversion, the inspector, the split, the visualiser): that section runs as its
own test (``-k own_data``), the rest of README in README order. Cost: about 3 minutes on 2 CPU
cores (README, "Install and CI").
"""

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from typing import List, Optional, Tuple

import pytest

from tests.conftest import HAS_DETECTRON2

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO_ROOT, "README.md")
# What the working folder links from the repository (datasets/ gets its files linked one by one,
# so that the datasets the commands write stay in the working folder).
LINKED = ("configs", "tools", "benchmarks", "demo_video", "train_net_video.py")
COMMAND_TIMEOUT_S = 600
# Appended to every training run of the quick configurations: a handful of iterations.
QUICK_TRAINING = "SOLVER.MAX_ITER 4 SOLVER.CHECKPOINT_PERIOD 4"

QUICK_OUTPUT = "output/quick_schedules/R18_synthetic"
VPS_OUTPUT = "output/quick_schedules/R18_vps_synthetic"
VSS_OUTPUT = "output/quick_schedules/R18_vss_synthetic"
# "Train on your own videos": a section of its own, run by its own test.
OWN_DATA_SECTION = "Train on your own videos"
OWN_DATA_OUTPUT = "output/own_data"
# Appended to the example's generator: 8 videos of 4 frames (the split still has both sides).
OWN_DATA_EXAMPLE = "--videos 8 --frames 4"


@dataclass(frozen=True)
class Rule:
    """How the test treats the README commands that ``pattern`` (a regex) finds.

    Attributes:
        pattern (str): searched in the command (its lines joined).
        skip (str): why it is not run here ("" = it runs).
        append (str): appended to the command (sizes, iterations), as a user would.
        creates (tuple[str]): files the command must have written (relative to the folder).
        detectron2 (bool): whether the command needs detectron2 (read for the own-data section,
            whose other commands also run without it).
    """

    pattern: str
    skip: str = ""
    append: str = ""
    creates: Tuple[str, ...] = ()
    detectron2: bool = True


RULES: List[Rule] = [
    # --- install and test ---
    Rule(r"^pip install -r requirements\.txt", skip=".ci/run runs the install line verbatim"),
    Rule(r"^python -m pytest -q tests$", skip="the test suite itself (this file is part of it)"),
    # --- quick start (synthetic data) ---
    Rule(r"^export DETECTRON2_DATASETS=datasets\b"),
    Rule(
        r"^python datasets/prepare_synthetic_ytvis\.py --out datasets/ytvis_synthetic$",
        creates=("datasets/ytvis_synthetic/train.json", "datasets/ytvis_synthetic/valid.json"),
    ),
    Rule(
        r"^python train_net_video\.py --config-file "
        r"configs/quick_schedules/video_maskformer2_R18_synthetic_quick\.yaml$",
        append=QUICK_TRAINING,
        creates=(f"{QUICK_OUTPUT}/model_final.pth",),
    ),
    Rule(
        r"--eval-only MODEL\.WEIGHTS output/quick_schedules/R18_synthetic/model_final\.pth$",
        creates=(f"{QUICK_OUTPUT}/inference/ytvis_synthetic_val/results.json",),
    ),
    Rule(
        r"^python demo_video/demo\.py .*--input datasets/ytvis_synthetic/valid/JPEGImages/"
        r"video_00001 --output output/demo\.mp4",
        creates=("output/demo.mp4", "output/demo_results.json"),
    ),
    # --- train on your own videos (the example export, converted, split, trained) ---
    Rule(
        r"^python datasets/prepare_own_data_example\.py --out datasets/own_example$",
        append=OWN_DATA_EXAMPLE,
        creates=("datasets/own_example/classes.csv",),
        detectron2=False,
    ),
    Rule(
        r"^python tools/convert_to_ytvis\.py png-masks --frames datasets/own_example/JPEGImages ",
        creates=("datasets/own_ytvis/annotations.json",),
        detectron2=False,
    ),
    Rule(
        r"^python tools/inspect_dataset\.py datasets/own_ytvis/annotations\.json ", detectron2=False
    ),
    Rule(
        r"^python tools/split_ytvis\.py datasets/own_ytvis/annotations\.json ",
        creates=("datasets/own_ytvis/train.json", "datasets/own_ytvis/val.json"),
        detectron2=False,
    ),
    Rule(
        r"^python tools/visualize_data\.py --source annotation --json datasets/own_ytvis/val\.json",
        detectron2=False,
    ),
    Rule(
        r"^python train_net_video\.py .*--dataset own_train datasets/own_ytvis/train\.json ",
        append=QUICK_TRAINING,
        creates=(
            f"{OWN_DATA_OUTPUT}/model_final.pth",
            f"{OWN_DATA_OUTPUT}/inference/own_val/results.json",
        ),
    ),
    Rule(
        rf"--eval-only .*MODEL\.WEIGHTS {OWN_DATA_OUTPUT}/model_final\.pth$",
        creates=(f"{OWN_DATA_OUTPUT}/inference/own_val/results.json",),
    ),
    Rule(
        r"^python demo_video/demo\.py .*--input datasets/own_ytvis/JPEGImages/\S+ "
        r"--output output/own_demo\.mp4",
        creates=("output/own_demo.mp4", "output/own_demo.json"),
    ),
    # --- real datasets, GPUs ---
    Rule(r"--num-gpus 8", skip="8 GPUs and a downloaded dataset (YouTube-VIS / OVIS / COCO)"),
    Rule(
        r"^OMP_NUM_THREADS=1 python train_net_video\.py --num-gpus 2 --dist-url auto",
        append="SOLVER.MAX_ITER 2",
        creates=("output/quick_schedules/R18_synthetic_2proc/model_final.pth",),
    ),
    # --- joint training on synthetic data ---
    Rule(
        r"^python datasets/prepare_synthetic_coco\.py --out datasets/coco_synthetic",
        creates=("datasets/coco_synthetic/annotations.json",),
    ),
    Rule(
        r"configs/quick_schedules/video_maskformer2_R18_synthetic_joint_quick\.yaml$",
        append="SOLVER.MAX_ITER 2",
    ),
    Rule(
        r"^python -m benchmarks\.joint_training_experiment ",
        skip="an experiment of 18 training runs (half an hour); its figures are in README",
    ),
    # --- scoring ---
    Rule(
        r"^python tools/evaluate_ytvis\.py --gt datasets/ytvis_synthetic/valid\.json",
        creates=("output/scores.json",),
    ),
    # --- live video ---
    Rule(r"--input 0 --online", skip="a camera (--input 0) and a placeholder config (...)"),
    Rule(
        r"--input datasets/ytvis_synthetic/valid/JPEGImages/video_00001 --online",
        creates=("output/live.mp4", "output/live.jsonl"),
    ),
    # --- Hugging Face, export: the official checkpoint ---
    Rule(r"hf://<repo_id>", skip="network (the Hugging Face Hub)"),
    Rule(r"model_final_34112b\.pkl", skip="network: the official R50 checkpoint (a download)"),
    Rule(
        r"^python tools/export_model\.py .*--output output/quick\.onnx",
        creates=("output/quick.onnx",),
    ),
    Rule(r"--onnx-model output/quick\.onnx", creates=("output/demo_onnx.mp4",)),
    # --- video panoptic / semantic segmentation ---
    Rule(r"--gt-json datasets/VIPSeg_720P/", skip="a downloaded dataset (VIPSeg) and its model"),
    Rule(r"--gt-root datasets/VSPW_480p ", skip="a downloaded dataset (VSPW) and its model"),
    Rule(
        r"^python train_net_video\.py --config-file "
        r"configs/quick_schedules/video_maskformer2_R18_vps_synthetic_quick\.yaml$",
        append=QUICK_TRAINING,
        creates=(f"{VPS_OUTPUT}/model_final.pth",),
    ),
    Rule(
        rf"--eval-only MODEL\.WEIGHTS {VPS_OUTPUT}/model_final\.pth$",
        creates=(f"{VPS_OUTPUT}/inference/vps_synthetic_val/pred.json",),
    ),
    Rule(
        r"^python tools/evaluate_vps\.py --gt-json datasets/vps_synthetic/",
        creates=("output/vps_scores.json",),
    ),
    Rule(
        r"^python train_net_video\.py --config-file "
        r"configs/quick_schedules/video_maskformer2_R18_vss_synthetic_quick\.yaml$",
        append=QUICK_TRAINING,
        creates=(f"{VSS_OUTPUT}/model_final.pth",),
    ),
    Rule(
        rf"--eval-only MODEL\.WEIGHTS {VSS_OUTPUT}/model_final\.pth$",
        creates=(f"{VSS_OUTPUT}/inference/vss_synthetic_val/sem_pred/val_000/00000000.png",),
    ),
    Rule(
        r"^python tools/evaluate_vss\.py --gt-root datasets/vss_synthetic ",
        creates=("output/vss_scores.json",),
    ),
    Rule(
        r"^python demo_video/demo\.py .*--output output/demo_vps\.mp4",
        creates=("output/demo_vps.mp4", "output/demo_vps_masks/pred.json"),
    ),
    Rule(
        r"^python demo_video/demo\.py .*--output output/demo_vss\.mp4 --online",
        creates=("output/demo_vss.mp4", "output/demo_vss_masks/val_000/00000000.png"),
    ),
    # --- GPU ---
    Rule(r"^python -m benchmarks\.gpu_report ", skip="a GPU"),
]


def readme_commands(path: str = README, section: Optional[str] = None) -> List[str]:
    """The commands of the ```bash blocks of ``path`` (of its ``## <section>`` only, when given),
    in order: continuation lines joined, comment lines dropped."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if section is not None:
        found = re.search(
            rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL
        )
        assert found, f"{path} has no section '## {section}'"
        text = found.group(1)
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        pending = ""
        for line in block.splitlines():
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1].rstrip() + " "
                continue
            commands.append(pending + stripped)
            pending = ""
    return commands


def rule_for(command: str) -> Optional[Rule]:
    """The first rule whose pattern finds ``command`` (None when none does)."""
    return next((rule for rule in RULES if re.search(rule.pattern, command)), None)


def test_every_readme_command_has_a_rule():
    commands = readme_commands()
    assert commands, "no ```bash block found in README.md"
    uncovered = [c for c in commands if rule_for(c) is None]
    assert not uncovered, (
        "README commands that tests/test_readme.py neither runs nor lists with a reason: "
        f"{uncovered}"
    )
    used = {rule_for(c) for c in commands}
    unused = [r.pattern for r in RULES if r not in used]
    assert not unused, f"rules of tests/test_readme.py that match no README command: {unused}"


def test_parser_joins_continuations_and_drops_comments(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "text\n```bash\n# a comment\npython a.py \\\n    --x 1  # trailing\n\nls\n```\n"
        "```python\nprint(1)\n```\n"
    )
    assert readme_commands(str(readme)) == ["python a.py --x 1  # trailing", "ls"]
    readme.write_text(
        "## A\n```bash\nls a\n```\n## B b\n```bash\nls b\n```\n"
        "### sub\n```bash\nls c\n```\n## C\n```bash\nls d\n```\n"
    )
    assert readme_commands(str(readme), section="B b") == ["ls b", "ls c"]
    assert readme_commands(str(readme), section="C") == ["ls d"]


def _workdir(tmp_path) -> str:
    """A folder laid out like the repository: scripts and configs linked, datasets/ fresh."""
    for name in LINKED:
        os.symlink(os.path.join(REPO_ROOT, name), tmp_path / name)
    (tmp_path / "datasets").mkdir()
    for name in os.listdir(os.path.join(REPO_ROOT, "datasets")):
        source = os.path.join(REPO_ROOT, "datasets", name)
        if os.path.isfile(source):
            os.symlink(source, tmp_path / "datasets" / name)
    return str(tmp_path)


def _run(command: str, folder: str, env: dict) -> None:
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert proc.returncode == 0, (
        f"README command failed (exit {proc.returncode}): {command}\n"
        f"--- stdout (end) ---\n{proc.stdout[-3000:]}\n--- stderr (end) ---\n{proc.stderr[-3000:]}"
    )


def _run_commands(commands: List[str], folder: str, detectron2: bool = True) -> List[str]:
    """Run ``commands`` as their rules say, in order, in ``folder`` (those that need detectron2
    only when ``detectron2``); returns those that ran."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("DETECTRON2_DATASETS", None)
    ran = []
    for command in commands:
        rule = rule_for(command)
        if rule is None or rule.skip or (rule.detectron2 and not detectron2):
            continue
        export = re.match(r"export (\w+)=(\S+)", command)
        if export:
            env[export.group(1)] = export.group(2)
            continue
        # `python` is the interpreter running the tests (after any VAR=value prefixes)
        full = re.sub(r"^((?:\w+=\S+ )*)python ", rf"\1{shlex.quote(sys.executable)} ", command)
        _run(f"{full} {rule.append}".strip(), folder, env)
        missing = [p for p in rule.creates if not os.path.isfile(os.path.join(folder, p))]
        assert not missing, f"{command} did not write {missing}"
        ran.append(command)
    return ran


@pytest.mark.skipif(not HAS_DETECTRON2, reason="the README's commands need detectron2")
def test_readme_commands_run_as_written(tmp_path):
    own_data = set(readme_commands(section=OWN_DATA_SECTION))
    commands = [c for c in readme_commands() if c not in own_data]
    ran = _run_commands(commands, _workdir(tmp_path))
    assert len(ran) >= 8, ran


def test_own_data_commands_run_as_written(tmp_path):
    """README's "Train on your own videos" from the generated export to the demo; without
    detectron2, up to the training (the example, conversion, inspection, split, visualisation)."""
    commands = readme_commands(section=OWN_DATA_SECTION)
    ran = _run_commands(commands, _workdir(tmp_path), detectron2=HAS_DETECTRON2)
    assert len(ran) == (8 if HAS_DETECTRON2 else 5), ran

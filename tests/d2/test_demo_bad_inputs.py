"""One table of bad inputs of the demo (demo_video/demo.py), run in-process on the smoke model.

Each row builds the arguments of a run that must be refused (what is wrong, how the arguments are
built, the error type, text the error must hold). Every row also writes a "previous run" file
where the outputs go when it names one: the refused run must leave it as it was. The exit status
of a refusal is checked once in a subprocess.
"""

import os
import subprocess
import sys

import pytest

from tests.conftest import requires_detectron2
from tests.d2.test_demo import (  # noqa: F401  (fixtures)
    RUN_TIMEOUT_S,
    UNREGISTERED,
    _video_folder,
    demo,
    demo_argv,
    smoke_onnx,
    weights,
    write_categories,
)
from tests.d2.test_demo_online import NUM_FRAMES, _write_video

pytestmark = requires_detectron2

PREVIOUS = "the previous run's output\n"


class _Context:
    """What a row builds its arguments from: tmp_path, the synthetic frames, weights."""

    def __init__(self, tmp_path, frames, weights):  # noqa: F811
        self.tmp, self.frames, self.weights = tmp_path, frames, weights
        self.previous = []  # files that must be left as they were

    def path(self, name):
        return str(self.tmp / name)

    def existing(self, name):
        """An output of a previous run."""
        path = self.path(name)
        with open(path, "w") as f:
            f.write(PREVIOUS)
        self.previous.append(path)
        return path

    def truncated_video(self):
        video = _write_video(self.path("full.avi"), NUM_FRAMES)
        with open(video, "rb") as f:
            data = f.read()
        with open(self.path("truncated.avi"), "wb") as f:
            f.write(data[: len(data) * 6 // 10])  # the index and the last frames are lost
        return self.path("truncated.avi")

    def other_onnx_model(self):
        """An ONNX file of another model (input 'image', output 'out')."""
        onnx = pytest.importorskip("onnx")
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            [helper.make_node("Identity", ["image"], ["out"])],
            "other",
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
        onnx.save(model, self.path("other.onnx"))
        return self.path("other.onnx")


def _symlink(ctx, target, name):
    os.symlink(target, ctx.path(name))
    return ctx.path(name)


def _readonly_folder(ctx):
    """A folder nobody may write into (root writes through permission bits: /sys then)."""
    if os.geteuid() == 0:
        return "/sys/video_mask2former_demo"
    folder = ctx.tmp / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    return str(folder)


def _save(ctx, *args, output="masks.json", opts=()):
    """A run writing --save-masks to ``output`` (existing: a previous run's)."""
    return demo_argv(*args, "--save-masks", ctx.existing(output), weights=ctx.weights, opts=opts)


ROWS = [
    # --- categories (silent 3): a dataset registered only by a training script ---
    (
        "dataset not registered, no --categories",
        lambda ctx: _save(ctx, "--input", ctx.frames, opts=UNREGISTERED),
        "CategoriesError",
        "'my_custom_val' of the config is not registered in the demo",
    ),
    (
        "--categories with 2 categories, NUM_CLASSES 3",
        lambda ctx: _save(
            ctx, "--input", ctx.frames, "--categories", write_categories(ctx.path("c.json"), [1, 2])
        ),
        "CategoriesError",
        "has 2 categories, but the model predicts MODEL.SEM_SEG_HEAD.NUM_CLASSES = 3",
    ),
    (
        "--categories with an id listed twice",
        lambda ctx: _save(
            ctx,
            "--input",
            ctx.frames,
            "--categories",
            write_categories(ctx.path("c.json"), [1, 2, 2]),
        ),
        "YTVISFormatError",
        "category id 2 appears more than once",
    ),
    (
        "--categories that is not JSON",
        lambda ctx: _save(ctx, "--input", ctx.frames, "--categories", ctx.existing("c.txt")),
        "YTVISFormatError",
        "c.txt: not valid JSON",
    ),
    # --- the same file twice (data loss 4), or an input overwritten ---
    (
        "--save-masks X --output X",
        lambda ctx: _save(ctx, "--input", ctx.frames, "--output", ctx.path("masks.json")),
        "UsageError",
        "are the same file",
    ),
    (
        "--save-masks through a symlink to --output",
        lambda ctx: _save(
            ctx,
            "--input",
            ctx.frames,
            "--output",
            _symlink(ctx, ctx.path("masks.json"), "link.mp4"),
        ),
        "UsageError",
        "are the same file",
    ),
    (
        "--save-masks as a relative path to --output",
        lambda ctx: _save(
            ctx, "--input", ctx.frames, "--output", os.path.relpath(ctx.path("masks.json"))
        ),
        "UsageError",
        "are the same file",
    ),
    (
        "--output folder is the input folder",
        lambda ctx: _save(ctx, "--input", ctx.frames, "--output", ctx.frames),
        "UsageError",
        "is the input",
    ),
    # --- outputs checked before the input, the weights and inference ---
    (
        "read-only output folder, found before the (missing) weights",
        lambda ctx: demo_argv(
            "--input",
            ctx.frames,
            "--output",
            os.path.join(_readonly_folder(ctx), "vis.mp4"),
            weights=ctx.path("missing.pth"),
        ),
        "OSError",
        "cannot write",
    ),
    # --- nothing truncated before the checks (data loss 1) ---
    (
        "--online, an existing --save-masks, a missing input",
        lambda ctx: _save(ctx, "--online", "--input", ctx.path("typo.avi"), output="m.jsonl"),
        "FrameSourceError",
        "typo.avi",
    ),
    (
        "--online, an existing --save-masks and --output, missing weights",
        lambda ctx: demo_argv(
            "--online",
            "--input",
            ctx.frames,
            "--save-masks",
            ctx.existing("m.jsonl"),
            "--output",
            ctx.existing("vis.mp4"),
            weights=ctx.path("missing.pth"),
        ),
        "FileNotFoundError",
        "missing.pth",
    ),
    # --- truncated video (silent 10): an error naming the counts, nothing written ---
    (
        "offline, a truncated video file",
        lambda ctx: _save(ctx, "--input", ctx.truncated_video(), "--output", ctx.existing("v.mp4")),
        "FrameSourceError",
        f"of its {NUM_FRAMES} frames (a truncated or damaged file?)",
    ),
    # --- ONNX files (silent 5): never ignored, checked ---
    (
        "--online --onnx-model that is not ONNX",
        lambda ctx: _save(
            ctx, "--online", "--input", ctx.frames, "--onnx-model", ctx.existing("w.onnx")
        ),
        "OnnxModelError",
        "w.onnx: not a loadable ONNX model",
    ),
    (
        "--onnx-model of another model",
        lambda ctx: _save(ctx, "--input", ctx.frames, "--onnx-model", ctx.other_onnx_model()),
        "OnnxModelError",
        "other.onnx: not a video_mask2former window network: expected one input 'frames'",
    ),
]


@pytest.mark.parametrize("build, error, text", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_demo_refuses(demo, synthetic_root, weights, tmp_path, build, error, text):  # noqa: F811
    ctx = _Context(tmp_path, _video_folder(synthetic_root), weights)
    argv = build(ctx)
    with pytest.raises((ValueError, OSError)) as caught:
        demo.main(argv)
    names = [cls.__name__ for cls in type(caught.value).__mro__]
    assert error in names, f"{type(caught.value).__name__}: {caught.value}"
    assert text in str(caught.value) and "\n" not in str(caught.value)
    for path in ctx.previous:
        with open(path) as f:
            assert f.read() == PREVIOUS, f"{path} was changed"
    assert not [name for name in os.listdir(tmp_path) if ".partial" in name]  # no temporary left


def test_onnx_file_of_another_class_count(demo, synthetic_root, smoke_onnx, tmp_path):  # noqa: F811
    """A 3-class ONNX file with a 4-class config (and 4 categories) is refused, naming both."""
    categories = write_categories(tmp_path / "c.json", [1, 2, 3, 4])
    argv = demo_argv(
        "--input",
        _video_folder(synthetic_root),
        "--save-masks",
        str(tmp_path / "m.json"),
        "--onnx-model",
        smoke_onnx,
        "--categories",
        categories,
        opts=("MODEL.SEM_SEG_HEAD.NUM_CLASSES", "4"),
    )
    with pytest.raises(ValueError, match="smoke.onnx predicts 3 classes, expected 4"):
        demo.main(argv)
    assert not (tmp_path / "m.json").exists()


def test_usage_errors_exit_2_with_one_line(synthetic_root, tmp_path):
    from tests.d2.helpers import REPO_ROOT

    argv = demo_argv(
        "--input", _video_folder(synthetic_root), "--save-masks", str(tmp_path / "m.json")
    )
    command = [sys.executable, os.path.join(REPO_ROOT, "demo_video", "demo.py"), *argv]
    proc = subprocess.run(
        command + list(UNREGISTERED),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip().splitlines()[-1].startswith("demo.py: error: dataset 'my_custom_val'")
    )


# --- weights that cannot be used: one line "SCRIPT: error: ..." (exit 1), no traceback, from
# the demo and from tools/export_model.py (the old export printed a traceback) ---
def _not_a_checkpoint(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"not a checkpoint")
    return str(path)


def _other_model(tmp_path):
    import torch

    path = tmp_path / "other.pth"
    torch.save({"model": {"other.weight": torch.zeros(2)}}, str(path))
    return str(path)


WEIGHTS_ROWS = [
    ("demo, empty MODEL.WEIGHTS", "demo.py", lambda tmp: "", "MODEL.WEIGHTS is empty"),
    ("demo, not a checkpoint", "demo.py", _not_a_checkpoint, "is not a readable checkpoint"),
    ("export, missing", "export_model.py", lambda tmp: str(tmp / "missing.pth"), "does not exist"),
    ("export, not a checkpoint", "export_model.py", _not_a_checkpoint, "not a readable checkpoint"),
    ("export, another model", "export_model.py", _other_model, "does not fit the model"),
]


@pytest.mark.parametrize(
    "script, build, text", [r[1:] for r in WEIGHTS_ROWS], ids=[r[0] for r in WEIGHTS_ROWS]
)
def test_unusable_weights_end_with_one_error_line(synthetic_root, tmp_path, script, build, text):
    from tests.d2.helpers import REPO_ROOT, SMOKE_CONFIG

    weights = build(tmp_path)  # noqa: F811
    if script == "demo.py":
        command = [os.path.join(REPO_ROOT, "demo_video", "demo.py")]
        command += demo_argv("--input", _video_folder(synthetic_root), "--save-masks", "m.json")
        command += ["MODEL.WEIGHTS", weights]
    else:
        command = [os.path.join(REPO_ROOT, "tools", "export_model.py"), "--config-file"]
        command += [SMOKE_CONFIG, "--format", "onnx", "--frames", "1", "--height", "32"]
        command += ["--width", "32", "--output", "x.onnx", "MODEL.WEIGHTS", weights]
    proc = subprocess.run(
        [sys.executable, *command],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"{script}: error: ") and text in errors[0]
    assert not os.path.exists(tmp_path / "x.onnx") and not os.path.exists(tmp_path / "m.json")

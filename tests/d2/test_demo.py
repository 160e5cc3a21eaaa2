"""demo_video/demo.py end to end on a folder of synthetic frames (CPU)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2

RUN_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A checkpoint of the smoke configuration's model (random weights)."""
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from tests.d2.helpers import SMOKE_CONFIG, video_cfg

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    DetectionCheckpointer(build_model(video_cfg(SMOKE_CONFIG)), str(folder)).save("model")
    return str(folder / "model.pth")


def _demo(*args, weights=None, env=None):
    from tests.d2.helpers import REPO_ROOT, SMOKE_CONFIG

    opts = ["--opts", "MODEL.DEVICE", "cpu"] + (["MODEL.WEIGHTS", weights] if weights else [])
    cmd = [
        sys.executable,
        os.path.join(REPO_ROOT, "demo_video", "demo.py"),
        "--config-file",
        SMOKE_CONFIG,
        *args,
        *opts,
    ]
    env = None if env is None else {**os.environ, **env}
    return subprocess.run(
        cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env
    )


def _video_folder(root):
    base = os.path.join(str(root), "ytvis_synthetic", "valid", "JPEGImages")
    return os.path.join(base, sorted(os.listdir(base))[0])


def test_demo_writes_frames_video_and_masks(synthetic_root, weights, tmp_path):
    frames = _video_folder(synthetic_root)
    out_frames, masks = tmp_path / "vis", tmp_path / "masks.json"
    proc = _demo(
        "--input",
        frames,
        "--output",
        str(out_frames),
        "--save-masks",
        str(masks),
        "--confidence-threshold",
        "0",
        weights=weights,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(out_frames)) == sorted(os.listdir(frames))
    with open(masks) as f:
        results = json.load(f)
    assert len(results) == 10  # TEST.TOPK, none below threshold 0
    assert all(len(r["segmentations"]) == 3 and r["category_id"] in (1, 2, 3) for r in results)
    assert results[0]["segmentations"][0]["size"] == [64, 80]

    video = tmp_path / "vis.mp4"
    proc = _demo(
        "--input",
        os.path.join(frames, "*.jpg"),
        "--output",
        str(video),
        "--save-masks",
        str(masks),
        "--confidence-threshold",
        "1.01",
        weights=weights,
        env={"FORCE_COLOR": "1"},  # what termcolor < 2.1 did whatever the output
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert video.stat().st_size > 0
    with open(masks) as f:
        assert json.load(f) == []  # the threshold removes every instance
    assert "Kept 0 instances of score >= 1.01" in proc.stdout
    assert "\x1b[" not in proc.stdout + proc.stderr  # no colour codes: not a terminal
    _check_codec(proc.stdout, str(video))


def _check_codec(log, video):
    """The demo's log names the codec of ``video``: H.264 when PyAV is installed (checked in the
    file), else OpenCV's mp4v."""
    import importlib.util

    (line,) = [line for line in log.splitlines() if f"Writing {video}: " in line]
    if importlib.util.find_spec("av") is None:
        assert "mp4v" in line and "pip install av" in line
        return
    import av

    assert "H.264" in line
    with av.open(video) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_demo_clear_errors(tmp_path, weights):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _demo("--input", str(empty), "--output", str(tmp_path / "o"), weights=weights)
    assert proc.returncode != 0 and "has no frames" in proc.stderr

    proc = _demo(
        "--input",
        str(empty),
        "--output",
        str(tmp_path / "o"),
        weights=str(tmp_path / "missing.pth"),
    )
    assert proc.returncode != 0 and "has no frames" in proc.stderr  # input checked first

    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "00000.jpg").write_bytes(b"broken")
    proc = _demo("--input", str(frames), "--output", str(tmp_path / "o"), weights=weights)
    assert proc.returncode != 0 and "00000.jpg" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_missing_checkpoint(synthetic_root, tmp_path):
    proc = _demo(
        "--input",
        _video_folder(synthetic_root),
        "--output",
        str(tmp_path / "o"),
        weights=str(tmp_path / "missing.pth"),
    )
    assert proc.returncode != 0
    assert "missing.pth" in proc.stderr and "does not exist" in proc.stderr


def test_demo_windowed_streams_a_video_file(synthetic_root, weights, tmp_path):
    """--window-size: a video file in, tracks through all frames out (masks and an .mp4)."""
    import cv2

    frames = _video_folder(synthetic_root)
    names = sorted(os.listdir(frames))
    video = str(tmp_path / "input.avi")
    first = cv2.imread(os.path.join(frames, names[0]))
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 6.0, first.shape[1::-1])
    for name in names:
        writer.write(cv2.imread(os.path.join(frames, name)))
    writer.release()
    masks, out = tmp_path / "masks.json", tmp_path / "vis.mp4"
    proc = _demo(
        "--input",
        video,
        "--output",
        str(out),
        "--save-masks",
        str(masks),
        "--confidence-threshold",
        "0",
        "--window-size",
        "2",
        weights=weights,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(masks) as f:
        results = json.load(f)
    assert len(results) == 10
    assert all(len(r["segmentations"]) == len(names) for r in results)
    assert out.stat().st_size > 0


def test_demo_weights_that_do_not_fit(synthetic_root, tmp_path):
    """Weights of another architecture are an error, unless --allow-partial-weights."""
    import torch
    from detectron2.modeling import build_model

    from tests.d2.helpers import SMOKE_CONFIG, video_cfg

    opts = ["MODEL.MASK_FORMER.HIDDEN_DIM", 32, "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", 5]
    weights = str(tmp_path / "hidden32.pth")
    torch.save({"model": build_model(video_cfg(SMOKE_CONFIG, opts)).state_dict()}, weights)
    masks = tmp_path / "masks.json"
    args = ("--input", _video_folder(synthetic_root), "--save-masks", str(masks))
    proc = _demo(*args, weights=weights)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "hidden32.pth does not fit the model" in proc.stderr and not masks.exists()
    proc = _demo(*args, "--allow-partial-weights", weights=weights)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Loading only what fits" in proc.stdout + proc.stderr and masks.exists()


def _masks_of(proc, path):
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(path) as f:
        return json.load(f)


def test_demo_video_id_from_the_input_name_or_the_flag(synthetic_root, weights, tmp_path):
    import shutil

    numbered = tmp_path / "00042"
    shutil.copytree(_video_folder(synthetic_root), numbered)
    masks = tmp_path / "masks.json"
    args = ("--save-masks", str(masks), "--confidence-threshold", "0")
    results = _masks_of(_demo("--input", str(numbered), *args, weights=weights), masks)
    assert results and {r["video_id"] for r in results} == {42}
    results = _masks_of(
        _demo("--input", str(numbered), "--video-id", "7", *args, weights=weights), masks
    )
    assert {r["video_id"] for r in results} == {7}
    other = _video_folder(synthetic_root)  # "video_00001": not a number
    results = _masks_of(_demo("--input", other, *args, weights=weights), masks)
    assert {r["video_id"] for r in results} == {1}


def test_demo_runs_the_network_from_an_onnx_file(synthetic_root, weights, tmp_path):
    """tools/export_model.py writes the smoke model at the demo's test resolution; the demo with
    --onnx-model gives the PyTorch demo's predictions (windowed post-processing on ONNX outputs)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import numpy as np

    from tests.d2.helpers import REPO_ROOT, SMOKE_CONFIG, video_cfg
    from video_mask2former.d2.mapper import build_clip_augmentation_from_cfg
    from video_mask2former.data.frames import FrameSource

    frames = _video_folder(synthetic_root)
    source = FrameSource(frames)
    augmentation = build_clip_augmentation_from_cfg(video_cfg(SMOKE_CONFIG), is_train=False)
    (resized,), _ = augmentation([np.zeros((*source.size, 3), np.uint8)], np.random.default_rng(0))
    onnx_path = tmp_path / "smoke.onnx"
    export = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "tools", "export_model.py"),
            "--config-file",
            SMOKE_CONFIG,
            "--format",
            "onnx",
            "--frames",
            "2",
            "--height",
            str(resized.shape[0]),
            "--width",
            str(resized.shape[1]),
            "--output",
            str(onnx_path),
            "MODEL.WEIGHTS",
            weights,
            "MODEL.DEVICE",
            "cpu",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert export.returncode == 0, export.stderr[-3000:]
    assert "max abs difference from PyTorch" in export.stdout
    # the exporter's progress lines and notices that need no action are hidden
    assert "[torch.onnx]" not in export.stdout and "constant folding" not in export.stderr
    masks = tmp_path / "masks.json"
    args = ("--input", frames, "--save-masks", str(masks), "--confidence-threshold", "0")
    expected = _masks_of(_demo(*args, weights=weights), masks)
    got = _masks_of(_demo(*args, "--onnx-model", str(onnx_path)), masks)
    assert [r["category_id"] for r in got] == [r["category_id"] for r in expected]
    assert np.allclose([r["score"] for r in got], [r["score"] for r in expected], atol=1e-4)


# --- the demo in-process (demo.main), for the checks that need no subprocess ------------------
@pytest.fixture
def demo():
    """The demo's command line in-process (video_mask2former.d2.demo.cli, what demo.py runs)."""
    from video_mask2former.d2.demo import cli

    names = dict(vars(cli))
    yield cli
    vars(cli).update(names)  # some tests replace its names (VideoPredictor, VideoVisualizer)


def demo_argv(*args, weights=None, opts=()):
    """Arguments of demo.main on the smoke configuration (CPU)."""
    from tests.d2.helpers import SMOKE_CONFIG

    extra = ["MODEL.WEIGHTS", weights] if weights else []
    return ["--config-file", SMOKE_CONFIG, *args, "--opts", "MODEL.DEVICE", "cpu", *extra, *opts]


UNREGISTERED = ("DATASETS.TEST", "('my_custom_val',)", "DATASETS.TRAIN", "('my_custom_train',)")


def write_categories(path, ids):
    with open(path, "w") as f:
        json.dump({"categories": [{"id": i, "name": f"class{i}"} for i in ids]}, f)
    return str(path)


def test_demo_categories_of_a_dataset_registered_elsewhere(demo, synthetic_root, weights, tmp_path):
    """A custom dataset registered only by a training script: --categories gives its ids and
    names (without it the demo refuses: tests/d2/test_demo_bad_inputs.py)."""
    categories = write_categories(tmp_path / "custom.json", [30, 10, 20])
    masks = tmp_path / "masks.json"
    argv = ("--input", _video_folder(synthetic_root), "--save-masks", str(masks))
    argv += ("--confidence-threshold", "0", "--categories", categories)
    drawn_names = []
    real_visualizer = demo.VideoVisualizer

    def recording_visualizer(names, threshold):
        drawn_names.extend(names)
        return real_visualizer(names, threshold)

    demo.VideoVisualizer = recording_visualizer
    assert demo.main(demo_argv(*argv, weights=weights, opts=UNREGISTERED)) == 0
    with open(masks) as f:
        results = json.load(f)
    assert results and {r["category_id"] for r in results} <= {10, 20, 30}
    assert drawn_names == ["class10", "class20", "class30"]  # contiguous ids by increasing id


def test_sigterm_and_sighup_interrupt_like_ctrl_c(demo):
    import signal

    for signum in (signal.SIGTERM, signal.SIGHUP):
        before = signal.getsignal(signum)
        with pytest.raises(KeyboardInterrupt) as caught:
            with demo.stop_on_signals():
                os.kill(os.getpid(), signum)
                for _ in range(1000):  # the handler runs between bytecodes
                    pass
        assert caught.value.signal_name == signal.Signals(signum).name
        assert signal.getsignal(signum) == before  # restored after the block


@pytest.fixture(scope="module")
def smoke_onnx(weights, tmp_path_factory):  # noqa: F811
    """The smoke model exported to ONNX at the demo's size of the synthetic frames (64x80)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import torch

    from tests.d2.helpers import SMOKE_CONFIG, video_cfg
    from video_mask2former.d2 import build_inference_model
    from video_mask2former.export import export_onnx

    model = build_inference_model(video_cfg(SMOKE_CONFIG, ["MODEL.WEIGHTS", weights]))
    path = str(tmp_path_factory.mktemp("onnx") / "smoke.onnx")
    export_onnx(model, torch.zeros(2, 3, 64, 80), path)
    return path


class _FakePredictor:
    """A VideoPredictor predicting instances of the given scores (whole-frame boxes)."""

    scores = ()

    def __init__(self, cfg, onnx_model=None):
        pass

    def check_frame_size(self, size):
        pass

    def __call__(self, frames, size, progress=None):
        import torch

        num_frames = len(list(frames))
        masks = torch.zeros(len(self.scores), num_frames, *size, dtype=torch.bool)
        for i in range(len(self.scores)):
            masks[i, :, 4 * i : 4 * i + 10, 4 * i : 4 * i + 10] = True
        return {
            "image_size": size,
            "pred_scores": list(self.scores),
            "pred_labels": [0] * len(self.scores),
            "pred_masks": list(masks),
        }


@pytest.mark.parametrize(
    "scores, kept", [((0.9, 0.3), "1 instance "), ((0.9, 0.8), "2 instances ")]
)
def test_demo_counts_in_singular_and_plural(demo, synthetic_root, tmp_path, scores, kept):
    import logging

    class Records(logging.Handler):
        def __init__(self):
            super().__init__()
            self.lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    records = Records()
    logger = logging.getLogger("video_mask2former.demo")
    logger.addHandler(records)
    demo.VideoPredictor = type("Fake", (_FakePredictor,), {"scores": scores})
    masks = tmp_path / "masks.json"
    argv = ("--input", _video_folder(synthetic_root), "--save-masks", str(masks))
    try:
        assert demo.main(demo_argv(*argv, "--confidence-threshold", "0.5")) == 0
    finally:
        logger.removeHandler(records)
    assert "Input: 3 frames of 80x64" in records.lines
    assert f"Kept {kept}of score >= 0.5" in records.lines
    assert f"Wrote {kept}to {masks}" in records.lines

"""demo_video/demo.py --online: frame-by-frame output from a video file, a stream URL, a stream
that drops, Ctrl-C and SIGTERM, and clear errors (CPU, the smoke configuration's model)."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import requires_detectron2
from tests.d2.test_demo import (  # noqa: F401  (fixtures)
    RUN_TIMEOUT_S,
    _demo,
    demo,
    demo_argv,
    smoke_onnx,
    weights,
)

pytestmark = requires_detectron2

NUM_FRAMES = 7
HEIGHT, WIDTH = 64, 80
# Frames of the video interrupted with Ctrl-C: more than the run can process before the signal.
LONG_VIDEO_FRAMES = 300
# JSON lines written before the test sends Ctrl-C.
LINES_BEFORE_INTERRUPT = 2


def _write_video(path, num_frames):
    """A synthetic video (moving shapes) as an MJPG .avi; returns the path."""
    import cv2

    from video_mask2former.data.synthetic import generate_synthetic_ytvis

    _, frames = generate_synthetic_ytvis(
        num_videos=1, num_frames=num_frames, height=HEIGHT, width=WIDTH, with_images=True
    )
    fourcc = cv2.VideoWriter_fourcc(*"MJPG")
    writer = cv2.VideoWriter(path, cv2.CAP_OPENCV_MJPEG, fourcc, 6.0, (WIDTH, HEIGHT))
    for frame in frames[0]:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _count_video_frames(path):
    import cv2

    capture, count = cv2.VideoCapture(path), 0
    while capture.read()[0]:
        count += 1
    return count


def _lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return _write_video(str(tmp_path_factory.mktemp("video") / "input.avi"), NUM_FRAMES)


def test_online_video_file_and_stream_url(video, weights, tmp_path):  # noqa: F811
    out, masks = tmp_path / "vis.mp4", tmp_path / "masks.jsonl"
    args = ("--online", "--window-size", "2", "--confidence-threshold", "0")
    proc = _demo(
        "--input", video, "--output", str(out), "--save-masks", str(masks), *args, weights=weights
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = _lines(masks)
    assert [line["frame"] for line in lines] == list(range(NUM_FRAMES))
    instances = [i for line in lines for i in line["instances"]]
    assert instances and all(i["category_id"] in (1, 2, 3) for i in instances)
    assert all(i["segmentation"]["size"] == [HEIGHT, WIDTH] for i in instances)
    assert all(len(line["instances"]) <= 10 for line in lines)  # TEST.TOPK per frame
    assert _count_video_frames(str(out)) == NUM_FRAMES

    folder = tmp_path / "frames"
    proc = _demo("--input", "file://" + video, "--output", str(folder), "--online", weights=weights)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(folder)) == [f"{i:05d}.jpg" for i in range(NUM_FRAMES)]


def test_online_stream_that_drops_keeps_what_was_written(video, weights, tmp_path):  # noqa: F811
    truncated = tmp_path / "truncated.avi"
    data = open(video, "rb").read()
    truncated.write_bytes(data[: len(data) * 6 // 10])  # the index and the last frames are lost
    masks, folder = tmp_path / "masks.jsonl", tmp_path / "frames"
    proc = _demo(
        "--input",
        str(truncated),
        "--online",
        "--output",
        str(folder),
        "--save-masks",
        str(masks),
        weights=weights,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output
    read = len(_lines(masks))
    assert 0 < read < NUM_FRAMES
    assert f"dropped after {read} of {NUM_FRAMES} frames" in output
    assert len(os.listdir(folder)) == read


def test_online_frame_of_another_size_ends_the_run_keeping_what_was_written(
    weights, tmp_path  # noqa: F811
):
    import cv2
    import numpy as np

    frames = tmp_path / "input"
    frames.mkdir()
    for i, height in enumerate([HEIGHT, HEIGHT, HEIGHT, HEIGHT // 2]):
        cv2.imwrite(str(frames / f"{i:05d}.jpg"), np.full((height, WIDTH, 3), 60 * i, np.uint8))
    masks = tmp_path / "masks.jsonl"
    proc = _demo("--input", str(frames), "--online", "--save-masks", str(masks), weights=weights)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "00003.jpg is 80x32, expected 80x64" in proc.stderr
    assert [line["frame"] for line in _lines(masks)] == [0, 1, 2]


def test_online_clear_errors(video, weights, tmp_path):  # noqa: F811
    proc = _demo(
        "--input", "99", "--online", "--save-masks", str(tmp_path / "m.jsonl"), weights=weights
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "cannot open camera 99" in proc.stderr

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for option, name in (("--output", "vis.mp4"), ("--save-masks", "m.jsonl")):
        target = str(blocker / name)
        proc = _demo("--input", video, "--online", option, target, weights=weights)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert f"cannot write {target}: {blocker} is a file, not a folder" in proc.stderr

    proc = _demo("--input", "0", "--save-masks", str(tmp_path / "m.json"), weights=weights)
    assert proc.returncode != 0 and "is read with --online" in proc.stderr


def _partial_lines(path):
    """Lines written so far into the temporary of JSON-lines file ``path`` (video_io.py)."""
    folder, name = os.path.split(str(path))
    partial = glob.glob(os.path.join(folder, f".{name}.*.partial.jsonl"))
    return sum(open(p).read().count("\n") for p in partial)


def _interrupt_online_run(weights, tmp_path, signum):  # noqa: F811
    """Start an online run on a long video, send ``signum`` once some lines are written; returns
    (returncode, output, the JSON-lines file, the .mp4)."""
    from tests.d2.helpers import REPO_ROOT, SMOKE_CONFIG

    video = _write_video(str(tmp_path / "long.avi"), LONG_VIDEO_FRAMES)
    out, masks = tmp_path / "vis.mp4", tmp_path / "masks.jsonl"
    command = [
        sys.executable,
        os.path.join(REPO_ROOT, "demo_video", "demo.py"),
        "--config-file",
        SMOKE_CONFIG,
        "--input",
        video,
        "--online",
        "--output",
        str(out),
        "--save-masks",
        str(masks),
        "--opts",
        "MODEL.DEVICE",
        "cpu",
        "MODEL.WEIGHTS",
        weights,
    ]
    proc = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if _partial_lines(masks) >= LINES_BEFORE_INTERRUPT:
            break
        time.sleep(0.1)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
    return proc.returncode, stdout + stderr, masks, out


def _check_stopped_cleanly(returncode, output, masks, out, name):
    assert returncode == 0, output[-3000:]
    assert f"Interrupted ({name})" in output and "Traceback" not in output
    frames = [line["frame"] for line in _lines(masks)]  # every line whole, under the final name
    assert LINES_BEFORE_INTERRUPT <= len(frames) < LONG_VIDEO_FRAMES
    assert frames == list(range(len(frames)))
    # the .mp4 is finalised: readable, one frame per line (or one more, drawn before the
    # interrupt reached the line); no temporary is left
    assert _count_video_frames(str(out)) in (len(frames), len(frames) + 1)
    assert not glob.glob(os.path.join(os.path.dirname(str(out)), ".*partial*"))


def test_online_ctrl_c_stops_cleanly(weights, tmp_path):  # noqa: F811
    _check_stopped_cleanly(*_interrupt_online_run(weights, tmp_path, signal.SIGINT), "Ctrl-C")


def test_online_sigterm_stops_cleanly_with_a_playable_mp4(weights, tmp_path):  # noqa: F811
    """docker stop: SIGTERM closes the writers as Ctrl-C does (the .mp4 gets its index)."""
    _check_stopped_cleanly(*_interrupt_online_run(weights, tmp_path, signal.SIGTERM), "SIGTERM")


def test_online_runs_the_onnx_file(demo, video, weights, smoke_onnx, tmp_path):  # noqa: F811
    """--online --onnx-model streams over the ONNX window network: the PyTorch run's results."""
    import numpy as np

    def run(name, *extra, weights=None):
        masks = tmp_path / name
        argv = ("--input", video, "--online", "--save-masks", str(masks), "--window-size", "2")
        assert demo.main(demo_argv(*argv, *extra, weights=weights)) == 0
        return [i for line in _lines(masks) for i in line["instances"]], len(_lines(masks))

    expected, expected_frames = run("torch.jsonl", weights=weights)
    got, got_frames = run("onnx.jsonl", "--onnx-model", smoke_onnx)
    assert got_frames == expected_frames == NUM_FRAMES and expected
    assert [i["category_id"] for i in got] == [i["category_id"] for i in expected]
    assert [i["track_id"] for i in got] == [i["track_id"] for i in expected]
    assert np.allclose([i["score"] for i in got], [i["score"] for i in expected], atol=1e-4)

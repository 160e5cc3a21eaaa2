"""The demo's online loop (video_mask2former.demo.online) in-process with a tiny model: Ctrl-C and a
stream that drops keep what was written. Runs without detectron2."""

import json
import os
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from tests.data.test_live import FakeCapture
from tests.modeling.tiny_video_model import build_tiny_model
from video_mask2former.data.live import LiveSource

WINDOW_SIZE = 2
SIZE = 64  # one 64x64 frame still gives the tiny backbone a 2x2 res5 map


@pytest.fixture
def online():
    from video_mask2former.demo import online

    return online


class _Predictor:
    def __init__(self):
        self.model = build_tiny_model().eval()

    def check_frame_size(self, size):
        pass

    def stream(self, window_size, policy=None):
        return self.model.stream(window_size, policy=policy)


def _run(online, monkeypatch, capture, tmp_path):
    """run_online on a fake camera; returns (status, JSON lines, frames of the .mp4)."""
    monkeypatch.setattr(
        online, "open_stream_input", lambda inputs: LiveSource(0, capture_factory=lambda s: capture)
    )
    cfg = SimpleNamespace(
        MODEL=SimpleNamespace(
            SEM_SEG_HEAD=SimpleNamespace(NUM_CLASSES=3),
            MASK_FORMER=SimpleNamespace(TEST=SimpleNamespace(WINDOW_SIZE=WINDOW_SIZE, TOPK=5)),
        )
    )
    args = SimpleNamespace(
        input=["0"],
        output=str(tmp_path / "vis.mp4"),
        save_masks=str(tmp_path / "masks.jsonl"),
        confidence_threshold=0.0,
    )
    categories = online.Categories(["a", "b", "c"], [1, 2, 3], "test")
    status = online.run_online(args, cfg, lambda cfg: _Predictor(), categories)
    with open(args.save_masks) as f:
        lines = [json.loads(line) for line in f]
    video, count = cv2.VideoCapture(args.output), 0
    while video.read()[0]:
        count += 1
    return status, lines, count


def _frames(num):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(num)]


def test_ctrl_c_keeps_the_frames_written(online, monkeypatch, tmp_path):
    capture = FakeCapture(_frames(5), end=KeyboardInterrupt())  # Ctrl-C while reading frame 6
    status, lines, video_frames = _run(online, monkeypatch, capture, tmp_path)
    # frames 0-3 (two windows) were written; frame 4 waited for its window and is dropped
    assert status == 0 and [line["frame"] for line in lines] == [0, 1, 2, 3]
    assert video_frames == 4 and capture.released
    instance = lines[0]["instances"][0]
    assert instance["category_id"] in (1, 2, 3) and instance["segmentation"]["size"] == [SIZE] * 2


def test_stream_that_drops_writes_every_frame_read_and_fails(online, monkeypatch, tmp_path):
    capture = FakeCapture(_frames(5), announced=8)  # ends after 5 of 8 announced frames
    status, lines, video_frames = _run(online, monkeypatch, capture, tmp_path)
    assert status == online.EXIT_STREAM_DROPPED
    assert [line["frame"] for line in lines] == [0, 1, 2, 3, 4] and video_frames == 5


def test_writers_check_their_path_before_any_frame(online, tmp_path):
    from video_mask2former.visualization import video_io

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for make in (
        lambda path: video_io.FrameWriter(path + ".mp4", None, 6.0),
        lambda path: video_io.FrameWriter(path, None, 6.0),  # a folder of frames
        video_io.JsonLinesWriter,
    ):
        with pytest.raises(OSError, match=f"{blocker} is a file, not a folder"):
            make(str(blocker / "sub" / "out"))
    writer = video_io.FrameWriter(str(tmp_path / "frames"), None, 6.0)  # a stream: no names
    for _ in range(2):
        writer.write(np.zeros((8, 8, 3), np.uint8))
    writer.close()
    assert sorted(os.listdir(tmp_path / "frames")) == ["00000.jpg", "00001.jpg"]


def test_a_track_keeps_its_colour(online):
    from video_mask2former.visualization import draw as visualizer

    from video_mask2former.inference.streaming import FrameResult, StreamInstance
    from video_mask2former.structures import encode_masks

    mask = np.zeros((1, 16, 16), bool)
    mask[0, 4:12, 4:12] = True
    (rle,) = encode_masks(torch.from_numpy(mask))
    frame = np.zeros((16, 16, 3), np.uint8)

    def drawn(track_id):
        result = FrameResult(0, (16, 16), [StreamInstance(track_id, 0, 0.9, rle)])
        return visualizer.draw_frame_result(frame, result, ["a"])[8, 8]

    assert np.array_equal(drawn(7), drawn(7)) and not np.array_equal(drawn(7), drawn(8))

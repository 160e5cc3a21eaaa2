"""Live frame sources: cameras, stream URLs and video files read as streams (no detectron2)."""

import cv2
import numpy as np
import pytest

from video_mask2former.data.frames import FrameSource, FrameSourceError
from video_mask2former.data.live import (
    LiveSource,
    is_camera_or_url,
    open_stream_input,
    parse_live_input,
)

NUM_FRAMES = 6


class FakeCapture:
    """A cv2.VideoCapture stand-in: ``frames`` BGR frames, then ``end`` (False: no more frames;
    an exception: raised by read)."""

    def __init__(self, frames, opened=True, announced=0, end=False):
        self.frames, self.opened, self.announced, self.end = list(frames), opened, announced, end
        self.released = False

    def isOpened(self):
        return self.opened

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_COUNT: self.announced, cv2.CAP_PROP_FPS: 25.0}.get(prop, 0)

    def read(self):
        if self.frames:
            return True, self.frames.pop(0)
        if isinstance(self.end, BaseException):
            raise self.end
        return False, None

    def release(self):
        self.released = True


@pytest.fixture(scope="module")
def video_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("live") / "clip.avi")
    fourcc = cv2.VideoWriter_fourcc(*"MJPG")
    writer = cv2.VideoWriter(path, cv2.CAP_OPENCV_MJPEG, fourcc, 10.0, (40, 32))
    for i in range(NUM_FRAMES):
        frame = np.zeros((32, 40, 3), np.uint8)
        frame[:, :, 0] = 200  # blue in BGR
        frame[i : i + 4, :, 1] = 255
        writer.write(frame)
    writer.release()
    return path


def test_parse_inputs():
    assert parse_live_input("0") == 0 and parse_live_input(" 2 ") == 2 and parse_live_input(1) == 1
    assert parse_live_input("video.mp4") == "video.mp4"
    assert is_camera_or_url("0") and is_camera_or_url("rtsp://host/stream")
    assert not is_camera_or_url("clip.avi") and not is_camera_or_url("frames/")


def test_video_file_read_as_a_stream(video_file):
    source = LiveSource(video_file)
    assert source.kind == "file" and source.fps == 10.0 and source.size == (32, 40)
    frames = list(source)
    assert len(frames) == NUM_FRAMES and frames[0].shape == (32, 40, 3)
    assert frames[0][..., 2].mean() > 150 and frames[0][..., 0].mean() < 50  # RGB order
    assert source.stop_reason == f"end of stream after {NUM_FRAMES} frames" and not source.dropped
    with pytest.raises(FrameSourceError, match="read once"):
        list(source)


def test_stream_url(video_file):
    frames = list(LiveSource("file://" + video_file))
    assert len(frames) == NUM_FRAMES


def test_stream_that_drops_ends_with_the_frames_read(video_file, tmp_path):
    data = open(video_file, "rb").read()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(data[: len(data) // 2])
    source = LiveSource(str(truncated))
    frames = list(source)
    assert 0 < len(frames) < NUM_FRAMES and source.dropped
    assert source.stop_reason == f"dropped after {len(frames)} of {NUM_FRAMES} frames"


def test_read_error_mid_stream_ends_the_stream():
    frames = [np.zeros((8, 8, 3), np.uint8)] * 2
    capture = FakeCapture(frames, end=cv2.error("decoder failure"))
    source = LiveSource(0, capture_factory=lambda spec: capture)
    assert len(list(source)) == 2 and source.dropped and capture.released
    assert source.stop_reason.startswith("read error after 2 frames")


def test_sources_that_do_not_open_are_clear_errors(tmp_path):
    def closed(spec):
        return FakeCapture([], opened=False)

    with pytest.raises(FrameSourceError, match="cannot open camera 3: no camera with that index"):
        LiveSource("3", capture_factory=closed)
    with pytest.raises(FrameSourceError, match="cannot open the stream rtsp://cam/1"):
        LiveSource("rtsp://cam/1", capture_factory=closed)
    with pytest.raises(FrameSourceError, match="does not exist"):
        LiveSource(str(tmp_path / "missing.mp4"))


def test_open_stream_input_picks_the_reader(video_file, tmp_path):
    assert isinstance(open_stream_input([video_file]), LiveSource)
    cv2.imwrite(str(tmp_path / "00000.jpg"), np.zeros((8, 8, 3), np.uint8))
    assert isinstance(open_stream_input([str(tmp_path)]), FrameSource)
    with pytest.raises(FrameSourceError, match="give it alone"):
        open_stream_input([str(tmp_path), "0"])

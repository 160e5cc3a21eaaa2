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


def _read_all(frames):
    return list(LiveSource(0, capture_factory=lambda spec: FakeCapture(frames)))


def test_captured_frames_of_other_kinds_become_rgb_uint8():
    """Grayscale, BGRA and 16-bit captures (CAP_PROP_CONVERT_RGB off, depth cameras) are
    converted by the rules of read_frame, not passed on to be misread."""
    bgr = np.random.default_rng(0).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    gray = bgr[:, :, 0]
    bgra = np.dstack([bgr, np.full((8, 10), 7, np.uint8)])
    frames = _read_all([bgr, gray, gray[:, :, None], bgra, bgr.astype(np.uint16) * 257])
    assert all(f.dtype == np.uint8 and f.shape == (8, 10, 3) for f in frames)
    np.testing.assert_array_equal(frames[0], bgr[:, :, ::-1])
    np.testing.assert_array_equal(frames[1], np.repeat(gray[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(frames[2], frames[1])
    np.testing.assert_array_equal(frames[3], bgr[:, :, ::-1])  # alpha dropped
    np.testing.assert_array_equal(frames[4], bgr[:, :, ::-1])  # 16-bit: value >> 8


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((8, 10, 3), np.float32),
        np.zeros((8, 10, 2), np.uint8),
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((2, 8, 10, 3), np.uint8),
    ],
    ids=["float", "two channels", "empty", "4-D"],
)
def test_captured_frame_of_unknown_kind_is_a_clear_error(frame):
    good = np.zeros((8, 10, 3), np.uint8)
    with pytest.raises(FrameSourceError, match=r"camera 0: frame 1 is a .* array of shape"):
        _read_all([good, frame])

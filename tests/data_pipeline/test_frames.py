import cv2
import numpy as np
import pytest

from video_mask2former.data.frames import FrameSource, FrameSourceError


def _write_frames(folder, count, height=24, width=32):
    frames = []
    for i in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[..., 0] = 20 * i  # red channel encodes the index
        frame[:, : 4 + i, 2] = 200  # blue stripe grows with the index
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        frames.append(frame)
    return frames


def test_folder_frames_in_name_order_rgb(tmp_path):
    expected = _write_frames(tmp_path, 4)
    (tmp_path / "notes.txt").write_text("not a frame")
    source = FrameSource(str(tmp_path))
    assert len(source) == 4 and source.size == (24, 32)
    frames = list(source)
    assert len(frames) == 4
    for got, want in zip(frames, expected):
        np.testing.assert_array_equal(got, want)  # PNG is lossless, RGB order kept


def test_glob_pattern(tmp_path):
    _write_frames(tmp_path, 3)
    source = FrameSource(str(tmp_path / "0000[01].png"))
    assert source.file_names == [str(tmp_path / "00000.png"), str(tmp_path / "00001.png")]


def test_video_file_round_trip(tmp_path):
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 7.0, (32, 24))
    for i in range(5):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()
    source = FrameSource(path)
    assert source.is_video_file and source.fps == pytest.approx(7.0)
    frames = list(source)
    assert len(frames) == 5 and frames[0].shape == (24, 32, 3)
    assert abs(int(frames[3].mean()) - 120) <= 4  # MJPG is lossy


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FrameSourceError, match="folder .* has no frames"):
        FrameSource(str(tmp_path))


def test_unreadable_frame_names_the_file(tmp_path):
    _write_frames(tmp_path, 2)
    (tmp_path / "00002.png").write_bytes(b"not a png")
    source = FrameSource(str(tmp_path))
    with pytest.raises(FrameSourceError, match="00002.png"):
        list(source)


def test_frame_of_another_size_names_the_file(tmp_path):
    _write_frames(tmp_path, 2)
    cv2.imwrite(str(tmp_path / "00002.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(FrameSourceError, match="00002.png is 10x10"):
        list(FrameSource(str(tmp_path)))


def test_plain_file_that_is_not_a_video(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text("{}")
    with pytest.raises(FrameSourceError, match="not an image file .* nor, alone, a video file"):
        FrameSource(str(path))


def test_several_inputs_are_concatenated_in_order(tmp_path):
    _write_frames(tmp_path, 3)
    source = FrameSource([str(tmp_path / "00002.png"), str(tmp_path / "0000[01].png")])
    assert source.frame_names() == ["00002.png", "00000.png", "00001.png"]
    assert len(list(source)) == 3
    with pytest.raises(FrameSourceError, match="does not exist"):
        FrameSource([str(tmp_path / "00000.png"), str(tmp_path / "nope.png")])
    with pytest.raises(FrameSourceError, match="matches no image file"):
        FrameSource(str(tmp_path / "*.jpg"))

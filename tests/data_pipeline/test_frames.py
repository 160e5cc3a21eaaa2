"""Frame reading: strict decoding of damaged frames, and the demo's frame sources."""

import io
import re

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.data_pipeline.helpers import DAMAGES, jpeg_bytes, write_damaged_jpeg
from video_mask2former.data.frames import (
    CorruptFrameError,
    FrameSource,
    FrameSourceError,
    read_frame,
)


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


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_jpeg_is_an_error_naming_the_file(tmp_path, damage):
    good = tmp_path / "00000.jpg"
    good.write_bytes(jpeg_bytes())
    bad = write_damaged_jpeg(tmp_path / "00001.jpg", damage)
    assert read_frame(str(good)).shape == (48, 64, 3)
    with pytest.raises(CorruptFrameError, match=re.escape(f"Frame {bad!r} is a damaged JPEG")):
        read_frame(bad)
    # the demo's frames: an error at the damaged frame, not a smeared image
    frames = iter(FrameSource(str(tmp_path)))
    next(frames)
    with pytest.raises(FrameSourceError, match=re.escape(f"Frame {bad!r} is a damaged JPEG")):
        next(frames)


def test_truncated_png_is_an_error(tmp_path):
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), np.full((24, 32, 3), 7, np.uint8))
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(CorruptFrameError, match="frame.png"):
        read_frame(str(path))


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_pixels_match_pillow_with_exif_orientation(tmp_path, orientation):
    """Strict decoding gives the pixels the mapper got from Pillow (detectron2's reader)."""
    path = tmp_path / "frame.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    with Image.open(io.BytesIO(jpeg_bytes(24, 32))) as img:
        img.save(path, exif=exif.tobytes())
    with Image.open(path) as img:
        expected = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    np.testing.assert_array_equal(read_frame(str(path)), expected)
    np.testing.assert_array_equal(read_frame(str(path), "BGR"), expected[:, :, ::-1])

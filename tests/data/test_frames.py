"""Frame reading: strict decoding of damaged frames, and the demo's frame sources."""

import io
import re

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.data.helpers import DAMAGES, jpeg_bytes, write_damaged_jpeg
from video_mask2former.data.frames import (
    CorruptFrameError,
    FrameSource,
    FrameSourceError,
    UnsupportedFrameError,
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


def test_truncated_video_file_is_an_error_after_its_last_frame(tmp_path):
    """The live sources' rule: fewer frames than the container announces is an error."""
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 7.0, (32, 24))
    for i in range(20):
        writer.write(np.full((24, 32, 3), 10 * i, np.uint8))
    writer.release()
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) * 6 // 10])  # the index and the last frames are lost
    source = FrameSource(path)
    assert len(source) == 20
    read = []
    with pytest.raises(FrameSourceError, match=r"clip.avi ended after (\d+) of its 20 frames"):
        for frame in source:
            read.append(frame)
    assert 0 < len(read) < 20


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


# --- pixel depths and Pillow modes -----------------------------------------------------------


def _sixteen_bit(height=24, width=32, channels=3):
    """uint16 pixels spanning 0..65535 (the low byte varies too)."""
    ramp = np.linspace(0, 65535, height * width * channels).astype(np.uint16)
    return ramp.reshape(height, width, channels)


def test_sixteen_bit_grayscale_png_keeps_its_high_byte(tmp_path):
    """cv2 writes a 16-bit grayscale PNG (Pillow mode I;16): not all white, value >> 8, the
    pixels OpenCV's own reader gives."""
    path = str(tmp_path / "gray16.png")
    pixels = _sixteen_bit(channels=1)[:, :, 0]
    cv2.imwrite(path, pixels)
    frame = read_frame(path)
    expected = np.repeat((pixels >> 8).astype(np.uint8)[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(frame, expected)
    np.testing.assert_array_equal(frame, cv2.imread(path, cv2.IMREAD_COLOR)[:, :, ::-1])
    assert frame.min() == 0 and frame.max() == 255


@pytest.mark.parametrize("channels", [3, 4])
def test_sixteen_bit_colour_png_keeps_its_high_byte(tmp_path, channels):
    path = str(tmp_path / "colour16.png")
    pixels = _sixteen_bit(channels=channels)  # BGR(A), as cv2 writes it
    cv2.imwrite(path, pixels)
    expected = (pixels[:, :, 2::-1] >> 8).astype(np.uint8)  # RGB, alpha dropped
    np.testing.assert_array_equal(read_frame(path), expected)
    np.testing.assert_array_equal(read_frame(path, "BGR"), expected[:, :, ::-1])


def test_sixteen_bit_png_written_by_pillow(tmp_path):
    path = str(tmp_path / "pillow16.png")
    pixels = _sixteen_bit(channels=1)[:, :, 0]
    Image.fromarray(pixels).save(path)
    np.testing.assert_array_equal(read_frame(path)[:, :, 1], (pixels >> 8).astype(np.uint8))


def _rgb_reference(height=24, width=32):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


# (Pillow mode, file type, the expected RGB frame from the RGB reference).
_EIGHT_BIT_MODES = [
    ("L", "png", lambda rgb: np.asarray(Image.fromarray(rgb).convert("L").convert("RGB"))),
    ("LA", "png", lambda rgb: np.asarray(Image.fromarray(rgb).convert("L").convert("RGB"))),
    ("1", "png", lambda rgb: np.asarray(Image.fromarray(rgb).convert("1").convert("RGB"))),
    ("P", "png", lambda rgb: np.asarray(Image.fromarray(rgb).convert("P").convert("RGB"))),
    ("RGBA", "png", lambda rgb: rgb),
    ("CMYK", "tiff", lambda rgb: rgb),
]


@pytest.mark.parametrize(
    "mode, ext, expected", _EIGHT_BIT_MODES, ids=[m[0] for m in _EIGHT_BIT_MODES]
)
def test_other_pillow_modes_give_rgb(tmp_path, mode, ext, expected):
    rgb = _rgb_reference()
    path = str(tmp_path / f"frame.{ext}")
    Image.fromarray(rgb).convert(mode).save(path)
    frame = read_frame(path)
    assert frame.dtype == np.uint8 and frame.shape == (24, 32, 3)
    np.testing.assert_array_equal(frame, expected(rgb))
    if mode in ("L", "LA", "1"):
        assert (frame[:, :, 0] == frame[:, :, 2]).all()
    if mode == "1":
        assert set(np.unique(frame)) <= {0, 255}


@pytest.mark.parametrize(
    "mode, pixels, text",
    [
        ("I", np.array([[0, 70000], [5, 300]], np.int32), "32-bit integer image"),
        ("F", np.array([[0.0, 0.5], [1.0, 300.0]], np.float32), "floating-point image"),
    ],
)
def test_thirty_two_bit_images_are_refused(tmp_path, mode, pixels, text):
    path = str(tmp_path / f"frame_{mode}.tiff")
    Image.fromarray(pixels).save(path)
    with Image.open(path) as img:
        assert img.mode == mode
    with pytest.raises(UnsupportedFrameError, match=re.escape(path) + f".* {text} .*mode {mode}"):
        read_frame(path)
    with pytest.raises(FrameSourceError, match=text):  # the demo's reader: the same rule
        list(FrameSource([path]))

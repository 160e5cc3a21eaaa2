"""A video file → frames in the YouTube-VIS layout."""

import os

import numpy as np
import pytest

from video_mask2former.data.convert import ConversionError, extract_frames
from video_mask2former.data.frames import read_frame
from video_mask2former.visualization.video_io import FrameWriter

NUM_FRAMES, HEIGHT, WIDTH = 6, 32, 48
# Mean absolute difference (uint8 levels) allowed between a frame and its extracted copy: the
# video and the JPEGs are lossy, but another frame would differ by ~100 (flat colours far apart).
TOLERANCE = 12


def _frames():
    return [np.full((HEIGHT, WIDTH, 3), 40 * t, dtype=np.uint8) for t in range(NUM_FRAMES)]


@pytest.fixture
def video_file(tmp_path):
    path = str(tmp_path / "clip.mp4")
    with FrameWriter(path, None, fps=5.0) as writer:
        for frame in _frames():
            writer.write(frame)
    return path


@pytest.mark.parametrize("every", [1, 2, 4])
def test_every_nth_frame_named_by_its_index(tmp_path, video_file, every):
    written = extract_frames(video_file, str(tmp_path / "out"), every=every)
    kept = list(range(0, NUM_FRAMES, every))
    folder = tmp_path / "out" / "JPEGImages" / "clip"
    assert written == [str(folder / f"{t:05d}.jpg") for t in kept]
    assert sorted(os.listdir(folder)) == [f"{t:05d}.jpg" for t in kept]
    for t, path in zip(kept, written):
        frame = read_frame(path).astype(np.int16)
        assert np.abs(frame - _frames()[t]).mean() < TOLERANCE, (t, path)


def test_bad_arguments(tmp_path, video_file):
    with pytest.raises(ConversionError, match="every must be >= 1"):
        extract_frames(video_file, str(tmp_path), every=0)
    text = tmp_path / "notes.txt"
    text.write_text("x")
    with pytest.raises(ConversionError, match="notes.txt is not a video file"):
        extract_frames(str(text), str(tmp_path))
    assert not (tmp_path / "JPEGImages").exists()

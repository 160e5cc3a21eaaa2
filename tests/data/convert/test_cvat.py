"""CVAT for video 1.1 XML → YouTube-VIS: the round trip, outside / occluded, ignored boxes."""

import json
import logging

import numpy as np
import pytest

from tests.data.convert.helpers import (
    HEIGHT,
    WIDTH,
    blob,
    cvat_rle,
    decoded_tracks,
    write_cvat,
)
from video_mask2former.data.convert import convert_cvat, decode_cvat_mask, write_ytvis


def test_round_trip(tmp_path, caplog):
    xml, frames, expected = write_cvat(str(tmp_path))
    with caplog.at_level(logging.WARNING):
        videos, categories = convert_cvat([xml], frames)
    assert "ignored the tracks without a mask (1 of box)" in caplog.text
    # declared labels that can hold masks, by name; "sign" is a rectangle label
    assert categories == [(1, "car"), (2, "person")]
    json_path = write_ytvis(str(tmp_path / "out"), videos, categories)
    tracks = decoded_tracks(json_path, str(tmp_path / "out" / "JPEGImages"))
    assert list(tracks) == ["street"]  # the video keeps the task's name
    got = tracks["street"]
    assert [name for name, _ in got] == [name for name, _ in expected]
    for (_, masks), (_, reference) in zip(got, expected):
        np.testing.assert_array_equal(masks, reference)
    with open(json_path) as f:
        car, person = json.load(f)["annotations"]
    assert car["segmentations"][2] is None  # outside="1" from frame 2
    assert person["segmentations"][1] is not None  # occluded="1": kept


def test_frames_folder_named_after_the_xml_or_the_folder_itself(tmp_path):
    xml, frames, _ = write_cvat(str(tmp_path), task="street")
    renamed = tmp_path / "frames" / "export"
    (tmp_path / "frames" / "street").rename(renamed)
    (tmp_path / "street.xml").rename(tmp_path / "export.xml")
    videos, _ = convert_cvat([str(tmp_path / "export.xml")], frames)
    assert videos[0].name == "export"
    videos, _ = convert_cvat([str(tmp_path / "export.xml")], str(renamed))
    assert videos[0].name == "street" and len(videos[0].frame_files) == 3


@pytest.mark.parametrize("seed", range(5))
def test_mask_code_decodes_to_the_box(seed):
    rng = np.random.default_rng(seed)
    mask = blob(rng)
    mask[5, 7] = True  # the box's first pixel may be 1: the code then starts with a 0 run
    left, top, width, height = 7, 5, 12, 9
    mask[:top] = mask[top + height :] = False
    mask[:, :left] = mask[:, left + width :] = False
    rle = cvat_rle(mask, left, top, width, height)
    decoded = decode_cvat_mask(rle, left, top, width, height, (HEIGHT, WIDTH), "test")
    np.testing.assert_array_equal(decoded, mask)


def test_frame_numbers_follow_start_frame_and_step(tmp_path):
    xml, frames, expected = write_cvat(str(tmp_path))
    text = open(xml).read()
    text = text.replace("<start_frame>0</start_frame>", "<start_frame>10</start_frame>")
    text = text.replace("<frame_filter></frame_filter>", "<frame_filter>step=5</frame_filter>")
    for t in (2, 1, 0):  # CVAT writes video frame numbers: 10, 15, 20
        text = text.replace(f'frame="{t}"', f'frame="{10 + 5 * t}"')
    with open(xml, "w") as f:
        f.write(text)
    videos, _ = convert_cvat([xml], frames)
    json_path = write_ytvis(str(tmp_path / "out"), videos, [(1, "car"), (2, "person")])
    got = decoded_tracks(json_path, str(tmp_path / "out" / "JPEGImages"))["street"]
    for (_, masks), (_, reference) in zip(got, expected):
        np.testing.assert_array_equal(masks, reference)

"""PNG instance-id masks (DAVIS / YouTube-VOS layout) → YouTube-VIS: the round trip."""

import json

import numpy as np
import pytest

from tests.data.convert.helpers import FRAMES, decoded_tracks, write_davis
from video_mask2former.data.convert import convert_png_masks, read_class_map, write_ytvis


def _convert(tmp_path, **classes):
    expected = write_davis(str(tmp_path / "davis"))
    videos, categories = convert_png_masks(
        str(tmp_path / "davis" / "JPEGImages"), str(tmp_path / "davis" / "Annotations"), **classes
    )
    out = tmp_path / "out"
    json_path = write_ytvis(str(out), videos, categories)
    return expected, json_path, out


def test_round_trip_with_one_class(tmp_path):
    expected, json_path, out = _convert(tmp_path, class_name="animal")
    tracks = decoded_tracks(json_path, str(out / "JPEGImages"))
    assert sorted(tracks) == ["bear", "cows"]
    for video, by_id in expected.items():
        got = tracks[video]
        assert [name for name, _ in got] == ["animal"] * len(by_id)
        for (_, masks), oid in zip(got, sorted(by_id)):  # tracks in object id order
            np.testing.assert_array_equal(masks, by_id[oid])
    with open(json_path) as f:
        dataset = json.load(f)
    assert dataset["categories"] == [{"id": 1, "name": "animal"}]
    # object 2 of "bear" is absent from frame 1: null segmentation, area and box there
    bear_2 = dataset["annotations"][1]
    assert bear_2["segmentations"][1] is None and bear_2["areas"][1] is None
    assert bear_2["areas"][0] == int(expected["bear"][2][0].sum())
    ys, xs = np.nonzero(expected["bear"][2][0])
    assert bear_2["bboxes"][0] == [
        xs.min(),
        ys.min(),
        xs.max() - xs.min() + 1,
        ys.max() - ys.min() + 1,
    ]


def test_frames_written_in_order_and_unannotated_frames_left_out(tmp_path):
    _, json_path, out = _convert(tmp_path, class_name="animal")
    with open(json_path) as f:
        videos = json.load(f)["videos"]
    names = [f"{t:05d}.jpg" for t in range(FRAMES)]  # frame 00003 has no mask: left out
    assert [v["file_names"] for v in videos] == [
        [f"bear/{n}" for n in names],
        [f"cows/{n}" for n in names],
    ]
    # "bear" has JPEG frames: copied byte for byte; "cows" has PNG frames: re-encoded as JPEG
    with open(tmp_path / "davis/JPEGImages/bear/00000.jpg", "rb") as a:
        assert (out / "JPEGImages/bear/00000.jpg").read_bytes() == a.read()
    assert (out / "JPEGImages/cows/00000.jpg").read_bytes()[:2] == b"\xff\xd8"


@pytest.mark.parametrize("kind", ["csv", "json", "ytvos"])
def test_class_mapping_files(tmp_path, kind):
    path = tmp_path / f"classes.{'csv' if kind == 'csv' else 'json'}"
    table = {"bear": {1: "bear", 2: "bird"}, "cows": {3: "cow"}}
    if kind == "csv":
        rows = [f"{v},{i},{n}" for v, objs in table.items() for i, n in objs.items()]
        path.write_text("video,object_id,category\n" + "\n".join(rows) + "\n")
    elif kind == "json":
        path.write_text(json.dumps(table))
    else:
        meta = {
            v: {"objects": {str(i): {"category": n, "frames": ["00000"]} for i, n in objs.items()}}
            for v, objs in table.items()
        }
        path.write_text(json.dumps({"videos": meta}))
    assert read_class_map(str(path)) == {
        ("bear", 1): "bear",
        ("bear", 2): "bird",
        ("cows", 3): "cow",
    }
    _, json_path, out = _convert(tmp_path, classes=str(path))
    with open(json_path) as f:
        dataset = json.load(f)
    assert [c["name"] for c in dataset["categories"]] == [
        "bear",
        "bird",
        "cow",
    ]  # ids in name order
    tracks = decoded_tracks(json_path, str(out / "JPEGImages"))
    assert [n for n, _ in tracks["bear"]] == ["bear", "bird"] and tracks["cows"][0][0] == "cow"

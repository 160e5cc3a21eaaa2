"""VIPSeg-layout data (video_mask2former.data.vps): id PNG encoding, the JSON loaders, records.

``write_vps_case`` builds the tiny dataset that tests/bad_inputs/test_video_seg_data.py damages.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

from video_mask2former.data.builtin_meta import metadata_for
from video_mask2former.data.vipseg_categories import VIPSEG_CATEGORIES
from video_mask2former.data.vps import (
    MAX_SEGMENT_ID,
    Segment,
    VideoSegFormatError,
    VpsFrame,
    check_frame_segments,
    id_to_rgb,
    load_vps_ground_truth,
    load_vps_predictions,
    load_vps_video_dicts,
    read_id_png,
    read_vps_frame,
    rgb_to_id,
    write_id_png,
)

HEIGHT, WIDTH = 8, 10
VIDEO = "v1"
STUFF_ID, THING_ID, CROWD_ID = 0x030201, 7, 300
# Category ids 5 (stuff), 9 (thing): not 0-based, so a loader that assumes ids == indices fails.
CATEGORIES = [
    {"id": 9, "name": "person", "isthing": 1, "color": [220, 20, 60]},
    {"id": 5, "name": "wall", "isthing": 0, "color": [1, 2, 3]},
]


def case_ids():
    """Two frames: stuff everywhere, a thing, a crowd (frame 0 only) and a void corner."""
    frames = []
    for t in range(2):
        ids = np.full((HEIGHT, WIDTH), STUFF_ID, dtype=np.int64)
        ids[2:5, 3 + t : 6 + t] = THING_ID
        if t == 0:
            ids[6:, 6:] = CROWD_ID
        ids[0, 0] = 0
        frames.append(ids)
    return frames


def case_json():
    segments = [
        [
            {"id": STUFF_ID, "category_id": 5, "iscrowd": 0},
            {"id": THING_ID, "category_id": 9, "iscrowd": 0},
            {"id": CROWD_ID, "category_id": 9, "iscrowd": 1},
        ],
        [
            {"id": STUFF_ID, "category_id": 5, "iscrowd": 0},
            {"id": THING_ID, "category_id": 9, "iscrowd": 0},
        ],
    ]
    names = [f"{t:05d}" for t in range(2)]
    return {
        "videos": [
            {
                "video_id": VIDEO,
                "images": [
                    {"id": n, "file_name": n + ".png", "width": WIDTH, "height": HEIGHT}
                    for n in names
                ],
            }
        ],
        "annotations": [
            {
                "video_id": VIDEO,
                "annotations": [
                    {"image_id": n, "file_name": n + ".png", "segments_info": s}
                    for n, s in zip(names, segments)
                ],
            }
        ],
        "categories": [dict(c) for c in CATEGORIES],
    }


def write_vps_case(root, data=None, ids=None):
    """Write the tiny case under ``root``; returns (json_file, image_root, gt_root)."""
    root = str(root)
    image_root, gt_root = os.path.join(root, "images"), os.path.join(root, "panomasksRGB")
    os.makedirs(os.path.join(image_root, VIDEO), exist_ok=True)
    os.makedirs(os.path.join(gt_root, VIDEO), exist_ok=True)
    for t, frame_ids in enumerate(ids if ids is not None else case_ids()):
        Image.new("RGB", (WIDTH, HEIGHT)).save(os.path.join(image_root, VIDEO, f"{t:05d}.jpg"))
        write_id_png(os.path.join(gt_root, VIDEO, f"{t:05d}.png"), frame_ids)
    json_file = os.path.join(root, "gt.json")
    with open(json_file, "w") as f:
        json.dump(data if data is not None else case_json(), f)
    return json_file, image_root, gt_root


def test_rgb_id_encoding_channels_and_round_trip():
    ids = np.array([[0, 1, 256, 65536], [MAX_SEGMENT_ID, 0x030201, 255, 65535]])
    rgb = id_to_rgb(ids)
    assert rgb.dtype == np.uint8
    assert rgb[0, 1].tolist() == [1, 0, 0]  # R is the low byte
    assert rgb[0, 2].tolist() == [0, 1, 0]
    assert rgb[0, 3].tolist() == [0, 0, 1]
    assert rgb[1, 1].tolist() == [1, 2, 3]
    assert np.array_equal(rgb_to_id(rgb), ids)
    random = np.random.default_rng(0).integers(0, MAX_SEGMENT_ID + 1, (5, 7))
    assert np.array_equal(rgb_to_id(id_to_rgb(random)), random)
    with pytest.raises(ValueError, match="ids must lie"):
        id_to_rgb(np.array([[MAX_SEGMENT_ID + 1]]))


def test_write_and_read_id_png(tmp_path):
    ids = case_ids()[0]
    path = str(tmp_path / "a.png")
    write_id_png(path, ids)
    assert np.array_equal(read_id_png(path), ids)
    assert os.listdir(tmp_path) == ["a.png"]  # no temporary file left
    before = open(path, "rb").read()
    with pytest.raises(ValueError):
        write_id_png(path, np.full((2, 2), -1))
    assert open(path, "rb").read() == before  # a bad input never truncates the old file


def test_load_ground_truth(tmp_path):
    json_file, _, _ = write_vps_case(tmp_path)
    videos, categories = load_vps_ground_truth(json_file)
    assert [c["id"] for c in categories] == [9, 5]
    assert categories[0]["color"] == (220, 20, 60)
    (video,) = videos
    assert video.video_id == VIDEO and [f.file_name for f in video.frames] == [
        "00000.png",
        "00001.png",
    ]
    frame0 = video.frames[0]
    assert frame0.image_id == "00000" and (frame0.height, frame0.width) == (HEIGHT, WIDTH)
    assert frame0.segments[CROWD_ID] == Segment(CROWD_ID, 9, True)
    assert frame0.segments[THING_ID] == Segment(THING_ID, 9, False)
    assert set(video.frames[1].segments) == {STUFF_ID, THING_ID}


def test_video_dicts_contiguous_ids_and_paths(tmp_path):
    json_file, image_root, gt_root = write_vps_case(tmp_path)
    (record,) = load_vps_video_dicts(json_file, image_root, gt_root)
    assert record["length"] == 2 and record["video_id"] == VIDEO
    assert record["file_names"][1] == os.path.join(image_root, VIDEO, "00001.jpg")
    assert record["pan_seg_file_names"][0] == os.path.join(gt_root, VIDEO, "00000.png")
    infos = {s["id"]: s for s in record["segments_info"][0]}
    # sorted by dataset id: 5 (wall) -> 0, 9 (person) -> 1
    assert infos[STUFF_ID] == {"id": STUFF_ID, "category_id": 0, "iscrowd": 0, "isthing": False}
    assert infos[CROWD_ID] == {"id": CROWD_ID, "category_id": 1, "iscrowd": 1, "isthing": True}
    assert np.array_equal(read_vps_frame(record, 1), case_ids()[1])
    (mapped,) = load_vps_video_dicts(
        json_file, image_root, gt_root, dataset_id_to_contiguous_id={5: 3, 9: 7}
    )
    assert {s["category_id"] for s in mapped["segments_info"][0]} == {3, 7}


def test_split_without_annotations(tmp_path):
    data = case_json()
    del data["annotations"]
    json_file, image_root, _ = write_vps_case(tmp_path, data)
    with pytest.raises(VideoSegFormatError, match="annotations"):
        load_vps_ground_truth(json_file)
    (record,) = load_vps_video_dicts(json_file, image_root, None, require_annotations=False)
    assert "pan_seg_file_names" not in record and record["length"] == 2


def test_predictions(tmp_path):
    data = {"annotations": case_json()["annotations"]}
    for frame in data["annotations"][0]["annotations"]:
        del frame["image_id"]
        for info in frame["segments_info"]:
            info.pop("iscrowd")
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(data))
    videos = load_vps_predictions(str(path), categories=[5, 9])
    frame = videos[VIDEO].frames[0]
    assert frame.image_id == "00000" and not any(s.iscrowd for s in frame.segments.values())
    with pytest.raises(VideoSegFormatError, match="unknown category_id 9"):
        load_vps_predictions(str(path), categories=[5])


def test_check_frame_segments_names_both_sides():
    ids = case_ids()[0]
    frame = VpsFrame("00000.png", "00000", {STUFF_ID: Segment(STUFF_ID, 5), 42: Segment(42, 9)})
    with pytest.raises(VideoSegFormatError) as info:
        check_frame_segments(ids, frame, png_path="p.png", json_file="gt.json", video_id="v1")
    message = str(info.value)
    assert f"ids [{THING_ID}, {CROWD_ID}] are in the PNG" in message
    assert "segments [42] of gt.json do not occur" in message
    assert "video 'v1'" in message and "frame '00000.png'" in message


def test_vipseg_fallback_table():
    """124 categories, ids 0..123, 58 things (VIPSeg's panoVIPSeg_categories.json)."""
    assert [c[0] for c in VIPSEG_CATEGORIES] == list(range(124))
    assert sum(c[2] for c in VIPSEG_CATEGORIES) == 58
    assert VIPSEG_CATEGORIES[60][1] == "person" and VIPSEG_CATEGORIES[60][2] == 1
    meta = metadata_for("vipseg_val")
    assert len(meta["stuff_classes"]) == 124 and len(meta["thing_classes"]) == 58
    assert meta["thing_dataset_id_to_contiguous_id"][123] == 123  # "train", a thing
    assert 0 not in meta["thing_dataset_id_to_contiguous_id"]  # "wall", stuff

"""Bad dataset files, fed through the core loaders and the evaluation (no detectron2).

Two tables. ``ERROR_ROWS``: (what is wrong, how the file is changed, which entry point reads it,
text the error must contain); each must raise one error naming the file and the entry.
``DROPPED_ROWS``: degenerate polygons, which every reader drops by one rule
(``ytvis.valid_polygons``) and reports in one warning naming the annotation.
"""

import json
import logging
import os

import numpy as np
import pycocotools.mask as mask_util
import pytest

from video_mask2former.data.coco_images import ImageDatasetFormatError, load_coco_image_dataset
from video_mask2former.data.ytvis import YTVISFormatError, load_ytvis_json
from video_mask2former.evaluation import YTVISGroundTruth

HEIGHT, WIDTH, FRAMES = 16, 20, 2
SQUARE = [4.0, 4.0, 12.0, 4.0, 12.0, 10.0, 4.0, 10.0]  # a valid polygon (8 x 6 pixels)


def _rle(mask):
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def _video_dataset():
    """A valid two-frame YouTube-VIS video with one instance (RLE) and two categories."""
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[4:10, 5:12] = True
    return {
        "videos": [
            {
                "id": 7,
                "height": HEIGHT,
                "width": WIDTH,
                "length": FRAMES,
                "file_names": [f"v7/{i:05d}.jpg" for i in range(FRAMES)],
            }
        ],
        "annotations": [
            {
                "id": 3,
                "video_id": 7,
                "category_id": 1,
                "iscrowd": 0,
                "segmentations": [_rle(mask)] * FRAMES,
            }
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    }


def _image_dataset():
    """A valid COCO-format file: one image with one polygon annotation (id 5)."""
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "height": HEIGHT, "width": WIDTH}],
        "annotations": [
            {"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [SQUARE]}
        ],
        "categories": [{"id": 1, "name": "cat"}],
    }


def _write(tmp_path, data):
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data))
    return str(path)


def _load_videos(path):
    load_ytvis_json(path, "frames")


def _evaluate(path):
    YTVISGroundTruth.from_json(path)


def _load_images(path):
    load_coco_image_dataset(path, "images", check_files=False)


def _annotation(change):
    def apply(data):
        change(data["annotations"][0])

    return apply


def _no_frames(data):
    data["videos"][0].update(length=0, file_names=[])
    data["annotations"][0]["segmentations"] = []


def _no_frames_for_evaluation(data):
    _no_frames(data)
    del data["videos"][0]["file_names"]


def _duplicate_category(data):
    data["categories"].insert(1, {"id": 1, "name": "cat again"})


def _set_polygons(polygons):
    return _annotation(lambda a: a.update(segmentation=polygons))


ERROR_ROWS = [
    # (what is wrong, change, entry point, error type, text the error must hold)
    ("category id twice", _duplicate_category, _load_videos, YTVISFormatError,
     "category id 1 appears more than once"),
    ("category id twice (scoring)", _duplicate_category, _evaluate, YTVISFormatError,
     "category id 1 appears more than once"),
    ("video without frames", _no_frames, _load_videos, YTVISFormatError,
     "video 7 has no frames"),
    ("video without frames (scoring)", _no_frames_for_evaluation, _evaluate, YTVISFormatError,
     "video 7 has no frames"),
    ("iscrowd a string (video)", _annotation(lambda a: a.update(iscrowd="0")), _load_videos,
     YTVISFormatError, "annotation 3 of video 7: 'iscrowd' is a string ('0'), expected 0 or 1"),
    ("iscrowd 2 (scoring)", _annotation(lambda a: a.update(iscrowd=2)), _evaluate,
     YTVISFormatError, "'iscrowd' is a number (2), expected 0 or 1"),
    ("string in a video polygon",
     _annotation(lambda a: a["segmentations"].__setitem__(1, [["4", 4, 12, 4, 12, 10]])),
     _load_videos, YTVISFormatError, "annotation 3 of video 7, frame 1: polygon 0 holds a string"),
    ("string in an image polygon", _set_polygons([[4, 4, "12", 4, 12, 10]]), _load_images,
     ImageDatasetFormatError, "annotation 5 of image 1: polygon 0 holds a string ('12')"),
    ("polygon not a list", _set_polygons(["4, 4, 12, 4, 12, 10"]), _load_images,
     ImageDatasetFormatError, "annotation 5 of image 1: polygon 0 is a string"),
    ("iscrowd a string (image)", _annotation(lambda a: a.update(iscrowd="yes")), _load_images,
     ImageDatasetFormatError, "annotation 5 of image 1: 'iscrowd' is a string ('yes')"),
    ("iscrowd a number string (image)", _annotation(lambda a: a.update(iscrowd="1")),
     _load_images, ImageDatasetFormatError, "'iscrowd' is a string ('1'), expected 0 or 1"),
    ("only degenerate polygons", _set_polygons([[4, 4, 12, 4]]), _load_images,
     ImageDatasetFormatError, "none of the 1 annotations of a mapped category has a valid polygon"),
]  # fmt: skip

VIDEO_ROWS = {"category id twice", "category id twice (scoring)", "video without frames",
              "video without frames (scoring)", "iscrowd a string (video)", "iscrowd 2 (scoring)",
              "string in a video polygon"}  # fmt: skip


@pytest.mark.parametrize(
    "what, change, entry, error, text", ERROR_ROWS, ids=[row[0] for row in ERROR_ROWS]
)
def test_bad_dataset_is_one_clear_error(tmp_path, what, change, entry, error, text):
    data = _video_dataset() if what in VIDEO_ROWS else _image_dataset()
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(error) as info:
        entry(path)
    message = str(info.value)
    assert text in message and path in message and "\n" not in message


# --- degenerate polygons: dropped by one rule, reported (what, polygons, bbox given) ---
DROPPED_ROWS = [
    ("odd coordinates, no bbox", [[4, 4, 12, 4, 12]], False),
    ("empty polygon list, no bbox", [], False),
    ("empty polygon, no bbox", [[]], False),
    ("two points (a box to pycocotools)", [[4, 4, 12, 10]], True),
    ("zero area (collinear points)", [[2, 2, 6, 6, 10, 10]], True),
    ("zero area (one point thrice)", [[5, 5, 5, 5, 5, 5]], False),
]


def _image_file_with(polygons, with_bbox):
    data = _image_dataset()
    degenerate = {"id": 6, "image_id": 1, "category_id": 1, "iscrowd": 0}
    degenerate["segmentation"] = polygons
    if with_bbox:
        degenerate["bbox"] = [4.0, 4.0, 8.0, 6.0]
    data["annotations"].append(degenerate)
    return data


@pytest.mark.parametrize(
    "what, polygons, with_bbox", DROPPED_ROWS, ids=[row[0] for row in DROPPED_ROWS]
)
def test_degenerate_image_polygon_is_dropped_and_reported(
    tmp_path, caplog, what, polygons, with_bbox
):
    path = _write(tmp_path, _image_file_with(polygons, with_bbox))
    with caplog.at_level(logging.WARNING, logger="video_mask2former.data.ytvis"):
        records, _ = load_coco_image_dataset(path, "images", check_files=False)
    assert [obj["id"] for obj in records[0]["annotations"]] == [5]
    assert f"{path}: dropped 1 segmentations without a valid polygon" in caplog.text
    assert "annotation 6 of image 1" in caplog.text


@pytest.mark.parametrize(
    "what, polygons, with_bbox", DROPPED_ROWS, ids=[row[0] for row in DROPPED_ROWS]
)
def test_degenerate_video_polygon_is_dropped_and_reported(
    tmp_path, caplog, what, polygons, with_bbox
):
    """The same rule for a YouTube-VIS frame: the frame has no obj for the instance."""
    data = _video_dataset()
    data["annotations"][0]["segmentations"] = [[SQUARE], polygons]
    if with_bbox:
        data["annotations"][0]["bboxes"] = [[4.0, 4.0, 8.0, 6.0]] * FRAMES
    path = _write(tmp_path, data)
    with caplog.at_level(logging.WARNING, logger="video_mask2former.data.ytvis"):
        (record,) = load_ytvis_json(path, "frames")
    assert [len(objs) for objs in record["annotations"]] == [1, 0]
    assert f"{path}: dropped 1 segmentations without a valid polygon" in caplog.text
    assert "annotation 3 of video 7, frame 1" in caplog.text


def test_valid_polygons_are_kept_whole(tmp_path):
    """A degenerate polygon next to a valid one: the valid one stays, nothing is reported."""
    data = _image_dataset()
    data["annotations"][0]["segmentation"] = [SQUARE, [1, 1, 2, 2]]
    records, _ = load_coco_image_dataset(_write(tmp_path, data), "images", check_files=False)
    (obj,) = records[0]["annotations"]
    assert obj["segmentation"] == [SQUARE] and obj["bbox"] == [4.0, 4.0, 8.0, 6.0]


def test_evaluation_reads_polygons_by_the_same_rule(tmp_path):
    """A two-point ground-truth polygon is absent, not a box (pycocotools reads [x, y, w, h]
    lists of length 4 as boxes)."""
    data = _video_dataset()
    data["annotations"][0]["segmentations"] = [[SQUARE], [[4, 4, 12, 10]]]
    ground_truth = YTVISGroundTruth.from_json(_write(tmp_path, data))
    (track,) = ground_truth.tracks[7].rles
    assert track[0] is not None and track[1] is None
    assert ground_truth.tracks[7].areas[0, 1] == 0


def test_scoring_cli_names_the_duplicate_category(tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    data = _video_dataset()
    _duplicate_category(data)
    gt = _write(tmp_path, data)
    results = tmp_path / "results.json"
    results.write_text("[]")
    env = dict(os.environ, PYTHONPATH=root)
    script = os.path.join(root, "tools", "evaluate_ytvis.py")
    proc = subprocess.run(
        [sys.executable, script, "--gt", gt, "--results", str(results)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{gt}: category id 1 appears more than once" in proc.stderr

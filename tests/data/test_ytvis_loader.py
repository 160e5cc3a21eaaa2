"""Loading YouTube-VIS-format files: segmentation formats, null frames, categories, errors."""

import json

import numpy as np
import pycocotools.mask as mask_util
import pytest

from video_mask2former.data.ytvis import (
    BOX_MODE_XYWH_ABS,
    YTVISFormatError,
    decode_segmentation,
    load_ytvis_dataset,
    load_ytvis_json,
)

H, W = 8, 10


def _square_mask(x0, y0, x1, y1):
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def _uncompressed_rle(mask):
    flat = mask.flatten(order="F")
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], change])).tolist()
    return {"counts": counts, "size": [H, W]}


def _compressed_rle(mask):
    rle = mask_util.encode(np.asfortranarray(mask))
    return {"counts": rle["counts"].decode("ascii"), "size": [H, W]}


def _dataset():
    poly = [[1.0, 1.0, 5.0, 1.0, 5.0, 4.0, 1.0, 4.0]]
    return {
        "videos": [
            {"id": 7, "file_names": ["v/0.jpg", "v/1.jpg"], "height": H, "width": W, "length": 2}
        ],
        "categories": [{"id": 5, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": 1, "video_id": 7, "category_id": 5, "segmentations": [poly, None],
             "bboxes": [[1, 1, 4, 3], None], "iscrowd": 0},
            {"id": 2, "video_id": 7, "category_id": 2,
             "segmentations": [_uncompressed_rle(_square_mask(2, 2, 6, 7)), None]},
            {"id": 3, "video_id": 7, "category_id": 5,
             "segmentations": [None, _compressed_rle(_square_mask(0, 3, 4, 8))]},
        ],
    }  # fmt: skip


def test_each_segmentation_format_and_null_frames(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(_dataset()))
    records, meta = load_ytvis_dataset(str(path), "/root/images")
    assert len(records) == 1
    rec = records[0]
    assert rec["file_names"] == ["/root/images/v/0.jpg", "/root/images/v/1.jpg"]
    assert (rec["height"], rec["width"], rec["length"], rec["video_id"]) == (H, W, 2, 7)
    # Contiguous ids follow increasing dataset ids: dog (2) -> 0, cat (5) -> 1.
    assert meta["thing_classes"] == ["dog", "cat"]
    assert meta["thing_dataset_id_to_contiguous_id"] == {2: 0, 5: 1}

    frame0 = {o["id"]: o for o in rec["annotations"][0]}
    frame1 = {o["id"]: o for o in rec["annotations"][1]}
    assert sorted(frame0) == [1, 2] and sorted(frame1) == [3]  # null frames have no obj
    assert frame0[1]["category_id"] == 1 and frame0[2]["category_id"] == 0
    assert frame0[1]["bbox_mode"] == BOX_MODE_XYWH_ABS and frame0[1]["iscrowd"] == 0

    poly_mask = decode_segmentation(frame0[1]["segmentation"], H, W)
    assert poly_mask.dtype == bool and poly_mask.shape == (H, W)
    assert poly_mask[2, 3] and not poly_mask[6, 8] and poly_mask.sum() > 0
    np.testing.assert_array_equal(
        decode_segmentation(frame0[2]["segmentation"], H, W), _square_mask(2, 2, 6, 7) > 0
    )
    np.testing.assert_array_equal(
        decode_segmentation(frame1[3]["segmentation"], H, W), _square_mask(0, 3, 4, 8) > 0
    )
    assert not decode_segmentation(None, H, W).any()


def test_missing_bboxes_are_computed_from_the_segmentation():
    records = load_ytvis_json(_dataset(), "")
    frame0 = {o["id"]: o for o in records[0]["annotations"][0]}
    frame1 = {o["id"]: o for o in records[0]["annotations"][1]}
    assert frame0[2]["bbox"] == [2.0, 2.0, 4.0, 5.0]
    assert frame1[3]["bbox"] == [0.0, 3.0, 4.0, 5.0]


def test_given_mapping_and_unknown_category():
    records = load_ytvis_json(_dataset(), "", dataset_id_to_contiguous_id={5: 0, 2: 1})
    assert {o["id"]: o["category_id"] for o in records[0]["annotations"][0]} == {1: 0, 2: 1}
    with pytest.raises(YTVISFormatError, match="not in the given dataset_id_to_contiguous_id"):
        load_ytvis_json(_dataset(), "", dataset_id_to_contiguous_id={5: 0})


def test_invalid_polygons_are_dropped():
    data = _dataset()
    data["annotations"][0]["segmentations"][0] = [[1.0, 2.0, 3.0, 4.0]]  # 2 points only
    records = load_ytvis_json(data, "")
    assert [o["id"] for o in records[0]["annotations"][0]] == [2]


def test_test_split_without_annotations():
    data = _dataset()
    data["annotations"] = None
    records = load_ytvis_json(data, "")
    assert records[0]["annotations"] == [[], []]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["annotations"][0]["segmentations"].append(None),
         r"annotation 1 of video 7: 'segmentations' has 3 entries, expected a list with one entry "
         r"per frame \(2"),
        (lambda d: d["annotations"][1].update(video_id=99), r"annotation 2 refers to video 99"),
        (lambda d: d["annotations"][2].update(category_id=42),
         r"annotation 3 of video 7 has category_id 42"),
        (lambda d: d["annotations"][2]["segmentations"][1].update(size=[4, 4]),
         r"annotation 3 of video 7, frame 1: RLE size \[4, 4\]"),
        (lambda d: d["videos"][0]["file_names"].pop(), r"video 7 has length 2 but 1 file_names"),
        (lambda d: d["annotations"][1].update(id=1), r"annotation id 1 appears more than once"),
        (lambda d: d["annotations"][0]["segmentations"].__setitem__(0, "x"),
         r"annotation 1 of video 7, frame 0: expected polygons"),
        # RLEs whose run lengths do not cover H x W (pycocotools would decode garbage)
        (lambda d: d["annotations"][2]["segmentations"][1].update(counts="0"),
         r"annotation 3 of video 7, frame 1: RLE 'counts' sums to 0 pixels, expected H x W = "
         r"8 x 10 = 80"),
        (lambda d: d["annotations"][2]["segmentations"][1].update(counts="!!garbage"),
         r"annotation 3 of video 7, frame 1: RLE 'counts' is not a valid compressed RLE string: "
         r"character '!' at position 0"),
        (lambda d: d["annotations"][1]["segmentations"][0].update(counts=[-1, 81]),
         r"annotation 2 of video 7, frame 0: RLE 'counts' has a negative run length \(-1\)"),
        (lambda d: d["annotations"][1]["segmentations"][0].update(counts=[79]),
         r"annotation 2 of video 7, frame 0: RLE 'counts' sums to 79 pixels"),
        # wrong JSON types
        (lambda d: d["annotations"][1].update(video_id=[7]),
         r"annotation 2: 'video_id' is a list \(\[7\]\), expected an integer"),
        (lambda d: d["annotations"][1].update(category_id=None),
         r"annotation 2 of video 7: 'category_id' is null, expected an integer"),
        (lambda d: d.update(videos={"7": d["videos"][0]}),
         r"expected a 'videos' list, got an object"),
        (lambda d: d.pop("videos"), r"expected a 'videos' list, got nothing"),
        (lambda d: d.update(annotations={}),
         r"'annotations' is an object \(\{\}\), expected a list"),
        (lambda d: d["annotations"][0].update(segmentations=None),
         r"annotation 1 of video 7: 'segmentations' is null, expected a list with one entry per "
         r"frame"),
        (lambda d: d["videos"][0].update(file_names=None), r"video 7: 'file_names' is null"),
        (lambda d: d["videos"][0].update(height="8"), r"video 7: 'height' is a string"),
    ],
)  # fmt: skip
def test_validation_errors_name_file_and_ids(tmp_path, edit, message):
    data = _dataset()
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(YTVISFormatError, match=message) as info:
        load_ytvis_json(str(path), "")
    assert str(path) in str(info.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_ytvis_json(str(tmp_path / "nope.json"), "")
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(YTVISFormatError, match="broken.json: not valid JSON"):
        load_ytvis_json(str(bad), "")

"""Bad video panoptic (VIPSeg layout) and video semantic (VSPW layout) dataset files, fed through
the core loaders (no detectron2).

Two tables of rows (what is wrong, how the tiny valid case is damaged, which entry point reads it,
texts the error must contain). Every error is a VideoSegFormatError (a ValueError; a missing file
is also a FileNotFoundError) naming the file, and the video and frame where there is one.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

from tests.data.test_vps_data import (
    CROWD_ID,
    STUFF_ID,
    THING_ID,
    VIDEO,
    case_ids,
    case_json,
    write_vps_case,
)
from tests.data.test_vss_data import save_palette_png, write_vss_case
from video_mask2former.data.vps import (
    MissingVideoSegFileError,
    VideoSegFormatError,
    load_vps_ground_truth,
    load_vps_predictions,
    load_vps_video_dicts,
    read_vps_frame,
)
from video_mask2former.data.vss import check_vss_frame, load_vss_split, read_vss_prediction

# --------------------------------------------------------------------------------------------
# VIPSeg layout
# --------------------------------------------------------------------------------------------


def _frame(data, t=0):
    return data["annotations"][0]["annotations"][t]


def _json(change):
    """Damage the JSON: ``change(data)`` edits a valid case in place."""

    def build(root):
        data = case_json()
        change(data)
        return write_vps_case(root, data)

    return build


def _remove(name):
    def build(root):
        paths = write_vps_case(root)
        os.remove(os.path.join(root, name))
        return paths

    return build


def _replace_png(save):
    def build(root):
        paths = write_vps_case(root)
        save(os.path.join(root, "panomasksRGB", VIDEO, "00000.png"))
        return paths

    return build


def _wider_pngs(root):
    return write_vps_case(
        root, ids=[np.pad(ids, ((0, 0), (0, 1)), mode="edge") for ids in case_ids()]
    )


def _raw_json(text):
    def build(root):
        paths = write_vps_case(root)
        with open(paths[0], "w") as f:
            f.write(text)
        return paths

    return build


def _drop_segment(data, sid):
    infos = _frame(data)["segments_info"]
    infos[:] = [s for s in infos if s["id"] != sid]


def _set(data, key, value, index=0):
    _frame(data)["segments_info"][index][key] = value


VPS_ROWS = [
    # what, build, entry, texts
    (
        "PNG id missing from the JSON",
        _json(lambda d: _drop_segment(d, THING_ID)),
        "frame",
        [f"ids [{THING_ID}] are in the PNG but not in", "gt.json", "video 'v1'", "'00000.png'"],
    ),
    (
        "JSON segment missing from the PNG",
        _json(lambda d: _frame(d)["segments_info"].append({"id": 99, "category_id": 5})),
        "frame",
        ["segments [99] of", "do not occur in the PNG", "00000.png"],
    ),
    (
        "unknown category",
        _json(lambda d: _set(d, "category_id", 77)),
        "gt",
        ["gt.json", "video 'v1'", "frame '00000.png'", "unknown category_id 77"],
    ),
    (
        "PNG of another size than its frame",
        _wider_pngs,
        "frame",
        ["00000.png", "is 8x11 (HxW) but its frame", "00000.jpg", "is 8x10"],
    ),
    (
        "missing frame",
        _remove(os.path.join("images", VIDEO, "00001.jpg")),
        "dicts",
        ["Missing frame", "00001.jpg", "video 'v1'"],
    ),
    (
        "missing id PNG",
        _remove(os.path.join("panomasksRGB", VIDEO, "00001.png")),
        "dicts",
        ["Missing id PNG", "00001.png", "video 'v1'"],
    ),
    ("missing JSON", _remove("gt.json"), "gt", ["Missing ground-truth file", "gt.json"]),
    (
        "RGBA PNG",
        _replace_png(lambda p: Image.new("RGBA", (10, 8)).save(p)),
        "frame",
        ["00000.png", "mode 'RGBA'", "expected an 8-bit RGB PNG"],
    ),
    (
        "palette PNG",
        _replace_png(lambda p: Image.new("P", (10, 8)).save(p)),
        "frame",
        ["mode 'P'", "8-bit RGB"],
    ),
    (
        "16-bit grey PNG",
        _replace_png(lambda p: Image.fromarray(np.zeros((8, 10), np.uint16)).save(p)),
        "frame",
        ["00000.png", "expected an 8-bit RGB PNG"],
    ),
    (
        "JPEG saved as .png",
        _replace_png(lambda p: Image.new("RGB", (10, 8)).save(p, format="JPEG")),
        "frame",
        ["a JPEG image", "00000.png"],
    ),
    (
        "unreadable PNG",
        _replace_png(lambda p: open(p, "wb").write(b"\x89PNG\r\n\x1a\nbroken")),
        "frame",
        ["Cannot read id PNG", "00000.png"],
    ),
    ("not JSON", _raw_json("{videos: "), "gt", ["Cannot read ground-truth file", "as JSON"]),
    ("a list at the top", _raw_json("[]"), "gt", ["expected a JSON object at the top level"]),
    (
        "no categories",
        _json(lambda d: d.pop("categories")),
        "gt",
        ["'categories' must be a non-empty list"],
    ),
    (
        "category isthing not 0/1",
        _json(lambda d: d["categories"][0].update(isthing=2)),
        "gt",
        ["categories[0] ('person') has isthing 2"],
    ),
    (
        "category id twice",
        _json(lambda d: d["categories"][1].update(id=9)),
        "gt",
        ["category id 9 appears twice"],
    ),
    (
        "category colour not RGB",
        _json(lambda d: d["categories"][1].update(color=[1, 2])),
        "gt",
        ["('wall') has color [1, 2]"],
    ),
    (
        "frame without segments_info",
        _json(lambda d: _frame(d).pop("segments_info")),
        "gt",
        ["video 'v1'", "frame '00000.png'", "lacks the key 'segments_info'"],
    ),
    (
        "segment id a string",
        _json(lambda d: _set(d, "id", "7")),
        "gt",
        ["'id' must be an integer", "video 'v1'"],
    ),
    (
        "segment id 0 (void)",
        _json(lambda d: _set(d, "id", 0)),
        "gt",
        ["segment id 0 is outside 1..16777215 (0 is void)"],
    ),
    (
        "segment id twice",
        _json(lambda d: _set(d, "id", THING_ID, index=2)),
        "gt",
        [f"segment id {THING_ID} is listed twice", "frame '00000.png'"],
    ),
    ("iscrowd not 0/1", _json(lambda d: _set(d, "iscrowd", 2)), "gt", ["iscrowd 2"]),
    (
        "video annotated twice",
        _json(lambda d: d["annotations"].append(d["annotations"][0])),
        "gt",
        ["video 'v1' is annotated twice"],
    ),
    (
        "videos and annotations list other frames",
        _json(lambda d: d["videos"][0]["images"].pop()),
        "gt",
        ["video 'v1'", "they must be the same frames in the same order"],
    ),
    (
        "annotated video missing from videos",
        _json(lambda d: d["videos"][0].update(video_id="v2")),
        "gt",
        ["video 'v1' is annotated but not in 'videos'"],
    ),
    (
        "frame size not positive",
        _json(lambda d: d["videos"][0]["images"][0].update(height=0)),
        "gt",
        ["frame '00000.png'", "height must be a positive integer"],
    ),
    (
        "prediction of an unknown category",
        _json(lambda d: _set(d, "category_id", 3)),
        "pred",
        ["unknown category_id 3", "video 'v1'"],
    ),
]


def _read_all_frames(json_file, image_root, gt_root):
    for record in load_vps_video_dicts(json_file, image_root, gt_root):
        for t in range(record["length"]):
            read_vps_frame(record, t)


VPS_ENTRIES = {
    "gt": lambda j, i, g: load_vps_ground_truth(j),
    "dicts": lambda j, i, g: load_vps_video_dicts(j, i, g),
    "frame": _read_all_frames,
    "pred": lambda j, i, g: load_vps_predictions(j, categories=[5, 9]),
}


def test_the_valid_case_passes_every_entry(tmp_path):
    paths = write_vps_case(tmp_path)
    for entry in VPS_ENTRIES.values():
        entry(*paths)
    assert {CROWD_ID, STUFF_ID} <= {
        s["id"] for s in case_json()["annotations"][0]["annotations"][0]["segments_info"]
    }


@pytest.mark.parametrize("what, build, entry, texts", VPS_ROWS, ids=[r[0] for r in VPS_ROWS])
def test_bad_vps_input(tmp_path, what, build, entry, texts):
    paths = build(str(tmp_path))
    with pytest.raises(VideoSegFormatError) as info:
        VPS_ENTRIES[entry](*paths)
    for text in texts:
        assert text in str(info.value), (what, str(info.value))
    if what.startswith("missing"):
        assert isinstance(info.value, (MissingVideoSegFileError, FileNotFoundError))


# --------------------------------------------------------------------------------------------
# VSPW layout
# --------------------------------------------------------------------------------------------


def _vss(change):
    def build(root):
        write_vss_case(root)
        change(root)
        return root

    return build


def _mask(root, video="a_video", stem="00000001"):
    return os.path.join(root, "data", video, "mask", stem + ".png")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


VSS_ROWS = [
    (
        "missing split file",
        _vss(lambda r: os.remove(os.path.join(r, "train.txt"))),
        "split",
        ["Missing split file", "train.txt"],
    ),
    (
        "empty split file",
        _vss(lambda r: _write(os.path.join(r, "train.txt"), "\n")),
        "split",
        ["train.txt lists no video"],
    ),
    (
        "video listed twice",
        _vss(lambda r: _write(os.path.join(r, "train.txt"), "a_video\na_video\n")),
        "split",
        ["lists video 'a_video' twice"],
    ),
    (
        "video folder missing",
        _vss(lambda r: _write(os.path.join(r, "train.txt"), "a_video\nc_video\n")),
        "split",
        ["Missing frame folder", "c_video"],
    ),
    (
        "frame without mask",
        _vss(lambda r: os.remove(_mask(r, stem="00000002"))),
        "split",
        ["Missing mask", "00000002.png", "video 'a_video'", "frame '00000002'"],
    ),
    (
        "mask without frame",
        _vss(lambda r: save_palette_png(_mask(r, stem="00000009"), np.zeros((6, 8), np.uint8))),
        "split",
        ["00000009.png", "video 'a_video'", "has no frame"],
    ),
    (
        "no frames",
        _vss(
            lambda r: [
                os.remove(os.path.join(r, "data", "a_video", "origin", f"0000000{i}.jpg"))
                for i in (1, 2)
            ]
        ),
        "split",
        ["video 'a_video'", "holds no .jpg"],
    ),
    (
        "RGB mask",
        _vss(lambda r: Image.new("RGB", (8, 6)).save(_mask(r))),
        "frame",
        ["00000001.png", "video 'a_video'", "mode 'RGB'", "single-channel"],
    ),
    (
        "mask value above the classes",
        _vss(lambda r: save_palette_png(_mask(r), np.full((6, 8), 130, np.uint8))),
        "frame",
        ["values [130]", "1..124", "video 'a_video'"],
    ),
    (
        "mask of another size than its frame",
        _vss(lambda r: save_palette_png(_mask(r), np.ones((5, 8), np.uint8))),
        "frame",
        ["00000001.png", "is 5x8 (HxW) but its frame", "00000001.jpg", "is 6x8"],
    ),
    (
        "unreadable mask",
        _vss(lambda r: _write(_mask(r), "not a png")),
        "frame",
        ["Cannot read mask PNG", "00000001.png"],
    ),
    (
        "prediction value K",
        _vss(
            lambda r: Image.fromarray(np.full((6, 8), 124, np.uint8)).save(
                os.path.join(r, "pred.png")
            )
        ),
        "pred",
        ["pred.png", "values [124]", "0..123"],
    ),
    (
        "missing prediction",
        _vss(lambda r: None),
        "pred",
        ["Missing prediction PNG", "pred.png"],
    ),
]


def _vss_frame(root):
    videos = load_vss_split(root, "train.txt")
    check_vss_frame(videos[1], 0)  # a_video, frame 00000001


VSS_ENTRIES = {
    "split": lambda root: load_vss_split(root, "train.txt"),
    "frame": _vss_frame,
    "pred": lambda root: read_vss_prediction(os.path.join(root, "pred.png"), 124),
}


@pytest.mark.parametrize("what, build, entry, texts", VSS_ROWS, ids=[r[0] for r in VSS_ROWS])
def test_bad_vss_input(tmp_path, what, build, entry, texts):
    root = build(str(tmp_path))
    with pytest.raises(VideoSegFormatError) as info:
        VSS_ENTRIES[entry](root)
    for text in texts:
        assert text in str(info.value), (what, str(info.value))


def test_the_valid_vss_case_passes(tmp_path):
    root = write_vss_case(tmp_path)
    _vss_frame(root)
    Image.fromarray(np.full((6, 8), 123, np.uint8)).save(os.path.join(root, "pred.png"))
    assert VSS_ENTRIES["pred"](root).max() == 123
    assert json.dumps(case_json())  # the VPS case is plain JSON

"""VSPW-layout data (video_mask2former.data.vss): the label remapping, predictions, split loading.

``write_vss_case`` builds the tiny dataset that tests/bad_inputs/test_video_seg_data.py damages.
"""

import os

import numpy as np
import pytest
from PIL import Image

from video_mask2former.data.builtin_meta import metadata_for
from video_mask2former.data.vipseg_categories import VIPSEG_CATEGORIES
from video_mask2former.data.vss import (
    VideoSegFormatError,
    check_vss_frame,
    load_vss_split,
    load_vss_video_dicts,
    read_vss_label,
    read_vss_prediction,
)

HEIGHT, WIDTH = 6, 8
RAW = np.array([[0, 1, 2, 124], [255, 0, 3, 1]], dtype=np.uint8)


def save_palette_png(path, values):
    """An 8-bit palette PNG of ``values`` (as the VSPW masks are stored)."""
    image = Image.frombytes("P", (values.shape[1], values.shape[0]), values.tobytes())
    image.putpalette(list(range(256)) * 3)
    image.save(path)


def write_vss_case(root, videos=("b_video", "a_video"), frames=("00000002", "00000001")):
    """Videos with frames written out of order, a mask each; train.txt and test.txt."""
    root = str(root)
    for name in videos:
        for stem in frames:
            os.makedirs(os.path.join(root, "data", name, "origin"), exist_ok=True)
            os.makedirs(os.path.join(root, "data", name, "mask"), exist_ok=True)
            Image.new("RGB", (WIDTH, HEIGHT)).save(
                os.path.join(root, "data", name, "origin", stem + ".jpg")
            )
            mask = np.full((HEIGHT, WIDTH), 3, dtype=np.uint8)
            mask[0, 0] = 0
            save_palette_png(os.path.join(root, "data", name, "mask", stem + ".png"), mask)
    for split in ("train", "test"):
        with open(os.path.join(root, f"{split}.txt"), "w") as f:
            f.write("".join(f"{name}\n" for name in videos) + "\n")
    return root


@pytest.mark.parametrize("mode", ["P", "L"])
def test_label_remapping_as_the_vspw_authors(tmp_path, mode):
    """0 ("others") and 255 -> 255; v -> v - 1 (VSPW's segm_transform)."""
    path = str(tmp_path / "m.png")
    if mode == "P":
        save_palette_png(path, RAW)
    else:
        Image.fromarray(RAW, mode="L").save(path)
    label = read_vss_label(path)
    assert label.dtype == np.uint8
    assert label.tolist() == [[255, 0, 1, 123], [255, 255, 2, 0]]
    with pytest.raises(VideoSegFormatError, match=r"values \[124\]"):
        read_vss_label(path, num_classes=123)


def test_prediction_values(tmp_path):
    path = str(tmp_path / "p.png")
    Image.fromarray(np.array([[0, 2], [1, 2]], dtype=np.uint8)).save(path)
    assert read_vss_prediction(path, 3).tolist() == [[0, 2], [1, 2]]
    with pytest.raises(VideoSegFormatError, match=r"values \[2\].*0\.\.1"):
        read_vss_prediction(path, 2)


def test_split_order_and_frames(tmp_path):
    root = write_vss_case(tmp_path)
    videos = load_vss_split(root, "train.txt")  # a bare name is looked up in root
    assert [v.name for v in videos] == ["b_video", "a_video"]  # the split file's order
    assert videos[0].frame_names == ["00000001", "00000002"]  # sorted
    assert videos[0].mask_paths[1] == os.path.join(root, "data", "b_video", "mask", "00000002.png")
    assert videos[0].image_paths[0].endswith(os.path.join("origin", "00000001.jpg"))
    label = check_vss_frame(videos[0], 0)
    assert label[0, 0] == 255 and label[1, 1] == 2
    records = load_vss_video_dicts(root, os.path.join(root, "train.txt"))
    assert records[1]["video_id"] == "a_video" and records[1]["length"] == 2
    assert records[1]["sem_seg_file_names"] == videos[1].mask_paths


def test_test_split_without_masks(tmp_path):
    root = write_vss_case(tmp_path)
    for name in ("a_video", "b_video"):
        for stem in ("00000001", "00000002"):
            os.remove(os.path.join(root, "data", name, "mask", stem + ".png"))
        os.rmdir(os.path.join(root, "data", name, "mask"))
    record, _ = load_vss_video_dicts(root, "test.txt", with_masks=False)
    assert "sem_seg_file_names" not in record and record["length"] == 2


def test_vspw_uses_the_vipseg_classes_in_order():
    """VSPW label v - 1 is VIPSeg category v - 1 (label_num_dic_final.json: wall 1 .. train 124)."""
    meta = metadata_for("vspw_val")
    assert meta["stuff_classes"] == [name for _, name, _, _ in VIPSEG_CATEGORIES]
    assert meta["stuff_classes"][0] == "wall" and meta["stuff_classes"][123] == "train"
    assert meta["ignore_label"] == 255

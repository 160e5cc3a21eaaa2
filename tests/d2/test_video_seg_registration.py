"""detectron2 registration of the video panoptic (VIPSeg layout) and video semantic (VSPW layout)
datasets: register_vps_video / register_vss_video and the built-in splits."""

import json
import os

import pytest

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2

SMALL = dict(num_train_videos=1, num_val_videos=1, num_frames=2, height=32, width=40)


@pytest.fixture(scope="module")
def video_seg_root(tmp_path_factory):
    from video_mask2former.data.synthetic_video_seg import write_synthetic_vps, write_synthetic_vss

    root = tmp_path_factory.mktemp("video_seg")
    write_synthetic_vps(str(root / "vps_synthetic"), **SMALL)
    write_synthetic_vss(str(root / "vss_synthetic"), **SMALL)
    return root


def test_builtin_splits_are_registered():
    import video_mask2former.d2  # noqa: F401  (registers the built-in splits)
    from detectron2.data import DatasetCatalog, MetadataCatalog

    names = set(DatasetCatalog.list())
    for split in ("train", "val", "test"):
        assert f"vipseg_{split}" in names and f"vspw_{split}" in names
    for split in ("train", "val"):
        assert f"vps_synthetic_{split}" in names and f"vss_synthetic_{split}" in names
    vipseg = MetadataCatalog.get("vipseg_val")
    assert vipseg.evaluator_type == "vps" and len(vipseg.stuff_classes) == 124
    assert vipseg.json_file.endswith(os.path.join("VIPSeg_720P", "panoptic_gt_VIPSeg_val.json"))
    assert vipseg.panoptic_root.endswith(os.path.join("VIPSeg_720P", "panomasksRGB"))
    vspw = MetadataCatalog.get("vspw_test")
    assert vspw.evaluator_type == "vss" and vspw.split_file.endswith("test.txt")
    assert os.path.basename(vspw.root) == "VSPW_480p"


def _unregister_synthetic():
    from detectron2.data import DatasetCatalog, MetadataCatalog

    for name in list(DatasetCatalog.list()):
        if name.startswith(("vps_synthetic", "vss_synthetic")):
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def test_builtin_splits_load_under_a_root(video_seg_root):
    from detectron2.data import DatasetCatalog

    from video_mask2former.d2.datasets import register_all_builtin_video_seg

    _unregister_synthetic()
    try:
        register_all_builtin_video_seg(str(video_seg_root))
        (vps,) = DatasetCatalog.get("vps_synthetic_val")
        assert vps["length"] == 2 and len(vps["pan_seg_file_names"]) == 2
        (vss,) = DatasetCatalog.get("vss_synthetic_train")
        assert vss["video_id"] == "train_000" and len(vss["sem_seg_file_names"]) == 2
    finally:  # back to the default root for the other tests
        _unregister_synthetic()
        register_all_builtin_video_seg()


def test_register_vps_video_takes_or_checks_the_file_categories(video_seg_root, tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from video_mask2former.d2 import register_vps_video
    from video_mask2former.d2.datasets import DatasetConfigError
    from video_mask2former.data.builtin_meta import metadata_for

    folder = video_seg_root / "vps_synthetic"
    args = (
        str(folder / "panoptic_gt_synthetic_val.json"),
        str(folder / "images"),
        str(folder / "panomasksRGB"),
    )
    register_vps_video("h5_vps_plain", *args)
    assert len(DatasetCatalog.get("h5_vps_plain")) == 1
    meta = MetadataCatalog.get("h5_vps_plain")
    assert meta.stuff_classes == ["sky", "grass", "road", "disc", "box", "kite"]
    assert meta.thing_dataset_id_to_contiguous_id == {3: 3, 4: 4, 5: 5}

    register_vps_video("h5_vps_vipseg_table", *args, metadata=metadata_for("vipseg_val"))
    with pytest.raises(DatasetConfigError, match="differ from those it was registered with"):
        DatasetCatalog.get("h5_vps_vipseg_table")


def test_register_vss_video(video_seg_root):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from video_mask2former.d2 import register_vss_video
    from video_mask2former.data.builtin_meta import metadata_for

    root = str(video_seg_root / "vss_synthetic")
    register_vss_video("h5_vss", root, "val.txt", metadata_for("vss_synthetic_val"))
    (record,) = DatasetCatalog.get("h5_vss")
    assert record["sem_seg_file_names"][0].endswith(os.path.join("mask", "00000000.png"))
    assert MetadataCatalog.get("h5_vss").ignore_label == 255


def test_missing_builtin_files_say_where_to_get_them(tmp_path):
    from detectron2.data import DatasetCatalog

    from video_mask2former.d2 import register_vps_video, register_vss_video

    register_vps_video("h5_missing_vps", str(tmp_path / "gt.json"), str(tmp_path), str(tmp_path))
    with pytest.raises(FileNotFoundError, match="gt.json does not exist.*datasets/README.md"):
        DatasetCatalog.get("h5_missing_vps")
    register_vss_video("h5_missing_vss", str(tmp_path / "VSPW_480p"), "val.txt")
    with pytest.raises(FileNotFoundError, match="data does not exist.*datasets/README.md"):
        DatasetCatalog.get("h5_missing_vss")


def test_bad_file_under_registration_names_the_video(video_seg_root, tmp_path):
    from detectron2.data import DatasetCatalog

    from video_mask2former.d2 import register_vps_video
    from video_mask2former.data.vps import VideoSegFormatError

    folder = video_seg_root / "vps_synthetic"
    data = json.loads((folder / "panoptic_gt_synthetic_val.json").read_text())
    data["annotations"][0]["annotations"][1]["segments_info"][0]["category_id"] = 42
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    register_vps_video("h5_bad_vps", str(bad), str(folder / "images"), str(folder / "panomasksRGB"))
    with pytest.raises(VideoSegFormatError, match="video 'val_000'.*unknown category_id 42"):
        DatasetCatalog.get("h5_bad_vps")

"""The clip mapper on a tiny synthetic dataset written into tmp_path."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from tests.data.helpers import DAMAGES, write_damaged_jpeg
from video_mask2former.data.augmentation import build_clip_augmentation
from video_mask2former.data.builtin_meta import SYNTHETIC_CATEGORIES
from video_mask2former.data.clip_mapper import ClipDatasetMapper, masks_to_boxes
from video_mask2former.data.frames import CorruptFrameError
from video_mask2former.data.synthetic import write_synthetic_ytvis
from video_mask2former.data.ytvis import load_ytvis_json
from video_mask2former.structures import FrameInstances


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("ytvis_synthetic"))
    written = write_synthetic_ytvis(
        root, num_train_videos=6, num_val_videos=1, num_frames=4, height=32, width=40, seed=3
    )
    image_root, json_file = written["train"]
    return load_ytvis_json(json_file, image_root)


def _train_mapper(**kwargs):
    aug = build_clip_augmentation(is_train=True, min_size_train=(24, 48))
    args = dict(is_train=True, augmentations=aug, sampling_frame_num=2, sampling_frame_range=20)
    args.update(kwargs)
    return ClipDatasetMapper(**args)


def test_training_output(records):
    mapper = _train_mapper(sampling_frame_num=3)
    colors = {cid - 1: np.array(color) for cid, _, color in SYNTHETIC_CATEGORIES}
    num_checked = 0
    for seed, record in enumerate(records):
        out = mapper(record, np.random.default_rng(seed))
        assert (out["height"], out["width"], out["length"]) == (32, 40, 4)
        assert out["video_id"] == record["video_id"]
        assert out["file_names"] == [record["file_names"][i] for i in out["frame_idx"]]
        assert len(out["image"]) == len(out["instances"]) == 3
        n = {len(inst) for inst in out["instances"]}
        assert len(n) == 1  # same instances in every frame
        for image, inst in zip(out["image"], out["instances"]):
            assert isinstance(inst, FrameInstances)
            assert image.dtype == torch.uint8 and image.shape[0] == 3
            assert inst.gt_masks.shape[1:] == image.shape[1:] == inst.image_size
            assert inst.gt_masks.dtype == torch.bool and inst.gt_ids.dtype == torch.int64
            present = inst.gt_masks.flatten(1).any(1)
            assert torch.equal(inst.gt_ids == -1, ~present)
            boxes = torch.from_numpy(masks_to_boxes(inst.gt_masks.numpy()))
            assert torch.equal(inst.gt_boxes, boxes)
            assert torch.equal(inst.gt_classes, out["instances"][0].gt_classes)
            hwc = image.permute(1, 2, 0).numpy()
            for mask, cls in zip(inst.gt_masks.numpy(), inst.gt_classes.tolist()):
                if mask.sum() > 20:  # the mask still marks the shape of its colour
                    mean = hwc[mask].mean(0)
                    dist = {c: np.abs(mean - color).sum() for c, color in colors.items()}
                    assert min(dist, key=dist.get) == cls
                    num_checked += 1
        ids = torch.stack([inst.gt_ids for inst in out["instances"]])
        for column in ids.T:  # an instance keeps its id (or -1) across the clip
            assert len(set(column[column >= 0].tolist())) <= 1
    assert num_checked > 5


def test_seeded(records):
    mapper = _train_mapper()
    a = mapper(records[0], np.random.default_rng(5))
    b = mapper(records[0], np.random.default_rng(5))
    assert a["frame_idx"] == b["frame_idx"]
    assert all(torch.equal(x, y) for x, y in zip(a["image"], b["image"]))


def test_absent_instance_is_an_empty_mask_with_id_minus_one(records):
    record = dict(records[0])
    obj = {"id": 77, "category_id": 2, "iscrowd": 0, "bbox": [2, 2, 4, 4], "bbox_mode": 1,
           "segmentation": [[2.0, 2.0, 8.0, 2.0, 8.0, 8.0, 2.0, 8.0]]}  # fmt: skip
    record["annotations"] = [[obj], [], [], []]
    record["length"] = 2
    mapper = _train_mapper(sampling_frame_range=1)
    for seed in range(20):
        out = mapper(record, np.random.default_rng(seed))
        if out["frame_idx"] == [0, 1]:
            break
    assert out["frame_idx"] == [0, 1]
    first, second = out["instances"]
    assert first.gt_ids.tolist() == [77] and second.gt_ids.tolist() == [-1]
    assert first.gt_masks.any() and not second.gt_masks.any()
    assert second.gt_classes.tolist() == [2]  # the class stays the instance's category
    assert second.gt_boxes.abs().sum() == 0


def test_test_mode_yields_every_frame(records):
    aug = build_clip_augmentation(is_train=False, min_size_test=16)
    out = ClipDatasetMapper(is_train=False, augmentations=aug)(records[1])
    assert out["frame_idx"] == [0, 1, 2, 3] and out["instances"] == []
    assert [tuple(im.shape) for im in out["image"]] == [(3, 16, 20)] * 4


def test_bgr_matches_rgb(records):
    aug = build_clip_augmentation(is_train=False, min_size_test=32)
    rgb = ClipDatasetMapper(is_train=False, augmentations=aug)(records[0])
    bgr = ClipDatasetMapper(is_train=False, augmentations=aug, image_format="BGR")(records[0])
    assert torch.equal(rgb["image"][0], bgr["image"][0].flip(0))


def test_missing_or_unreadable_frame_names_the_file(records, tmp_path):
    record = dict(records[0])
    missing = str(tmp_path / "gone" / "00002.jpg")
    record["file_names"] = [missing] * record["length"]
    with pytest.raises(FileNotFoundError, match="gone/00002.jpg"):
        _train_mapper()(record, np.random.default_rng(0))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    record["file_names"] = [str(broken)] * record["length"]
    with pytest.raises(OSError, match="broken.jpg"):
        _train_mapper()(record, np.random.default_rng(0))
    wrong = tmp_path / "wrong.jpg"
    Image.fromarray(np.zeros((10, 10, 3), dtype=np.uint8)).save(wrong)
    record["file_names"] = [str(wrong)] * record["length"]
    with pytest.raises(ValueError, match="wrong.jpg.*10x10.*40x32"):
        _train_mapper()(record, np.random.default_rng(0))


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("is_train", [True, False])  # training, and the frames of evaluation
def test_damaged_frame_is_an_error_naming_the_file(records, tmp_path, damage, is_train):
    record = dict(records[0])
    bad = write_damaged_jpeg(tmp_path / "00001.jpg", damage, height=32, width=40)
    record["file_names"] = [bad] * record["length"]
    if is_train:
        mapper = _train_mapper()
    else:
        aug = build_clip_augmentation(is_train=False, min_size_test=32)
        mapper = ClipDatasetMapper(is_train=False, augmentations=aug)
    with pytest.raises(CorruptFrameError, match=re.escape(bad)):
        mapper(record, np.random.default_rng(0))

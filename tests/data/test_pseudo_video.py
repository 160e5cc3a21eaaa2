"""Pseudo-videos: one annotated image -> T frames under their own transforms."""

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from PIL import Image

from video_mask2former.data.augmentation import (
    ClipAugmentation,
    ClipAugmentationList,
    CropTransform,
    build_clip_augmentation,
)
from video_mask2former.data.clip_mapper import ClipDatasetMapper, masks_to_boxes
from video_mask2former.data.coco_images import load_coco_image_dataset
from video_mask2former.data.pseudo_video import (
    PseudoVideoAugmentation,
    PseudoVideoMapper,
    build_pseudo_video_augmentation,
)
from video_mask2former.data.synthetic import generate_synthetic_ytvis
from video_mask2former.data.synthetic_images import write_synthetic_coco
from video_mask2former.data.ytvis import decode_segmentation, load_ytvis_json
from video_mask2former.structures import FrameInstances

HEIGHT, WIDTH = 40, 48
# Instance 11: a polygon square at x, y in [2, 10]; instance 5: an RLE box at x 30-39, y 20-29.
POLYGON = [[2.0, 2.0, 10.0, 2.0, 10.0, 10.0, 2.0, 10.0]]
BOX = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
BOX[20:30, 30:40] = 1


class KnownCrops(ClipAugmentation):
    """Crops frame t to ``windows[t]`` = (x0, y0, w, h): a known transform per frame."""

    def __init__(self, windows):
        self.windows, self.next = windows, 0

    def sample(self, rng):
        window = self.windows[self.next % len(self.windows)]
        self.next += 1
        return window

    def get_transform(self, window, h, w):
        return CropTransform(*window)


@pytest.fixture
def record(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "image.png")
    rle = mask_util.encode(np.asfortranarray(BOX))
    rle["counts"] = rle["counts"].decode("ascii")
    return {
        "file_name": str(tmp_path / "image.png"),
        "height": HEIGHT,
        "width": WIDTH,
        "image_id": 7,
        "annotations": [
            {"id": 11, "category_id": 2, "iscrowd": 0, "segmentation": POLYGON},
            {"id": 5, "category_id": 0, "iscrowd": 0, "segmentation": rle},
            {"id": 3, "category_id": 1, "iscrowd": 1, "segmentation": POLYGON},  # crowd: skipped
        ],
    }


def _image_masks(record):
    objs = sorted((o for o in record["annotations"] if not o["iscrowd"]), key=lambda o: o["id"])
    return np.stack([decode_segmentation(o["segmentation"], HEIGHT, WIDTH) for o in objs])


def test_each_frame_is_the_image_under_its_known_transform(record):
    # Frame 0: whole image; frame 1: top-left 20x20 (box 5 cut out); frame 2: bottom right
    # (square 11 cut out).
    windows = [(0, 0, WIDTH, HEIGHT), (0, 0, 20, 20), (24, 16, 24, 24)]
    aug = PseudoVideoAugmentation(ClipAugmentationList([KnownCrops(windows)]), rotation_range=None)
    out = PseudoVideoMapper(augmentation=aug, num_frames=3)(record, np.random.default_rng(0))
    image = np.asarray(Image.open(record["file_name"]))
    full = _image_masks(record)  # (2, H, W): ids 5, 11
    expected_ids = [[5, 11], [-1, 11], [5, -1]]
    for t, (x0, y0, w, h) in enumerate(windows):
        frame, inst = out["image"][t], out["instances"][t]
        assert torch.equal(
            frame, torch.from_numpy(image[y0 : y0 + h, x0 : x0 + w]).permute(2, 0, 1)
        )
        assert np.array_equal(inst.gt_masks.numpy(), full[:, y0 : y0 + h, x0 : x0 + w])
        assert inst.gt_ids.tolist() == expected_ids[t]
        assert inst.gt_classes.tolist() == [0, 2]  # the class stays when the instance is absent
        absent = inst.gt_ids == -1
        assert not inst.gt_masks[absent].any() and not inst.gt_boxes[absent].any()
        assert torch.equal(inst.gt_boxes, torch.from_numpy(masks_to_boxes(inst.gt_masks.numpy())))
    assert out["length"] == 3 and out["frame_idx"] == [0, 1, 2] and out["video_id"] == 7
    assert out["file_names"] == [record["file_name"]] * 3


def test_random_frames_follow_their_transforms(record):
    aug = build_pseudo_video_augmentation(
        min_size_train=(24, 32, 40), max_size_train=100, crop_type="relative_range",
        crop_size=(0.5, 0.5), augmentations=("rotation", "brightness"),
    )  # fmt: skip
    mapper = PseudoVideoMapper(augmentation=aug, num_frames=4)
    image = np.asarray(Image.open(record["file_name"]))
    moved = 0
    for seed in range(6):
        out = mapper(record, np.random.default_rng(seed))
        frames, transforms = aug(image, 4, np.random.default_rng(seed))  # the same draws
        centres = []
        for t in range(4):
            inst = out["instances"][t]
            assert np.array_equal(
                inst.gt_masks.numpy(), transforms[t].apply_masks(_image_masks(record))
            )
            assert torch.equal(out["image"][t], torch.from_numpy(frames[t]).permute(2, 0, 1))
            assert torch.equal(inst.gt_ids == -1, ~inst.gt_masks.flatten(1).any(1))
            assert inst.gt_masks.shape[1:] == out["image"][t].shape[1:] == inst.image_size
            ys, xs = np.nonzero(inst.gt_masks[1].numpy())  # instance 11
            h, w = inst.image_size
            centres.append((xs.mean() / w, ys.mean() / h) if len(xs) else None)
        moved += len(set(c for c in centres if c is not None)) > 1
    assert moved >= 4  # the objects move between the frames of most clips


def test_rotation_angles_are_monotone():
    aug = build_pseudo_video_augmentation()
    directions = set()
    for seed in range(20):
        angles = aug.rotation_angles(5, np.random.default_rng(seed))
        assert np.all(np.abs(angles) <= 15)
        steps = np.diff(angles)
        assert np.all(steps >= 0) or np.all(steps <= 0)
        directions.add(bool(steps[0] > 0))
    assert directions == {True, False}


def test_same_format_as_the_video_mapper(tmp_path, record):
    dataset, frames = generate_synthetic_ytvis(
        num_videos=1, num_frames=3, height=32, width=40, with_images=True
    )
    for name, frame in zip(dataset["videos"][0]["file_names"], frames[0]):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame).save(tmp_path / name)
    video = load_ytvis_json(dataset, str(tmp_path))[0]
    clip = ClipDatasetMapper(
        is_train=True, augmentations=build_clip_augmentation(is_train=True, min_size_train=(32,))
    )(video, np.random.default_rng(0))
    pseudo = PseudoVideoMapper(augmentation=build_pseudo_video_augmentation(), num_frames=2)(
        record, np.random.default_rng(0)
    )
    assert pseudo.keys() == clip.keys()
    for key in clip:
        assert type(pseudo[key]) is type(clip[key]), key
    a, b = pseudo["instances"][0], clip["instances"][0]
    assert isinstance(a, FrameInstances)
    for field in ("gt_classes", "gt_ids", "gt_masks", "gt_boxes"):
        assert getattr(a, field).dtype == getattr(b, field).dtype, field
    assert pseudo["image"][0].dtype == clip["image"][0].dtype == torch.uint8


def test_polygons_and_rle_give_the_same_clip(tmp_path):
    masks = {}
    for fmt in ("rle", "polygon"):
        image_root, json_file = write_synthetic_coco(
            str(tmp_path / fmt), num_images=3, height=48, width=64, segmentation_format=fmt
        )
        records, _ = load_coco_image_dataset(json_file, image_root)
        aug = build_pseudo_video_augmentation(
            min_size_train=(48,), crop_type="relative_range", crop_size=(0.7, 0.7)
        )
        out = PseudoVideoMapper(augmentation=aug, num_frames=2)(
            records[0], np.random.default_rng(1)
        )
        masks[fmt] = torch.cat([inst.gt_masks.flatten() for inst in out["instances"]])
    rle, polygon = masks["rle"], masks["polygon"]
    assert rle.shape == polygon.shape and rle.any()
    iou = (rle & polygon).sum() / (rle | polygon).sum()
    assert iou > 0.8  # polygons are the RLE masks' contours, rasterised again


def test_seeded(record):
    mapper = PseudoVideoMapper(augmentation=build_pseudo_video_augmentation(), num_frames=3)
    a, b = (mapper(record, np.random.default_rng(3)) for _ in range(2))
    assert all(torch.equal(x, y) for x, y in zip(a["image"], b["image"]))


def test_missing_image_names_the_file(record, tmp_path):
    record["file_name"] = str(tmp_path / "gone.jpg")
    mapper = PseudoVideoMapper(augmentation=build_pseudo_video_augmentation())
    with pytest.raises(FileNotFoundError, match="gone.jpg.*image id 7"):
        mapper(record)


def test_bad_arguments():
    with pytest.raises(ValueError, match="INPUT.PSEUDO.AUGMENTATIONS"):
        build_pseudo_video_augmentation(augmentations=("rotation", "zoom"))
    with pytest.raises(ValueError, match="SAMPLING_FRAME_NUM"):
        PseudoVideoMapper(augmentation=build_pseudo_video_augmentation(), num_frames=0)

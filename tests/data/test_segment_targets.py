"""Panoptic / semantic clip targets: one tube per thing segment and per stuff class."""

import numpy as np
import pytest
import torch

from video_mask2former.data.segment_targets import (
    STUFF_TUBE_ID_BASE,
    clip_segment_targets,
    semantic_frame_segments,
)
from video_mask2former.data.transforms import HFlipTransform, TransformList

IDENTITY = TransformList([])


def _seg(segment_id, category, isthing, iscrowd=0):
    return {"id": segment_id, "category_id": category, "isthing": isthing, "iscrowd": iscrowd}


def _clip():
    """Two 3x4 frames. Classes: 0 "person" (thing), 1 "sky" and 2 "road" (stuff).

    Frame 0: person 7 (left column), person 9 (col 1), sky as two segments 21 and 22 (top row of
    cols 2-3 and row 1 of cols 2-3), crowd person 30 at (2, 2), void at (2, 3).
    Frame 1: person 7 has left; person 9 moved to col 0; sky is one segment 23 (rows 0-1 of
    cols 1-3); road 40 at row 2 cols 1-3.
    """
    f0 = np.array([[7, 9, 21, 21], [7, 9, 22, 22], [7, 9, 30, 0]], dtype=np.int64)
    s0 = [_seg(7, 0, True), _seg(9, 0, True), _seg(21, 1, False), _seg(22, 1, False)]
    s0.append(_seg(30, 0, True, iscrowd=1))
    f1 = np.array([[9, 23, 23, 23], [9, 23, 23, 23], [9, 40, 40, 40]], dtype=np.int64)
    s1 = [_seg(9, 0, True), _seg(23, 1, False), _seg(40, 2, False)]
    return [(f0, s0), (f1, s1)]


def test_things_by_id_stuff_merged_per_class_crowd_and_void_in_no_tube():
    out = clip_segment_targets(_clip(), [IDENTITY, IDENTITY])
    assert len(out) == 2
    # Tubes: person 7, person 9, sky, road -- the crowd segment makes none.
    for frame in out:
        assert frame.gt_classes.tolist() == [0, 0, 1, 2]
        assert frame.image_size == (3, 4)
    sky, road = STUFF_TUBE_ID_BASE + 1, STUFF_TUBE_ID_BASE + 2
    assert out[0].gt_ids.tolist() == [7, 9, sky, -1]  # road absent from frame 0
    assert out[1].gt_ids.tolist() == [-1, 9, sky, road]  # person 7 has left
    m0, m1 = out[0].gt_masks.numpy(), out[1].gt_masks.numpy()
    assert m0[0].sum() == 3 and m0[0][:, 0].all()
    # Sky: both segments of frame 0 merged (4 pixels); frame 1's differently numbered segment.
    assert m0[2].sum() == 4 and m0[2][:2, 2:].all()
    assert m1[2].sum() == 6 and m1[2][:2, 1:].all()
    assert not m1[0].any() and not m0[3].any()
    # Crowd and void pixels belong to no tube: they are the ignore region, nothing else is.
    assert not m0[:, 2, 2].any() and not m0[:, 2, 3].any()
    assert np.argwhere(out[0].ignore_mask.numpy()).tolist() == [[2, 2], [2, 3]]
    assert not out[1].ignore_mask.any()
    # Boxes: XYXY, one past the last pixel; zero when absent.
    assert out[1].gt_boxes[1].tolist() == [0.0, 0.0, 1.0, 3.0]
    assert out[1].gt_boxes[0].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_targets_follow_the_augmentation():
    flip = TransformList([HFlipTransform(4)])
    out = clip_segment_targets(_clip(), [flip, flip])
    assert out[0].gt_masks[0].numpy()[:, 3].all()  # person 7 moved to the right column
    assert out[1].gt_masks[1].numpy()[:, 3].all()


def test_a_tube_cropped_away_gets_id_minus_one():
    from video_mask2former.data.transforms import CropTransform

    crop = TransformList([CropTransform(2, 0, 2, 3)])  # keep columns 2-3
    out = clip_segment_targets(_clip(), [crop, crop])
    assert out[0].gt_ids.tolist()[:2] == [-1, -1]  # both persons cropped away in frame 0
    assert out[0].gt_masks.shape == (4, 3, 2)


def test_semantic_frames_one_tube_per_class_255_void():
    labels = np.array([[0, 0, 5], [255, 5, 5]], dtype=np.uint8)
    ids, segments = semantic_frame_segments(labels)
    assert ids.tolist() == [[1, 1, 6], [0, 6, 6]]
    assert segments == [
        {"id": 1, "category_id": 0, "iscrowd": 0, "isthing": False},
        {"id": 6, "category_id": 5, "iscrowd": 0, "isthing": False},
    ]
    labels2 = np.array([[5, 5, 5], [3, 3, 255]], dtype=np.uint8)
    out = clip_segment_targets(
        [(ids, segments), semantic_frame_segments(labels2)], [IDENTITY, IDENTITY]
    )
    assert out[0].gt_classes.tolist() == [0, 3, 5]
    assert out[0].gt_ids.tolist() == [STUFF_TUBE_ID_BASE, -1, STUFF_TUBE_ID_BASE + 5]
    assert out[1].gt_masks[2].sum() == 3 and not out[1].gt_masks[:, 1, 2].any()


def test_empty_clip_has_no_tubes():
    frames = [(np.zeros((2, 2), dtype=np.int64), [])] * 2
    out = clip_segment_targets(frames, [IDENTITY, IDENTITY])
    assert [len(f) for f in out] == [0, 0]
    assert out[0].gt_masks.shape == (0, 2, 2) and out[0].gt_masks.dtype == torch.bool


@pytest.mark.parametrize("iscrowd", [0, 1])
def test_crowd_stuff_segment_is_not_merged_into_its_class(iscrowd):
    ids = np.array([[1, 2]], dtype=np.int64)
    segments = [_seg(1, 1, False), _seg(2, 1, False, iscrowd=iscrowd)]
    out = clip_segment_targets([(ids, segments)], [IDENTITY])
    assert out[0].gt_masks[0].numpy().tolist() == [[True, not iscrowd]]


def _mapper(num_classes):
    from video_mask2former.data.augmentation import build_clip_augmentation
    from video_mask2former.data.segment_targets import SegmentClipDatasetMapper

    augmentation = build_clip_augmentation(is_train=True, min_size_train=(48,), max_size_train=64)
    return SegmentClipDatasetMapper(
        is_train=True, augmentations=augmentation, sampling_frame_num=3, num_classes=num_classes
    )


def test_mapper_on_synthetic_panoptic_videos(tmp_path):
    from video_mask2former.data.synthetic_video_seg import write_synthetic_vps
    from video_mask2former.data.vps import load_vps_video_dicts, read_vps_frame

    splits = write_synthetic_vps(str(tmp_path), num_train_videos=2, num_val_videos=1)
    json_file, image_root, gt_root = splits["train"]
    records = load_vps_video_dicts(json_file, image_root, gt_root)
    out = _mapper(6)(records[0], np.random.default_rng(0))
    assert len(out["image"]) == 3 and out["image"][0].shape[1] == 48
    frames = out["instances"]
    n = len(frames[0])
    assert n > 0 and all(len(f) == n for f in frames)
    assert all(f.gt_masks.shape == (n, *out["image"][0].shape[1:]) for f in frames)
    # Every non-crowd thing id and every stuff class of the sampled frames is one tube.
    things, stuff = set(), set()
    for t in out["frame_idx"]:
        ids = set(np.unique(read_vps_frame(records[0], t)).tolist())
        for s in records[0]["segments_info"][t]:
            if s["id"] not in ids or s["iscrowd"]:
                continue
            if s["isthing"]:
                things.add(s["id"])
            else:
                stuff.add(s["category_id"])
    tube_ids = set(frames[0].gt_ids.tolist()) | set(frames[1].gt_ids.tolist())
    tube_ids |= set(frames[2].gt_ids.tolist())
    assert tube_ids - {-1} == things | {STUFF_TUBE_ID_BASE + c for c in stuff}


def test_mapper_on_synthetic_semantic_videos(tmp_path):
    from video_mask2former.data.synthetic_video_seg import write_synthetic_vss
    from video_mask2former.data.vss import load_vss_video_dicts

    root, split_file = write_synthetic_vss(str(tmp_path), num_train_videos=2, num_val_videos=1)[
        "train"
    ]
    records = load_vss_video_dicts(root, split_file)
    out = _mapper(6)(records[0], np.random.default_rng(1))
    frames = out["instances"]
    assert len(frames) == 3 and len(frames[0]) > 0
    # Semantic tubes are stuff: ids STUFF_TUBE_ID_BASE + class, one per class present.
    classes = frames[0].gt_classes.tolist()
    assert classes == sorted(classes)
    for f in frames:
        present = f.gt_ids[f.gt_ids >= 0]
        assert ((present - STUFF_TUBE_ID_BASE) == f.gt_classes[f.gt_ids >= 0]).all()

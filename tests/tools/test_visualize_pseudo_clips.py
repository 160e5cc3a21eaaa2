"""A pseudo-video clip (one image, a crop and resize per frame: frames of different sizes) drawn
and written as one video, without detectron2 (the tool's data-loader source is tested in
tests/d2/test_visualize_pseudo_video.py)."""

import numpy as np

from video_mask2former.data.coco_images import load_coco_image_dataset
from video_mask2former.data.pseudo_video import PseudoVideoMapper, build_pseudo_video_augmentation
from video_mask2former.data.synthetic_images import write_synthetic_coco
from video_mask2former.visualization import FrameWriter, track_color
from video_mask2former.visualization.ground_truth import draw_clip, pad_frames

NUM_FRAMES = 3


def test_pad_frames_keeps_each_frame_top_left_and_pads_black():
    frames = [np.full((4, 6, 3), 7, np.uint8), np.full((5, 3, 3), 9, np.uint8)]
    padded = pad_frames(frames)
    assert [f.shape for f in padded] == [(5, 6, 3), (5, 6, 3)]
    assert padded[0] is not frames[0] and (padded[0][:4] == 7).all() and (padded[0][4] == 0).all()
    assert (padded[1][:, :3] == 9).all() and (padded[1][:, 3:] == 0).all()
    same = [np.ones((2, 2, 3), np.uint8)] * 2
    assert all(p is f for p, f in zip(pad_frames(same), same))
    assert pad_frames([]) == []


def test_pseudo_video_clip_drawn_and_written_as_one_video(tmp_path):
    image_root, json_file = write_synthetic_coco(str(tmp_path), num_images=1, height=48, width=64)
    (record,), meta = load_coco_image_dataset(json_file, image_root)
    augmentation = build_pseudo_video_augmentation(
        min_size_train=(32, 40, 48), max_size_train=128, crop_type="relative_range",
        crop_size=(0.6, 0.6), augmentations=(),
    )  # fmt: skip
    mapper = PseudoVideoMapper(augmentation=augmentation, num_frames=NUM_FRAMES)
    clip = mapper(record, np.random.default_rng(3))
    drawn = draw_clip(clip, meta["thing_classes"])
    assert len({f.shape for f in drawn}) > 1  # one crop and resize per frame
    for frame, image in zip(drawn, clip["image"]):
        assert frame.shape == tuple(image.shape[1:]) + (3,)
    first = np.asarray(track_color(0), dtype=np.uint8)
    assert any((f == first).all(-1).any() for f in drawn)  # the first instance is drawn
    padded = pad_frames(drawn)
    for frame, original in zip(padded, drawn):
        h, w = original.shape[:2]
        assert np.array_equal(frame[:h, :w], original)
    with FrameWriter(str(tmp_path / "clip.mp4"), None, fps=5.0) as writer:
        for frame in padded:
            writer.write(frame)
    assert writer.count == NUM_FRAMES

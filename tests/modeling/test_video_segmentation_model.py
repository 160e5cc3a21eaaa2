"""The model's panoptic / semantic outputs: whole video == one window, shapes, a training step
on panoptic clip targets."""

import numpy as np
import pytest
import torch

from tests.modeling.tiny_video_model import NUM_CLASSES, build_tiny_model, random_video
from video_mask2former.data.segment_targets import clip_segment_targets
from video_mask2former.data.transforms import TransformList
from video_mask2former.inference.segment_windows import SegmentationTask

PANOPTIC = SegmentationTask(
    "panoptic", thing_classes=(0,), object_mask_threshold=0.0, overlap_threshold=0.0
)
SEMANTIC = SegmentationTask("semantic")


def _model(task, window_size=0):
    model = build_tiny_model(seed=3).eval()
    model.segmentation_task = task
    model.window_size = window_size
    return model


@pytest.mark.parametrize("task", [PANOPTIC, SEMANTIC], ids=["panoptic", "semantic"])
def test_whole_video_equals_one_window_and_has_the_requested_size(task):
    video = {"image": random_video(3, 40, 56, seed=1), "height": 30, "width": 42}
    whole = _model(task)([video])
    windowed = _model(task, window_size=4)([video])
    key = "panoptic_seg" if task.kind == "panoptic" else "sem_seg"
    assert whole[key].shape == (3, 30, 42) and whole["image_size"] == (30, 42)
    assert torch.equal(whole[key], windowed[key])
    if task.kind == "panoptic":
        assert whole["segments_info"] == windowed["segments_info"]
        assert len(whole["segments_info"]) == 3
        assert whole["panoptic_seg"].dtype == torch.int32
        for frame, infos in zip(whole["panoptic_seg"], whole["segments_info"]):
            assert set(frame.unique().tolist()) - {0} == {s["id"] for s in infos}
    else:
        assert int(whole[key].max()) < NUM_CLASSES


def test_windowed_panoptic_covers_every_frame():
    video = {"image": random_video(5, 64, 64, seed=2)}
    result = _model(PANOPTIC, window_size=2)([video])
    assert result["panoptic_seg"].shape == (5, 64, 64)
    assert len(result["segments_info"]) == 5


def test_training_step_on_panoptic_targets():
    # A thing (class 0) moving over two stuff classes (1, 2), with a crowd segment.
    ids = np.zeros((2, 32, 32), dtype=np.int64)
    ids[:, :16] = 101  # stuff class 1
    ids[:, 16:] = 102  # stuff class 2
    ids[0, 4:12, 4:12] = 7
    ids[1, 6:14, 8:16] = 7
    ids[1, 20:24, 20:24] = 30  # crowd
    segments = [
        {"id": 7, "category_id": 0, "isthing": True, "iscrowd": 0},
        {"id": 101, "category_id": 1, "isthing": False, "iscrowd": 0},
        {"id": 102, "category_id": 2, "isthing": False, "iscrowd": 0},
    ]
    crowd = {"id": 30, "category_id": 0, "isthing": True, "iscrowd": 1}
    frames = [(ids[0], segments), (ids[1], segments + [crowd])]
    instances = clip_segment_targets(frames, [TransformList([]), TransformList([])])
    model = build_tiny_model().train()
    video = {"image": random_video(2, 32, 32), "instances": instances}
    (target,) = model.prepare_targets([video], (40, 36))
    assert target["labels"].tolist() == [0, 1, 2]
    # Ignored: the crowd square of frame 1 and the padding of both frames.
    ignore = target["ignore"]
    assert ignore.shape == (2, 40, 36)
    assert ignore[1, 20:24, 20:24].all() and not ignore[0, :32, :32].any()
    assert int(ignore[1, :32, :32].sum()) == 16
    assert ignore[:, 32:].all() and ignore[:, :, 32:].all()
    losses = model([video])
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.sem_seg_head.predictor.query_feat.weight.grad.abs().sum() > 0


def test_segmentation_task_must_be_a_task():
    from video_mask2former.modeling.video_maskformer import VideoMaskFormer

    model = build_tiny_model()
    with pytest.raises(TypeError, match="SegmentationTask"):
        VideoMaskFormer(
            backbone=model.backbone,
            sem_seg_head=model.sem_seg_head,
            criterion=None,
            num_queries=5,
            size_divisibility=0,
            pixel_mean=[0, 0, 0],
            pixel_std=[1, 1, 1],
            segmentation_task="panoptic",
        )


def test_model_stream_gives_the_windowed_frames():
    frames = random_video(4, 64, 64, seed=5)
    windowed = _model(PANOPTIC, window_size=2)([{"image": frames}])
    stream = _model(PANOPTIC).stream(window_size=2)
    results = list(stream.run(frames))
    assert [r.index for r in results] == [0, 1, 2, 3]
    for t, r in enumerate(results):
        assert torch.equal(r.seg, windowed["panoptic_seg"][t])
        assert r.segments_info == windowed["segments_info"][t]
    with pytest.raises(ValueError, match="StreamPolicy applies to video instances"):
        from video_mask2former.inference import StreamPolicy

        _model(PANOPTIC).stream(policy=StreamPolicy())

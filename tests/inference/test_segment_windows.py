"""Panoptic / semantic results of linked windows: equal to the whole video for W >= T, thing
ids stable when a later window's queries come in another order."""

import pytest
import torch

from video_mask2former.inference.segment_windows import (
    SegmentationTask,
    collect_segmentation,
    iter_video_segmentation,
    iter_windowed_segmentation,
)
from video_mask2former.inference.windowed import WindowOutput

SIZE = (16, 20)  # padded = image size; masks at stride 4
OUT = (12, 15)
PANOPTIC = SegmentationTask(
    "panoptic", thing_classes=(0, 1), object_mask_threshold=0.3, overlap_threshold=0.3
)
SEMANTIC = SegmentationTask("semantic")


def _video_outputs(num_frames=5, num_queries=6, num_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_queries, num_classes + 1, generator=g) * 3
    masks = torch.randn(num_queries, num_frames, 4, 5, generator=g) * 4
    embeds = torch.randn(num_queries, 8, generator=g)
    return logits, masks, embeds


def _frames(num_frames):
    return [torch.zeros(3, *SIZE, dtype=torch.uint8) for _ in range(num_frames)]


def _predictor(logits, masks, embeds, permutations=None):
    """predict_window over windows: window i gets the frames' mask logits, its queries shuffled
    by permutations[i] (the linking must undo that)."""
    state = {"start": 0, "window": 0}

    def predict(window_frames):
        start, i = state["start"], state["window"]
        perm = torch.arange(len(logits)) if permutations is None else permutations[i]
        state["start"] += len(window_frames)
        state["window"] += 1
        return WindowOutput(
            pred_logits=logits[perm],
            pred_masks=masks[perm, start : start + len(window_frames)],
            pred_embeds=embeds[perm],
            padded_size=SIZE,
            image_size=SIZE,
        )

    return predict


@pytest.mark.parametrize("task", [PANOPTIC, SEMANTIC], ids=["panoptic", "semantic"])
@pytest.mark.parametrize("window_size", [5, 9])
def test_one_window_equals_the_whole_video(task, window_size):
    logits, masks, embeds = _video_outputs()
    whole = collect_segmentation(
        iter_video_segmentation(task, logits, masks, SIZE, SIZE, OUT), task, OUT
    )
    windowed = collect_segmentation(
        iter_windowed_segmentation(
            _predictor(logits, masks, embeds), _frames(5), window_size, OUT, task
        ),
        task,
        OUT,
    )
    key = "panoptic_seg" if task.kind == "panoptic" else "sem_seg"
    assert torch.equal(whole[key], windowed[key])
    assert whole[key].shape == (5, *OUT)
    if task.kind == "panoptic":
        assert whole["segments_info"] == windowed["segments_info"]
        assert any(whole["segments_info"])  # the case is not trivially empty


def test_thing_ids_follow_tracks_across_windows_in_any_query_order():
    # The same queries in every window, shuffled differently per window: after linking, every
    # frame must equal the whole-video result (same queries, same per-frame masks), ids included.
    logits, masks, embeds = _video_outputs(num_frames=6, seed=1)
    g = torch.Generator().manual_seed(5)
    perms = [torch.arange(6)] + [torch.randperm(6, generator=g) for _ in range(2)]
    assert not torch.equal(perms[1], torch.arange(6))
    windowed = list(
        iter_windowed_segmentation(
            _predictor(logits, masks, embeds, perms), _frames(6), 2, OUT, PANOPTIC
        )
    )
    # Per window the overlap test sees only the window's frames, so compare window by window.
    for w in range(3):
        frames = slice(2 * w, 2 * w + 2)
        whole = list(iter_video_segmentation(PANOPTIC, logits, masks[:, frames], SIZE, SIZE, OUT))
        for a, b in zip(whole, windowed[2 * w : 2 * w + 2]):
            assert torch.equal(a.seg, b.seg)
            assert a.segments_info == b.segments_info
    assert [f.index for f in windowed] == list(range(6))
    assert sum(len(f.segments_info) for f in windowed) >= 6  # not trivially empty


def test_per_frame_segments_have_that_frames_area():
    logits, masks, embeds = _video_outputs(seed=2)
    for frame in iter_video_segmentation(PANOPTIC, logits, masks, SIZE, SIZE, OUT):
        ids = set(frame.seg.unique().tolist()) - {0}
        assert ids == {s["id"] for s in frame.segments_info}
        for s in frame.segments_info:
            assert s["area"] == int((frame.seg == s["id"]).sum()) > 0


def test_bad_task_and_empty_video_are_clear_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        SegmentationTask("instances")
    with pytest.raises(ValueError, match="overlap_threshold must be in"):
        SegmentationTask("panoptic", overlap_threshold=1.5)
    logits, masks, embeds = _video_outputs()
    with pytest.raises(ValueError, match="no frames"):
        list(iter_windowed_segmentation(_predictor(logits, masks, embeds), [], 2, OUT, PANOPTIC))


def test_stream_equals_windowed_frame_for_frame_and_survives_a_failing_window():
    from video_mask2former.inference.segment_windows import SegmentationStream

    logits, masks, embeds = _video_outputs(num_frames=5, seed=4)
    g = torch.Generator().manual_seed(9)
    perms = [torch.arange(6)] + [torch.randperm(6, generator=g) for _ in range(2)]
    windowed = list(
        iter_windowed_segmentation(
            _predictor(logits, masks, embeds, perms), _frames(5), 2, OUT, PANOPTIC
        )
    )
    inner = _predictor(logits, masks, embeds, perms)
    calls = {"n": 0}

    def flaky(window_frames):
        calls["n"] += 1
        if calls["n"] == 2:  # the second window fails once, then runs again
            raise RuntimeError("device lost")
        return inner(window_frames)

    stream = SegmentationStream(flaky, PANOPTIC, window_size=2, output_size=OUT)
    streamed = []
    for i, frame in enumerate(_frames(5)):
        try:
            streamed.extend(stream.push(frame))
        except RuntimeError:
            assert i == 3 and len(stream._pending) == 2  # nothing lost
    streamed.extend(stream.flush())
    assert [f.index for f in streamed] == list(range(5))
    for a, b in zip(windowed, streamed):
        assert torch.equal(a.seg, b.seg) and a.segments_info == b.segments_info

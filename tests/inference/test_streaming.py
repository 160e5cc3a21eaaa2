"""Streaming (online / semi-online) inference: equality with the windowed mode, track management,
per-frame delivery, bounded memory."""

import os
import time

import cv2
import numpy as np
import pytest
import torch

from tests.modeling.tiny_video_model import NUM_CLASSES, NUM_QUERIES, build_tiny_model, random_video
from video_mask2former.data.live import LiveSource
from video_mask2former.inference.streaming import (
    FrameError,
    FrameSizeError,
    StreamPolicy,
    VideoStream,
    collect_video_result,
)
from video_mask2former.inference.windowed import WindowOutput


def _assert_same_video_result(online, offline):
    """Same predictions (as (track, label) -> score, masks), same ordering of the scores."""
    assert online["image_size"] == offline["image_size"]
    assert online["pred_scores"] == sorted(offline["pred_scores"], reverse=True)

    def by_key(result):
        return {
            (t, c): (s, m.rles)
            for t, c, s, m in zip(
                result["pred_track_ids"],
                result["pred_labels"],
                result["pred_scores"],
                result["pred_masks"],
            )
        }

    assert by_key(online) == by_key(offline)  # scores exactly, RLEs byte for byte


@pytest.mark.parametrize("window_size", [4, 6])
def test_one_window_covering_the_video_equals_windowed(window_size):
    model = build_tiny_model(test_topk=7).eval()
    frames = random_video(4, 40, 48, seed=3)
    offline = model.inference_windowed(frames, (45, 50), window_size=window_size)
    stream = model.stream(
        window_size, output_size=(45, 50), policy=StreamPolicy.report_everything(topk=7)
    )
    online = collect_video_result(stream.run(frames))
    _assert_same_video_result(online, offline)
    assert any(mask.to_tensor().any() for mask in online["pred_masks"])  # not vacuous


def test_several_windows_reporting_everything_equal_windowed():
    """Same linking, same masks, same final scores: only the reporting decisions differ."""
    model = build_tiny_model(test_topk=NUM_QUERIES * NUM_CLASSES).eval()
    frames = random_video(5, 40, 48, seed=4)
    offline = model.inference_windowed(frames, (40, 48), window_size=2)
    stream = model.stream(2, policy=StreamPolicy.report_everything(topk=NUM_QUERIES * NUM_CLASSES))
    online = collect_video_result(stream.run(frames))
    _assert_same_video_result(online, offline)


def test_push_returns_each_window_once_complete_and_flush_the_rest():
    model = build_tiny_model().eval()
    frames = random_video(4, 64, 64, seed=1)  # 64: one frame still has a 2x2 res5 map
    stream = model.stream(3)
    assert stream.push(frames[0]) == [] and stream.push(frames[1]) == []
    window = stream.push(frames[2])
    assert [r.frame_index for r in window] == [0, 1, 2]
    assert all(r.frame is f for r, f in zip(window, frames))  # the pushed frames, not copies
    assert all(r.image_size == (64, 64) and r.latency >= 0 for r in window)
    assert stream.push(frames[3]) == []
    assert [r.frame_index for r in stream.flush()] == [3]
    assert stream.flush() == [] and stream.num_windows == 2


def test_frame_of_another_size_is_an_error():
    model = build_tiny_model().eval()
    stream = model.stream(2)
    stream.push(random_video(1, 32, 32)[0])
    with pytest.raises(FrameSizeError, match=r"frame 1 of the stream is 40x32.*32x32"):
        stream.push(random_video(1, 32, 40)[0])


def test_bad_arguments_are_errors():
    with pytest.raises(ValueError, match="score_threshold must be in"):
        StreamPolicy(score_threshold=1.5)
    with pytest.raises(ValueError, match="max_absent_frames must be >= 1 or None"):
        StreamPolicy(max_absent_frames=0)
    with pytest.raises(ValueError, match="window_size must be an integer >= 1"):
        VideoStream(lambda frames: None, 0)
    model = build_tiny_model()
    with pytest.raises(RuntimeError, match="training mode"):
        model.stream(1)
    with pytest.raises(FrameError, match=r"frame 0 of the stream .*grayscale.*\(H, W, 3\) RGB"):
        model.eval().stream(1).push(np.zeros((8, 8), np.uint8))


@pytest.mark.parametrize("window_size", ["2", None, 2.0, True, -1])
def test_window_size_that_is_not_a_positive_integer_is_an_error(window_size):
    model = build_tiny_model().eval()
    with pytest.raises(ValueError, match=r"VideoStream: window_size must be an integer >= 1, got"):
        model.stream(window_size)


@pytest.mark.parametrize("output_size", [(0, 32), "32x32", (32,), (32.0, 32)])
def test_output_size_that_is_not_two_positive_integers_is_an_error(output_size):
    with pytest.raises(ValueError, match=r"VideoStream: output_size must be \(height, width\)"):
        build_tiny_model().eval().stream(1, output_size=output_size)


def _results_by_frame(results):
    return [
        (r.frame_index, [(i.track_id, i.label, i.score, i.rle["counts"]) for i in r.instances])
        for r in results
    ]


@pytest.mark.parametrize(
    "bad",
    [
        torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0)),  # 0..1 floats
        torch.zeros(4, 64, 64, dtype=torch.uint8),  # RGBA
        torch.full((3, 64, 64), float("nan")),
        random_video(1, 32, 64)[0],  # another size
    ],
    ids=["0..1 floats", "RGBA", "NaN", "another size"],
)
def test_bad_frame_is_refused_at_push_and_changes_nothing(bad):
    """The frames pushed before a refused frame keep waiting; the results equal those of a
    stream that never saw it."""
    model = build_tiny_model().eval()
    frames = random_video(4, 64, 64, seed=6)
    policy = StreamPolicy(score_threshold=0.0)
    clean = _results_by_frame(model.stream(3, policy=policy).run(frames))
    stream = model.stream(3, policy=policy)
    results = stream.push(frames[0]) + stream.push(frames[1])
    with pytest.raises(FrameError, match="frame 2 of the stream"):
        stream.push(bad)
    assert stream.num_frames == 2 and stream.num_windows == 0
    results += stream.push(frames[2]) + stream.push(frames[3]) + stream.flush()
    assert _results_by_frame(results) == clean
    assert [index for index, _ in clean] == [0, 1, 2, 3] and any(i for _, i in clean)


class _FailOnce:
    """``predict_window`` that fails on its ``fail_at``-th call (0-based), by raising or by
    returning a window the linker refuses (another number of queries)."""

    def __init__(self, predict_window, fail_at, how):
        self.predict_window, self.fail_at, self.how, self.calls = predict_window, fail_at, how, 0

    def __call__(self, frames):
        call, self.calls = self.calls, self.calls + 1
        output = self.predict_window(frames)
        if call != self.fail_at:
            return output
        if self.how == "raise":
            raise RuntimeError("CUDA out of memory (simulated)")
        return WindowOutput(
            output.pred_logits[:-1],
            output.pred_masks[:-1],
            output.pred_embeds[:-1],
            output.padded_size,
            output.image_size,
        )


@pytest.mark.parametrize("how", ["raise", "bad output"])
@pytest.mark.parametrize("retry", ["push", "flush"])
def test_failure_inside_a_window_loses_no_frame(how, retry):
    """The model fails once, on the second window: its frames still wait, the stream's tracks are
    untouched, and the next push (or flush) runs the window again; every frame's result comes
    once, in order, equal to a run without the failure."""
    model = build_tiny_model().eval()
    frames = random_video(5, 64, 64, seed=8)
    policy = StreamPolicy(score_threshold=0.0)
    clean = _results_by_frame(model.stream(2, policy=policy).run(frames))
    stream = VideoStream(
        _FailOnce(model.predict_window, 1, how), 2, policy=policy, output_size=(64, 64)
    )
    results = stream.push(frames[0]) + stream.push(frames[1]) + stream.push(frames[2])
    with pytest.raises((RuntimeError, ValueError)):
        stream.push(frames[3])
    assert stream.num_windows == 1 and stream.num_frames == 4
    if retry == "push":
        results += stream.push(frames[4])  # runs the failed window; frame 4 then waits
        assert [r.frame_index for r in results] == [0, 1, 2, 3]
        results += stream.flush()
    else:
        results += stream.flush()
        results += stream.push(frames[4]) + stream.flush()
    assert _results_by_frame(results) == clean
    assert any(i for _, i in clean)


def test_results_of_windows_before_a_failure_are_kept():
    """Two windows waiting (after a failure), the second fails again: the first one's results
    come with the next call, before the second's."""
    model = build_tiny_model().eval()
    frames = random_video(6, 64, 64, seed=9)
    policy = StreamPolicy(score_threshold=0.0)
    clean = _results_by_frame(model.stream(2, policy=policy).run(frames))
    calls = []

    def flaky(window):
        calls.append(len(window))
        if len(calls) in (1, 2, 4):  # windows: fail, fail, ok (frames 0-1), fail (frames 2-3)
            raise RuntimeError("transient")
        return model.predict_window(window)

    stream = VideoStream(flaky, 2, policy=policy)
    results = stream.push(frames[0])
    for frame in frames[1:4]:
        with pytest.raises(RuntimeError):
            results += stream.push(frame)
    assert stream.num_windows == 1 and len(stream._pending) == 2
    results += stream.push(frames[4]) + stream.push(frames[5]) + stream.flush()
    assert _results_by_frame(results) == clean


# --- track management on scripted windows ---------------------------------------------------

_EMBEDS = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(0)))[0][
    :NUM_QUERIES
]  # (Q, 16) orthonormal: matching is unambiguous


def _scripted(frames_present, labels, perm=None, confidence=8.0):
    """A WindowOutput of one frame: query i predicts ``labels[i]`` (-1: no object) and has a
    mask block where ``frames_present[i]``; ``perm`` permutes the queries (query i is slot
    perm[i])."""
    perm = torch.arange(NUM_QUERIES) if perm is None else torch.as_tensor(perm)
    logits = torch.zeros(NUM_QUERIES, NUM_CLASSES + 1)
    masks = torch.full((NUM_QUERIES, 1, 8, 8), -10.0)
    for query, slot in enumerate(perm.tolist()):
        label = labels[slot]
        logits[query, label if label >= 0 else NUM_CLASSES] = confidence
        if frames_present[slot]:
            masks[query, 0, slot : slot + 2, 0:2] = 10.0
    return WindowOutput(logits, masks, _EMBEDS[perm], (8, 8), (8, 8))


def _scripted_frames(present_by_frame, labels):
    """A WindowOutput of W frames: ``present_by_frame[t]`` is the ``frames_present`` of frame t
    (see :func:`_scripted`)."""
    outputs = [_scripted(present, labels) for present in present_by_frame]
    masks = torch.cat([output.pred_masks for output in outputs], dim=1)  # (Q, W, 8, 8)
    return WindowOutput(outputs[0].pred_logits, masks, outputs[0].pred_embeds, (8, 8), (8, 8))


def _run_scripted(windows, policy, window_size=1):
    """Stream ``window_size`` frames per scripted window; per frame, {track id: (label, score) of
    its best reported pair}."""
    queue = list(windows)
    stream = VideoStream(lambda frames: queue.pop(0), window_size, policy=policy)
    frames = []
    for _ in range(len(windows) * window_size):
        for result in stream.push(torch.zeros(3, 8, 8)):
            best = {}  # track id -> (label, score) of its best pair in the frame
            for instance in result.instances:  # by decreasing score
                best.setdefault(instance.track_id, (instance.label, instance.score))
            frames.append(best)
    assert len(frames) == len(windows) * window_size
    return frames, stream


def test_ids_follow_permuted_queries():
    labels = [0, 1, -1, -1, -1]
    present = [True, True, False, False, False]
    windows = [_scripted(present, labels, perm) for perm in ([0, 1, 2, 3, 4], [3, 0, 4, 1, 2])]
    frames, _ = _run_scripted(windows, StreamPolicy())
    assert frames[0] == frames[1] and set(frames[0]) == {0, 1}
    assert frames[0][0][0] == 0 and frames[0][1][0] == 1  # each id keeps its object's class


def test_track_ends_after_absence_and_its_slot_gets_a_new_id():
    labels = [0, -1, -1, -1, -1]
    seen = [True, False, False, False, True, False, True]  # slot 0's object, frame by frame
    windows = [_scripted([s, False, False, False, False], labels) for s in seen]
    frames, stream = _run_scripted(windows, StreamPolicy(max_absent_frames=2))
    ids = [set(f) for f in frames]
    # absent 2 frames (1, 2): ended; back in frame 4 with a new id (ids 0..4 went to the first
    # window's slots); absent 1 frame (5): kept.
    assert ids == [{0}, set(), set(), set(), {NUM_QUERIES}, set(), {NUM_QUERIES}]
    assert stream.track_ids[0] == NUM_QUERIES


def test_new_tracks_take_the_next_unused_ids_one_each():
    # Slots 0 and 1 end together and come back in the same frame: two new ids, in slot order,
    # one apart; slot 0 ends again and comes back: the next id after those. Ids are never reused.
    labels = [0, 1, -1, -1, -1]
    seen = [
        (True, True),
        (False, False),
        (False, False),
        (True, True),
        (False, True),
        (False, True),
        (True, True),
    ]
    windows = [_scripted([a, b, False, False, False], labels) for a, b in seen]
    frames, stream = _run_scripted(windows, StreamPolicy(max_absent_frames=2))
    q = NUM_QUERIES
    assert [set(f) for f in frames] == [
        {0, 1},
        set(),
        set(),
        {q, q + 1},
        {q + 1},
        {q + 1},
        {q + 1, q + 2},
    ]
    assert stream.track_ids[:2] == [q + 2, q + 1]


def test_reappearing_object_keeps_its_id_within_the_absence_limit():
    labels = [2, -1, -1, -1, -1]
    seen = [True, False, False, True]
    windows = [_scripted([s, False, False, False, False], labels) for s in seen]
    frames, _ = _run_scripted(windows, StreamPolicy(max_absent_frames=3))
    assert [set(f) for f in frames] == [{0}, set(), set(), {0}]


def test_confirmation_and_score_threshold():
    labels = [0, 1, -1, -1, -1]
    present = [True, True, False, False, False]
    weak = _scripted(present, labels, confidence=0.5)  # slot 0 and 1 score ~0.33
    strong = _scripted(present, labels)
    frames, _ = _run_scripted([strong, strong, strong], StreamPolicy(confirm_windows=2))
    assert [set(f) for f in frames] == [set(), {0, 1}, {0, 1}]  # reported from window 2 on
    frames, _ = _run_scripted([weak], StreamPolicy(score_threshold=0.5))
    assert frames == [{}]
    frames, _ = _run_scripted([weak], StreamPolicy(score_threshold=0.3))
    assert set(frames[0]) == {0, 1}


def test_running_score_averages_active_windows_only():
    labels = [0, -1, -1, -1, -1]
    windows = [
        _scripted([False] * 5, labels, confidence=8.0),  # inactive: not in the average
        _scripted([True] + [False] * 4, labels, confidence=1.0),
        _scripted([True] + [False] * 4, labels, confidence=3.0),
    ]
    frames, _ = _run_scripted(windows, StreamPolicy(score_threshold=0.0))
    probs = [torch.softmax(torch.tensor([c, 0.0, 0.0, 0.0]), 0)[0].item() for c in (1.0, 3.0)]
    assert frames[0] == {}  # absent: not reported
    assert frames[1][0][1] == pytest.approx(probs[0])
    assert frames[2][0][1] == pytest.approx((probs[0] + probs[1]) / 2)


def test_frame_top_k_is_over_present_tracks():
    labels = [0, 1, 2, 0, 1]
    present = [False, False, True, True, True]
    frames, _ = _run_scripted([_scripted(present, labels)], StreamPolicy(topk=2))
    assert set(frames[0]) <= {2, 3, 4} and len(frames[0]) == 2


def _first_class_prob(confidence):
    """Probability of class 0 for a scripted query with logit ``confidence`` for it."""
    return torch.softmax(torch.tensor([confidence] + [0.0] * NUM_CLASSES), 0)[0].item()


def test_running_score_of_a_never_active_track_averages_all_its_windows():
    """A track absent from every window so far (reported with ``report_empty_masks``) scores the
    average over all its windows."""
    labels = [0, -1, -1, -1, -1]
    absent = [False] * NUM_QUERIES
    windows = [_scripted(absent, labels, confidence=c) for c in (1.0, 3.0, 2.0)]
    policy = StreamPolicy(score_threshold=0.0, confirm_windows=0, report_empty_masks=True)
    frames, stream = _run_scripted(windows, policy)
    probs = [_first_class_prob(c) for c in (1.0, 3.0, 2.0)]
    assert [f[0] for f in frames] == [
        (0, pytest.approx(probs[0])),
        (0, pytest.approx((probs[0] + probs[1]) / 2)),
        (0, pytest.approx(sum(probs) / 3)),
    ]
    assert stream.track_scores()[0, 0].item() == pytest.approx(sum(probs) / 3)


def test_a_slot_without_a_track_has_zero_scores_and_its_next_track_starts_afresh():
    """Slot 0's track ends; while the slot stays free (its query inactive), its scores stay 0
    however confident its query is; the next object in the slot gets a new id and a score from
    its own window only."""
    labels = [0, 1, -1, -1, -1]
    windows = [
        _scripted([True, True, False, False, False], labels),
        _scripted([False, True, False, False, False], labels),  # slot 0's track ends here
        _scripted([False, True, False, False, False], labels),  # slot 0 free
    ]
    policy = StreamPolicy(max_absent_frames=1, score_threshold=0.0)
    frames, stream = _run_scripted(windows, policy)
    assert [set(f) for f in frames] == [{0, 1}, {1}, {1}]
    assert stream.track_ids[:2] == [-1, 1]
    scores = stream.track_scores()
    assert scores[0].tolist() == [0.0] * NUM_CLASSES
    assert scores[1, 1].item() == pytest.approx(_first_class_prob(8.0))
    back = _scripted([True, True, False, False, False], [2, 1, -1, -1, -1], confidence=1.0)
    frames, stream = _run_scripted(windows + [back], policy)
    assert frames[3][NUM_QUERIES] == (2, pytest.approx(_first_class_prob(1.0)))
    assert stream.track_ids[:2] == [NUM_QUERIES, 1]


def test_absence_is_counted_from_the_last_present_frame_of_a_window():
    """Windows of 2 frames, an object present in one frame of each: absent for 1 trailing frame
    after the first window, 0 after the second; with ``max_absent_frames=2`` it keeps its id."""
    labels = [0, -1, -1, -1, -1]
    off = [False] * NUM_QUERIES
    on = [True] + off[1:]
    windows = [_scripted_frames(frames, labels) for frames in ([on, off], [off, on], [on, on])]
    frames, stream = _run_scripted(windows, StreamPolicy(max_absent_frames=2), window_size=2)
    assert [set(f) for f in frames] == [{0}, set(), set(), {0}, {0}, {0}]
    assert stream.track_ids[0] == 0


def test_score_equal_to_the_threshold_is_reported():
    labels = [0, -1, -1, -1, -1]
    window = _scripted([True] + [False] * 4, labels, confidence=1.0)
    (frame,), _ = _run_scripted([window], StreamPolicy(score_threshold=0.0))
    score = frame[0][1]
    assert score == pytest.approx(_first_class_prob(1.0))
    (frame,), _ = _run_scripted([window], StreamPolicy(score_threshold=score))
    assert frame == {0: (0, score)}
    (frame,), _ = _run_scripted([window], StreamPolicy(score_threshold=np.nextafter(score, 1.0)))
    assert frame == {}


def test_latency_is_the_time_from_push_to_result():
    """The clock is not injectable: each frame's push is bracketed by clock readings, and its
    latency must lie between the bounds they give (the window's result is made during the last
    push)."""
    labels = [0, -1, -1, -1, -1]
    present = [True] + [False] * 4
    window = _scripted_frames([present] * 3, labels)
    stream = VideoStream(lambda frames: window, 3)
    results, brackets = [], []
    for _ in range(3):
        before = time.perf_counter()
        results += stream.push(torch.zeros(3, 8, 8))
        brackets.append((before, time.perf_counter()))
    last_before, last_after = brackets[-1]
    assert len(results) == 3
    for result, (before, after) in zip(results, brackets):
        assert last_before - after <= result.latency <= last_after - before
    assert results[0].latency >= results[1].latency >= results[2].latency >= 0


# --- a video file, frame by frame, 1,000 frames ----------------------------------------------

NUM_LONG_FRAMES = 1000
# Frames after which the resident memory is taken as the baseline (allocator caches warm).
WARMUP_FRAMES = 200
# Allowed growth of the resident memory over the remaining 800 frames. Keeping each 64x64
# frame (12 KiB) would add 9.4 MiB, keeping each frame's results several MiB more.
MAX_RSS_GROWTH_MB = 6.0


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _write_still_video(path, num_frames, height=64, width=64):
    frame = random_video(1, height, width, seed=7)[0].permute(1, 2, 0).numpy()
    # OpenCV's own MJPEG encoder: the same JPEG for every frame (FFmpeg's rate control would
    # change the quality after a while).
    fourcc = cv2.VideoWriter_fourcc(*"MJPG")
    writer = cv2.VideoWriter(path, cv2.CAP_OPENCV_MJPEG, fourcc, 30.0, (width, height))
    for _ in range(num_frames):
        writer.write(frame)
    writer.release()


def test_video_file_streamed_frame_by_frame_has_stable_ids_and_flat_memory(tmp_path):
    """1,000 frames of a still scene from a video file: the same ids in every frame (the model
    predicts the same every window, so any id change would be a linking error), and resident
    memory that does not grow with the frames."""
    path = str(tmp_path / "still.avi")
    _write_still_video(path, NUM_LONG_FRAMES)
    model = build_tiny_model().eval()  # one intra-op thread (tests/conftest.py)
    stream = model.stream(1, policy=StreamPolicy(score_threshold=0.0))
    first, count, baseline = None, 0, None
    for result in stream.run(LiveSource(path)):
        ids = [(i.track_id, i.label, i.rle["counts"]) for i in result.instances]
        first = ids if first is None else first
        assert ids == first, f"frame {result.frame_index}"
        count += 1
        if count == WARMUP_FRAMES:
            baseline = _rss_mb()
    assert count == NUM_LONG_FRAMES and len(first) > 0
    growth = _rss_mb() - baseline
    assert growth < MAX_RSS_GROWTH_MB, f"RSS grew {growth:.1f} MiB over 800 frames"

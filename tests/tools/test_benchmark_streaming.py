"""tools/benchmark_streaming.py on the tiny model: its measurements and its replayed modes."""

import os
import sys

import pytest

from tests.modeling.tiny_video_model import NUM_CLASSES, NUM_QUERIES, build_tiny_model, random_video

TOOLS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "tools")
sys.path.insert(0, TOOLS_DIR)  # the benchmark is a script that imports its sibling helpers
import benchmark_streaming  # noqa: E402


def test_measure_stream_times_every_frame():
    model = build_tiny_model().eval()
    row = benchmark_streaming.measure_stream(model, random_video(5, 64, 64), window_size=2)
    assert row["frames"] == 5 and row["W"] == 2
    assert 0 < row["mean latency (ms)"] <= row["max latency (ms)"]
    assert row["throughput (frames/s)"] > 0


def test_replayed_modes_equal_their_direct_runs():
    """The windowed row is the model's windowed inference; with one window covering the video
    the online row with threshold 0 reports its pairs with the same scores."""
    topk = NUM_QUERIES * NUM_CLASSES
    model = build_tiny_model(test_topk=topk).eval()
    frames = random_video(4, 40, 48, seed=2)
    modes = benchmark_streaming.predictions_of_video(model, frames, (40, 48), [2, 4], topk)
    assert set(modes) == {
        "whole video",
        *(f"{m}, W={w}" for m in ("windowed", "online", "online, threshold 0") for w in (2, 4)),
    }
    direct = model.inference_windowed(frames, (40, 48), window_size=2)
    assert modes["windowed, W=2"]["pred_scores"] == direct["pred_scores"]
    assert modes["windowed, W=4"]["pred_scores"] == modes["whole video"]["pred_scores"]
    online = modes["online, threshold 0, W=4"]
    present = {
        (t, c): s
        for t, c, s, m in zip(
            *(modes["windowed, W=4"][k] for k in ("pred_track_ids", "pred_labels", "pred_scores")),
            modes["windowed, W=4"]["pred_masks"],
        )
        if any(m.areas())
    }  # online reports a pair only in frames where its mask is not empty
    assert dict(
        zip(zip(online["pred_track_ids"], online["pred_labels"]), online["pred_scores"])
    ) == pytest.approx(present)

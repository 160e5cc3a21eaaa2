"""The inference benchmarks on the tiny model: the stream's measurement, the replayed modes of
the AP benchmark, and the speed runner's settings and table."""

import re

import pytest

from benchmarks import benchmark_inference, benchmark_inference_ap
from tests.modeling.tiny_video_model import NUM_CLASSES, NUM_QUERIES, build_tiny_model, random_video


def test_measure_stream_times_every_frame():
    model = build_tiny_model().eval()
    row = benchmark_inference.measure_stream(model, random_video(5, 64, 64), window_size=2)
    assert 0 < row["mean_latency_ms"] <= row["max_latency_ms"]
    assert row["frames_per_s"] > 0


def test_replayed_modes_equal_their_direct_runs():
    """The windowed row is the model's windowed inference; with one window covering the video
    the online row with threshold 0 reports its pairs with the same scores."""
    topk = NUM_QUERIES * NUM_CLASSES
    model = build_tiny_model(test_topk=topk).eval()
    frames = random_video(4, 40, 48, seed=2)
    modes = benchmark_inference_ap.predictions_of_video(model, frames, (40, 48), [2, 4], topk)
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


def _child_args(mode, frames=3, window_size=2):
    """The arguments a child of the speed runner gets (no RLIMIT_AS: this is the test process)."""
    args = benchmark_inference.parse_args(
        ["--modes", mode, "--frames", str(frames), "--window-sizes", str(window_size),
         "--height", "40", "--width", "48", "--warmup-frames", "1", "--memory-limit-gb", "0"]
    )  # fmt: skip
    args.mode, args.frames, args.window_size = mode, frames, window_size
    return args


@pytest.mark.parametrize("mode", ["whole", "windowed", "stream"])
def test_a_setting_reports_its_time_and_memory(monkeypatch, mode):
    monkeypatch.setattr(benchmark_inference, "_model", lambda args: build_tiny_model().eval())
    row = benchmark_inference.run_setting(_child_args(mode))
    assert row["status"] == "ok" and row["ms_per_frame"] > 0
    assert row["peak_rss_mb"] > 0 and row["start_rss_mb"] > 0
    if mode == "stream":
        assert 0 < row["mean_latency_ms"] <= row["max_latency_ms"]
    else:
        # the network's share is timed apart, and the rest is not negative
        assert 0 < row["network_ms_per_frame"] < row["ms_per_frame"]
        assert row["post_ms_per_frame"] >= 0 and row["masks_mb"] > 0


def test_a_failed_setting_skips_the_longer_videos_of_its_mode(monkeypatch, capsys):
    def fake_child(args, label, command):
        frames = int(command[command.index("--frames") + 1])
        if frames > 2:
            return {"status": "OOM", "error": "not enough memory"}
        return {"ms_per_frame": 10.0, "peak_rss_mb": 100.0 + frames}

    monkeypatch.setattr(benchmark_inference, "run_child", fake_child)
    args = benchmark_inference.parse_args(
        ["--modes", "whole", "windowed", "--frames", "4", "2", "8", "--window-sizes", "1", "2"]
    )
    rows = benchmark_inference.run_all(args)
    assert [(r["mode"], r["W"], r["T"], r["status"]) for r in rows[:3]] == [
        ("whole", None, 2, "ok"),
        ("whole", None, 4, "OOM"),
        ("whole", None, 8, "skipped"),
    ]
    assert len(rows) == 9 and rows[-1]["error"] == "after OOM at T=4"
    table = benchmark_inference.summary_table(rows)
    assert table.splitlines()[0].startswith("| mode ")
    assert re.search(r"\| windowed +\| +2 \| +2 \| ok +\| +10 \| +102 \|", table)
    assert "masks_mb" not in table  # no row has it


def test_memory_slope_is_a_least_squares_fit():
    rows = [{"T": t, "status": "ok", "peak_rss_mb": 100 + 2 * t} for t in (10, 20, 40)]
    rows.append({"T": 80, "status": "OOM"})
    assert benchmark_inference.memory_slope(rows, "peak_rss_mb") == pytest.approx(2.0)
    assert benchmark_inference.memory_slope(rows[:1], "peak_rss_mb") != pytest.approx(2.0)


def test_the_runner_runs_its_children(tmp_path):
    """``python -m benchmarks.benchmark_inference``: parent and children, R50 at a tiny size."""
    import json
    import subprocess
    import sys

    from benchmarks.common import ROOT

    out = tmp_path / "rows.json"
    command = [
        sys.executable, "-m", "benchmarks.benchmark_inference", "--modes", "windowed",
        "--frames", "2", "--window-sizes", "1", "--height", "64", "--width", "64",
        "--warmup-frames", "0", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads(out.read_text())
    assert row["status"] == "ok" and row["mode"] == "windowed" and row["W"] == 1
    assert "| windowed |" in done.stdout

"""tools/inspect_dataset.py and tools/split_ytvis.py, run in-process on small datasets."""

import importlib.util
import json
import sys

import pytest

from tests.data.own_data import tracks_dataset, write_dataset, write_synthetic
from tests.tools.scripts import load_tool


@pytest.fixture(scope="module")
def inspect_dataset():
    return load_tool("inspect_dataset")


@pytest.fixture(scope="module")
def split_tool():
    return load_tool("split_ytvis")


def test_inspect_prints_and_writes_json(tmp_path, capsys, inspect_dataset):
    json_file, image_root = write_synthetic(tmp_path / "syn")
    out = tmp_path / "out" / "report.json"
    assert inspect_dataset.main([json_file, image_root, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "videos" in printed and "instances per video" in printed and "small" in printed
    report = json.loads(out.read_text())
    assert report["num_videos"] == 4 and report["frame_problems"] == []


def test_inspect_frame_problems_exit_1(tmp_path, capsys, inspect_dataset):
    json_file, image_root = write_dataset(tmp_path, tracks_dataset())
    (tmp_path / "frames" / "v2" / "00002.png").unlink()
    assert inspect_dataset.main([json_file, image_root]) == 1
    assert "video 2, frame 2:" in capsys.readouterr().out


def test_inspect_bad_file_keeps_the_old_report(tmp_path, capsys, inspect_dataset):
    dataset = tracks_dataset()
    del dataset["videos"][0]["height"]
    json_file, image_root = write_dataset(tmp_path, dataset, with_frames=False)
    out = tmp_path / "report.json"
    out.write_text("old")
    assert inspect_dataset.main([json_file, image_root, "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "annotations.json: video 1 has no 'height'" in err
    assert out.read_text() == "old"


def test_inspect_plot_without_matplotlib_fails_first(tmp_path, capsys, monkeypatch,
                                                     inspect_dataset):  # fmt: skip
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    json_file, image_root = write_dataset(tmp_path, tracks_dataset())
    png = tmp_path / "hist.png"
    assert inspect_dataset.main([json_file, image_root, "--plot", str(png)]) == 2
    captured = capsys.readouterr()
    assert "pip install matplotlib" in captured.err and captured.out == ""  # before the work
    assert not png.exists()


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="no matplotlib")
def test_inspect_plot(tmp_path, inspect_dataset):
    json_file, image_root = write_dataset(tmp_path, tracks_dataset())
    png = tmp_path / "hist.png"
    assert inspect_dataset.main([json_file, image_root, "--plot", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")


def test_split_tool(tmp_path, capsys, split_tool):
    json_file, _ = write_synthetic(tmp_path / "syn", num_videos=6)
    train, val = tmp_path / "s" / "train.json", tmp_path / "s" / "val.json"
    argv = [json_file, "--val-fraction", "0.34", "--seed", "1", "--stratify",
            "--out-train", str(train), "--out-val", str(val)]  # fmt: skip
    assert split_tool.main(argv) == 0
    assert "train: " in capsys.readouterr().out
    train_ids = [v["id"] for v in json.loads(train.read_text())["videos"]]
    val_ids = [v["id"] for v in json.loads(val.read_text())["videos"]]
    assert len(val_ids) == 2 and sorted(train_ids + val_ids) == list(range(1, 7))
    first = val.read_bytes()
    assert split_tool.main(argv) == 0 and val.read_bytes() == first  # seeded


def test_split_tool_refuses_before_writing(tmp_path, capsys, split_tool):
    json_file, _ = write_synthetic(tmp_path / "syn", num_videos=3)
    out = tmp_path / "a.json"
    argv = [json_file, "--val-fraction", "0.5", "--seed", "0"]
    assert split_tool.main(argv + ["--out-train", str(out), "--out-val", str(out)]) == 2
    assert "same file" in capsys.readouterr().err and not out.exists()
    assert split_tool.main(argv + ["--out-train", json_file, "--out-val", str(out)]) == 2
    assert "is the input" in capsys.readouterr().err

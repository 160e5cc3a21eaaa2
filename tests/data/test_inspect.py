"""video_mask2former.data.inspect: the checks and figures of a dataset (tools/inspect_dataset)."""

import importlib.util
import json

import pytest

from tests.data.own_data import tracks_dataset, write_dataset, write_synthetic
from video_mask2former.data.inspect import (
    SIZE_NAMES,
    MissingDependencyError,
    format_report,
    inspect_ytvis_dataset,
    plot_histograms,
    size_name,
)
from video_mask2former.data.ytvis import YTVISFormatError


def test_figures_of_the_synthetic_set(tmp_path):
    json_file, image_root = write_synthetic(tmp_path)
    report = inspect_ytvis_dataset(json_file, image_root)
    dataset = json.load(open(json_file))
    assert report.ok and report.frame_problems == []
    assert report.num_videos == len(dataset["videos"]) == 4
    assert report.num_frames == 12 and report.frames_per_video == [3, 3, 3, 3]
    assert report.num_instances == len(dataset["annotations"])
    per_video = [sum(a["video_id"] == v["id"] for a in dataset["annotations"]) for v in
                 sorted(dataset["videos"], key=lambda v: v["id"])]  # fmt: skip
    assert report.instances_per_video == per_video
    assert sum(c["instances"] for c in report.categories) == report.num_instances
    assert report.num_masks == sum(
        s is not None for a in dataset["annotations"] for s in a["segmentations"]
    )
    assert report.sizes["small"] == report.num_instances  # 32 x 40 frames: all small
    json.dumps(report.to_dict())  # JSON-ready


def test_figures_known_by_construction(tmp_path):
    json_file, image_root = write_dataset(tmp_path, tracks_dataset())
    report = inspect_ytvis_dataset(json_file, image_root)
    assert (report.num_videos, report.num_frames) == (2, 8)
    assert (report.num_instances, report.num_crowd) == (2, 1)
    assert report.instances_per_video == [2, 0]
    assert report.num_masks == 3 + 2  # the empty RLEs of annotation 11 are no masks
    cats = {c["name"]: c for c in report.categories}
    assert (cats["cat"]["instances"], cats["cat"]["crowd"], cats["cat"]["masks"]) == (1, 1, 3)
    assert (cats["dog"]["videos"], cats["owl"]["videos"]) == (1, 0)
    # the metric's mean area over the frames where the track is present
    assert sorted(report.track_areas) == [4.0, 9.0]
    assert report.reentering == [
        {"video_id": 1, "annotation_id": 10, "category": "cat", "gaps": [[1, 1]]}
    ]
    assert report.videos_without_instances == [2]
    assert report.unused_categories == ["owl"]
    text = format_report(report)
    assert "re-entering instances" in text and "owl" in text
    assert "1 videos without an instance" in text


def test_size_ranges_follow_the_metric():
    assert SIZE_NAMES == ("small", "medium", "large")
    assert size_name(0.5) == "small"
    assert size_name(128.0**2) == "small" and size_name(128.0**2 + 1) == "medium"
    assert size_name(256.0**2) == "medium" and size_name(256.0**2 + 1) == "large"


def test_mean_area_uses_the_areas_field_like_the_metric(tmp_path):
    dataset = tracks_dataset()
    dataset["annotations"][0]["areas"] = [20000, None, 20000, 20000]
    json_file, image_root = write_dataset(tmp_path, dataset)
    report = inspect_ytvis_dataset(json_file, image_root, frames="none")
    assert (
        report.sizes["medium"] == 1
        and {c["name"]: c for c in report.categories}["cat"]["medium"] == 1
    )


def test_every_frame_problem_is_listed(tmp_path):
    json_file, image_root = write_dataset(tmp_path, tracks_dataset())
    (tmp_path / "frames" / "v1" / "00001.png").unlink()
    (tmp_path / "frames" / "v2" / "00003.png").write_bytes(b"not an image")
    from PIL import Image

    Image.new("RGB", (9, 8)).save(tmp_path / "frames" / "v2" / "00000.png")
    for frames in ("size", "decode"):
        report = inspect_ytvis_dataset(json_file, image_root, frames=frames)
        found = {(p.video_id, p.frame): p.problem for p in report.frame_problems}
        assert set(found) == {(1, 1), (2, 3), (2, 0)} and not report.ok
        assert "does not exist" in found[(1, 1)]
        assert "cannot be read as an image" in found[(2, 3)]
        assert "9x8 (WxH), but the annotation file says 8x8" in found[(2, 0)]
    assert inspect_ytvis_dataset(json_file, image_root, frames="none").frame_problems == []
    assert "video 1, frame 1:" in format_report(report)


def test_a_damaged_jpeg_is_found_by_the_decode_check(tmp_path):
    from tests.data.helpers import write_damaged_jpeg

    dataset = tracks_dataset()
    for video in dataset["videos"]:
        video.update(height=48, width=64, file_names=[f.replace(".png", ".jpg") for f in
                                                      video["file_names"]])  # fmt: skip
    dataset["annotations"] = []
    json_file, image_root = write_dataset(tmp_path, dataset)
    write_damaged_jpeg(tmp_path / "frames" / "v1" / "00002.jpg", "zeroed_tail")
    assert inspect_ytvis_dataset(json_file, image_root, frames="size").ok  # headers are intact
    (problem,) = inspect_ytvis_dataset(json_file, image_root, frames="decode").frame_problems
    assert (problem.video_id, problem.frame) == (1, 2) and "damaged JPEG" in problem.problem


def test_the_loader_error_is_raised(tmp_path):
    dataset = tracks_dataset()
    dataset["annotations"][1]["category_id"] = 9
    json_file, image_root = write_dataset(tmp_path, dataset, with_frames=False)
    with pytest.raises(YTVISFormatError, match="annotation 11 of video 1 has category_id 9"):
        inspect_ytvis_dataset(json_file, image_root)


def test_plot_needs_matplotlib_or_draws_a_png(tmp_path, monkeypatch):
    json_file, image_root = write_dataset(tmp_path, tracks_dataset())
    report = inspect_ytvis_dataset(json_file, image_root)
    if importlib.util.find_spec("matplotlib") is None:
        with pytest.raises(MissingDependencyError, match="pip install matplotlib"):
            plot_histograms(report)
        return
    assert plot_histograms(report).startswith(b"\x89PNG")
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match="pip install matplotlib"):
        plot_histograms(report)

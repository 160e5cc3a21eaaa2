"""The synthetic video panoptic / semantic datasets (video_mask2former.data.synthetic_video_seg)
and their scripts (datasets/prepare_synthetic_{vps,vss}.py)."""

import importlib.util
import inspect
import os

import numpy as np
import pytest

from video_mask2former.data.builtin_meta import VIDEO_SEG_SYNTHETIC_CATEGORIES
from video_mask2former.data.synthetic_video_seg import (
    generate_synthetic_video_seg,
    write_synthetic_vps,
    write_synthetic_vss,
)
from video_mask2former.data.vps import load_vps_video_dicts, read_vps_frame, rgb_to_id
from video_mask2former.data.vss import check_vss_frame, load_vss_split

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = dict(num_frames=4, height=32, width=40)
THINGS = {c[0] for c in VIDEO_SEG_SYNTHETIC_CATEGORIES if c[2]}


def test_seeded():
    a = generate_synthetic_video_seg(2, seed=3, **SMALL)
    b = generate_synthetic_video_seg(2, seed=3, **SMALL)
    c = generate_synthetic_video_seg(2, seed=4, **SMALL)
    assert all(np.array_equal(x, y) for x, y in zip(a[1].frames, b[1].frames))
    assert all(np.array_equal(x, y) for x, y in zip(a[1].ids, b[1].ids))
    assert not np.array_equal(a[1].frames[0], c[1].frames[0])
    val = generate_synthetic_video_seg(2, seed=3, split="val", **SMALL)
    assert not np.array_equal(a[0].ids[0], val[0].ids[0])


def test_scene_contents():
    """Things over >= 2 stuff classes, void, crowds, things entering and leaving, one id per
    track, stuff ids = their category colour's id (as VIPSeg's converter)."""
    videos = generate_synthetic_video_seg(12, num_frames=8, height=48, width=64)
    colors = {c[0]: c[3] for c in VIDEO_SEG_SYNTHETIC_CATEGORIES}
    saw_void = saw_crowd = saw_enter_or_leave = False
    for video in videos:
        stuff = set()
        for ids, segments in zip(video.ids, video.segments):
            assert set(segments) == set(np.unique(ids).tolist()) - {0}
            saw_void |= bool((ids == 0).any())
            for sid, segment in segments.items():
                if segment.category_id in THINGS:
                    saw_crowd |= segment.iscrowd
                else:
                    assert not segment.iscrowd
                    color = np.array([[colors[segment.category_id]]], dtype=np.uint8)
                    assert sid == rgb_to_id(color)[0, 0]
                    stuff.add(segment.category_id)
        assert len(stuff) >= 2
        tracks = [set(s) for s in video.segments]
        saw_enter_or_leave |= tracks[0] != tracks[-1]
        categories = {}
        for segments in video.segments:
            for sid, segment in segments.items():
                assert categories.setdefault(sid, segment.category_id) == segment.category_id
    assert saw_void and saw_crowd and saw_enter_or_leave


def test_vps_layout_loads_and_validates(tmp_path):
    written = write_synthetic_vps(str(tmp_path), num_train_videos=2, num_val_videos=1, **SMALL)
    json_file, image_root, gt_root = written["val"]
    assert json_file == os.path.join(str(tmp_path), "panoptic_gt_synthetic_val.json")
    assert sorted(os.listdir(tmp_path)) == [
        "images",
        "panomasksRGB",
        "panoptic_gt_synthetic_train.json",
        "panoptic_gt_synthetic_val.json",
    ]
    for split in ("train", "val"):
        for record in load_vps_video_dicts(*written[split]):
            for t in range(record["length"]):
                read_vps_frame(record, t)  # PNG ids == JSON ids, PNG size == frame size


def test_vss_layout_matches_the_panoptic_categories(tmp_path):
    written = write_synthetic_vss(str(tmp_path), num_train_videos=2, num_val_videos=1, **SMALL)
    root, split_file = written["train"]
    videos = load_vss_split(root, split_file)
    generated = generate_synthetic_video_seg(2, **SMALL)
    for video, truth in zip(videos, generated):
        for t in range(len(video.frame_names)):
            label = check_vss_frame(video, t)
            expected = np.full(label.shape, 255)
            for sid, segment in truth.segments[t].items():
                expected[truth.ids[t] == sid] = segment.category_id
            assert np.array_equal(label, expected)


def _files(root):
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = open(path, "rb").read()
    return out


@pytest.mark.parametrize("writer", [write_synthetic_vps, write_synthetic_vss])
def test_writing_twice_gives_the_same_files(tmp_path, writer):
    writer(str(tmp_path), num_train_videos=1, num_val_videos=1, **SMALL)
    first = _files(tmp_path)
    writer(str(tmp_path), num_train_videos=1, num_val_videos=1, **SMALL)
    assert _files(tmp_path) == first
    assert not [p for p in first if os.path.basename(p).startswith(".tmp_")]


def test_bad_sizes_before_any_file(tmp_path):
    with pytest.raises(ValueError, match="num_frames"):
        write_synthetic_vps(str(tmp_path / "x"), num_frames=0)
    with pytest.raises(ValueError, match="at least 16x16"):
        write_synthetic_vss(str(tmp_path / "x"), height=8)
    assert not os.path.exists(tmp_path / "x")


def _script(name):
    path = os.path.join(REPO_ROOT, "datasets", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "script, writer",
    [
        ("prepare_synthetic_vps", "write_synthetic_vps"),
        ("prepare_synthetic_vss", "write_synthetic_vss"),
    ],
)
def test_scripts_pass_the_writers_defaults(monkeypatch, script, writer):
    """A missing built-in synthetic set is written with the writer's defaults: those must be
    the script's (the same files)."""
    from video_mask2former.data import synthetic_video_seg

    defaults = {
        k: p.default
        for k, p in inspect.signature(getattr(synthetic_video_seg, writer)).parameters.items()
        if p.default is not inspect.Parameter.empty and k != "config"
    }
    captured = {}
    monkeypatch.setattr(
        synthetic_video_seg, writer, lambda out, **kwargs: captured.update(kwargs) or {}
    )
    _script(script).main([])
    assert captured == defaults


def test_script_writes_a_small_set(tmp_path, capsys):
    _script("prepare_synthetic_vss").main(
        ["--out", str(tmp_path), "--videos", "1", "--val-videos", "1", "--frames", "2"]
    )
    assert "vss_synthetic_val" in capsys.readouterr().out
    assert len(load_vss_split(str(tmp_path), "val.txt")) == 1

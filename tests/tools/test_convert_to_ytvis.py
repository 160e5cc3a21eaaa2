"""tools/convert_to_ytvis.py: each subcommand on generated data, the output checked first, the
annotation file replaced only by a complete one."""

import json
import os

import numpy as np
import pytest

from tests.data.convert.helpers import (
    decoded_tracks,
    write_cvat,
    write_davis,
    write_mots,
)
from tests.tools.scripts import load_tool
from video_mask2former.visualization.video_io import FrameWriter

convert = load_tool("convert_to_ytvis")


def test_png_masks(tmp_path, capsys):
    expected = write_davis(str(tmp_path / "davis"))
    out = tmp_path / "out"
    argv = ["png-masks", "--frames", str(tmp_path / "davis/JPEGImages")]
    argv += ["--masks", str(tmp_path / "davis/Annotations"), "--class", "animal", "--out", str(out)]
    assert convert.main(argv) == 0
    assert "2 videos, 3 objects, 1 categories (animal)" in capsys.readouterr().out
    tracks = decoded_tracks(str(out / "annotations.json"), str(out / "JPEGImages"))
    np.testing.assert_array_equal(tracks["cows"][0][1], expected["cows"][3])


def test_cvat_with_another_json_name_and_links(tmp_path):
    xml, frames, expected = write_cvat(str(tmp_path))
    out, json_path = tmp_path / "out", tmp_path / "out" / "train.json"
    os.makedirs(out)
    argv = ["cvat", "--xml", xml, "--frames", frames, "--out", str(out), "--json", str(json_path)]
    assert convert.main(argv + ["--link"]) == 0
    assert not (out / "annotations.json").exists()
    got = decoded_tracks(str(json_path), str(out / "JPEGImages"))["street"]
    for (_, masks), (_, reference) in zip(got, expected):
        np.testing.assert_array_equal(masks, reference)


def test_mots(tmp_path):
    txt_dir, frames, expected = write_mots(str(tmp_path))
    out = tmp_path / "out"
    assert convert.main(["mots", "--txt", txt_dir, "--frames", frames, "--out", str(out)]) == 0
    got = decoded_tracks(str(out / "annotations.json"), str(out / "JPEGImages"))["0002"]
    np.testing.assert_array_equal(got[1][1], expected[2001])


def test_video(tmp_path, capsys):
    path = str(tmp_path / "walk.mp4")
    with FrameWriter(path, None, fps=5.0) as writer:
        for t in range(5):
            writer.write(np.full((16, 16, 3), 50 * t, dtype=np.uint8))
    out = tmp_path / "out"
    assert convert.main(["video", "--input", path, "--every", "2", "--out", str(out)]) == 0
    assert "Wrote 3 frames" in capsys.readouterr().out
    assert sorted(os.listdir(out / "JPEGImages" / "walk")) == [
        "00000.jpg",
        "00002.jpg",
        "00004.jpg",
    ]


def test_bad_input_leaves_the_previous_annotations(tmp_path, capsys):
    write_davis(str(tmp_path / "davis"))
    out = tmp_path / "out"
    os.makedirs(out)
    (out / "annotations.json").write_text('{"previous": 1}')
    os.remove(tmp_path / "davis/JPEGImages/bear/00001.jpg")
    argv = ["png-masks", "--frames", str(tmp_path / "davis/JPEGImages")]
    argv += ["--masks", str(tmp_path / "davis/Annotations"), "--class", "x", "--out", str(out)]
    assert convert.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: mask ") and err.count("\n") == 1
    assert "00001.png (video 'bear', frame 00001) has no frame" in err
    assert json.loads((out / "annotations.json").read_text()) == {"previous": 1}
    assert not (out / "JPEGImages").exists()


@pytest.mark.parametrize("blocker", ["out", "json"])
def test_unwritable_output_fails_before_reading(tmp_path, capsys, blocker):
    (tmp_path / "file").write_text("x")
    out = str(tmp_path / "file") if blocker == "out" else str(tmp_path / "out")
    argv = ["mots", "--txt", str(tmp_path / "missing"), "--frames", str(tmp_path), "--out", out]
    if blocker == "json":
        argv += ["--json", str(tmp_path / "file" / "a.json")]
    assert convert.main(argv) == 2
    err = capsys.readouterr().err
    assert "file" in err and "missing" not in err  # the output, not the (missing) input

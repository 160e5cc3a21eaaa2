"""MOTS txt (KITTI-MOTS, MOTSChallenge) → YouTube-VIS: the round trip, the ignore region."""

import json
import os
import shutil

import numpy as np

from tests.data.convert.helpers import decoded_tracks, write_mots
from video_mask2former.data.convert import convert_mots, write_ytvis


def _check(json_path, out, expected, video):
    tracks = decoded_tracks(json_path, str(out / "JPEGImages"))
    got = tracks[video]
    assert [name for name, _ in got] == ["car", "pedestrian"]  # the ignore region is not written
    for (_, masks), oid in zip(got, sorted(expected)):
        np.testing.assert_array_equal(masks, expected[oid])


def test_round_trip_kitti_layout(tmp_path):
    txt_dir, frames, expected = write_mots(str(tmp_path))
    for txt in (txt_dir, os.path.join(txt_dir, "0002.txt")):  # a folder or one file
        videos, categories = convert_mots(txt, frames)
        assert categories == [(1, "car"), (2, "pedestrian")]
        out = tmp_path / "out"
        json_path = write_ytvis(str(out), videos, categories)
        _check(json_path, out, expected, "0002")
        with open(json_path) as f:
            car = json.load(f)["annotations"][0]
        assert car["segmentations"][1] is None  # absent from frame 1


def test_motschallenge_layout_counts_frames_from_one(tmp_path):
    txt_dir, frames, expected = write_mots(str(tmp_path), sequence="MOTS20-02")
    seq = tmp_path / "MOTS20" / "MOTS20-02"
    os.makedirs(seq / "gt")
    shutil.move(os.path.join(txt_dir, "MOTS20-02.txt"), seq / "gt" / "gt.txt")
    os.makedirs(seq / "img1")
    lines = (seq / "gt" / "gt.txt").read_text().splitlines()
    renumbered = [" ".join([str(int(ln.split()[0]) + 1)] + ln.split()[1:]) for ln in lines]
    (seq / "gt" / "gt.txt").write_text("\n".join(renumbered) + "\n")
    for t, name in enumerate(sorted(os.listdir(os.path.join(frames, "MOTS20-02")))):
        shutil.move(os.path.join(frames, "MOTS20-02", name), seq / "img1" / f"{t + 1:06d}.png")
    videos, categories = convert_mots(str(tmp_path / "MOTS20"), str(tmp_path / "MOTS20"))
    out = tmp_path / "out"
    json_path = write_ytvis(str(out), videos, categories)
    _check(json_path, out, expected, "MOTS20-02")
    assert videos[0].frame_files[0].endswith("img1/000001.png")

"""datasets/prepare_own_data_example.py: the DAVIS-layout example of README's "Train on your own
videos" (its masks are the synthetic set's; the refusal of a non-empty output folder)."""

import csv
import importlib.util
import os

import numpy as np
from PIL import Image

from video_mask2former.data.synthetic import generate_synthetic_ytvis
from video_mask2former.data.ytvis import decode_segmentation

SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "datasets",
    "prepare_own_data_example.py",
)


def _script():
    spec = importlib.util.spec_from_file_location("prepare_own_data_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_masks_are_the_synthetic_masks(tmp_path, capsys):
    out = tmp_path / "example"
    argv = ["--out", str(out), "--videos", "3", "--frames", "2", "--height", "32", "--width", "40"]
    assert _script().main(argv) == 0
    assert "Wrote 3 videos (6 frames of 40x32" in capsys.readouterr().out
    with open(out / "classes.csv") as f:
        rows = list(csv.DictReader(f))
    dataset, _ = generate_synthetic_ytvis(num_videos=3, num_frames=2, height=32, width=40)
    names = {c["id"]: c["name"] for c in dataset["categories"]}
    assert len(rows) == len(dataset["annotations"])
    assert sorted(os.listdir(out / "JPEGImages")) == ["shapes-001", "shapes-002", "shapes-003"]
    for video in dataset["videos"]:
        folder = f"shapes-{video['id']:03d}"
        anns = [a for a in dataset["annotations"] if a["video_id"] == video["id"]]
        assert [(r["object_id"], r["category"]) for r in rows if r["video"] == folder] == [
            (str(k), names[a["category_id"]]) for k, a in enumerate(anns, start=1)
        ]
        for t in range(2):
            png = Image.open(out / "Annotations" / folder / f"{t:05d}.png")
            assert png.mode == "P" and png.size == (40, 32)
            assert Image.open(out / "JPEGImages" / folder / f"{t:05d}.jpg").size == (40, 32)
            ids = np.asarray(png)
            for k, ann in enumerate(anns, start=1):
                segm = ann["segmentations"][t]
                mask = (
                    np.zeros((32, 40), bool) if segm is None else decode_segmentation(segm, 32, 40)
                )
                np.testing.assert_array_equal(ids == k, mask)


def test_refuses_a_non_empty_folder_and_bad_sizes(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("x")
    assert _script().main(["--out", str(tmp_path)]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["old.txt"]
    assert _script().main(["--out", str(tmp_path / "new"), "--frames", "0"]) == 2
    assert "--frames must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()

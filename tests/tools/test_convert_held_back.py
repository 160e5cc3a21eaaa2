"""The held-back check of tools/convert_to_ytvis.py: a DAVIS-style PNG dataset and a CVAT XML
written here by hand (not by the round-trip tests' writers of tests/data/convert/helpers.py),
converted with the commands README.md documents, run as a user runs them; the masks in the
written JSON, decoded with pycocotools, must equal the drawn ones pixel for pixel, and the frames
must be the input frames in order."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pycocotools.mask as mask_util
from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEIGHT, WIDTH, FRAMES = 20, 30, 3
VOID = 255


def _convert(*args) -> None:
    cmd = [sys.executable, os.path.join(REPO_ROOT, "tools", "convert_to_ytvis.py"), *args]
    proc = subprocess.run(
        cmd, env=dict(os.environ, PYTHONPATH=REPO_ROOT), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def _frames(folder, names, seed: int) -> list:
    """Random JPEG frames ``folder/<name>``; their paths."""
    os.makedirs(folder)
    rng = np.random.default_rng(seed)
    paths = []
    for name in names:
        pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        paths.append(os.path.join(folder, name))
        Image.fromarray(pixels).save(paths[-1], quality=90)
    return paths


def _disc(cy: float, cx: float, r: float) -> np.ndarray:
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    return (ys - cy) ** 2 + (xs - cx) ** 2 <= r * r


def _written(json_path: str) -> tuple:
    """(dataset, {video folder: [(category name, (T, H, W) masks)]}) of a written JSON."""
    with open(json_path) as f:
        dataset = json.load(f)
    names = {c["id"]: c["name"] for c in dataset["categories"]}
    videos = {v["id"]: v for v in dataset["videos"]}
    tracks = {}
    for ann in dataset["annotations"]:
        video = videos[ann["video_id"]]
        masks = np.zeros((video["length"], video["height"], video["width"]), dtype=bool)
        for t, rle in enumerate(ann["segmentations"]):
            if rle is not None:
                if isinstance(rle["counts"], list):
                    rle = mask_util.frPyObjects(rle, *rle["size"])
                masks[t] = mask_util.decode(rle).astype(bool)
        folder = video["file_names"][0].split("/")[0]
        tracks.setdefault(folder, []).append((names[ann["category_id"]], masks))
    return dataset, tracks


def _same_tracks(got: list, expected: list) -> None:
    """Every expected (category, masks) is written once, and nothing else."""
    assert len(got) == len(expected)
    for name, masks in expected:
        matches = [g for g in got if g[0] == name and np.array_equal(g[1], masks)]
        assert len(matches) == 1, f"{name}: {len(matches)} written tracks equal the drawn one"


def _same_frames(dataset: dict, out, inputs: dict) -> None:
    """Each video's frames are the input JPEGs (copied byte for byte), in order."""
    for video in dataset["videos"]:
        folder = video["file_names"][0].split("/")[0]
        assert len(video["file_names"]) == len(inputs[folder])
        for name, source in zip(video["file_names"], inputs[folder]):
            with open(out / "JPEGImages" / name, "rb") as a, open(source, "rb") as b:
                assert a.read() == b.read(), name


def test_davis_png_masks(tmp_path):
    """Two videos; palette PNGs with a void (255) band, an object absent from one frame, objects
    touching; classes from the documented CSV."""
    root = tmp_path / "export"
    names = [f"{t:05d}.jpg" for t in range(FRAMES)]
    palette = [0, 0, 0, 250, 0, 0, 0, 250, 0, 0, 0, 250] + [0] * (3 * 251) + [255] * 3
    expected, frames = {}, {}
    objects = {"kite-walk": {1: "kite", 2: "person"}, "lab-coat": {1: "person", 4: "phone"}}
    for v, (video, classes) in enumerate(objects.items()):
        frames[video] = _frames(root / "JPEGImages" / video, names, seed=v)
        masks = {oid: np.zeros((FRAMES, HEIGHT, WIDTH), dtype=bool) for oid in classes}
        os.makedirs(root / "Annotations" / video)
        for t in range(FRAMES):
            ids = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
            first, second = list(classes)
            ids[_disc(6 + t, 7 + 3 * t, 4.5)] = first
            if not (v == 1 and t == 1):  # object 4 of "lab-coat" is absent from frame 1
                ids[10:17, 14 + t : 25] = second  # over the disc where they meet
            ids[:, WIDTH - 2 :] = VOID
            for oid in classes:
                masks[oid][t] = ids == oid
            png = Image.fromarray(ids, mode="L").convert("P")
            png.putpalette(palette)
            png.save(root / "Annotations" / video / names[t].replace(".jpg", ".png"))
        expected[video] = [(classes[oid], masks[oid]) for oid in classes]
    with open(root / "classes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "object_id", "category"])
        for video, classes in objects.items():
            writer.writerows([video, oid, name] for oid, name in classes.items())

    out = tmp_path / "ytvis"
    _convert("png-masks", "--frames", str(root / "JPEGImages"), "--masks",
             str(root / "Annotations"), "--classes", str(root / "classes.csv"),
             "--out", str(out))  # fmt: skip
    dataset, tracks = _written(str(out / "annotations.json"))
    assert [c["name"] for c in dataset["categories"]] == ["kite", "person", "phone"]
    assert sorted(tracks) == sorted(objects)
    for video in objects:
        _same_tracks(tracks[video], expected[video])
    _same_frames(dataset, out, frames)
    (absent,) = [a for a in dataset["annotations"] if a["segmentations"][1] is None]
    assert dataset["categories"][absent["category_id"] - 1]["name"] == "phone"


def _cvat_rle(mask: np.ndarray, left: int, top: int, width: int, height: int) -> str:
    """CVAT's mask code: run lengths over the box, row by row, of 0s then 1s then 0s ..."""
    runs, value, count = [], False, 0
    for pixel in mask[top : top + height, left : left + width].reshape(-1):
        if pixel != value:
            runs.append(count)
            value, count = pixel, 0
        count += 1
    runs.append(count)
    return ", ".join(map(str, runs))


def test_cvat_xml(tmp_path):
    """A CVAT for video 1.1 task: a triangle polygon track that goes outside in the last frame,
    a mask track (CVAT's run-length code) occluded in one frame, and a box track (ignored)."""
    task = "yard"
    frames = _frames(tmp_path / "frames" / task, [f"frame_{t:06d}.jpg" for t in range(FRAMES)], 7)
    dog = np.zeros((FRAMES, HEIGHT, WIDTH), dtype=bool)
    ball = np.zeros((FRAMES, HEIGHT, WIDTH), dtype=bool)
    ys, xs = np.mgrid[:HEIGHT, :WIDTH]
    polygons, masks = [], []
    for t in range(FRAMES):
        # right triangle (2.1 + t, 2.1), (13.1 + t, 2.1), (2.1 + t, 13.1): the pixel centres
        # (x + 0.5, y + 0.5) inside it are those with x - t + y <= 14 (none on an edge)
        x0 = 2.1 + t
        points = f"{x0:.1f},2.1;{x0 + 11:.1f},2.1;{x0:.1f},13.1"
        outside = int(t == FRAMES - 1)
        if not outside:
            dog[t] = (xs >= 2 + t) & (ys >= 2) & (xs - t + ys <= 14)
        polygons.append(
            f'<polygon frame="{t}" outside="{outside}" occluded="0" keyframe="1" '
            f'points="{points}" z_order="0"></polygon>'
        )
        ball[t] = _disc(14, 22 - t, 3.2)  # clear of the triangle
        rows, cols = np.nonzero(ball[t])
        left, top = int(cols.min()), int(rows.min())
        width, height = int(cols.max()) - left + 1, int(rows.max()) - top + 1
        code = _cvat_rle(ball[t], left, top, width, height)
        masks.append(
            f'<mask frame="{t}" outside="0" occluded="{int(t == 1)}" keyframe="1" '
            f'rle="{code}" left="{left}" top="{top}" width="{width}" height="{height}" '
            f'z_order="1"></mask>'
        )
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>3</id><name>{task}</name><size>{FRAMES}</size><mode>interpolation</mode>
      <start_frame>0</start_frame><stop_frame>{FRAMES - 1}</stop_frame>
      <labels>
        <label><name>dog</name><type>polygon</type></label>
        <label><name>ball</name><type>mask</type></label>
      </labels>
      <original_size><width>{WIDTH}</width><height>{HEIGHT}</height></original_size>
    </task>
  </meta>
  <track id="0" label="dog" source="manual">{"".join(polygons)}</track>
  <track id="1" label="ball" source="manual">{"".join(masks)}</track>
  <track id="2" label="dog" source="manual"><box frame="0" outside="0" occluded="0"
    keyframe="1" xtl="1.00" ytl="1.00" xbr="6.00" ybr="6.00" z_order="0"></box></track>
</annotations>
"""
    (tmp_path / f"{task}.xml").write_text(xml)

    out = tmp_path / "ytvis"
    _convert("cvat", "--xml", str(tmp_path / f"{task}.xml"), "--frames",
             str(tmp_path / "frames"), "--out", str(out))  # fmt: skip
    dataset, tracks = _written(str(out / "annotations.json"))
    assert sorted(c["name"] for c in dataset["categories"]) == ["ball", "dog"]
    assert list(tracks) == [task]
    _same_tracks(tracks[task], [("dog", dog), ("ball", ball)])
    _same_frames(dataset, out, {task: frames})
    (dog_ann,) = [a for a in dataset["annotations"] if a["segmentations"][FRAMES - 1] is None]
    assert dataset["categories"][dog_ann["category_id"] - 1]["name"] == "dog"

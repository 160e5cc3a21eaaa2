"""Small datasets in each input format of the converters, written by the tests, and the masks
that each one must give back (the round trip's reference).

Shapes: T frames of H x W; masks are (T, H, W) bool arrays, all-False where an object is absent.
"""

import json
import os
from typing import Dict, List

import numpy as np
import pycocotools.mask as mask_util
from PIL import Image

from video_mask2former.data.ytvis import decode_segmentation, load_ytvis_dataset

HEIGHT, WIDTH, FRAMES = 24, 32, 3
PALETTE = [0, 0, 0, 200, 30, 30, 30, 200, 30, 30, 30, 200] + [0] * (3 * 251) + [255, 255, 255]


def blob(rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """An irregular (H, W) bool mask: a random box with random pixels removed from its border."""
    y0, x0 = rng.integers(0, height // 2), rng.integers(0, width // 2)
    y1, x1 = y0 + rng.integers(4, height // 2), x0 + rng.integers(4, width // 2)
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    mask[y0:y1, x0] &= rng.random(y1 - y0) < 0.5
    return mask


def write_frames(folder: str, count: int, ext: str = ".jpg", start: int = 0, digits: int = 5):
    """``count`` noise frames named by number; returns their paths."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(len(folder))
    paths = []
    for i in range(start, start + count):
        path = os.path.join(folder, f"{i:0{digits}d}{ext}")
        Image.fromarray(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def write_davis(root: str, seed: int = 0) -> Dict[str, Dict[int, np.ndarray]]:
    """A DAVIS-style dataset under ``root/JPEGImages`` and ``root/Annotations``: video "bear"
    (JPEG frames, objects 1 and 2, object 2 absent from frame 1, a void border of 255) and video
    "cows" (PNG frames, grey masks, object 3; its frame 00003 has no mask and is left out).

    Returns:
        {video: {object id: (T, H, W) bool masks}}: what the conversion must give back.
    """
    rng = np.random.default_rng(seed)
    expected = {}
    for video, ext, ids, mode in (("bear", ".jpg", (1, 2), "P"), ("cows", ".png", (3,), "L")):
        write_frames(os.path.join(root, "JPEGImages", video), FRAMES + 1, ext)
        masks = {oid: np.zeros((FRAMES, HEIGHT, WIDTH), dtype=bool) for oid in ids}
        os.makedirs(os.path.join(root, "Annotations", video))
        for t in range(FRAMES):
            id_map = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
            for oid in ids:
                if oid == 2 and t == 1:
                    continue
                masks[oid][t] = blob(rng) & (id_map == 0)
                id_map[masks[oid][t]] = oid
            id_map[0, :] = 255  # void border: no object
            for oid in ids:
                masks[oid][t, 0, :] = False
            img = Image.fromarray(id_map, mode="L")
            if mode == "P":
                img = img.convert("P")
                img.putpalette(PALETTE)
            img.save(os.path.join(root, "Annotations", video, f"{t:05d}.png"))
        expected[video] = masks
    return expected


def cvat_rle(mask: np.ndarray, left: int, top: int, width: int, height: int) -> str:
    """CVAT's mask code of the box of ``mask``: run lengths of 0 / 1 pixels, row-major, starting
    with 0 (written here independently of the converter)."""
    flat = mask[top : top + height, left : left + width].reshape(-1).astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0] + runs
    return ", ".join(str(r) for r in runs)


def write_cvat(root: str, task: str = "street", seed: int = 1):
    """A CVAT for video 1.1 task: ``root/<task>.xml`` and its frames in ``root/frames/<task>/``.

    Tracks: 0 "car", polygons (rectangles) in frames 0-1 (keyframe 1 then an interpolated 0),
    outside from frame 2; 1 "person", masks in every frame, occluded in frame 1; 2 "car", a box
    (ignored).

    Returns:
        (xml path, frames folder, [(label, (T, H, W) masks)] of the polygon / mask tracks).
    """
    rng = np.random.default_rng(seed)
    frames_dir = os.path.join(root, "frames")
    write_frames(os.path.join(frames_dir, task), FRAMES, ".png", digits=6)
    car = np.zeros((FRAMES, HEIGHT, WIDTH), dtype=bool)
    person = np.zeros((FRAMES, HEIGHT, WIDTH), dtype=bool)
    shapes0, shapes1 = [], []
    for t in range(FRAMES):
        x0, y0 = 2 + t, 3
        x1, y1 = x0 + 8, y0 + 5
        if t < 2:
            car[t, y0:y1, x0:x1] = True  # pixels whose centres are inside the rectangle
            points = f"{x0:.2f},{y0:.2f};{x1:.2f},{y0:.2f};{x1:.2f},{y1:.2f};{x0:.2f},{y1:.2f}"
            shapes0.append(
                f'<polygon frame="{t}" outside="0" occluded="0" keyframe="{int(t == 0)}" '
                f'points="{points}" z_order="0"></polygon>'
            )
        else:
            shapes0.append(
                f'<polygon frame="{t}" outside="1" occluded="0" keyframe="1" '
                f'points="{points}" z_order="0"></polygon>'
            )
        person[t] = blob(rng)
        ys, xs = np.nonzero(person[t])
        left, top = int(xs.min()), int(ys.min())
        width, height = int(xs.max()) - left + 1, int(ys.max()) - top + 1
        rle = cvat_rle(person[t], left, top, width, height)
        shapes1.append(
            f'<mask frame="{t}" outside="0" occluded="{int(t == 1)}" keyframe="1" rle="{rle}" '
            f'left="{left}" top="{top}" width="{width}" height="{height}" z_order="0"></mask>'
        )
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>7</id><name>{task}</name><size>{FRAMES}</size><mode>interpolation</mode>
      <start_frame>0</start_frame><stop_frame>{FRAMES - 1}</stop_frame><frame_filter></frame_filter>
      <labels>
        <label><name>car</name><type>any</type></label>
        <label><name>person</name><type>any</type></label>
        <label><name>sign</name><type>rectangle</type></label>
      </labels>
      <original_size><width>{WIDTH}</width><height>{HEIGHT}</height></original_size>
    </task>
  </meta>
  <track id="0" label="car" source="manual">{''.join(shapes0)}</track>
  <track id="1" label="person" source="manual">{''.join(shapes1)}</track>
  <track id="2" label="car" source="manual"><box frame="0" outside="0" occluded="0" keyframe="1"
    xtl="1.00" ytl="1.00" xbr="5.00" ybr="5.00" z_order="0"></box></track>
</annotations>
"""
    path = os.path.join(root, f"{task}.xml")
    with open(path, "w") as f:
        f.write(xml)
    return path, frames_dir, [("car", car), ("person", person)]


def coco_rle(mask: np.ndarray) -> str:
    return mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()


def write_mots(root: str, sequence: str = "0002", seed: int = 2):
    """A KITTI-MOTS sequence: ``root/instances_txt/<sequence>.txt`` and frames
    ``root/image_02/<sequence>/000000.png`` ...; objects 1001 (car, absent from frame 1) and 2001
    (pedestrian), and an ignore region (10000) in every frame, none overlapping.

    Returns:
        (txt folder, frames folder, {object id: (T, H, W) masks}).
    """
    rng = np.random.default_rng(seed)
    frames_dir = os.path.join(root, "image_02")
    write_frames(os.path.join(frames_dir, sequence), FRAMES, ".png", digits=6)
    masks = {oid: np.zeros((FRAMES, HEIGHT, WIDTH), dtype=bool) for oid in (1001, 2001)}
    lines = []
    for t in range(FRAMES):
        taken = np.zeros((HEIGHT, WIDTH), dtype=bool)
        for oid in (1001, 2001, 10000):
            if oid == 1001 and t == 1:
                continue
            mask = blob(rng) & ~taken
            taken |= mask
            if oid in masks:
                masks[oid][t] = mask
            lines.append(f"{t} {oid} {oid // 1000} {HEIGHT} {WIDTH} {coco_rle(mask)}")
    txt_dir = os.path.join(root, "instances_txt")
    os.makedirs(txt_dir)
    with open(os.path.join(txt_dir, f"{sequence}.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return txt_dir, frames_dir, masks


def decoded_tracks(json_path: str, image_root: str) -> Dict[str, List[tuple]]:
    """{video folder: [(category name, (T, H, W) masks)]} of a written dataset, the masks decoded
    from its JSON, in annotation order; also loads it with the YouTube-VIS loader and checks that
    every frame file exists and that the loader's objects decode to the same masks."""
    with open(json_path) as f:
        dataset = json.load(f)
    names = {c["id"]: c["name"] for c in dataset["categories"]}
    videos = {v["id"]: v for v in dataset["videos"]}
    out: Dict[str, List[tuple]] = {}
    for ann in dataset["annotations"]:
        video = videos[ann["video_id"]]
        h, w = video["height"], video["width"]
        masks = np.stack([decode_segmentation(s, h, w) for s in ann["segmentations"]])
        out.setdefault(video["file_names"][0].split("/")[0], []).append(
            (names[ann["category_id"]], masks)
        )
    records, _ = load_ytvis_dataset(json_path, image_root)
    for record in records:
        for t, (name, objs) in enumerate(zip(record["file_names"], record["annotations"])):
            assert os.path.isfile(name), name
            folder = os.path.basename(os.path.dirname(name))
            for obj in objs:
                mask = decode_segmentation(obj["segmentation"], record["height"], record["width"])
                assert any((m[t] == mask).all() for _, m in out[folder])
    return out

"""A synthetic YouTube-VIS dataset: coloured shapes moving over a noisy background.

Every video has 1..``max_objects`` shapes (circle / square / triangle, one colour per category, see
``SYNTHETIC_CATEGORIES``) moving on straight lines. Later shapes occlude earlier ones; a shape may
enter after the first frame, vanish before the last one, or drift out of the frame. A frame where
a shape is not visible has ``null`` segmentation, box and area, as in YouTube-VIS.

Everything is drawn from ``numpy.random.default_rng([seed, split, video])``, so a dataset is a pure
function of its arguments. Masks are computed exactly (pixel centres inside the shape and outside
every shape above it) within each shape's box, and written as RLE; the JPEG frames are painted from
the same shapes, so masks and pixels agree.

Defaults (64 train / 16 val videos of 8 frames at 128x160) keep the whole dataset small enough
for a small model to learn in a few CPU minutes.
"""

import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
from PIL import Image

from .builtin_meta import SYNTHETIC_CATEGORIES

__all__ = [
    "SyntheticConfig",
    "generate_synthetic_ytvis",
    "write_synthetic_ytvis",
    "SPLIT_FOLDERS",
    "DEFAULT_TRAIN_VIDEOS",
    "DEFAULT_VAL_VIDEOS",
    "DEFAULT_FRAMES",
    "DEFAULT_HEIGHT",
    "DEFAULT_WIDTH",
    "DEFAULT_SEED",
]

# Split name -> folder, as in the built-in table (``ytvis_synthetic/{train,valid}``).
SPLIT_FOLDERS = {"train": "train", "val": "valid"}
_SPLIT_STREAM = {"train": 0, "val": 1}
_SQRT3_2 = np.sqrt(3.0) / 2.0
SEGMENTATION_FORMATS = ("rle", "uncompressed_rle")
# Defaults of write_synthetic_ytvis and datasets/prepare_synthetic_ytvis.py (the dataset written
# on first use by train_net_video.py): small enough for a small model to learn in CPU minutes.
DEFAULT_TRAIN_VIDEOS = 64
DEFAULT_VAL_VIDEOS = 16
DEFAULT_FRAMES = 8
DEFAULT_HEIGHT = 128
DEFAULT_WIDTH = 160
DEFAULT_SEED = 0


@dataclass(frozen=True)
class SyntheticConfig:
    """How the videos look. Sizes and speeds are fractions of the shorter frame edge.

    Attributes:
        max_objects (int): shapes per video are drawn in [1, max_objects].
        size_range (tuple): half-extent (circle radius, half side) of a shape.
        speed_range (tuple): distance moved per frame.
        late_start_prob (float): probability that a shape enters after the first frame.
        early_end_prob (float): probability that a shape vanishes before the last frame.
        color_jitter (int): per-video +- jitter of a category's colour (uint8 levels).
        noise_std (float): std of the background and shape pixel noise (uint8 levels).
        jpeg_quality (int): quality of the written JPEG frames.
    """

    max_objects: int = 3
    size_range: Tuple[float, float] = (0.12, 0.22)
    speed_range: Tuple[float, float] = (0.0, 0.06)
    late_start_prob: float = 0.2
    early_end_prob: float = 0.2
    color_jitter: int = 20
    noise_std: float = 8.0
    jpeg_quality: int = 95


@dataclass
class _Shape:
    category_id: int
    kind: str
    size: float
    centers: np.ndarray  # (T, 2) x, y in pixels
    start: int  # first frame where the shape exists
    end: int  # one past the last one

    def alive(self, t: int) -> bool:
        return self.start <= t < self.end

    def box(self, t: int, height: int, width: int) -> Tuple[int, int, int, int]:
        """Pixel window (x0, y0, x1, y1) covering the shape, clipped to the frame (may be empty)."""
        cx, cy = self.centers[t]
        x0, x1 = int(np.floor(cx - self.size)), int(np.ceil(cx + self.size)) + 1
        y0, y1 = int(np.floor(cy - self.size)), int(np.ceil(cy + self.size)) + 1
        return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)

    def contains(self, t: int, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Whether the pixel centres (xs + 0.5, ys + 0.5) lie in the shape; broadcasts."""
        cx, cy = self.centers[t]
        dx, dy = xs + 0.5 - cx, ys + 0.5 - cy
        r = self.size
        if self.kind == "circle":
            return dx * dx + dy * dy <= r * r
        if self.kind == "square":
            return (np.abs(dx) <= r) & (np.abs(dy) <= r)
        # Upward triangle with circumradius r: above the base, below both slanted edges.
        below_right = _SQRT3_2 * dx - 0.5 * dy <= r / 2
        below_left = -_SQRT3_2 * dx - 0.5 * dy <= r / 2
        return (dy <= r / 2) & below_right & below_left


def _random_shapes(
    rng: np.random.Generator, num_frames: int, height: int, width: int, cfg: SyntheticConfig
) -> List[_Shape]:
    unit = min(height, width)
    kinds = {cid: name for cid, name, _ in SYNTHETIC_CATEGORIES}
    shapes = []
    for _ in range(int(rng.integers(1, cfg.max_objects + 1))):
        cid = int(rng.choice(sorted(kinds)))
        size = rng.uniform(*cfg.size_range) * unit
        start_xy = rng.uniform([0, 0], [width, height])
        angle = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(*cfg.speed_range) * unit
        velocity = speed * np.array([np.cos(angle), np.sin(angle)])
        centers = start_xy[None] + np.arange(num_frames)[:, None] * velocity[None]  # (T, 2)
        start = int(rng.integers(1, num_frames)) if rng.random() < cfg.late_start_prob else 0
        end = num_frames
        if num_frames - start > 1 and rng.random() < cfg.early_end_prob:
            end = int(rng.integers(start + 1, num_frames))
        shapes.append(_Shape(cid, kinds[cid], size, centers, start, end))
    return shapes


def _visible_crop(
    shapes: Sequence[_Shape], k: int, t: int, height: int, width: int
) -> Tuple[np.ndarray, int, int]:
    """Visible part of shape k at frame t inside its box: (h, w) bool crop and its (y0, x0)."""
    x0, y0, x1, y1 = shapes[k].box(t, height, width)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), dtype=bool), 0, 0
    ys, xs = np.arange(y0, y1)[:, None], np.arange(x0, x1)[None, :]
    crop = shapes[k].contains(t, xs, ys)
    for above in shapes[k + 1 :]:
        if above.alive(t):
            crop &= ~above.contains(t, xs, ys)
    return crop, y0, x0


def _column_major_counts(crop: np.ndarray, y0: int, x0: int, height: int, width: int) -> List[int]:
    """Uncompressed COCO RLE counts (column-major runs, zeros first) of a crop put at (y0, x0)."""
    padded = np.zeros((crop.shape[0] + 2, crop.shape[1]), dtype=np.int8)
    padded[1:-1] = crop
    edges = np.diff(padded, axis=0).T  # (w, h + 1): +1 where a run starts, -1 one past its end
    cols_s, rows_s = np.nonzero(edges == 1)
    cols_e, rows_e = np.nonzero(edges == -1)
    starts = (x0 + cols_s) * height + (y0 + rows_s)
    ends = (x0 + cols_e) * height + (y0 + rows_e)
    # A run reaching the bottom of a column continues at the top of the next one.
    joined = starts[1:] == ends[:-1]
    starts = starts[np.concatenate([[True], ~joined])]
    ends = ends[np.concatenate([~joined, [True]])]
    bounds = np.stack([starts, ends], axis=1).reshape(-1)
    return np.diff(np.concatenate([[0], bounds, [height * width]])).tolist()


def _segmentation(counts: List[int], height: int, width: int, fmt: str) -> dict:
    if fmt == "uncompressed_rle":
        return {"counts": counts, "size": [height, width]}
    rle = mask_util.frPyObjects({"counts": counts, "size": [height, width]}, height, width)
    return {"counts": rle["counts"].decode("ascii"), "size": [height, width]}


def _paint_frame(
    shapes: Sequence[_Shape],
    colors: Sequence[np.ndarray],
    background: np.ndarray,
    t: int,
    rng: np.random.Generator,
    noise_std: float,
) -> np.ndarray:
    """(H, W, 3) uint8 frame: the background, then the shapes alive at t in z order, plus noise."""
    height, width = background.shape[:2]
    frame = background.copy()
    ys, xs = np.arange(height)[:, None], np.arange(width)[None, :]
    for shape, color in zip(shapes, colors):
        if shape.alive(t):
            frame[shape.contains(t, xs, ys)] = color
    frame += rng.normal(0, noise_std, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def _background(rng: np.random.Generator, height: int, width: int, noise_std: float) -> np.ndarray:
    """Textured gray background: a random linear gradient plus coarse blotches, float (H, W, 3)."""
    ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
    gx, gy = rng.uniform(-60, 60, size=2)
    base = 110 + gx * xs + gy * ys
    coarse = rng.normal(0, 3 * noise_std, size=(height // 16 + 1, width // 16 + 1))
    blotches = np.kron(coarse, np.ones((16, 16)))[:height, :width]
    tint = rng.uniform(-15, 15, size=3)
    return (base + blotches)[:, :, None] + tint[None, None, :]


def _one_video(
    rng: np.random.Generator,
    video_id: int,
    first_ann_id: int,
    num_frames: int,
    height: int,
    width: int,
    cfg: SyntheticConfig,
    segmentation_format: str,
    with_images: bool,
) -> Tuple[dict, List[dict], Optional[List[np.ndarray]]]:
    name = f"video_{video_id:05d}"
    video = {
        "id": video_id,
        "width": width,
        "height": height,
        "length": num_frames,
        "file_names": [f"{name}/{t:05d}.jpg" for t in range(num_frames)],
    }
    shapes = _random_shapes(rng, num_frames, height, width, cfg)
    base_colors = {cid: np.array(color, dtype=np.float64) for cid, _, color in SYNTHETIC_CATEGORIES}
    colors = [
        base_colors[s.category_id] + rng.uniform(-cfg.color_jitter, cfg.color_jitter, 3)
        for s in shapes
    ]
    annotations = []
    for k, shape in enumerate(shapes):
        segms, boxes, areas = [], [], []
        for t in range(num_frames):
            crop, y0, x0 = (
                _visible_crop(shapes, k, t, height, width) if shape.alive(t) else (None, 0, 0)
            )
            if crop is None or not crop.any():
                segm = box = area = None
            else:
                counts = _column_major_counts(crop, y0, x0, height, width)
                segm = _segmentation(counts, height, width, segmentation_format)
                rows, cols = np.flatnonzero(crop.any(axis=1)), np.flatnonzero(crop.any(axis=0))
                box_w, box_h = int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
                box = [x0 + int(cols[0]), y0 + int(rows[0]), box_w, box_h]
                area = int(crop.sum())
            segms.append(segm)
            boxes.append(box)
            areas.append(area)
        if all(s is None for s in segms):
            continue  # never visible (e.g. fully occluded): not an instance of the video
        annotations.append(
            {
                "id": first_ann_id + len(annotations),
                "video_id": video_id,
                "category_id": shape.category_id,
                "iscrowd": 0,
                "height": height,
                "width": width,
                "length": 1,
                "segmentations": segms,
                "bboxes": boxes,
                "areas": areas,
            }
        )
    frames = None
    if with_images:
        background = _background(rng, height, width, cfg.noise_std)
        frames = [
            _paint_frame(shapes, colors, background, t, rng, cfg.noise_std)
            for t in range(num_frames)
        ]
    return video, annotations, frames


def generate_synthetic_ytvis(
    *,
    num_videos: int,
    num_frames: int = 8,
    height: int = 128,
    width: int = 160,
    seed: int = 0,
    split: str = "train",
    config: SyntheticConfig = SyntheticConfig(),
    segmentation_format: str = "rle",
    with_images: bool = False,
) -> Tuple[dict, Optional[List[List[np.ndarray]]]]:
    """Generate one split in memory.

    Args:
        num_videos, num_frames, height, width: dataset size (frames are ``height x width``).
        seed (int): the dataset is a pure function of (seed, split, arguments).
        split (str): ``"train"`` or ``"val"``; the splits draw from different streams.
        config (SyntheticConfig): appearance and motion.
        segmentation_format (str): ``"rle"`` (compressed, counts str) or ``"uncompressed_rle"``
            (counts list, as the YouTube-VIS releases).
        with_images (bool): also paint the frames (skip for large annotation-only sets).

    Returns:
        (dataset, frames): the YouTube-VIS dict (``videos``, ``annotations``, ``categories``) and,
        with ``with_images``, per video a list of T (H, W, 3) uint8 RGB frames, else None.
    """
    if split not in _SPLIT_STREAM:
        raise ValueError(f"split must be one of {sorted(_SPLIT_STREAM)}, got {split!r}.")
    if segmentation_format not in SEGMENTATION_FORMATS:
        raise ValueError(
            f"segmentation_format must be one of {SEGMENTATION_FORMATS}, "
            f"got {segmentation_format!r}."
        )
    videos, annotations, all_frames = [], [], []
    for v in range(num_videos):
        rng = np.random.default_rng([seed, _SPLIT_STREAM[split], v])
        video, anns, frames = _one_video(
            rng, v + 1, len(annotations) + 1, num_frames, height, width, config,
            segmentation_format, with_images,
        )  # fmt: skip
        videos.append(video)
        annotations.extend(anns)
        all_frames.append(frames)
    dataset = {
        "info": {"description": f"synthetic YouTube-VIS ({split}, seed {seed})"},
        "licenses": [],
        "videos": videos,
        "annotations": annotations,
        "categories": [
            {"id": cid, "name": name, "supercategory": "shape"}
            for cid, name, _ in SYNTHETIC_CATEGORIES
        ],
    }
    return dataset, (all_frames if with_images else None)


def write_synthetic_ytvis(
    out_dir: str,
    *,
    num_train_videos: int = DEFAULT_TRAIN_VIDEOS,
    num_val_videos: int = DEFAULT_VAL_VIDEOS,
    num_frames: int = DEFAULT_FRAMES,
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    seed: int = DEFAULT_SEED,
    config: SyntheticConfig = SyntheticConfig(),
) -> Dict[str, Tuple[str, str]]:
    """Write the train and val splits in the YouTube-VIS layout under ``out_dir``::

        out_dir/train.json  out_dir/train/JPEGImages/video_00001/00000.jpg ...
        out_dir/valid.json  out_dir/valid/JPEGImages/...

    (``out_dir`` is ``$DETECTRON2_DATASETS/ytvis_synthetic`` for the built-in splits.) The val split
    keeps its annotations so AP can be computed.

    Returns:
        dict: split name -> (image_root, json_file).
    """
    written = {}
    for split, num_videos in (("train", num_train_videos), ("val", num_val_videos)):
        folder = SPLIT_FOLDERS[split]
        dataset, frames = generate_synthetic_ytvis(
            num_videos=num_videos, num_frames=num_frames, height=height, width=width, seed=seed,
            split=split, config=config, with_images=True,
        )  # fmt: skip
        image_root = os.path.join(out_dir, folder, "JPEGImages")
        for video, video_frames in zip(dataset["videos"], frames):
            for file_name, frame in zip(video["file_names"], video_frames):
                path = os.path.join(image_root, file_name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                Image.fromarray(frame).save(path, quality=config.jpeg_quality)
        json_file = os.path.join(out_dir, f"{folder}.json")
        with open(json_file, "w") as f:
            json.dump(dataset, f)
        written[split] = (image_root, json_file)
    return written

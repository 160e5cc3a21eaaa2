"""Synthetic video panoptic / semantic segmentation data in the VIPSeg and VSPW layouts.

Each video shows 2-3 stuff regions (bands with a wavy, slowly drifting boundary), 1..``max_things``
textured things moving on straight lines over them (entering after the first frame, vanishing
before the last, drifting out of the frame), sometimes a crowd (a cluster of small things of one
class annotated as one ``iscrowd`` segment) and a static void patch. Every class has its own colour
and texture (stuff: stripes fixed to the image; things: a shape and a pattern that move with
them), so a small model can learn to tell them apart.

The categories are ``VIDEO_SEG_SYNTHETIC_CATEGORIES`` (ids from 0 as VIPSeg's). As in VIPSeg, a
stuff segment's id is its category colour's id (one segment per stuff class, the same id in every
frame) and a thing keeps one id for its whole track. The VSPW masks hold ``category + 1``, and
the void patch is 0 ("others") in some videos and 255 (unlabelled) in others.

Everything is drawn from ``numpy.random.default_rng([seed, split, video])``: a dataset is a pure
function of its arguments, and writing it twice gives the same files. Every file is written to a
temporary name and renamed; the JSON / split files last, so their presence means the set is whole.

Shapes: T frames of H x W; frames uint8 (H, W, 3); ids int64 (H, W).
"""

import argparse
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .builtin_meta import VIDEO_SEG_SYNTHETIC_CATEGORIES, VPS_SYNTHETIC_DIR, VSS_SYNTHETIC_DIR
from .vps import MAX_SEGMENT_ID, Segment, id_to_rgb, rgb_to_id

__all__ = [
    "DEFAULT_FRAMES",
    "DEFAULT_HEIGHT",
    "DEFAULT_SEED",
    "DEFAULT_TRAIN_VIDEOS",
    "DEFAULT_VAL_VIDEOS",
    "DEFAULT_WIDTH",
    "SyntheticVideo",
    "VideoSegSyntheticConfig",
    "generate_synthetic_video_seg",
    "prepare_main",
    "write_synthetic_vps",
    "write_synthetic_vss",
]

# Defaults of the writers and of datasets/prepare_synthetic_{vps,vss}.py: small enough for a CPU
# quick start to train on. 17 frames or more: VSPW's video consistency skips videos of <= n
# frames, so mVC16 needs at least 17.
DEFAULT_TRAIN_VIDEOS = 12
DEFAULT_VAL_VIDEOS = 4
DEFAULT_FRAMES = 18
DEFAULT_HEIGHT = 96
DEFAULT_WIDTH = 128
DEFAULT_SEED = 0
_SPLIT_STREAM = {"train": 0, "val": 1}
# File names of the frames: VIPSeg-like (5 digits) and VSPW-like (8 digits).
VPS_FRAME_DIGITS = 5
VSS_FRAME_DIGITS = 8
# The VSPW mask values of a void pixel: "others" or unlabelled.
VSS_VOID_VALUES = (0, 255)
# Smallest frame edge the scene layout fits in.
MIN_EDGE = 16


@dataclass(frozen=True)
class VideoSegSyntheticConfig:
    """How the videos look. Sizes and speeds are fractions of the shorter frame edge.

    Attributes:
        max_things (int): things per video are drawn in [1, max_things].
        size_range (tuple): half-extent of a thing.
        speed_range (tuple): distance a thing moves per frame.
        late_start_prob (float): probability that a thing enters after the first frame.
        early_end_prob (float): probability that a thing vanishes before the last frame.
        crowd_prob (float): probability that a video has a crowd segment.
        void_prob (float): probability that a video has a void patch.
        void_size_range (tuple): half-extent of the void patch.
        noise_std (float): std of the pixel noise (uint8 levels).
        jpeg_quality (int): quality of the written JPEG frames.
    """

    max_things: int = 3
    size_range: Tuple[float, float] = (0.12, 0.22)
    speed_range: Tuple[float, float] = (0.02, 0.08)
    late_start_prob: float = 0.25
    early_end_prob: float = 0.25
    crowd_prob: float = 0.3
    void_prob: float = 0.7
    void_size_range: Tuple[float, float] = (0.08, 0.18)
    noise_std: float = 6.0
    jpeg_quality: int = 95


@dataclass
class SyntheticVideo:
    """One generated video.

    Attributes:
        name (str): video id / folder name.
        frames (list[ndarray]): T (H, W, 3) uint8 RGB frames.
        ids (list[ndarray]): T (H, W) int64 segment ids (0 = void).
        segments (list[dict]): per frame, segment id -> :class:`Segment` (the ids present).
        void_value (int): VSPW mask value of the void pixels (0 or 255).
    """

    name: str
    frames: List[np.ndarray]
    ids: List[np.ndarray]
    segments: List[Dict[int, Segment]]
    void_value: int

    def vss_mask(self, t: int) -> np.ndarray:
        """The VSPW mask of frame ``t``: (H, W) uint8, category + 1, void = ``void_value``."""
        ids, segments = self.ids[t], self.segments[t]
        mask = np.full(ids.shape, self.void_value, dtype=np.uint8)
        for sid, segment in segments.items():
            mask[ids == sid] = segment.category_id + 1
        return mask


@dataclass(frozen=True)
class _Thing:
    category_id: int
    shape: int  # 0 disc, 1 box, 2 kite (diamond)
    center: Tuple[float, float]  # (x, y) at frame 0
    velocity: Tuple[float, float]
    size: float
    start: int
    end: int  # last frame (inclusive)
    parts: Tuple[Tuple[float, float, float], ...] = ((0.0, 0.0, 1.0),)  # (dx, dy, scale): crowd

    def mask(self, t: int, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        out = np.zeros(xs.shape, dtype=bool)
        if not self.start <= t <= self.end:
            return out
        cx = self.center[0] + self.velocity[0] * t
        cy = self.center[1] + self.velocity[1] * t
        for dx, dy, scale in self.parts:
            u, v, r = xs - (cx + dx), ys - (cy + dy), self.size * scale
            if self.shape == 0:
                out |= u * u + v * v <= r * r
            elif self.shape == 1:
                out |= (np.abs(u) <= r) & (np.abs(v) <= 0.7 * r)
            else:
                out |= np.abs(u) / 0.7 + np.abs(v) <= r
        return out

    def texture(self, t: int, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """A pattern in [0, 1] that moves with the thing (rings, checks or stripes)."""
        u = xs - (self.center[0] + self.velocity[0] * t)
        v = ys - (self.center[1] + self.velocity[1] * t)
        period = max(self.size / 2.0, 2.0)
        if self.shape == 0:
            return 0.5 + 0.5 * np.cos(2 * np.pi * np.sqrt(u * u + v * v) / period)
        if self.shape == 1:
            return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float64)
        return 0.5 + 0.5 * np.cos(2 * np.pi * v / period)


def _stuff_texture(category_rank: int, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """A pattern in [0, 1] of a stuff class, fixed to the image (stripes of a class's angle)."""
    angle = 0.9 * category_rank
    period = 6.0 + 5.0 * category_rank
    return 0.5 + 0.5 * np.sin(2 * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) / period)


def _categories(categories: Sequence[tuple]):
    """Thing and stuff categories (id, name, isthing, colour) of a table."""
    things = [c for c in categories if c[2]]
    stuff = [c for c in categories if not c[2]]
    if len(things) < 1 or len(stuff) < 2:
        raise ValueError("The synthetic scenes need at least 1 thing and 2 stuff categories.")
    return things, stuff


def _random_things(rng, things, num_frames, height, width, cfg) -> List[_Thing]:
    unit = min(height, width)
    out = []
    for _ in range(int(rng.integers(1, cfg.max_things + 1))):
        rank = int(rng.integers(len(things)))
        speed = rng.uniform(*cfg.speed_range) * unit
        angle = rng.uniform(0, 2 * np.pi)
        start = int(rng.integers(1, num_frames)) if rng.random() < cfg.late_start_prob else 0
        end = num_frames - 1
        if end > start and rng.random() < cfg.early_end_prob:
            end = int(rng.integers(start, num_frames - 1))
        out.append(
            _Thing(
                category_id=things[rank][0],
                shape=rank % 3,
                # at the start frame the centre is inside the frame, so the thing is seen
                center=tuple(
                    rng.uniform([0.15 * width, 0.15 * height], [0.85 * width, 0.85 * height])
                    - start * speed * np.array([np.cos(angle), np.sin(angle)])
                ),
                velocity=(speed * np.cos(angle), speed * np.sin(angle)),
                size=rng.uniform(*cfg.size_range) * unit,
                start=start,
                end=end,
            )
        )
    if rng.random() < cfg.crowd_prob:
        base = out[int(rng.integers(len(out)))]
        parts = tuple(
            (float(dx), float(dy), 0.45) for dx, dy in rng.uniform(-1, 1, (3, 2)) * base.size
        )
        out.append(
            _Thing(
                base.category_id, base.shape, base.center, base.velocity, base.size,
                base.start, base.end, parts,
            )  # fmt: skip
        )
    return out


def _stuff_layout(rng, stuff, num_frames, height, width):
    """Per frame, the (H, W) index of the stuff band of each pixel, and the bands' categories."""
    count = int(rng.integers(2, min(3, len(stuff)) + 1))
    chosen = [stuff[i] for i in rng.permutation(len(stuff))[:count]]
    bases = np.sort(rng.uniform(0.25, 0.75, count - 1)) * height
    amps = rng.uniform(0.02, 0.08, count - 1) * height
    phases = rng.uniform(0, 2 * np.pi, count - 1)
    drift = rng.uniform(-0.01, 0.01) * height
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    layouts = []
    for t in range(num_frames):
        band = np.zeros((height, width), dtype=np.int64)
        for base, amp, phase in zip(bases, amps, phases):
            boundary = base + drift * t + amp * np.sin(2 * np.pi * xs / width + phase)
            band += ys > boundary
        layouts.append(band)
    return layouts, chosen


def _thing_ids(rng, count: int, taken: set) -> List[int]:
    ids = []
    while len(ids) < count:
        sid = int(rng.integers(1, MAX_SEGMENT_ID + 1))
        if sid not in taken:
            taken.add(sid)
            ids.append(sid)
    return ids


def _one_video(rng, name, num_frames, height, width, cfg, categories) -> SyntheticVideo:
    things_table, stuff_table = _categories(categories)
    layouts, bands = _stuff_layout(rng, stuff_table, num_frames, height, width)
    things = _random_things(rng, things_table, num_frames, height, width, cfg)
    stuff_ids = [int(rgb_to_id(np.array([[color]], dtype=np.uint8))[0, 0]) for *_, color in bands]
    thing_ids = _thing_ids(rng, len(things), set(stuff_ids) | {0})
    void = None
    if rng.random() < cfg.void_prob:
        half = rng.uniform(*cfg.void_size_range, 2) * min(height, width)
        cx, cy = rng.uniform([0, 0], [width, height])
        void = (cx - half[0], cy - half[1], cx + half[0], cy + half[1])
    void_value = int(rng.choice(VSS_VOID_VALUES))
    colors = {cid: np.array(color, dtype=np.float64) for cid, _, _, color in categories}
    stuff_rank = {c[0]: i for i, c in enumerate(stuff_table)}
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    video = SyntheticVideo(name, [], [], [], void_value)
    for t in range(num_frames):
        ids = np.zeros((height, width), dtype=np.int64)
        image = np.zeros((height, width, 3), dtype=np.float64)
        category = {}
        for b, (cid, *_rest) in enumerate(bands):
            region = layouts[t] == b
            ids[region] = stuff_ids[b]
            shade = 0.7 + 0.3 * _stuff_texture(stuff_rank[cid], xs, ys)
            image[region] = (colors[cid] * shade[..., None])[region]
            category[stuff_ids[b]] = Segment(stuff_ids[b], cid)
        for thing, sid in zip(things, thing_ids):  # later things occlude earlier ones
            region = thing.mask(t, xs, ys)
            ids[region] = sid
            shade = 0.55 + 0.45 * thing.texture(t, xs, ys)
            image[region] = (colors[thing.category_id] * shade[..., None])[region]
            category[sid] = Segment(sid, thing.category_id, len(thing.parts) > 1)
        if void is not None:
            region = (xs >= void[0]) & (xs < void[2]) & (ys >= void[1]) & (ys < void[3])
            ids[region] = 0
            image[region] = 40.0
        image += rng.normal(0, cfg.noise_std, image.shape)
        present = set(np.unique(ids).tolist()) - {0}
        video.frames.append(np.clip(np.rint(image), 0, 255).astype(np.uint8))
        video.ids.append(ids)
        video.segments.append({sid: category[sid] for sid in sorted(present)})
    return video


def _check_sizes(num_videos: Dict[str, int], num_frames: int, height: int, width: int) -> None:
    for split, count in num_videos.items():
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"The {split} split needs at least 1 video, got {count!r}.")
    if not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}.")
    if min(height, width) < MIN_EDGE:
        raise ValueError(f"Frames must be at least {MIN_EDGE}x{MIN_EDGE}, got {height}x{width}.")


def generate_synthetic_video_seg(
    num_videos: int = DEFAULT_TRAIN_VIDEOS,
    num_frames: int = DEFAULT_FRAMES,
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    *,
    seed: int = DEFAULT_SEED,
    split: str = "train",
    config: VideoSegSyntheticConfig = VideoSegSyntheticConfig(),
    categories: Sequence[tuple] = VIDEO_SEG_SYNTHETIC_CATEGORIES,
) -> List[SyntheticVideo]:
    """Generate the videos of one split in memory.

    Args:
        num_videos, num_frames, height, width (int): V videos of T frames of H x W.
        seed (int): the videos are a pure function of (seed, split, index, the other arguments).
        split (str): ``"train"`` or ``"val"`` (a separate random stream each).
        config (VideoSegSyntheticConfig): how the videos look.
        categories: (id, name, isthing, colour) table, >= 1 thing and >= 2 stuff categories.

    Returns:
        list[SyntheticVideo]: named ``<split>_<index>``.
    """
    if split not in _SPLIT_STREAM:
        raise ValueError(f"split must be one of {sorted(_SPLIT_STREAM)}, got {split!r}.")
    _check_sizes({split: num_videos}, num_frames, height, width)
    return [
        _one_video(
            np.random.default_rng([seed, _SPLIT_STREAM[split], v]),
            f"{split}_{v:03d}", num_frames, height, width, config, categories,
        )  # fmt: skip
        for v in range(num_videos)
    ]


def _atomic_write(path: str, write: Callable) -> None:
    """``write(file object)`` into a temporary file beside ``path``, then rename it to ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _save_image(path: str, array: np.ndarray, **kwargs) -> None:
    image = Image.fromarray(array) if not isinstance(array, Image.Image) else array
    fmt = "JPEG" if path.endswith(".jpg") else "PNG"
    _atomic_write(path, lambda f: image.save(f, format=fmt, **kwargs))


def _save_json(path: str, data) -> None:
    _atomic_write(path, lambda f: f.write(json.dumps(data).encode("utf-8")))


def _bbox(mask: np.ndarray) -> List[int]:
    rows, cols = np.nonzero(mask)
    x0, y0 = int(cols.min()), int(rows.min())
    return [x0, y0, int(cols.max()) - x0 + 1, int(rows.max()) - y0 + 1]


def _vps_entries(video: SyntheticVideo, height: int, width: int):
    images, annotations = [], []
    for t, (ids, segments) in enumerate(zip(video.ids, video.segments)):
        stem = f"{t:0{VPS_FRAME_DIGITS}d}"
        images.append({"id": stem, "width": width, "height": height, "file_name": stem + ".png"})
        infos = []
        for sid, segment in segments.items():
            mask = ids == sid
            infos.append(
                {
                    "id": sid,
                    "category_id": segment.category_id,
                    "iscrowd": int(segment.iscrowd),
                    "area": int(mask.sum()),
                    "bbox": _bbox(mask),
                }
            )
        annotations.append({"image_id": stem, "file_name": stem + ".png", "segments_info": infos})
    return images, annotations


def write_synthetic_vps(
    out_dir: str,
    *,
    num_train_videos: int = DEFAULT_TRAIN_VIDEOS,
    num_val_videos: int = DEFAULT_VAL_VIDEOS,
    num_frames: int = DEFAULT_FRAMES,
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    seed: int = DEFAULT_SEED,
    config: VideoSegSyntheticConfig = VideoSegSyntheticConfig(),
) -> Dict[str, Tuple[str, str, str]]:
    """Write train and val in the VIPSeg 720P layout under ``out_dir``::

        out_dir/images/<video>/00000.jpg  out_dir/panomasksRGB/<video>/00000.png
        out_dir/panoptic_gt_synthetic_train.json  out_dir/panoptic_gt_synthetic_val.json

    (``out_dir`` is ``$DETECTRON2_DATASETS/vps_synthetic`` for the built-in splits
    ``vps_synthetic_{train,val}``.)

    Returns:
        dict: split -> (json_file, image_root, gt_root).
    """
    _check_sizes({"train": num_train_videos, "val": num_val_videos}, num_frames, height, width)
    image_root, gt_root = os.path.join(out_dir, "images"), os.path.join(out_dir, "panomasksRGB")
    categories = [
        {"id": cid, "name": name, "isthing": isthing, "color": list(color)}
        for cid, name, isthing, color in VIDEO_SEG_SYNTHETIC_CATEGORIES
    ]
    written = {}
    for split, count in (("train", num_train_videos), ("val", num_val_videos)):
        videos = generate_synthetic_video_seg(
            count, num_frames, height, width, seed=seed, split=split, config=config
        )
        data = {"videos": [], "annotations": [], "categories": categories}
        for video in videos:
            images, annotations = _vps_entries(video, height, width)
            for image, frame, ids in zip(images, video.frames, video.ids):
                stem = image["id"]
                path = os.path.join(image_root, video.name, stem + ".jpg")
                _save_image(path, frame, quality=config.jpeg_quality)
                _save_image(os.path.join(gt_root, video.name, stem + ".png"), id_to_rgb(ids))
            data["videos"].append({"video_id": video.name, "images": images})
            data["annotations"].append({"video_id": video.name, "annotations": annotations})
        json_file = os.path.join(out_dir, f"panoptic_gt_synthetic_{split}.json")
        _save_json(json_file, data)
        written[split] = (json_file, image_root, gt_root)
    return written


def _palette() -> List[int]:
    """A 256-colour palette for the VSPW masks: class values in their category colours."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for cid, _, _, color in VIDEO_SEG_SYNTHETIC_CATEGORIES:
        palette[cid + 1] = color
    palette[255] = (255, 255, 255)
    return palette.reshape(-1).tolist()


def write_synthetic_vss(
    out_dir: str,
    *,
    num_train_videos: int = DEFAULT_TRAIN_VIDEOS,
    num_val_videos: int = DEFAULT_VAL_VIDEOS,
    num_frames: int = DEFAULT_FRAMES,
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    seed: int = DEFAULT_SEED,
    config: VideoSegSyntheticConfig = VideoSegSyntheticConfig(),
) -> Dict[str, Tuple[str, str]]:
    """Write train and val in the VSPW layout under ``out_dir``::

        out_dir/data/<video>/origin/00000000.jpg  out_dir/data/<video>/mask/00000000.png
        out_dir/train.txt  out_dir/val.txt

    Masks are palette PNGs holding ``category + 1`` (0 = "others", 255 = unlabelled, as VSPW).
    (``out_dir`` is ``$DETECTRON2_DATASETS/vss_synthetic`` for ``vss_synthetic_{train,val}``.)

    Returns:
        dict: split -> (root, split_file).
    """
    _check_sizes({"train": num_train_videos, "val": num_val_videos}, num_frames, height, width)
    palette = _palette()
    written = {}
    for split, count in (("train", num_train_videos), ("val", num_val_videos)):
        videos = generate_synthetic_video_seg(
            count, num_frames, height, width, seed=seed, split=split, config=config
        )
        for video in videos:
            folder = os.path.join(out_dir, "data", video.name)
            for t, frame in enumerate(video.frames):
                stem = f"{t:0{VSS_FRAME_DIGITS}d}"
                path = os.path.join(folder, "origin", stem + ".jpg")
                _save_image(path, frame, quality=config.jpeg_quality)
                mask = Image.frombytes("P", (width, height), video.vss_mask(t).tobytes())
                mask.putpalette(palette)
                _save_image(os.path.join(folder, "mask", stem + ".png"), mask)
        split_file = os.path.join(out_dir, f"{split}.txt")
        lines = "".join(f"{video.name}\n" for video in videos)
        _atomic_write(split_file, lambda f: f.write(lines.encode("utf-8")))
        written[split] = (out_dir, split_file)
    return written


def prepare_main(kind: str, description: str, argv: Optional[Sequence[str]] = None) -> None:
    """The command line of ``datasets/prepare_synthetic_{vps,vss}.py`` (``kind`` "vps" or
    "vss"): ``--out`` (default ``$DETECTRON2_DATASETS/<vps|vss>_synthetic``), ``--videos``,
    ``--val-videos``, ``--frames``, ``--seed``, ``--height``, ``--width``, each defaulting to the
    writer's default (so a set written on first use by the trainer equals the script's)."""
    writer = {"vps": write_synthetic_vps, "vss": write_synthetic_vss}[kind]
    folder = {"vps": VPS_SYNTHETIC_DIR, "vss": VSS_SYNTHETIC_DIR}[kind]
    parser = argparse.ArgumentParser(description=description)
    default_out = os.path.join(os.getenv("DETECTRON2_DATASETS", "datasets"), folder)
    parser.add_argument("--out", type=str, default=default_out, help="output folder")
    options = (
        ("--videos", DEFAULT_TRAIN_VIDEOS, "number of train videos"),
        ("--val-videos", DEFAULT_VAL_VIDEOS, "number of val videos"),
        ("--frames", DEFAULT_FRAMES, "frames per video"),
        ("--seed", DEFAULT_SEED, "random seed"),
        ("--height", DEFAULT_HEIGHT, "frame height"),
        ("--width", DEFAULT_WIDTH, "frame width"),
    )
    for flag, default, help_text in options:
        parser.add_argument(flag, type=int, default=default, help=help_text)
    args = parser.parse_args(argv)
    try:
        written = writer(
            args.out,
            num_train_videos=args.videos,
            num_val_videos=args.val_videos,
            num_frames=args.frames,
            height=args.height,
            width=args.width,
            seed=args.seed,
        )
    except ValueError as e:
        parser.error(str(e))
    for split, paths in written.items():
        print(f"{kind}_synthetic_{split}: {', '.join(paths)}")

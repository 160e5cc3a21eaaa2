"""Write small random VIPSeg / VSPW cases and score them with the reference scripts.

Each case is a folder in the real file layouts (see README.md) with ground truth and predictions
drawn from the same random scenes; ``expected.json`` holds what the reference implementations
print for them (0..100 scale). The reference code is NOT part of this project: it is run from
``--reference-root``, a folder outside the repository laid out as::

    <root>/vipseg/eval_vpq_vspw.py           VIPSeg-Dataset, ClipPanoFCN/ (VPQ)
    <root>/vipseg/eval_stq_vspw.py           VIPSeg-Dataset, ClipPanoFCN/ (STQ, VIPSeg numbering)
    <root>/vipseg/segmentation_and_tracking_quality.py   its copy of deeplab2's numpy STQ
    <root>/deeplab2/segmentation_and_tracking_quality.py deeplab2/evaluation/numpy/
    <root>/dvis/eval_miou_vspw.py            DVIS_Plus/utils/ (mIoU)
    <root>/vspw/VC_perclip.py                VSPW_code (mVC; window size read from argv[3])
    <root>/vspw/utils.py                     VSPW_code (its Evaluator, for the mIoU cross-check)

Usage::

    python tests/data/video_seg_reference/generate.py --reference-root /path/to/ref \\
        --out tests/data/video_seg_reference                  # the committed cases
    python tests/data/video_seg_reference/generate.py --reference-root /path/to/ref \\
        --out /tmp/more --random 20 --seed 1000               # 20 more cases, seeds 1000..1019

Shapes: H x W frames (24 x 32 by default); id maps int64 (H, W).
"""

import argparse
import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

NUM_CATEGORIES = 124  # VIPSeg / VSPW; the reference STQ script hard-codes it.
NUM_THINGS = 58
IGNORE = 255  # VSPW "unlabelled" value; deeplab2's ignore label.
OTHERS = 0  # VSPW "others" value.
LABEL_BIT_SHIFT = 16  # what the VIPSeg STQ script passes to deeplab2
STQ_OFFSET = 2**24  # idem
WINDOW_SIZES = (1, 2, 4, 6, 8)  # what eval_vpq_vspw.py loops over
VC_WINDOWS = (8, 16)
MAX_ID = 256**3 - 1


# ------------------------------------------------------------------------------ case specs
@dataclass
class CaseSpec:
    """What one case holds. Every random draw comes from ``seed``."""

    name: str
    seed: int
    lengths: Tuple[int, ...] = (18, 11, 5)  # frames per video
    height: int = 24
    width: int = 32
    num_things: Tuple[int, int] = (2, 4)  # objects per video, inclusive range
    crowd: bool = True  # a crowd thing region in some videos
    two_crowds_same_class: bool = False  # two crowd ids of one class in one video
    void: bool = True  # void rectangles in the ground truth
    pred_void: bool = True  # void pixels in the predictions
    segment_order: str = "random"  # order of segments_info: random, stuff_first, thing_first
    p_missed: float = 0.15  # a ground-truth object is not predicted
    p_wrong_class: float = 0.05  # a predicted track has another thing class throughout
    p_poor: float = 0.15  # a predicted track is off by 60% of its height (IoU under 0.5)
    p_class_change: float = 0.15  # a predicted track changes class mid-video
    p_id_change: float = 0.15  # a predicted track takes a new id mid-video
    p_id_swap: float = 0.25  # two predicted tracks exchange ids mid-video
    num_false_tubes: Tuple[int, int] = (0, 2)  # predicted tubes with no ground truth
    p_extra_speck: float = 0.3  # a frame gets a 1-2 pixel predicted segment of its own
    jitter: int = 1  # predicted boxes move and grow by up to this many pixels ...
    p_jitter: float = 0.4  # ... in this share of the frames
    others_flicker: bool = True  # VSPW: a band alternating between "others" (0) and 255
    extra_unlisted_video: bool = False  # VSPW: a video folder that the split file omits


def committed_cases() -> List[CaseSpec]:
    """The cases in tests/data/video_seg_reference (each exercises the rules its name says)."""
    return [
        CaseSpec("basic", seed=1, lengths=(18, 9, 5)),
        CaseSpec("crowd_void", seed=2, lengths=(17, 12, 4), p_missed=0.1, num_false_tubes=(1, 3)),
        CaseSpec(
            "thing_first_numbering",
            seed=3,
            lengths=(18, 16, 8),
            segment_order="thing_first",
            p_class_change=0.4,
        ),
        CaseSpec(
            "switches",
            seed=4,
            lengths=(18, 13, 7),
            p_id_change=0.5,
            p_id_swap=0.7,
            jitter=2,
            extra_unlisted_video=True,
        ),
        CaseSpec(
            "short_and_single_frame",
            seed=5,
            lengths=(17, 6, 1),
            num_things=(1, 3),
            two_crowds_same_class=True,
            segment_order="stuff_first",
        ),
        CaseSpec(
            "no_void_no_crowd",
            seed=6,
            lengths=(18, 10, 3),
            crowd=False,
            void=False,
            pred_void=False,
            others_flicker=False,
            p_missed=0.3,
            num_false_tubes=(1, 2),
        ),
    ]


def random_case(seed: int) -> CaseSpec:
    """A case whose options are drawn from ``seed`` too (for checks beyond the committed cases)."""
    rng = np.random.default_rng(seed + 10_000)
    n_videos = int(rng.integers(2, 5))
    lengths = [int(rng.integers(17, 19))] + [int(rng.integers(1, 17)) for _ in range(n_videos - 1)]
    return CaseSpec(
        name=f"random_{seed}",
        seed=seed,
        lengths=tuple(lengths),
        num_things=(1, int(rng.integers(2, 6))),
        crowd=bool(rng.random() < 0.7),
        two_crowds_same_class=bool(rng.random() < 0.2),
        void=bool(rng.random() < 0.8),
        pred_void=bool(rng.random() < 0.8),
        segment_order=str(rng.choice(["random", "stuff_first", "thing_first"])),
        p_missed=float(rng.uniform(0, 0.4)),
        p_wrong_class=float(rng.uniform(0, 0.2)),
        p_poor=float(rng.uniform(0, 0.3)),
        p_class_change=float(rng.uniform(0, 0.5)),
        p_id_change=float(rng.uniform(0, 0.5)),
        p_id_swap=float(rng.uniform(0, 0.7)),
        num_false_tubes=(0, int(rng.integers(0, 4))),
        p_extra_speck=float(rng.uniform(0, 0.5)),
        jitter=int(rng.integers(0, 3)),
        p_jitter=float(rng.uniform(0, 0.7)),
        others_flicker=bool(rng.random() < 0.5),
        extra_unlisted_video=bool(rng.random() < 0.3),
    )


def category_table() -> List[dict]:
    """124 categories, ids 0..123 (as VIPSeg's), 58 of them things; synthetic names and colors."""
    things = set(np.random.default_rng(0).choice(NUM_CATEGORIES, NUM_THINGS, replace=False))
    return [
        {
            "id": i,
            "name": f"class_{i:03d}",
            "isthing": int(i in things),
            "color": [(37 * i) % 256, (91 * i + 40) % 256, (53 * i + 90) % 256],
        }
        for i in range(NUM_CATEGORIES)
    ]


# ------------------------------------------------------------------------------ scenes
@dataclass
class Box:
    """A rectangle moving at constant speed, present in frames [t_in, t_out)."""

    y: float
    x: float
    h: int
    w: int
    vy: float
    vx: float
    t_in: int
    t_out: int

    def mask(self, t: int, shape, dy: int = 0, dx: int = 0, dh: int = 0, dw: int = 0):
        out = np.zeros(shape, bool)
        if not self.t_in <= t < self.t_out:
            return out
        y0 = int(round(self.y + self.vy * t)) + dy
        x0 = int(round(self.x + self.vx * t)) + dx
        y1, x1 = y0 + max(self.h + dh, 1), x0 + max(self.w + dw, 1)
        out[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
        return out


@dataclass
class Thing:
    box: Box
    category: int
    crowd: bool
    gt_id: int


@dataclass
class Video:
    """Ground truth and prediction of one video: per frame an id map and {id: category}."""

    name: str
    stems: List[str]
    gt_ids: List[np.ndarray] = field(default_factory=list)
    gt_segments: List[Dict[int, Tuple[int, bool]]] = field(default_factory=list)  # id: (cat, crowd)
    pred_ids: List[np.ndarray] = field(default_factory=list)
    pred_segments: List[Dict[int, int]] = field(default_factory=list)  # id: category
    vss_gt: List[np.ndarray] = field(default_factory=list)  # raw VSPW mask values
    vss_pred: List[np.ndarray] = field(default_factory=list)  # class indices


class IdPool:
    """Unique random segment ids in 1..2^24-1."""

    def __init__(self, rng):
        self.rng, self.used = rng, set()

    def new(self) -> int:
        while True:
            value = int(self.rng.integers(1, MAX_ID + 1))
            if value not in self.used:
                self.used.add(value)
                return value


def random_box(rng, spec: CaseSpec, n_frames: int, big: bool = False) -> Box:
    h = int(rng.integers(6, 12) if big else rng.integers(4, 10))
    w = int(rng.integers(7, 14) if big else rng.integers(4, 12))
    t_in = int(rng.integers(0, max(n_frames // 2, 1))) if rng.random() < 0.4 else 0
    t_out = int(rng.integers(t_in + 1, n_frames + 1)) if rng.random() < 0.4 else n_frames
    return Box(
        y=float(rng.uniform(-h / 2, spec.height - h / 2)),
        x=float(rng.uniform(-w / 2, spec.width - w / 2)),
        h=h,
        w=w,
        vy=float(rng.uniform(-1.0, 1.0)),
        vx=float(rng.uniform(-1.5, 1.5)),
        t_in=t_in,
        t_out=t_out,
    )


def stuff_boundaries(rng, spec: CaseSpec, n_frames: int, n_regions: int):
    """Column boundaries of the stuff regions per frame (they drift; a region may vanish)."""
    starts = np.sort(rng.uniform(0, spec.width, n_regions - 1))
    speeds = rng.uniform(-1.0, 1.0, n_regions - 1)
    return [
        np.sort(np.clip(starts + speeds * t, 0, spec.width)).round().astype(int)
        for t in range(n_frames)
    ]


def paint_stuff(shape, bounds, ids, slope: float):
    """Id map of vertical-ish bands: band k between bounds[k-1] and bounds[k]."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    pos = xx + slope * (yy - shape[0] / 2)
    band = np.searchsorted(bounds, pos, side="right")
    return np.asarray(ids)[band]


def make_video(rng, spec: CaseSpec, name: str, n_frames: int, cats) -> Video:
    """Draw a scene, render its ground truth, and derive a prediction from it."""
    shape = (spec.height, spec.width)
    step = int(rng.integers(1, 4))
    first = int(rng.integers(0, 50))
    video = Video(name, [f"{first + step * t:05d}" for t in range(n_frames)])
    gt_pool, pred_pool = IdPool(rng), IdPool(rng)

    # Stuff: 2-3 bands of distinct stuff classes.
    n_stuff = int(rng.integers(2, 4))
    stuff_cats = [int(c) for c in rng.choice(cats["stuff"], n_stuff, replace=False)]
    stuff_gt_ids = [gt_pool.new() for _ in range(n_stuff)]
    bounds = stuff_boundaries(rng, spec, n_frames, n_stuff)
    slope = float(rng.uniform(-0.5, 0.5))

    # Things, some of them crowd.
    things = []
    for _ in range(int(rng.integers(spec.num_things[0], spec.num_things[1] + 1))):
        things.append(
            Thing(
                random_box(rng, spec, n_frames),
                int(rng.choice(cats["thing"])),
                False,
                gt_pool.new(),
            )
        )
    if spec.crowd and rng.random() < 0.7:
        crowd_cat = int(rng.choice(cats["thing"]))
        things.append(
            Thing(random_box(rng, spec, n_frames, big=True), crowd_cat, True, gt_pool.new())
        )
        if spec.two_crowds_same_class:
            things.append(
                Thing(random_box(rng, spec, n_frames, big=True), crowd_cat, True, gt_pool.new())
            )
    rng.shuffle(things)  # paint order: later things occlude earlier ones

    # Void: rectangles per frame; the VSPW masks mark them "others" or 255.
    voids = []
    for t in range(n_frames):
        rects = []
        if spec.void:
            for _ in range(int(rng.integers(0, 3))):
                y, x = int(rng.integers(0, spec.height)), int(rng.integers(0, spec.width))
                rects.append(
                    (
                        y,
                        x,
                        int(rng.integers(1, 6)),
                        int(rng.integers(1, 7)),
                        int(rng.choice([OTHERS, IGNORE])),
                    )
                )
        voids.append(rects)
    flicker_row = int(rng.integers(0, spec.height - 2)) if spec.others_flicker else None

    for t in range(n_frames):
        ids = paint_stuff(shape, bounds[t], stuff_gt_ids, slope)
        segs = {sid: (cat, False) for sid, cat in zip(stuff_gt_ids, stuff_cats)}
        for thing in things:
            m = thing.box.mask(t, shape)
            ids[m] = thing.gt_id
            segs[thing.gt_id] = (thing.category, thing.crowd)
        void = np.zeros(shape, bool)
        vss_void_value = np.zeros(shape, np.uint8)
        for y, x, h, w, value in voids[t]:
            void[y : y + h, x : x + w] = True
            vss_void_value[y : y + h, x : x + w] = value
        if flicker_row is not None and spec.void:
            void[flicker_row : flicker_row + 2, :] = True
            vss_void_value[flicker_row : flicker_row + 2, :] = OTHERS if t % 2 else IGNORE
        ids[void] = 0
        present = set(np.unique(ids).tolist()) - {0}
        video.gt_ids.append(ids)
        video.gt_segments.append({sid: segs[sid] for sid in present})
        lut = {sid: cat + 1 for sid, (cat, _) in segs.items()}
        vss = np.zeros(shape, np.uint8)
        for sid in present:
            vss[ids == sid] = lut[sid]
        vss[void] = vss_void_value[void]
        if flicker_row is not None and not spec.void:
            # Only VSPW sees the band then: "others" in odd frames, 255 in even ones.
            vss[flicker_row : flicker_row + 2, :] = OTHERS if t % 2 else IGNORE
        video.vss_gt.append(vss)
    predict(rng, spec, video, things, stuff_gt_ids, stuff_cats, bounds, slope, cats, pred_pool)
    return video


def predict(rng, spec, video, things, stuff_gt_ids, stuff_cats, bounds, slope, cats, pool):
    """A prediction of the video: jittered stuff and things, with the mistakes the spec asks for."""
    shape = (spec.height, spec.width)
    n_frames = len(video.stems)
    # Stuff: boundaries shifted; sometimes a band takes another stuff class or merges.
    stuff_pred_ids = [pool.new() for _ in stuff_gt_ids]
    stuff_pred_cats = list(stuff_cats)
    if rng.random() < 0.3:
        k = int(rng.integers(0, len(stuff_cats)))
        stuff_pred_cats[k] = int(rng.choice(cats["stuff"]))
    if rng.random() < 0.2 and len(stuff_pred_ids) > 1:
        stuff_pred_ids[1], stuff_pred_cats[1] = stuff_pred_ids[0], stuff_pred_cats[0]
    shift = int(rng.integers(-1, 2))

    # Thing tracks: per frame (id, category) and a box with jitter.
    tracks = []  # (box, ids per frame, cats per frame)
    for thing in things:
        if rng.random() < spec.p_missed:
            continue
        cat = thing.category
        if rng.random() < spec.p_wrong_class:
            cat = int(rng.choice(cats["thing"]))
        cat_seq = [cat] * n_frames
        if rng.random() < spec.p_class_change and n_frames > 1:
            tc = int(rng.integers(1, n_frames))
            other = int(rng.choice(cats["thing"] if rng.random() < 0.8 else cats["stuff"]))
            cat_seq[tc:] = [other] * (n_frames - tc)
        id_seq = [pool.new()] * n_frames
        if rng.random() < spec.p_id_change and n_frames > 1:
            tc = int(rng.integers(1, n_frames))
            id_seq[tc:] = [pool.new()] * (n_frames - tc)
        box = copy.copy(thing.box)
        if rng.random() < spec.p_poor:
            box.y += float(rng.choice([-1, 1]) * box.h * 0.6)
        tracks.append([box, id_seq, cat_seq])
    if len(tracks) >= 2 and rng.random() < spec.p_id_swap and n_frames > 1:
        a, b = rng.choice(len(tracks), 2, replace=False)
        ts = int(rng.integers(1, n_frames))
        ids_a, ids_b = tracks[a][1], tracks[b][1]
        tracks[a][1] = ids_a[:ts] + ids_b[ts:]
        tracks[b][1] = ids_b[:ts] + ids_a[ts:]
    extra = []  # tubes with no ground truth; painted at random depths among the others
    for _ in range(int(rng.integers(spec.num_false_tubes[0], spec.num_false_tubes[1] + 1))):
        box = random_box(rng, spec, n_frames)
        extra.append([box, [pool.new()] * n_frames, [int(rng.choice(cats["thing"]))] * n_frames])
    crowds = [t for t in things if t.crowd]
    if crowds and rng.random() < 0.7:  # a prediction on a crowd region, of the crowd's class
        c = crowds[0]
        box = copy.copy(c.box)
        box.h, box.w = max(box.h - 2, 1), box.w + 1
        extra.append([box, [pool.new()] * n_frames, [c.category] * n_frames])
    for track in extra:
        tracks.insert(int(rng.integers(0, len(tracks) + 1)), track)

    void_pred_class = int(rng.integers(0, NUM_CATEGORIES))
    for t in range(n_frames):
        ids = paint_stuff(shape, np.clip(bounds[t] + shift, 0, spec.width), stuff_pred_ids, slope)
        cat_of = {sid: cat for sid, cat in zip(stuff_pred_ids, stuff_pred_cats)}
        for box, id_seq, cat_seq in tracks:
            j = spec.jitter if rng.random() < spec.p_jitter else 0
            dy, dx = (int(v) for v in rng.integers(-j, j + 1, 2))
            dh, dw = (int(v) for v in rng.integers(-j, j + 1, 2))
            m = box.mask(t, shape, dy, dx, dh, dw)
            ids[m] = id_seq[t]
            cat_of[id_seq[t]] = cat_seq[t]
        if rng.random() < spec.p_extra_speck:
            y, x = int(rng.integers(0, spec.height)), int(rng.integers(0, spec.width - 1))
            sid = pool.new()
            ids[y, x : x + int(rng.integers(1, 3))] = sid
            known = cats["thing"] + cats["stuff"]  # mostly the case's classes; at times any
            cat_of[sid] = int(rng.choice(known) if rng.random() < 0.8 else rng.integers(0, 124))
        vss = np.vectorize(lambda s: cat_of.get(s, void_pred_class), otypes=[np.uint8])(ids)
        if spec.pred_void and rng.random() < 0.6:
            y, x = int(rng.integers(0, spec.height)), int(rng.integers(0, spec.width))
            ids[y : y + int(rng.integers(1, 5)), x : x + int(rng.integers(1, 6))] = 0
        present = set(np.unique(ids).tolist()) - {0}
        video.pred_ids.append(ids)
        video.pred_segments.append({sid: cat_of[sid] for sid in present})
        video.vss_pred.append(vss)


def make_case(spec: CaseSpec, cats_table) -> List[Video]:
    rng = np.random.default_rng(spec.seed)
    cats = {
        "thing": [c["id"] for c in cats_table if c["isthing"]],
        "stuff": [c["id"] for c in cats_table if not c["isthing"]],
    }
    # A few classes per case, so that classes recur across videos.
    cats = {k: [int(c) for c in rng.choice(v, 4, replace=False)] for k, v in cats.items()}
    videos = []
    for i, n in enumerate(spec.lengths):
        name = f"{i + 1}_{''.join(rng.choice(list('abcdefghijklmnop'), 6))}"
        videos.append(make_video(rng, spec, name, n, cats))
    return videos


# ------------------------------------------------------------------------------ writing
def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


def save_png(path: str, array: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, optimize=True)


def order_segments(rng, segs: dict, cats_table, order: str) -> List[int]:
    """The order of a frame's segments_info: shuffled, then stuff first or (non-crowd) things
    first if asked (the VIPSeg STQ script numbers instances in this order)."""
    isthing = {c["id"]: c["isthing"] for c in cats_table}
    ids = sorted(segs)
    rng.shuffle(ids)
    if order == "stuff_first":
        ids.sort(key=lambda s: isthing[segs[s][0]])
    elif order == "thing_first":
        ids.sort(key=lambda s: -isthing[segs[s][0]] + segs[s][1])
    return ids


def write_vps(case_dir: str, spec: CaseSpec, videos: List[Video], cats_table) -> None:
    """VIPSeg layout: vps/panoptic_gt.json, vps/panomasksRGB/<video>/<stem>.png,
    vps/pred/pred.json, vps/pred/pan_pred/<video>/<stem>.png."""
    rng = np.random.default_rng(spec.seed + 1)
    gt_videos, gt_annos, pred_annos = [], [], []
    for video in videos:
        images, frames, pframes = [], [], []
        for t, stem in enumerate(video.stems):
            file_name = stem + ".png"
            images.append(
                {"id": stem, "width": spec.width, "height": spec.height, "file_name": file_name}
            )
            ids, segs = video.gt_ids[t], video.gt_segments[t]
            infos = []
            for sid in order_segments(rng, segs, cats_table, spec.segment_order):
                m = ids == sid
                infos.append(
                    {
                        "id": sid,
                        "category_id": segs[sid][0],
                        "iscrowd": int(segs[sid][1]),
                        "area": int(m.sum()),
                    }
                )
            frames.append({"image_id": stem, "file_name": file_name, "segments_info": infos})
            save_png(
                os.path.join(case_dir, "vps", "panomasksRGB", video.name, file_name), id_to_rgb(ids)
            )
            pids, psegs = video.pred_ids[t], video.pred_segments[t]
            pinfos = [
                {"id": sid, "category_id": psegs[sid]}
                for sid in rng.permutation(sorted(psegs)).tolist()
            ]
            pframes.append({"image_id": stem, "file_name": file_name, "segments_info": pinfos})
            save_png(
                os.path.join(case_dir, "vps", "pred", "pan_pred", video.name, file_name),
                id_to_rgb(pids),
            )
        gt_videos.append({"video_id": video.name, "images": images})
        gt_annos.append({"video_id": video.name, "annotations": frames})
        pred_annos.append({"video_id": video.name, "annotations": pframes})
    gt = {"videos": gt_videos, "annotations": gt_annos, "categories": cats_table}
    write_json(os.path.join(case_dir, "vps", "panoptic_gt.json"), gt)
    write_json(os.path.join(case_dir, "vps", "pred", "pred.json"), {"annotations": pred_annos})


def write_vss(case_dir: str, spec: CaseSpec, videos: List[Video]) -> None:
    """VSPW layout: vss/val.txt, vss/data/<video>/{origin/<stem>.jpg, mask/<stem>.png},
    vss/pred/<video>/<stem>.png (class indices)."""
    root = os.path.join(case_dir, "vss")
    listed = videos[:-1] if spec.extra_unlisted_video and len(videos) > 1 else videos
    listed_names = {v.name for v in listed}
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "val.txt"), "w") as f:
        f.write("".join(v.name + "\n" for v in listed))  # the reference drops each line's last char
    gray = np.full((spec.height, spec.width), 128, np.uint8)
    for video in videos:
        for t, stem in enumerate(video.stems):
            base = os.path.join(root, "data", video.name)
            os.makedirs(os.path.join(base, "origin"), exist_ok=True)
            Image.fromarray(gray).save(
                os.path.join(base, "origin", stem + ".jpg"), quality=10, optimize=True
            )
            save_png(os.path.join(base, "mask", stem + ".png"), video.vss_gt[t])
            if video.name in listed_names:
                save_png(os.path.join(root, "pred", video.name, stem + ".png"), video.vss_pred[t])


def write_json(path: str, data) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, separators=(",", ":"))


# ------------------------------------------------------------------------------ references
def _load_module(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(path))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    return module


def _run(args: List[str], cwd: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


FLOAT = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf)"


def reference_vpq(ref: str, work: str) -> dict:
    """eval_vpq_vspw.py as a script (VPQ All/Things/Stuff per window size, as printed) and as a
    module (the same numbers plus SQ and RQ, which the script only writes rounded)."""
    vps = os.path.join(work, "vps")
    out = _run(
        [
            os.path.join(ref, "vipseg", "eval_vpq_vspw.py"),
            "--submit_dir",
            os.path.join(vps, "pred"),
            "--truth_dir",
            os.path.join(vps, "panomasksRGB"),
            "--pan_gt_json_file",
            os.path.join(vps, "panoptic_gt.json"),
            "--num_processes",
            "1",
        ],
        cwd=work,
    )
    printed = [
        tuple(float(v) for v in line.split())
        for line in out.splitlines()
        if re.fullmatch(rf"{FLOAT} {FLOAT} {FLOAT}", line.strip())
    ]
    if len(printed) != len(WINDOW_SIZES):
        raise RuntimeError(f"eval_vpq_vspw.py printed {printed}:\n{out}")

    module = _load_module(os.path.join(ref, "vipseg", "eval_vpq_vspw.py"), "ref_eval_vpq_vspw")
    with open(os.path.join(vps, "panoptic_gt.json")) as f:
        gt = json.load(f)
    with open(os.path.join(vps, "pred", "pred.json")) as f:
        pred = {a["video_id"]: a["annotations"] for a in json.load(f)["annotations"]}
    categories = {c["id"]: c for c in gt["categories"]}
    gt_annos = {a["video_id"]: a["annotations"] for a in gt["annotations"]}
    split = []  # as the script's main() builds it
    for video in gt["videos"]:
        vid = video["video_id"]
        names = [im["file_name"] for im in video["images"]]
        split.append(
            list(
                zip(
                    gt_annos[vid],
                    pred[vid],
                    [os.path.join(vps, "panomasksRGB", vid, n) for n in names],
                    [os.path.join(vps, "pred", "pan_pred", vid, n) for n in names],
                    video["images"],
                )
            )
        )
    result = {}
    for n, (pq_all, pq_thing, pq_stuff) in zip(WINDOW_SIZES, printed):
        stat = module.PQStat()
        for video_set in copy.deepcopy(split):
            stat += module.vpq_compute_single_core(categories, n, video_set)
        parts = {
            name: stat.pq_average(categories, isthing=isthing)[0]
            for name, isthing in (("", None), ("_thing", True), ("_stuff", False))
        }
        for name, value in (("", pq_all), ("_thing", pq_thing), ("_stuff", pq_stuff)):
            if 100 * parts[name]["pq"] != value:
                raise RuntimeError(f"VPQ{name}@{n}: module {100 * parts[name]['pq']} != {value}")
            result[f"VPQ{name}@{n}"] = value
            result[f"VPQ{name}_SQ@{n}"] = 100 * parts[name]["sq"]
            result[f"VPQ{name}_RQ@{n}"] = 100 * parts[name]["rq"]
    for key in ("VPQ", "VPQ_thing", "VPQ_stuff", "VPQ_SQ", "VPQ_RQ"):
        values = [result[f"{key}@{n}"] for n in WINDOW_SIZES]
        result[key] = sum(values) / len(values)  # the script's vpq-final.txt (there %.4f)
    return result


def reference_stq_vipseg_script(ref: str, work: str) -> dict:
    """eval_stq_vspw.py as published (instances numbered from 0 in JSON order)."""
    vps = os.path.join(work, "vps")
    out = _run(
        [
            os.path.join(ref, "vipseg", "eval_stq_vspw.py"),
            "--submit_dir",
            os.path.join(vps, "pred"),
            "--truth_dir",
            os.path.join(vps, "panomasksRGB"),
            "--pan_gt_json_file",
            os.path.join(vps, "panoptic_gt.json"),
        ],
        cwd=work,
    )
    found = {}
    for key, pattern in (("STQ", r"STQ : "), ("AQ", r"AQ :"), ("SQ", r"IoU:")):
        match = re.search(rf"^{pattern}({FLOAT})\s*$", out, re.M)
        if match is None:
            raise RuntimeError(f"eval_stq_vspw.py printed no {key}:\n{out}")
        found[key] = 100 * float(match.group(1))
    return found


def _stq_frames(vps: str, numbering: str):
    """Per video, per frame: deeplab2 panoptic labels (semantic << 16) + instance of the ground
    truth and the prediction. ``numbering``: "vipseg" (the VIPSeg script's: every segment id of
    the video, stuff included, numbered from 0 in JSON order, crowd ignored) or "deeplab2" (thing
    segments numbered from 1 in order of appearance, crowd and stuff 0)."""
    with open(os.path.join(vps, "panoptic_gt.json")) as f:
        gt = json.load(f)
    with open(os.path.join(vps, "pred", "pred.json")) as f:
        pred = {a["video_id"]: a["annotations"] for a in json.load(f)["annotations"]}
    isthing = {c["id"]: c["isthing"] for c in gt["categories"]}
    gt_annos = {a["video_id"]: a["annotations"] for a in gt["annotations"]}

    def numbers(frames, use_crowd):
        order = {}
        for frame in frames:
            for info in frame["segments_info"]:
                if numbering == "vipseg":
                    order.setdefault(info["id"], len(order))
                elif isthing[info["category_id"]] and not (use_crowd and info.get("iscrowd")):
                    order.setdefault(info["id"], len(order) + 1)
        return order

    def encode(png, frame, order):
        rgb = np.array(Image.open(png)).astype(np.int64)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
        semantic = np.full(ids.shape, IGNORE, np.int64)
        instance = np.full(ids.shape, IGNORE if numbering == "vipseg" else 0, np.int64)
        for info in frame["segments_info"]:
            m = ids == info["id"]
            semantic[m] = info["category_id"]
            instance[m] = order.get(info["id"], 0)
        return (semantic << LABEL_BIT_SHIFT) + instance

    for video in gt["videos"]:
        vid = video["video_id"]
        gt_order, pred_order = numbers(gt_annos[vid], True), numbers(pred[vid], False)
        frames = []
        for image, gframe, pframe in zip(video["images"], gt_annos[vid], pred[vid]):
            name = image["file_name"]
            frames.append(
                (
                    encode(os.path.join(vps, "panomasksRGB", vid, name), gframe, gt_order),
                    encode(os.path.join(vps, "pred", "pan_pred", vid, name), pframe, pred_order),
                )
            )
        yield frames
    return


def reference_stq(ref: str, work: str, module_path: str, numbering: str) -> dict:
    """deeplab2's numpy STQuality over the case, with the given instance numbering."""
    module = _load_module(module_path, f"ref_stq_{abs(hash(module_path))}")
    vps = os.path.join(work, "vps")
    with open(os.path.join(vps, "panoptic_gt.json")) as f:
        things = [c["id"] for c in json.load(f)["categories"] if c["isthing"]]
    metric = module.STQuality(NUM_CATEGORIES, things, IGNORE, LABEL_BIT_SHIFT, STQ_OFFSET)
    for seq, frames in enumerate(_stq_frames(vps, numbering)):
        for y_true, y_pred in frames:
            metric.update_state(y_true.astype(np.int32), y_pred.astype(np.int32), seq)
    result = metric.result()
    return {
        "STQ": 100 * float(result["STQ"]),
        "AQ": 100 * float(result["AQ"]),
        "SQ": 100 * float(result["IoU"]),
    }


def reference_miou(ref: str, work: str) -> float:
    """DVIS++'s eval_miou_vspw.py (the VSPW authors' Evaluator with their label remapping), cross-
    checked against the authors' Evaluator fed with masks remapped as their dataset code does."""
    vss = os.path.join(work, "vss")
    out = _run(
        [os.path.join(ref, "dvis", "eval_miou_vspw.py"), vss, os.path.join(vss, "pred")], cwd=work
    )
    match = re.search(rf"mIoU:({FLOAT})", out)
    if match is None:
        raise RuntimeError(f"eval_miou_vspw.py printed no mIoU:\n{out}")
    miou = float(match.group(1))

    utils = _load_module(os.path.join(ref, "vspw", "utils.py"), "ref_vspw_utils")
    evaluator = utils.Evaluator(NUM_CATEGORIES)
    evaluator.reset()
    with open(os.path.join(vss, "val.txt")) as f:
        names = [line.strip() for line in f if line.strip()]
    for name in names:
        for png in sorted(os.listdir(os.path.join(vss, "data", name, "mask"))):
            raw = np.array(Image.open(os.path.join(vss, "data", name, "mask", png))).astype(
                np.int64
            )
            label = raw.copy()  # the authors' segm_transform: 0 -> 255, -1, 254 -> 255
            label[label == 0] = 255
            label = label - 1
            label[label == 254] = 255
            pred = np.array(Image.open(os.path.join(vss, "pred", name, png))).astype(np.int64)
            evaluator.add_batch(label[None], pred[None])
    authors = float(evaluator.Mean_Intersection_over_Union())
    if authors != miou:
        raise RuntimeError(f"mIoU: DVIS++ script {miou} != VSPW authors' Evaluator {authors}")
    return 100 * miou


def reference_vc(ref: str, work: str, window: int) -> float:
    """The VSPW authors' VC_perclip.py with clip_num = window."""
    vss = os.path.join(work, "vss")
    out = _run(
        [os.path.join(ref, "vspw", "VC_perclip.py"), vss, os.path.join(vss, "pred"), str(window)],
        cwd=work,
    )
    match = re.search(rf"VC{window} score: ({FLOAT}) on", out)
    if match is None:
        raise RuntimeError(f"VC_perclip.py printed no score:\n{out}")
    return 100 * float(match.group(1))


def score_case(ref: str, case_dir: str) -> dict:
    """Every reference number for one case (run on a scratch copy: the scripts write files)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = os.path.join(tmp, "case")
        shutil.copytree(case_dir, work)
        vps = reference_vpq(ref, work)
        vps.update(
            reference_stq(
                ref,
                work,
                os.path.join(ref, "deeplab2", "segmentation_and_tracking_quality.py"),
                "deeplab2",
            )
        )
        vipseg = reference_stq_vipseg_script(ref, work)
        for path in (
            os.path.join(ref, "vipseg", "segmentation_and_tracking_quality.py"),
            os.path.join(ref, "deeplab2", "segmentation_and_tracking_quality.py"),
        ):
            mine = reference_stq(ref, work, path, "vipseg")
            if any(abs(mine[k] - vipseg[k]) > 1e-9 for k in vipseg):
                raise RuntimeError(
                    f"STQ (VIPSeg numbering) glue {mine} != script {vipseg} ({path})"
                )
        vss = {"mIoU": reference_miou(ref, work)}
        for window in VC_WINDOWS:
            vss[f"mVC{window}"] = reference_vc(ref, work, window)
    return {"vps": vps, "vps_vipseg_numbering": vipseg, "vss": vss}


def case_facts(case_dir: str) -> dict:
    """What the case's files hold that the metrics treat specially (read back from the files)."""
    vps = os.path.join(case_dir, "vps")
    with open(os.path.join(vps, "panoptic_gt.json")) as f:
        gt = json.load(f)
    with open(os.path.join(vps, "pred", "pred.json")) as f:
        pred = {a["video_id"]: a["annotations"] for a in json.load(f)["annotations"]}
    isthing = {c["id"]: c["isthing"] for c in gt["categories"]}
    facts = {
        "frames_per_video": [len(v["images"]) for v in gt["videos"]],
        "gt_void_pixels": 0,
        "pred_void_pixels": 0,
        "pred_void_on_labelled_gt_pixels": 0,
        "gt_crowd_segments": 0,
        "videos_with_two_crowd_ids_of_one_class": 0,
        "pred_ids_changing_class": 0,
        "videos_whose_first_listed_segment_is_a_non_crowd_thing": 0,
        "vss_pixels_switching_between_0_and_255": 0,
        "vss_videos_not_in_split": 0,
    }
    for anno in gt["annotations"]:
        vid = anno["video_id"]
        first = anno["annotations"][0]["segments_info"]
        if first and isthing[first[0]["category_id"]] and not first[0]["iscrowd"]:
            facts["videos_whose_first_listed_segment_is_a_non_crowd_thing"] += 1
        crowd = {
            (s["id"], s["category_id"])
            for f in anno["annotations"]
            for s in f["segments_info"]
            if s["iscrowd"]
        }
        facts["gt_crowd_segments"] += len(crowd)
        if len({c for _, c in crowd}) < len(crowd):
            facts["videos_with_two_crowd_ids_of_one_class"] += 1
        classes = {}
        for frame in pred[vid]:
            for s in frame["segments_info"]:
                classes.setdefault(s["id"], set()).add(s["category_id"])
        facts["pred_ids_changing_class"] += sum(len(c) > 1 for c in classes.values())
        for frame in anno["annotations"]:
            g = np.array(Image.open(os.path.join(vps, "panomasksRGB", vid, frame["file_name"])))
            p = np.array(Image.open(os.path.join(vps, "pred", "pan_pred", vid, frame["file_name"])))
            g_void, p_void = ~g.any(axis=-1), ~p.any(axis=-1)
            facts["gt_void_pixels"] += int(g_void.sum())
            facts["pred_void_pixels"] += int(p_void.sum())
            facts["pred_void_on_labelled_gt_pixels"] += int((p_void & ~g_void).sum())
    vss = os.path.join(case_dir, "vss")
    with open(os.path.join(vss, "val.txt")) as f:
        listed = [line.strip() for line in f if line.strip()]
    for name in sorted(os.listdir(os.path.join(vss, "data"))):
        if name not in listed:
            facts["vss_videos_not_in_split"] += 1
            continue
        folder = os.path.join(vss, "data", name, "mask")
        masks = [np.array(Image.open(os.path.join(folder, n))) for n in sorted(os.listdir(folder))]
        for a, b in zip(masks, masks[1:]):
            facts["vss_pixels_switching_between_0_and_255"] += int(
                (((a == OTHERS) & (b == IGNORE)) | ((a == IGNORE) & (b == OTHERS))).sum()
            )
    return facts


def reference_commits(ref: str) -> dict:
    path = os.path.join(ref, "COMMITS.json")
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    return {}


# ------------------------------------------------------------------------------ main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reference-root",
        type=str,
        required=True,
        help="folder holding the reference scripts (see the module docstring)",
    )
    parser.add_argument("--out", type=str, required=True, help="folder to write the cases to")
    parser.add_argument(
        "--random",
        type=int,
        default=0,
        help="write this many random cases (seeds --seed..) instead of the " "committed ones",
    )
    parser.add_argument("--seed", type=int, default=1000, help="first seed of --random cases")
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="frame size of every case (default: 24 32); objects keep their pixel sizes",
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    ref = os.path.abspath(args.reference_root)
    if not os.path.isfile(os.path.join(ref, "vipseg", "eval_vpq_vspw.py")):
        raise SystemExit(f"{ref} does not hold vipseg/eval_vpq_vspw.py (see --help).")
    specs = (
        [random_case(args.seed + i) for i in range(args.random)]
        if args.random
        else committed_cases()
    )
    if args.size:
        specs = [replace(spec, height=args.size[0], width=args.size[1]) for spec in specs]
    cats_table = category_table()
    os.makedirs(args.out, exist_ok=True)
    expected = {
        "scale": "0-100",
        "references": reference_commits(ref),
        "cases": {},
    }
    for spec in specs:
        case_dir = os.path.join(args.out, spec.name)
        if os.path.isdir(case_dir):
            shutil.rmtree(case_dir)
        videos = make_case(spec, cats_table)
        write_vps(case_dir, spec, videos, cats_table)
        write_vss(case_dir, spec, videos)
        scores = score_case(ref, case_dir)
        expected["cases"][spec.name] = {
            "spec": asdict(spec),
            "facts": case_facts(case_dir),
            **scores,
        }
        print(spec.name, json.dumps(scores))
    path = os.path.join(args.out, "expected.json")
    with open(path + ".tmp", "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()

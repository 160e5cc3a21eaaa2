"""A train / val split of a YouTube-VIS-format dataset by video (``tools/split_ytvis.py``).

Whole videos go to one side, with their annotations: the frames of one video are never on both
sides (neighbouring frames are near copies, so a split by frame would score memorised frames).
The split is a pure function of the dataset, the fraction and the seed.

**Stratified** (``stratify=True``): every video is put in the stratum of its rarest category
(the category, among those of its non-crowd instances, that the fewest videos of the dataset
have; ties to the smaller id); videos without instances form one more stratum. Each stratum
gives the val side its share (``val_fraction`` of its videos, the remainders rounded so that the
total is exact: largest remainder first, ties in seeded order), so a category that few videos
have still reaches the val side in proportion rather than by chance.
"""

import copy
import math
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Tuple

import numpy as np

from .ytvis_checks import check_ytvis_dataset

__all__ = ["SplitError", "split_ytvis", "val_video_ids"]


class SplitError(ValueError):
    """The dataset cannot be split as asked (too few videos, a fraction outside (0, 1))."""


def _val_count(num_videos: int, val_fraction: float, source: str) -> int:
    """Number of val videos: ``val_fraction`` of them, rounded, and at least one on each side."""
    if not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
        raise SplitError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction!r}.")
    if num_videos < 2:
        raise SplitError(f"{source}: has {num_videos} video(s); a split by video needs at least 2.")
    return min(max(int(round(val_fraction * num_videos)), 1), num_videos - 1)


def _strata(dataset: dict, video_ids: List[int]) -> Dict[Optional[int], List[int]]:
    """Video ids by the id of their rarest category (None: videos without instances)."""
    categories = defaultdict(set)  # video id -> category ids of its non-crowd instances
    for ann in dataset.get("annotations") or ():
        if not ann.get("iscrowd", 0):
            categories[ann["video_id"]].add(ann["category_id"])
    frequency = Counter(cid for cats in categories.values() for cid in cats)
    strata = defaultdict(list)
    for vid in video_ids:
        cats = categories.get(vid)
        key = min(cats, key=lambda c: (frequency[c], c)) if cats else None
        strata[key].append(vid)
    return strata


def _stratified_pick(
    strata: Dict[Optional[int], List[int]], total: int, fraction: float, rng
) -> List[int]:
    """``total`` video ids, each stratum giving ``fraction`` of its videos (largest remainder)."""
    keys = sorted(strata, key=lambda k: (k is None, k if k is not None else 0))
    quotas = {k: fraction * len(strata[k]) for k in keys}
    counts = {k: math.floor(quotas[k]) for k in keys}
    order = rng.permutation(len(keys))  # seeded tie-break between equal remainders
    by_remainder = sorted(range(len(keys)), key=lambda i: (-(quotas[keys[i]] % 1), order[i]))
    for i in by_remainder[: total - sum(counts.values())]:
        counts[keys[i]] += 1
    picked = []
    for key in keys:
        videos = strata[key]
        picked.extend(videos[j] for j in rng.permutation(len(videos))[: counts[key]])
    return picked


def val_video_ids(
    dataset: dict,
    *,
    val_fraction: float,
    seed: int,
    stratify: bool = False,
    source: str = "<in-memory dataset>",
) -> List[int]:
    """The (sorted) ids of the videos that go to the val side (see the module docstring).

    Args:
        dataset (dict): a parsed YouTube-VIS-format file (checked here).
        val_fraction (float): in (0, 1); the val side gets ``round(val_fraction * V)`` videos,
            at least 1 and at most V - 1.
        seed (int): the seed of the choice.
        stratify (bool): per-category shares (module docstring) instead of a uniform choice.
        source (str): the file name used in error messages.

    Raises:
        YTVISFormatError: the dataset breaks the format.
        SplitError: fewer than 2 videos, or a fraction outside (0, 1).
    """
    videos = check_ytvis_dataset(dataset, source, require_file_names=False)
    video_ids = sorted(videos)
    total = _val_count(len(video_ids), val_fraction, source)
    rng = np.random.default_rng(seed)
    if stratify:
        picked = _stratified_pick(_strata(dataset, video_ids), total, val_fraction, rng)
    else:
        picked = [video_ids[j] for j in rng.permutation(len(video_ids))[:total]]
    return sorted(picked)


def _side(dataset: dict, video_ids: set) -> dict:
    """A copy of ``dataset`` with only the videos ``video_ids`` and their annotations."""
    side = {k: copy.deepcopy(v) for k, v in dataset.items() if k not in ("videos", "annotations")}
    side["videos"] = [v for v in dataset["videos"] if v["id"] in video_ids]
    if dataset.get("annotations") is not None:
        side["annotations"] = [a for a in dataset["annotations"] if a["video_id"] in video_ids]
    return side


def split_ytvis(
    dataset: dict,
    *,
    val_fraction: float,
    seed: int,
    stratify: bool = False,
    source: str = "<in-memory dataset>",
) -> Tuple[dict, dict]:
    """Split a YouTube-VIS-format dataset into (train, val) by video.

    Both sides keep every category (so both have the same class table) and the file's other
    top-level fields (``info``, ``licenses``); ids are unchanged. Arguments as in
    :func:`val_video_ids`.
    """
    val_ids = set(
        val_video_ids(
            dataset, val_fraction=val_fraction, seed=seed, stratify=stratify, source=source
        )
    )
    train_ids = {v["id"] for v in dataset["videos"]} - val_ids
    return _side(dataset, train_ids), _side(dataset, val_ids)

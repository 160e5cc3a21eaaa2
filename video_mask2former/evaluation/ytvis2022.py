"""YouTube-VIS 2022: the short and the long videos scored separately (AP_S, AP_L, their mean).

The 2022 validation set is the 2021 validation videos ("short") plus 71 long videos. Nothing in a
video record marks it as long: the ground truth is released as two files, ``gt_short.json`` and
``gt_long.json`` (and ``gt.json`` holding both). The official scoring program (the challenge's,
as shipped in DVIS++ / VidEoMT as ``yt2022_evaluate.py``) loads ``results.json`` against
``gt.json``, then runs the YouTube-VIS evaluation twice, once with each file as the ground truth;
each run scores only the predictions of its own videos. It reports ``mAP_S, AP50_S, AP75_S,
AR1_S, AR10_S``, the same for the long videos (``_L``), and ``mAP = (mAP_S + mAP_L) / 2``.

:func:`evaluate_2022` does the same with this project's implementation of the metric
(:func:`~video_mask2former.evaluation.ytvis_metric.evaluate_ytvis_detailed`): every statistic of
each subset, suffixed ``_S`` / ``_L``, and ``AP``, the mean of ``AP_S`` and ``AP_L``. Results are
validated once against the videos of both files; a result for a video of neither is an error
(the official ``loadRes`` rejects it too).

A subset without a (non-crowd) ground-truth instance has no AP: its statistics are the metric's
-1 ("undefined") and ``AP`` is then the AP of the other subset alone (-1 when neither has one);
the printed table says so. The official program would average the -1 into ``mAP``; a sentinel is
never averaged here.

Layout of the release (the built-in split ``ytvis_2022_val`` reads it)::

    ytvis_2022/valid.json  ytvis_2022/valid/JPEGImages/<video>/<frame>.jpg
    ytvis_2022/gt_short.json  ytvis_2022/gt_long.json
"""

import os
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .results import VideoSpec, YTVISFormatError, read_json, validate_results
from .ytvis_metric import STAT_KEYS, YTVISGroundTruth, evaluate_ytvis_detailed

# Ground-truth files of the release, by subset; the suffix of each subset's statistics.
GT_FILE_NAMES = {"short": "gt_short.json", "long": "gt_long.json"}
SUBSET_SUFFIXES = {"short": "_S", "long": "_L"}
# Statistics printed per subset by the official program (the others are returned as well).
OFFICIAL_KEYS = ("AP", "AP50", "AP75", "AR1", "AR10")
# The metric's value of a statistic without ground truth (ytvis_metric: "-1 where no ground truth").
UNDEFINED = -1.0

GroundTruthLike = Union[str, dict, YTVISGroundTruth]


def _ground_truth(value: GroundTruthLike, what: str) -> YTVISGroundTruth:
    if isinstance(value, YTVISGroundTruth):
        return value
    if isinstance(value, str):
        return YTVISGroundTruth.from_json(value)
    return YTVISGroundTruth(value, source=what)


def split_by_videos(dataset: dict, video_ids: Iterable[int]) -> Tuple[dict, dict]:
    """Split a YouTube-VIS dict into (the other videos, ``video_ids``), annotations following
    their videos; categories and other keys are kept in both."""
    chosen = set(video_ids)
    parts = []
    for keep in (lambda vid: vid not in chosen, lambda vid: vid in chosen):
        part = {k: v for k, v in dataset.items() if k not in ("videos", "annotations")}
        part["videos"] = [v for v in dataset["videos"] if keep(v["id"])]
        if dataset.get("annotations") is not None:
            part["annotations"] = [a for a in dataset["annotations"] if keep(a["video_id"])]
        parts.append(part)
    return parts[0], parts[1]


def load_2022_ground_truth(
    ground_truth: Union[str, Mapping[str, GroundTruthLike], GroundTruthLike],
    long_video_ids: Optional[Iterable[int]] = None,
) -> Dict[str, YTVISGroundTruth]:
    """The short and long ground truths.

    Args:
        ground_truth: a folder holding ``gt_short.json`` and ``gt_long.json`` (the release); a
            mapping ``{"short": ..., "long": ...}`` of paths, parsed dicts or
            :class:`YTVISGroundTruth`; or, with ``long_video_ids``, one ground truth (path or
            dict) holding both subsets.
        long_video_ids (iterable of int, optional): the long videos of a single ground truth.

    Returns:
        dict: ``{"short": YTVISGroundTruth, "long": YTVISGroundTruth}``.

    Raises:
        YTVISFormatError: a file is missing, malformed or has no annotations, or a video is in
            both subsets; the message names the file and the video.
    """
    if long_video_ids is not None:
        if isinstance(ground_truth, str):
            source, dataset = ground_truth, read_json(ground_truth, "annotation file")
        elif isinstance(ground_truth, dict) and "videos" in ground_truth:
            source, dataset = "ground truth", ground_truth
        else:
            raise ValueError(
                "load_2022_ground_truth: with long_video_ids, give one ground truth (a path or a "
                "parsed YouTube-VIS dict)"
            )
        parts = dict(zip(("short", "long"), split_by_videos(dataset, long_video_ids)))
        loaded = {
            name: YTVISGroundTruth(d, source=f"{source} ({name})") for name, d in parts.items()
        }
    elif isinstance(ground_truth, str):
        paths = {n: os.path.join(ground_truth, f) for n, f in GT_FILE_NAMES.items()}
        missing = [p for p in paths.values() if not os.path.isfile(p)]
        if not os.path.isdir(ground_truth) or missing:
            raise YTVISFormatError(
                f"{ground_truth}: expected a YouTube-VIS 2022 folder holding "
                f"{' and '.join(GT_FILE_NAMES.values())}; missing {missing or [ground_truth]}"
            )
        loaded = {name: YTVISGroundTruth.from_json(path) for name, path in paths.items()}
    elif isinstance(ground_truth, Mapping) and set(ground_truth) == set(GT_FILE_NAMES):
        loaded = {
            name: _ground_truth(value, f"{name} ground truth")
            for name, value in ground_truth.items()
        }
    else:
        raise ValueError(
            "load_2022_ground_truth: expected a folder, a {'short': ..., 'long': ...} mapping, "
            "or one ground truth with long_video_ids"
        )
    for name, gt in loaded.items():
        if not gt.has_annotations:
            raise YTVISFormatError(f"the {name} ground truth has no 'annotations'")
    both = set(loaded["short"].videos) & set(loaded["long"].videos)
    if both:
        raise YTVISFormatError(
            f"videos {sorted(both)[:10]} are in both the short and the long ground truth; each "
            f"video belongs to one subset"
        )
    return loaded


def evaluate_2022(
    ground_truth,
    results: Union[List[dict], str],
    *,
    long_video_ids: Optional[Iterable[int]] = None,
    check_counts: bool = True,
) -> Dict[str, float]:
    """Score ``results`` on the short and the long videos separately, as the 2022 challenge.

    Args:
        ground_truth: see :func:`load_2022_ground_truth`.
        results (list[dict] or str): ``results.json`` entries for videos of either subset, or
            the file's path.
        long_video_ids (iterable of int, optional): see :func:`load_2022_ground_truth`.
        check_counts (bool): decode-check every RLE string (see
            :func:`~video_mask2former.evaluation.results.validate_results`).

    Returns:
        dict: ``AP`` (the mean of ``AP_S`` and ``AP_L``: the challenge's ``mAP``; the AP of one
        subset alone when the other has no ground-truth instance, its AP being undefined; -1 when
        neither has one), and every statistic of
        :data:`~video_mask2former.evaluation.ytvis_metric.STAT_KEYS` with the suffix ``_S``
        (short videos) or ``_L`` (long videos); 0-1 scale, -1 where no ground truth falls in an
        area range (for the whole subset when it has no ground-truth instance).

    Raises:
        YTVISFormatError: malformed ground truth or results, or a result for a video of neither
            subset (naming the entry and the video).
    """
    subsets = load_2022_ground_truth(ground_truth, long_video_ids)
    if isinstance(results, str):
        source, results = results, read_json(results, "results file")
    else:
        source = "results"
    videos: Dict[int, VideoSpec] = {**subsets["short"].videos, **subsets["long"].videos}
    categories = set(subsets["short"].category_ids) | set(subsets["long"].category_ids)
    validate_results(
        results, videos, category_ids=categories, source=source, check_counts=check_counts
    )
    scores: Dict[str, float] = {}
    for name, gt in subsets.items():
        own = [entry for entry in results if entry["video_id"] in gt.videos]
        stats = evaluate_ytvis_detailed(gt, own, check_counts=False).stats  # validated above
        scores.update({f"{key}{SUBSET_SUFFIXES[name]}": value for key, value in stats.items()})
    scores["AP"] = combined_ap(scores)
    return scores


def defined_subsets(scores: Mapping[str, float]) -> List[str]:
    """The subsets whose AP is defined (``AP_S`` / ``AP_L`` not -1: they have ground truth)."""
    return [n for n, suffix in SUBSET_SUFFIXES.items() if scores[f"AP{suffix}"] != UNDEFINED]


def combined_ap(scores: Mapping[str, float]) -> float:
    """The mean of ``AP_S`` and ``AP_L`` over the subsets where it is defined; -1 if neither."""
    defined = defined_subsets(scores)
    if not defined:
        return UNDEFINED
    return sum(scores[f"AP{SUBSET_SUFFIXES[n]}"] for n in defined) / len(defined)


def _cell(value: float, width: int) -> str:
    return f"{'n/a':>{width}}" if value == UNDEFINED else f"{value:>{width}.3f}"


def format_2022_table(scores: Mapping[str, float], keys: Iterable[str] = STAT_KEYS) -> str:
    """A text table: one row per subset (``keys`` as columns, three decimals, "n/a" where
    undefined) and the combined AP, saying which subsets it averages."""
    keys = list(keys)
    width = max(len(k) for k in keys) + 2
    lines = ["subset" + "".join(f"{k:>{width}}" for k in keys)]
    for name, suffix in SUBSET_SUFFIXES.items():
        lines.append(f"{name:<6}" + "".join(_cell(scores[k + suffix], width) for k in keys))
    defined = defined_subsets(scores)
    if len(defined) == len(SUBSET_SUFFIXES):
        lines.append(f"AP (mean of AP_S and AP_L): {scores['AP']:.3f}")
    elif defined:
        (missing,) = set(SUBSET_SUFFIXES) - set(defined)
        lines.append(
            f"AP ({defined[0]} videos only: the {missing} videos have no ground-truth instance, "
            f"so their AP is undefined): {scores['AP']:.3f}"
        )
    else:
        lines.append("AP: n/a (no ground-truth instance in either subset)")
    return "\n".join(lines)


def combine_2022_split(short: dict, long: dict) -> Dict[str, dict]:
    """The files of a 2022-layout validation split made of two YouTube-VIS dicts (tests, tools).

    The long videos' ids (and annotation ids) are shifted past the short ones'; frame file names
    are kept.

    Returns:
        dict: ``"gt_short.json"``, ``"gt_long.json"``, ``"gt.json"`` (both) and ``"valid.json"``
        (both, without annotations), parsed.
    """
    video_offset = max((v["id"] for v in short["videos"]), default=0)
    ann_offset = max((a["id"] for a in short.get("annotations") or []), default=0)
    long = dict(long)
    long["videos"] = [dict(v, id=v["id"] + video_offset) for v in long["videos"]]
    long["annotations"] = [
        dict(a, id=a["id"] + ann_offset, video_id=a["video_id"] + video_offset)
        for a in long.get("annotations") or []
    ]
    both = dict(short)
    both["videos"] = short["videos"] + long["videos"]
    both["annotations"] = (short.get("annotations") or []) + long["annotations"]
    valid = {k: v for k, v in both.items() if k != "annotations"}
    return {"gt_short.json": short, "gt_long.json": long, "gt.json": both, "valid.json": valid}

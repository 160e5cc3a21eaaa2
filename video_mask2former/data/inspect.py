"""The checks and figures of a YouTube-VIS-format dataset (``tools/inspect_dataset.py``).

:func:`inspect_ytvis_dataset` runs every check that training makes on a dataset, before training:

* the loader's (:func:`~video_mask2former.data.ytvis.load_ytvis_dataset`: structure, JSON types,
  ids, every RLE, category names): the first problem raises its
  :class:`~video_mask2former.data.ytvis.YTVISFormatError`, naming the file and the entry;
* the frames', which the clip mapper meets only when it reads a clip: every frame file exists
  and has the size the annotation file gives its video (``frames="size"``: the image header,
  upright as its EXIF orientation says), or decodes completely with the mapper's strict reader
  (``frames="decode"``: :func:`~video_mask2former.data.frames.read_frame`, slower). All the
  frame problems are collected (:attr:`DatasetReport.frame_problems`), not only the first.

and gathers the figures that a user looks at before training: videos, frames, instances, frames
and instances per video, per-category counts, object sizes against the YouTube-VIS metric's
small / medium / large area ranges (a track's area is its mean mask area over the frames where it
is present, computed as the metric computes it: :class:`~video_mask2former.evaluation.
YTVISGroundTruth`), instances that leave the video and re-enter it, and what training drops or
never sees (degenerate polygons, videos without instances, tracks without a mask, unused
categories).

:func:`format_report` prints the report as tables (tabulate), :meth:`DatasetReport.to_dict` is
its JSON form and :func:`plot_histograms` draws its histograms (matplotlib, an optional
dependency: :class:`MissingDependencyError` says how to install it).
"""

import io
import os
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..evaluation.ytvis_metric import AREA_RANGES, YTVISGroundTruth
from .frames import CorruptFrameError, read_frame
from .ytvis import load_ytvis_dataset, read_json, valid_polygons

__all__ = [
    "FRAME_CHECKS",
    "SIZE_NAMES",
    "DatasetReport",
    "FrameProblem",
    "MissingDependencyError",
    "format_report",
    "inspect_ytvis_dataset",
    "plot_histograms",
    "require_matplotlib",
    "size_name",
]

# How the frame files are checked: not at all, existence and header size, or a complete decode.
FRAME_CHECKS = ("none", "size", "decode")
# The metric's area ranges a track is counted in (AREA_RANGES without "all").
SIZE_NAMES = ("small", "medium", "large")
# Frame problems / places listed in the printed report (all of them are in the JSON).
_SHOWN = 10
# EXIF orientations that turn an image by 90 degrees (its width and height swap).
_EXIF_ORIENTATION_TAG = 0x0112
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)


class MissingDependencyError(ImportError):
    """An optional dependency that a requested output needs is not installed."""


@dataclass
class FrameProblem:
    """A frame file that training could not read as its video's frame."""

    video_id: int
    frame: int
    file_name: str
    problem: str


@dataclass
class DatasetReport:
    """The figures of one dataset (see the module docstring); every list is JSON-ready.

    Attributes:
        source, image_root (str): the annotation file and the frames' folder.
        num_videos, num_frames (int): videos and frames (all videos).
        num_instances, num_crowd (int): non-crowd and crowd annotations (tracks).
        num_masks (int): (non-crowd track, frame) pairs with a non-empty mask.
        frames_per_video, instances_per_video (list[int]): one entry per video, by video id
            (instances: non-crowd).
        frame_sizes (dict[str, int]): "WxH" -> number of videos.
        categories (list[dict]): per category id: ``id``, ``name``, ``instances``, ``crowd``,
            ``videos``, ``masks`` and one count per size name.
        track_areas (list[float]): mean area of every non-crowd track with a mask (pixels, at the
            annotation file's size).
        sizes (dict[str, int]): tracks per size name, and ``"no mask"`` (tracks never present).
        reentering (list[dict]): non-crowd tracks that leave and come back: ``video_id``,
            ``annotation_id``, ``category``, ``gaps`` ([first, last] absent frames of each gap).
        videos_without_instances (list[int]): video ids (dropped by
            ``DATALOADER.FILTER_EMPTY_ANNOTATIONS``, never seen by training otherwise).
        tracks_without_mask (list[int]): annotation ids never present.
        unused_categories (list[str]): categories without a non-crowd instance.
        dropped_segmentations (int): frames whose polygons outline no area (dropped by the loader).
        frame_check (str): one of :data:`FRAME_CHECKS`.
        frame_problems (list[FrameProblem]): every frame that failed the frame check.
    """

    source: str
    image_root: str
    num_videos: int = 0
    num_frames: int = 0
    num_instances: int = 0
    num_crowd: int = 0
    num_masks: int = 0
    frames_per_video: List[int] = field(default_factory=list)
    instances_per_video: List[int] = field(default_factory=list)
    frame_sizes: Dict[str, int] = field(default_factory=dict)
    categories: List[dict] = field(default_factory=list)
    track_areas: List[float] = field(default_factory=list)
    sizes: Dict[str, int] = field(default_factory=dict)
    reentering: List[dict] = field(default_factory=list)
    videos_without_instances: List[int] = field(default_factory=list)
    tracks_without_mask: List[int] = field(default_factory=list)
    unused_categories: List[str] = field(default_factory=list)
    dropped_segmentations: int = 0
    frame_check: str = "size"
    frame_problems: List[FrameProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every frame passed the frame check (the annotations passed the loader's, else the
        report would not exist)."""
        return not self.frame_problems

    def to_dict(self) -> dict:
        """The report as plain JSON types (what ``--json`` writes)."""
        return asdict(self)


def size_name(mean_area: float) -> str:
    """The metric's area range of a track of mean area ``mean_area`` (pixels).

    The metric's ranges share their bounds (both inclusive: a track of exactly 128² pixels is in
    "small" and in "medium"); here a bound counts in the lower range only.
    """
    for name in SIZE_NAMES:
        if mean_area <= AREA_RANGES[name][1]:
            return name
    return SIZE_NAMES[-1]


def _header_size(path: str) -> Tuple[int, int]:
    """(width, height) of an image file from its header, upright (EXIF orientation applied)."""
    with Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(_EXIF_ORIENTATION_TAG, 1) in _SWAPPING_ORIENTATIONS:
            width, height = height, width
    return width, height


def _frame_problem(path: str, width: int, height: int, check: str) -> Optional[str]:
    """What keeps training from reading ``path`` as a ``width`` x ``height`` frame, or None."""
    if not os.path.isfile(path):
        return "the file does not exist"
    try:
        if check == "decode":
            h, w = read_frame(path).shape[:2]
        else:
            w, h = _header_size(path)
    except (CorruptFrameError, UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return f"cannot be read as an image ({e})"
    if (w, h) != (width, height):
        return f"is {w}x{h} (WxH), but the annotation file says {width}x{height}"
    return None


def _check_frames(records: Sequence[dict], check: str) -> List[FrameProblem]:
    problems = []
    for record in records:
        for t, path in enumerate(record["file_names"]):
            problem = _frame_problem(path, record["width"], record["height"], check)
            if problem is not None:
                problems.append(FrameProblem(record["video_id"], t, path, problem))
    return problems


def _gaps(present: np.ndarray) -> List[List[int]]:
    """[first, last] frame of every absence between two present frames of a (T,) bool row."""
    frames = np.flatnonzero(present)
    breaks = np.flatnonzero(np.diff(frames) > 1)
    return [[int(frames[b]) + 1, int(frames[b + 1]) - 1] for b in breaks]


def _count_dropped(dataset: dict) -> int:
    """Frames whose polygons outline no area (the loader's rule, :func:`valid_polygons`)."""
    return sum(
        1
        for ann in dataset.get("annotations") or ()
        for segm in ann["segmentations"]
        if isinstance(segm, list) and not valid_polygons(segm)
    )


def _category_rows(dataset: dict) -> Dict[int, dict]:
    rows = {}
    for cat in sorted(dataset["categories"], key=lambda c: c["id"]):
        rows[cat["id"]] = {"id": cat["id"], "name": cat["name"], "instances": 0, "crowd": 0}
        rows[cat["id"]].update({"videos": 0, "masks": 0, **{name: 0 for name in SIZE_NAMES}})
    return rows


def _add_tracks(report: DatasetReport, ground_truth: YTVISGroundTruth, rows: Dict[int, dict]):
    """Count the tracks of every video into ``report`` and the category ``rows``."""
    names = {cid: row["name"] for cid, row in rows.items()}
    report.sizes = {name: 0 for name in SIZE_NAMES + ("no mask",)}
    for video_id in sorted(ground_truth.videos):
        tracks = ground_truth.tracks.get(video_id)
        instances, seen = 0, set()
        for n in range(len(tracks) if tracks is not None else 0):
            row = rows[int(tracks.category_ids[n])]
            if tracks.crowd[n]:
                row["crowd"] += 1
                report.num_crowd += 1
                continue
            instances += 1
            row["instances"] += 1
            seen.add(row["id"])
            present = tracks.areas[n] > 0  # (T,)
            row["masks"] += int(present.sum())
            if not present.any():
                report.sizes["no mask"] += 1
                report.tracks_without_mask.append(int(tracks.ids[n]))
                continue
            area = float(tracks.mean_areas[n])
            report.track_areas.append(area)
            report.sizes[size_name(area)] += 1
            row[size_name(area)] += 1
            gaps = _gaps(present)
            if gaps:
                report.reentering.append(
                    {
                        "video_id": video_id,
                        "annotation_id": int(tracks.ids[n]),
                        "category": names[row["id"]],
                        "gaps": gaps,
                    }
                )
        for cid in seen:
            rows[cid]["videos"] += 1
        report.instances_per_video.append(instances)
        report.num_instances += instances
        if instances == 0:
            report.videos_without_instances.append(video_id)
    report.num_masks = sum(row["masks"] for row in rows.values())


def inspect_ytvis_dataset(
    json_file: Union[str, os.PathLike], image_root: Union[str, os.PathLike], *, frames="size"
) -> DatasetReport:
    """Check a YouTube-VIS-format dataset as training would, and gather its figures.

    Args:
        json_file: the annotation file.
        image_root: the folder that the videos' ``file_names`` are relative to.
        frames (str): how the frame files are checked, one of :data:`FRAME_CHECKS` ("size":
            they exist and their headers give the video's size; "decode": the clip mapper's
            strict decode, which reads every pixel).

    Returns:
        DatasetReport: the figures and the frame problems.

    Raises:
        FileNotFoundError: ``json_file`` does not exist.
        YTVISFormatError: the annotation file breaks the format (the loader's error).
        ValueError: ``frames`` is not one of :data:`FRAME_CHECKS`.
    """
    if frames not in FRAME_CHECKS:
        raise ValueError(f"frames must be one of {FRAME_CHECKS}, got {frames!r}.")
    records, _ = load_ytvis_dataset(json_file, image_root)  # the loader's checks
    dataset, source = read_json(json_file)
    ground_truth = YTVISGroundTruth(dataset, source=source)  # the metric's areas
    report = DatasetReport(source=source, image_root=os.fspath(image_root), frame_check=frames)
    report.num_videos = len(records)
    report.frames_per_video = [record["length"] for record in records]
    report.num_frames = sum(report.frames_per_video)
    for record in records:
        key = f"{record['width']}x{record['height']}"
        report.frame_sizes[key] = report.frame_sizes.get(key, 0) + 1
    rows = _category_rows(dataset)
    _add_tracks(report, ground_truth, rows)
    report.categories = list(rows.values())
    report.unused_categories = [row["name"] for row in report.categories if not row["instances"]]
    report.dropped_segmentations = _count_dropped(dataset)
    if frames != "none":
        report.frame_problems = _check_frames(records, frames)
    return report


# ---------------------------------------------------------------------------------------------
# Printing and plotting
# ---------------------------------------------------------------------------------------------


def _tabulate():
    try:
        from tabulate import tabulate
    except ImportError:
        raise MissingDependencyError(
            "The dataset report's tables need tabulate: pip install tabulate (or --json only)."
        ) from None
    return tabulate


def _spread(values: Sequence[float]) -> List:
    """min, median, mean, max of ``values`` (blanks when empty)."""
    if not len(values):
        return ["-"] * 4
    v = np.asarray(values, dtype=np.float64)
    return [f"{v.min():g}", f"{np.median(v):g}", f"{v.mean():.1f}", f"{v.max():g}"]


def _listed(items: Sequence, limit: int = _SHOWN) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _notes(report: DatasetReport) -> List[str]:
    """One line per thing that training drops or never sees, and per frame problem."""
    lines = []
    if report.videos_without_instances:
        lines.append(
            f"{len(report.videos_without_instances)} videos without an instance (dropped by "
            f"DATALOADER.FILTER_EMPTY_ANNOTATIONS): {_listed(report.videos_without_instances)}"
        )
    if report.tracks_without_mask:
        lines.append(
            f"{len(report.tracks_without_mask)} annotations without a mask in any frame: "
            f"{_listed(report.tracks_without_mask)}"
        )
    if report.unused_categories:
        lines.append(f"categories without an instance: {_listed(report.unused_categories)}")
    if report.dropped_segmentations:
        lines.append(
            f"{report.dropped_segmentations} frames whose polygons outline no area (dropped by "
            "the loader)"
        )
    for problem in report.frame_problems[:_SHOWN]:
        lines.append(
            f"video {problem.video_id}, frame {problem.frame}: {problem.file_name} "
            f"{problem.problem}"
        )
    if len(report.frame_problems) > _SHOWN:
        lines.append(f"... {len(report.frame_problems) - _SHOWN} more frame problems")
    return lines


def format_report(report: DatasetReport) -> str:
    """The report as text: totals, distributions, categories, re-entering tracks, problems."""
    tabulate = _tabulate()
    checked = {"none": "not checked", "size": "exist, sizes match", "decode": "decode, sizes match"}
    sizes = ", ".join(f"{k}: {v}" for k, v in sorted(report.frame_sizes.items()))
    totals = [
        ["videos", report.num_videos],
        ["frames", report.num_frames],
        ["instances (tracks)", report.num_instances],
        ["crowd annotations", report.num_crowd],
        ["masks (instance x frame)", report.num_masks],
        ["frame sizes (WxH: videos)", sizes],
        ["re-entering instances", len(report.reentering)],
        [
            f"frame files ({checked[report.frame_check]})",
            f"{len(report.frame_problems)} problems" if report.frame_problems else "ok",
        ],
    ]
    spread = [
        ["frames per video"] + _spread(report.frames_per_video),
        ["instances per video"] + _spread(report.instances_per_video),
        ["mean area of an instance (px)"] + _spread(report.track_areas),
    ]
    bounds = {name: AREA_RANGES[name] for name in SIZE_NAMES}
    size_header = [f"{n} (<= {bounds[n][1]:g})" if n != "large" else n for n in SIZE_NAMES]
    cats = [
        [c["id"], c["name"], c["instances"], c["videos"], c["masks"], c["crowd"]]
        + [c[n] for n in SIZE_NAMES]
        for c in report.categories
    ]
    cat_header = ["id", "category", "instances", "videos", "masks", "crowd"] + size_header
    parts = [
        f"{report.source} (frames under {report.image_root})",
        tabulate(totals, tablefmt="simple"),
        tabulate(spread, headers=["", "min", "median", "mean", "max"], tablefmt="simple"),
        "Instances per category and size (the YouTube-VIS metric's ranges, mean area over the "
        "frames where an instance is present; areas in pixels at the annotation's size):",
        tabulate(cats, headers=cat_header, tablefmt="simple"),
    ]
    if report.reentering:
        rows = [
            [r["video_id"], r["annotation_id"], r["category"], _listed(r["gaps"], 3)]
            for r in report.reentering[:_SHOWN]
        ]
        more = len(report.reentering) - len(rows)
        parts.append(
            "Instances that leave and re-enter (absent frames of each gap)"
            + (f", first {len(rows)} of {len(report.reentering)}:" if more else ":")
        )
        parts.append(tabulate(rows, headers=["video", "annotation", "category", "gaps"]))
    notes = _notes(report)
    if notes:
        parts.append("Notes:\n" + "\n".join(f"  {line}" for line in notes))
    return "\n\n".join(parts)


def require_matplotlib():
    """matplotlib's pyplot (Agg backend); call it before the work to fail early.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError(
            "The histogram plot needs matplotlib, an optional dependency: pip install matplotlib "
            "(the tables and --json need nothing more)."
        ) from None
    return plt


def plot_histograms(report: DatasetReport) -> bytes:
    """A PNG of four histograms: frames per video, instances per video, instances per category
    and the instances' mean areas (log scale, the metric's size bounds marked).

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    plt = require_matplotlib()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    (ax_frames, ax_instances), (ax_categories, ax_areas) = axes
    ax_frames.hist(report.frames_per_video, bins=20)
    ax_frames.set(title="frames per video", xlabel="frames", ylabel="videos")
    ax_instances.hist(report.instances_per_video, bins=20)
    ax_instances.set(title="instances per video", xlabel="instances", ylabel="videos")
    names = [c["name"] for c in report.categories]
    ax_categories.bar(range(len(names)), [c["instances"] for c in report.categories])
    ax_categories.set_xticks(range(len(names)), names, rotation=90, fontsize="small")
    ax_categories.set(title="instances per category", ylabel="instances")
    if report.track_areas:
        low, high = max(min(report.track_areas), 1.0), max(report.track_areas)
        bins = np.logspace(np.log10(low), np.log10(max(high, low * 2)), 30)
        ax_areas.hist(report.track_areas, bins=bins)
        ax_areas.set_xscale("log")
    for name in SIZE_NAMES[:-1]:
        ax_areas.axvline(AREA_RANGES[name][1], color="k", linestyle="--", linewidth=1)
    ax_areas.set(title="mean area of an instance (small | medium | large)", xlabel="pixels")
    fig.suptitle(os.path.basename(report.source))
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()

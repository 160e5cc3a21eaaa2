"""The demo's video panoptic / semantic mode, offline and ``--online`` (no detectron2).

A model with a segmentation task (``model.segmentation_task``) gives, per frame, an (H, W) id map
and its segments (:class:`~video_mask2former.inference.segment_windows.FrameSegmentation`): the
offline mode from the whole-video (or windowed) result, the online mode from ``model.stream()``.
Both go through :func:`run_segmentation`: each frame is drawn
(:func:`~video_mask2former.visualization.segments.draw_frame_segmentation`) and written to
``--output``, and with ``--save-masks DIR`` its map is written in the scorers' formats
(:class:`SegmentationMasksWriter`):

* panoptic: ``DIR/pan_pred/<video>/<frame>.png`` (RGB id PNGs) and ``DIR/pred.json`` (dataset
  category ids), what ``tools/evaluate_vps.py --pred-json DIR/pred.json --pred-dir DIR/pan_pred``
  reads;
* semantic: ``DIR/<video>/<frame>.png`` (class indices), what ``tools/evaluate_vss.py
  --pred-dir DIR`` reads.

``<video>`` is the video id (:func:`default_video_id`: the input's name unless given) and
``<frame>`` the frame's file name stem (``00000``, ... for a video file or a stream). Running the
demo on several videos into one ``DIR`` fills one prediction folder: each run replaces its own
video's folder and entry of ``pred.json`` and keeps the others.

Files are written into a hidden folder beside ``DIR`` (``.<DIR>.<random>.partial``) and moved
into ``DIR`` when the run ends (the offline mode: only when it succeeded; the online mode: also
after an interrupt or a dropped stream, with the frames written so far), as the other outputs are.
"""

import json
import os
import shutil
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np

from ..data.vps import parse_vps_json, read_json
from ..evaluation.video_seg_predictions import (
    PANOPTIC_PNG_FOLDER,
    VpsPredictionWriter,
    write_vss_prediction,
)
from ..file_io import atomic_write
from ..inference.segment_windows import FrameSegmentation
from ..visualization.segments import SEGMENTATION_KINDS, SegmentClasses, draw_frame_segmentation
from ..visualization.video_io import FrameWriter, check_frame_folder, partial_path
from .categories import Categories

__all__ = [
    "FrameMemory",
    "SegmentationMasksWriter",
    "SegmentationOutputs",
    "check_video_id",
    "default_video_id",
    "frames_of_result",
    "run_segmentation",
]

# Video id of an input whose name says nothing (several image files, a camera).
DEFAULT_VIDEO_ID = "video"
# A folder of this name holds a VSPW video's frames (data/<video>/origin/): the video is its parent.
VSPW_FRAME_FOLDER = "origin"
# Name of the panoptic predictions' JSON in DIR.
PRED_JSON = "pred.json"


def check_video_id(video_id: str) -> str:
    """``video_id`` when it can name the video's folder of predictions, else a ValueError."""
    if (
        not isinstance(video_id, str)
        or not video_id
        or video_id in (".", "..")
        or any(sep and sep in video_id for sep in (os.sep, os.altsep))
    ):
        raise ValueError(
            f"video id {video_id!r} cannot name a folder of predictions: expected a non-empty "
            "name without a path separator (the dataset's video id, e.g. its frame folder's name)"
        )
    return video_id


def default_video_id(inputs: Sequence[str]) -> str:
    """The video id of the demo's input: a frame folder's name (its parent's for a VSPW
    ``<video>/origin`` folder), a video file's stem, else :data:`DEFAULT_VIDEO_ID`."""
    if len(inputs) == 1 and (os.path.isdir(inputs[0]) or os.path.isfile(inputs[0])):
        path = os.path.normpath(os.path.abspath(inputs[0]))
        if os.path.isfile(path):
            return os.path.splitext(os.path.basename(path))[0] or DEFAULT_VIDEO_ID
        if os.path.basename(path) == VSPW_FRAME_FOLDER:
            path = os.path.dirname(path)
        return os.path.basename(path) or DEFAULT_VIDEO_ID
    return DEFAULT_VIDEO_ID


def frames_of_result(result: Dict[str, object]) -> Iterator[FrameSegmentation]:
    """The frames of a whole-video result (``VideoMaskFormer`` with a segmentation task):
    ``panoptic_seg`` (T, H, W) + ``segments_info`` (T lists), or ``sem_seg`` (T, H, W).

    Raises:
        ValueError: a dict with neither, or T maps and another number of ``segments_info``.
    """
    if "panoptic_seg" in result:
        maps, infos = result["panoptic_seg"], result.get("segments_info")
        if infos is None or len(infos) != len(maps):
            raise ValueError(
                f"a panoptic result needs one segments_info list per frame ({len(maps)}), got "
                f"{None if infos is None else len(infos)}"
            )
        for t, (seg, info) in enumerate(zip(maps, infos)):
            yield FrameSegmentation(index=t, seg=seg, segments_info=list(info))
    elif "sem_seg" in result:
        for t, seg in enumerate(result["sem_seg"]):
            yield FrameSegmentation(index=t, seg=seg)
    else:
        raise ValueError(
            f"expected a panoptic ('panoptic_seg', 'segments_info') or semantic ('sem_seg') "
            f"result, got the keys {sorted(result)}"
        )


class FrameMemory:
    """The frames of a video, each kept from when it is read until its result takes it
    (:meth:`take`): the model reads the frames (through its window or stream), the drawing needs
    them again. At most a window of frames is kept (the whole video in whole-video mode).

    Args:
        frames (iterable): (H, W, 3) uint8 RGB frames.
    """

    def __init__(self, frames: Iterable[np.ndarray]):
        self._frames = frames
        self._kept: Dict[int, np.ndarray] = {}
        self.count = 0  # frames read

    def __iter__(self) -> Iterator[np.ndarray]:
        for frame in self._frames:
            self._kept[self.count] = frame
            self.count += 1
            yield frame

    def take(self, index: int) -> np.ndarray:
        """Frame ``index``, forgotten once taken."""
        if index not in self._kept:
            raise ValueError(f"a result came for frame {index}, which was not read or was taken")
        return self._kept.pop(index)


class SegmentationMasksWriter:
    """``--save-masks DIR`` of one video's panoptic or semantic results (see the module
    docstring for the layout and when files are moved into ``DIR``).

    Everything is checked when it is created, before any frame: ``DIR`` can be written (it is
    created when missing), ``video_id`` names a folder, an existing ``DIR/pred.json`` is a
    readable prediction file (its other videos are kept).

    Args:
        out_dir (str): DIR.
        kind (str): "panoptic" or "semantic".
        video_id (str): the video's id (its folder name in DIR).
        class_to_category (sequence of int): K dataset category ids (panoptic ``pred.json``).
        num_classes (int): K (checks the semantic maps).

    Raises:
        OSError: naming ``DIR`` when it cannot be written.
        ValueError: a bad ``kind`` or ``video_id``; a ``DIR/pred.json`` that is not a prediction
            file (naming it).
    """

    def __init__(
        self,
        out_dir: str,
        kind: str,
        video_id: str,
        class_to_category: Sequence[int],
        num_classes: int,
    ):
        if kind not in SEGMENTATION_KINDS:
            raise ValueError(f"kind must be one of {SEGMENTATION_KINDS}, got {kind!r}")
        self.out_dir, self.kind, self.num_classes = out_dir, kind, int(num_classes)
        self.video_id = check_video_id(video_id)
        self.count = 0
        check_frame_folder(out_dir)
        self._others: List[dict] = []
        self._position = None  # index of this video's entry in an existing pred.json
        if kind == "panoptic":
            self._read_existing_json()
        self.stage = partial_path(out_dir)
        os.makedirs(self.stage)
        self._vps = (
            VpsPredictionWriter(self.stage, class_to_category) if kind == "panoptic" else None
        )

    @property
    def json_file(self) -> str:
        return os.path.join(self.out_dir, PRED_JSON)

    def _read_existing_json(self) -> None:
        if not os.path.exists(self.json_file):
            return
        data = read_json(self.json_file, "prediction file")
        parse_vps_json(data, self.json_file, ground_truth=False)  # checked: rewritten at the end
        for entry in data["annotations"]:
            if str(entry["video_id"]) == self.video_id:
                self._position = len(self._others)
            else:
                self._others.append(entry)

    def _video_folder(self, root: str) -> str:
        if self.kind == "panoptic":
            return os.path.join(root, PANOPTIC_PNG_FOLDER, self.video_id)
        return os.path.join(root, self.video_id)

    def write(self, frame_name: str, result: FrameSegmentation) -> None:
        """Write one frame's map (into the staging folder) under ``frame_name``'s stem."""
        if self._vps is not None:
            self._vps.write_frame(self.video_id, frame_name, result.seg, result.segments_info)
        else:
            write_vss_prediction(
                self.stage, self.video_id, frame_name, result.seg, num_classes=self.num_classes
            )
        self.count += 1

    def close(self) -> None:
        """Move this video's files into ``DIR`` when a frame was written (else leave ``DIR`` as
        it is), replacing its previous folder and ``pred.json`` entry; remove the staging folder."""
        if not os.path.isdir(self.stage):
            return
        try:
            if self.count > 0:
                self._commit()
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)

    def _commit(self) -> None:
        new, target = self._video_folder(self.stage), self._video_folder(self.out_dir)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        previous = partial_path(target)
        if os.path.exists(target):  # the previous run's frames of this video
            os.replace(target, previous)
        os.replace(new, target)
        shutil.rmtree(previous, ignore_errors=True)
        if self._vps is not None:
            with open(self._vps.close()) as f:
                (entry,) = json.load(f)["annotations"]
            entries = list(self._others)
            entries.insert(len(entries) if self._position is None else self._position, entry)
            payload = json.dumps({"annotations": entries}).encode()
            atomic_write(self.json_file, lambda f: f.write(payload))

    def discard(self) -> None:
        """Remove the staging folder; ``DIR`` is left as it was."""
        shutil.rmtree(self.stage, ignore_errors=True)


class SegmentationOutputs:
    """The writers of a panoptic / semantic run, all opened (and so checked) before any frame
    is read.

    Args:
        output (str, optional): ``--output``: a folder or an ``.mp4``.
        save_masks (str, optional): ``--save-masks DIR`` (:class:`SegmentationMasksWriter`).
        names (sequence of str, optional): a file name per frame (None: ``00000.jpg``, ...).
        fps (float): frame rate of the ``.mp4``.
        kind (str): "panoptic" or "semantic".
        video_id (str): the video's id in ``save_masks``.
        categories (Categories): the K classes' names, colours and dataset category ids.

    Raises:
        OSError, ValueError: as :class:`FrameWriter`, :class:`SegmentationMasksWriter` and
            :class:`SegmentClasses` (bad colours).
    """

    def __init__(
        self,
        output: Optional[str],
        save_masks: Optional[str],
        names: Optional[Sequence[str]],
        fps: float,
        kind: str,
        video_id: str,
        categories: Categories,
    ):
        self.kind = kind
        self.classes = SegmentClasses(categories.names, categories.colors)
        self.names = None if names is None else list(names)
        self.frames: Optional[FrameWriter] = None
        self.masks: Optional[SegmentationMasksWriter] = None
        try:
            if save_masks:
                ids = categories.dataset_ids
                self.masks = SegmentationMasksWriter(save_masks, kind, video_id, ids, len(ids))
            self.frames = FrameWriter(output, self.names, fps) if output else None
        except BaseException:
            self.discard()
            raise

    def frame_name(self, index: int) -> str:
        """The file name of frame ``index`` (its stem names its mask PNG)."""
        return self.names[index] if self.names is not None else f"{index:05d}.jpg"

    def write(self, frame: np.ndarray, result: FrameSegmentation) -> None:
        """Draw and write one frame's result."""
        if self.frames is not None:
            self.frames.write(draw_frame_segmentation(frame, result, self.kind, self.classes))
        if self.masks is not None:
            self.masks.write(self.frame_name(result.index), result)

    def close(self, allow_empty: bool = False) -> None:
        """Finalise every output (see :meth:`FrameWriter.close`, :meth:`SegmentationMasksWriter.
        close`)."""
        try:
            if self.frames is not None:
                self.frames.close(allow_empty=allow_empty)
        finally:
            if self.masks is not None:
                self.masks.close()

    def discard(self) -> None:
        """Stop without replacing any output."""
        try:
            if self.frames is not None:
                self.frames.discard()
        finally:
            if self.masks is not None:
                self.masks.discard()


def run_segmentation(
    results: Iterable[FrameSegmentation], frames: FrameMemory, outputs: SegmentationOutputs
) -> int:
    """Draw and write each frame's result as it comes (the outputs are not closed here).

    Args:
        results (iterable of FrameSegmentation): the frames' results, in frame order; reading
            them reads ``frames``.
        frames (FrameMemory): the frames the results are of.
        outputs (SegmentationOutputs): where they go.

    Returns:
        int: the number of frames written.
    """
    count = 0
    for result in results:
        outputs.write(frames.take(result.index), result)
        count += 1
    return count

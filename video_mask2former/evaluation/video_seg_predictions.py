"""Writing video panoptic / semantic predictions in the formats the scorers read.

* **Panoptic** (VIPSeg / DVIS submission layout, read by ``tools/evaluate_vps.py`` and by the
  VIPSeg reference script as its ``submit_dir``)::

      <out_dir>/pan_pred/<video_id>/<frame>.png   RGB id PNG, id = R + 256 G + 256^2 B, 0 void
      <out_dir>/pred.json                          {"annotations": [{"video_id", "annotations":
                                                      [{"file_name", "segments_info":
                                                        [{"id", "category_id"}]}]}]}

  ``category_id`` is the dataset's category id (the model's class index mapped back).
* **Semantic** (VSPW layout, read by ``tools/evaluate_vss.py``):
  ``<out_dir>/<video>/<frame>.png``, an 8-bit single-channel PNG of class indices 0..K-1.

Every PNG is written atomically when its frame is done (a long video never needs its maps in
memory); ``pred.json`` is written atomically by :meth:`VpsPredictionWriter.close`, so an
interrupted run leaves no JSON that names PNGs that were not written.
"""

import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from ..data.vps import write_id_png
from ..file_io import atomic_write

__all__ = ["PANOPTIC_PNG_FOLDER", "VpsPredictionWriter", "write_vss_prediction"]

# Folder of the id PNGs under a panoptic prediction folder (the VIPSeg script's name).
PANOPTIC_PNG_FOLDER = "pan_pred"


def _as_numpy(seg) -> np.ndarray:
    if isinstance(seg, torch.Tensor):
        seg = seg.cpu().numpy()
    seg = np.asarray(seg)
    if seg.ndim != 2:
        raise ValueError(f"expected an (H, W) map, got shape {seg.shape}")
    return seg


def _png_name(frame_name: str) -> str:
    stem, ext = os.path.splitext(os.path.basename(frame_name))
    return stem + ".png" if ext.lower() != ".png" else os.path.basename(frame_name)


class VpsPredictionWriter:
    """Writes one panoptic prediction folder, frame by frame.

    Args:
        out_dir (str): the prediction folder (created).
        class_to_category (sequence of int): dataset category id of each class index.
    """

    def __init__(self, out_dir: str, class_to_category: Sequence[int]):
        self.out_dir = out_dir
        self.class_to_category = [int(c) for c in class_to_category]
        self._videos: Dict[str, List[dict]] = {}
        os.makedirs(os.path.join(out_dir, PANOPTIC_PNG_FOLDER), exist_ok=True)

    @property
    def json_file(self) -> str:
        return os.path.join(self.out_dir, "pred.json")

    @property
    def png_root(self) -> str:
        return os.path.join(self.out_dir, PANOPTIC_PNG_FOLDER)

    def write_frame(
        self, video_id: str, frame_name: str, panoptic_seg, segments_info: Sequence[dict]
    ) -> str:
        """Write one frame's id PNG and remember its segments.

        Args:
            video_id (str): the video's id (its folder name).
            frame_name (str): the frame's file name; the PNG takes its stem.
            panoptic_seg: (H, W) segment ids (tensor or array), 0 = void.
            segments_info (sequence of dict): ``id`` and ``category_id`` (a class index) of
                every segment of the frame; ids absent from the map are dropped, an id of the
                map absent from the list is an error.

        Returns:
            str: the PNG's path.
        """
        video_id = str(video_id)
        where = f"video {video_id!r}, frame {frame_name!r}"
        ids = _as_numpy(panoptic_seg).astype(np.int64)
        present = set(np.unique(ids).tolist()) - {0}
        listed = {}
        for segment in segments_info:
            label = int(segment["category_id"])
            if not 0 <= label < len(self.class_to_category):
                raise ValueError(
                    f"Prediction of {where}: segment {segment['id']} has class {label}; the "
                    f"dataset has {len(self.class_to_category)} classes."
                )
            listed[int(segment["id"])] = self.class_to_category[label]
        unlisted = present - set(listed)
        if unlisted:
            raise ValueError(
                f"Prediction of {where}: segment ids {sorted(unlisted)[:10]} are in the map but "
                f"not in segments_info."
            )
        folder = os.path.join(self.png_root, video_id)
        os.makedirs(folder, exist_ok=True)
        png = _png_name(frame_name)
        path = os.path.join(folder, png)
        write_id_png(path, ids)
        self._videos.setdefault(video_id, []).append(
            {
                "file_name": png,
                "segments_info": [
                    {"id": sid, "category_id": listed[sid]} for sid in sorted(present)
                ],
            }
        )
        return path

    @property
    def frames(self) -> Dict[str, List[dict]]:
        """video id -> the ``pred.json`` entries of its frames written so far (a copy)."""
        return {video_id: list(frames) for video_id, frames in self._videos.items()}

    def add_frames(self, frames: Dict[str, List[dict]]) -> None:
        """Add ``pred.json`` entries of frames written elsewhere (another process of a
        distributed evaluation, into the same folder) before :meth:`close`."""
        for video_id, entries in frames.items():
            self._videos.setdefault(str(video_id), []).extend(entries)

    def close(self) -> str:
        """Write ``pred.json`` (atomically) for every frame written so far; returns its path."""
        data = {
            "annotations": [
                {"video_id": video_id, "annotations": frames}
                for video_id, frames in self._videos.items()
            ]
        }
        payload = json.dumps(data).encode()
        atomic_write(self.json_file, lambda f: f.write(payload))
        return self.json_file


def write_vss_prediction(
    out_dir: str, video_id: str, frame_name: str, sem_seg, num_classes: Optional[int] = None
) -> str:
    """Write one frame's class map as ``<out_dir>/<video_id>/<stem>.png`` (8-bit, atomic).

    Args:
        sem_seg: (H, W) class indices (tensor or array) in 0..K-1, K <= 255.
        num_classes (int, optional): K, checked when given.

    Returns:
        str: the PNG's path.
    """
    labels = _as_numpy(sem_seg)
    limit = 255 if num_classes is None else int(num_classes)
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= limit):
        raise ValueError(
            f"Prediction of video {video_id!r}, frame {frame_name!r}: class indices "
            f"{int(labels.min())}..{int(labels.max())}, expected 0..{limit - 1}."
        )
    folder = os.path.join(out_dir, str(video_id))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, _png_name(frame_name))
    image = Image.fromarray(labels.astype(np.uint8), mode="L")
    atomic_write(path, lambda f: image.save(f, format="PNG"))
    return path

"""Small hand-made YouTube-VIS datasets for the tests of the inspector, the split and the
visualiser (figures known by construction), and the synthetic set written to a folder."""

import json

import numpy as np
import pycocotools.mask as mask_util
from PIL import Image

from video_mask2former.data.synthetic import write_synthetic_ytvis

SIDE = 8  # frames of the hand-made video are SIDE x SIDE
FRAMES = 4


def rle(mask: np.ndarray) -> dict:
    encoded = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": encoded["size"], "counts": encoded["counts"].decode()}


def box_mask(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((SIDE, SIDE), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def tracks_dataset() -> dict:
    """Two videos of FRAMES SIDE x SIDE frames, categories "cat" (1), "dog" (2), "owl" (3):

    * video 1, annotation 10 (cat): 2x2 = 4 pixels in frames 0, 2, 3, absent (null) in frame 1:
      it leaves and re-enters (gap [1, 1]);
    * video 1, annotation 11 (dog): 3x3 in frames 0 and 1, then an all-empty RLE in frames 2
      and 3 (absent for the metric): it leaves and does not come back;
    * video 1, annotation 12 (cat, crowd) in frame 0;
    * video 2 has no annotation; "owl" has no instance.
    """
    small = rle(box_mask(0, 2, 0, 2))
    return {
        "videos": [
            {
                "id": vid,
                "height": SIDE,
                "width": SIDE,
                "length": FRAMES,
                "file_names": [f"v{vid}/{t:05d}.png" for t in range(FRAMES)],
            }
            for vid in (1, 2)
        ],
        "annotations": [
            {"id": 10, "video_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentations": [small, None, small, small]},
            {"id": 11, "video_id": 1, "category_id": 2, "iscrowd": 0,
             "segmentations": [rle(box_mask(4, 7, 4, 7))] * 2 + [rle(box_mask(0, 0, 0, 0))] * 2},
            {"id": 12, "video_id": 1, "category_id": 1, "iscrowd": 1,
             "segmentations": [small, None, None, None]},
        ],  # fmt: skip
        "categories": [
            {"id": 1, "name": "cat"},
            {"id": 2, "name": "dog"},
            {"id": 3, "name": "owl"},
        ],
    }


def write_dataset(folder, dataset: dict, *, with_frames: bool = True) -> tuple:
    """``folder/annotations.json`` and (``with_frames``) grey PNG frames of the videos' sizes
    under ``folder/frames``; returns (json path, image root) as str."""
    image_root = folder / "frames"
    for video in dataset["videos"] if with_frames else ():
        for name in video["file_names"]:
            path = image_root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (video["width"], video["height"]), (90, 90, 90)).save(path)
    json_file = folder / "annotations.json"
    json_file.write_text(json.dumps(dataset))
    return str(json_file), str(image_root)


def write_synthetic(folder, num_videos: int = 4) -> tuple:
    """The synthetic train split (num_videos videos of 3 frames, 32 x 40); (json, image root)."""
    written = write_synthetic_ytvis(
        str(folder), num_train_videos=num_videos, num_val_videos=1, num_frames=3, height=32,
        width=40,
    )  # fmt: skip
    image_root, json_file = written["train"]
    return json_file, image_root

"""Turn a video record (see ``ytvis.py``) into a model input: T frames and their instances.

Shapes: T frames of the clip, N instances of the clip, H x W the augmented frame size.

Training follows the official ``YTVISDatasetMapper``: sample T frames (``sampling.py``), augment
them (``augmentation.py``), and give every frame the same N instances (the non-crowd instances
present in any frame of the clip, sorted by id). An instance absent from a frame, or whose mask is
empty there after augmentation, has an empty mask, a zero box and id -1 in that frame. Unlike the
official mapper, its class stays its category in every frame (the official dummy uses
``num_classes``, which turns an instance absent from the frame the model reads classes from into a
"no object" target).

Test time yields every frame, resized, with no instances.

Frames are read by the strict :func:`~video_mask2former.data.frames.read_frame`: a frame that does
not decode completely (truncated, corrupt JPEG data) is an error naming the file, so the model is
never trained or evaluated on a damaged image.
"""

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..structures import FrameInstances
from .augmentation import ClipAugmentationList, TransformList
from .frames import IMAGE_FORMATS, read_frame
from .sampling import all_frames, sample_clip_frames
from .ytvis import decode_segmentation

__all__ = ["ClipDatasetMapper", "read_frame", "masks_to_boxes"]


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight XYXY boxes of (N, H, W) bool masks as (N, 4) float32; all zero for an empty mask.

    Like detectron2's ``BitMasks.get_bounding_boxes``: x1/y1 are one past the last pixel.
    """
    boxes = np.zeros((masks.shape[0], 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
        if len(cols):
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


class ClipDatasetMapper:
    """Callable mapping a video record to the model's input dict.

    Args:
        is_train (bool): sample a clip and produce instances (training), or every frame.
        augmentations (ClipAugmentationList): see ``build_clip_augmentation``.
        sampling_frame_num (int): T of a training clip (``INPUT.SAMPLING_FRAME_NUM``).
        sampling_frame_range (int): ``INPUT.SAMPLING_FRAME_RANGE``.
        sampling_frame_shuffle (bool): ``INPUT.SAMPLING_FRAME_SHUFFLE``.
        image_format (str): channel order of the output images, "RGB" or "BGR" (``INPUT.FORMAT``).

    Randomness comes from the ``rng`` passed to ``__call__``; without one, a generator is seeded
    from NumPy's global state, which detectron2 seeds per data-loader worker.
    """

    def __init__(
        self,
        *,
        is_train: bool,
        augmentations: ClipAugmentationList,
        sampling_frame_num: int = 2,
        sampling_frame_range: int = 20,
        sampling_frame_shuffle: bool = False,
        image_format: str = "RGB",
    ):
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}.")
        self.is_train = is_train
        self.augmentations = augmentations
        self.sampling_frame_num = sampling_frame_num
        self.sampling_frame_range = sampling_frame_range
        self.sampling_frame_shuffle = sampling_frame_shuffle
        self.image_format = image_format

    def select_frames(self, length: int, rng: np.random.Generator) -> List[int]:
        """Frame indices of the clip: a sampled clip when training, every frame at test time."""
        if not self.is_train:
            return all_frames(length)
        return sample_clip_frames(
            length,
            num_frames=self.sampling_frame_num,
            frame_range=self.sampling_frame_range,
            shuffle=self.sampling_frame_shuffle,
            rng=rng,
        )

    def has_annotations(self, record: dict) -> bool:
        """Whether the record carries ground truth this mapper turns into targets."""
        return record.get("annotations") is not None

    def _read_frames(self, record: dict, frame_idx: Sequence[int]) -> List[np.ndarray]:
        frames = []
        for i in frame_idx:
            file_name = record["file_names"][i]
            image = read_frame(file_name, self.image_format)
            if image.shape[:2] != (record["height"], record["width"]):
                raise ValueError(
                    f"Frame {file_name!r} of video {record['video_id']} is "
                    f"{image.shape[1]}x{image.shape[0]} (WxH), but the annotation file says "
                    f"{record['width']}x{record['height']}."
                )
            frames.append(image)
        return frames

    def __call__(self, record: dict, rng: Optional[np.random.Generator] = None) -> dict:
        """Map one video record.

        Returns:
            dict: ``image`` (T uint8 tensors (3, H, W)), ``instances`` (T FrameInstances with N
            instances each when training, empty at test time), ``height``, ``width`` (original
            size), ``length``, ``video_id``, ``file_names`` and ``frame_idx`` (of the T frames).
        """
        if rng is None:
            rng = np.random.default_rng(np.random.randint(np.iinfo(np.int64).max))
        frame_idx = self.select_frames(record["length"], rng)
        images, transforms = self.augmentations(self._read_frames(record, frame_idx), rng)
        instances = []
        if self.is_train and self.has_annotations(record):
            instances = self._clip_instances(record, frame_idx, images, transforms)
        chw = [np.ascontiguousarray(im.transpose(2, 0, 1)) for im in images]  # T x (3, H, W)
        return {
            "image": [torch.from_numpy(im) for im in chw],
            "instances": instances,
            "height": record["height"],
            "width": record["width"],
            "length": record["length"],
            "video_id": record["video_id"],
            "file_names": [record["file_names"][i] for i in frame_idx],
            "frame_idx": list(frame_idx),
        }

    def _clip_instances(
        self,
        record: dict,
        frame_idx: Sequence[int],
        images: Sequence[np.ndarray],
        transforms: Sequence[TransformList],
    ) -> List[FrameInstances]:
        """FrameInstances of the T frames, with the same N instances in every frame."""
        categories: Dict[int, int] = {}
        for i in frame_idx:
            for obj in record["annotations"][i]:
                if not obj.get("iscrowd", 0):
                    categories[obj["id"]] = obj["category_id"]
        ids = sorted(categories)
        slot = {inst_id: n for n, inst_id in enumerate(ids)}
        classes = torch.tensor([categories[i] for i in ids], dtype=torch.int64)
        height, width = record["height"], record["width"]

        out = []
        for i, image, transform in zip(frame_idx, images, transforms):
            masks = np.zeros((len(ids), height, width), dtype=bool)  # (N, H0, W0)
            for obj in record["annotations"][i]:
                if obj["id"] in slot:
                    masks[slot[obj["id"]]] = decode_segmentation(obj["segmentation"], height, width)
            masks = transform.apply_masks(masks)  # (N, H, W)
            present = masks.any(axis=(1, 2))
            gt_ids = [inst if ok else -1 for inst, ok in zip(ids, present)]
            out.append(
                FrameInstances(
                    image_size=tuple(image.shape[:2]),
                    gt_classes=classes.clone(),
                    gt_ids=torch.tensor(gt_ids, dtype=torch.int64),
                    gt_masks=torch.from_numpy(masks),
                    gt_boxes=torch.from_numpy(masks_to_boxes(masks)),
                )
            )
        return out

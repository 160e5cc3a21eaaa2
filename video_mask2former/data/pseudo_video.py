"""One annotated image -> a T-frame training clip (a "pseudo-video"), for joint training.

Shapes: T frames of the clip, N instances of the image, H0 x W0 the image, H x W a frame.

Each frame is the image under its own, independently drawn transform, so the objects move between
frames: a random crop (``INPUT.PSEUDO.CROP``, a new window per frame), a resize of the shorter
edge (``INPUT.PSEUDO.MIN_SIZE_TRAIN``; one length per frame for the "choice"/"range" styles, one
per clip for the "_by_clip" ones), the flip of ``INPUT.RANDOM_FLIP``, the colour augmentations
named in ``INPUT.PSEUDO.AUGMENTATIONS`` (per frame) and, when "rotation" is named, a rotation per
frame. The T rotation angles are drawn independently in +-15 degrees about one centre per clip and
then sorted (reversed with probability 1/2), so the image turns steadily through the clip, as in
the peers' ``RandomRotationClip`` (VITA, DVIS: ``dvis/data_video/augmentation.py``).

The output has the format of :class:`~video_mask2former.data.clip_mapper.ClipDatasetMapper`: T
images and T :class:`FrameInstances` with the same N instances (the non-crowd annotations, sorted
by annotation id) in every frame, each instance's mask being the image mask under that frame's
transform. An instance that the frame's crop (or rotation) leaves with an empty mask is absent
from that frame: empty mask, zero box, id -1; its class stays its category.

How the peers differ (VITA / GenVIS / DVIS ``build_pseudo_augmentation``): their crop and resize
are drawn once per clip (``clip_frame_cnt = SAMPLING_FRAME_NUM``) and applied with probability 1/2
after a resize to a 400-600 shorter edge, so their pseudo-videos move only by the rotation. Here
the crop window and (by default) the scale change per frame, which also makes objects leave the
frame; set ``INPUT.PSEUDO.CROP.ENABLED False`` and a ``*_by_clip`` sampling for the peers' milder
motion.
"""

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..structures import FrameInstances
from .augmentation import (
    ROTATION_ANGLE_RANGE,
    ROTATION_CENTER_RANGE,
    ClipAugmentationList,
    RotationTransform,
    TransformList,
    build_clip_augmentation,
)
from .clip_mapper import masks_to_boxes
from .frames import IMAGE_FORMATS, read_frame
from .ytvis import decode_segmentation

__all__ = ["PseudoVideoAugmentation", "PseudoVideoMapper", "build_pseudo_video_augmentation"]

# Probability that the sorted rotation angles run backwards (clockwise) through the clip.
_REVERSE_ROTATION_PROB = 0.5
PSEUDO_AUGMENTATIONS = ("brightness", "contrast", "saturation", "rotation")
# Defaults of the INPUT.PSEUDO keys (config.py): the values of every VITA YouTube-VIS / OVIS config
# (configs/*/vita_*_bs8.yaml, INPUT.PSEUDO), except the sampling, which is per frame here.
DEFAULT_MIN_SIZE_TRAIN = (288, 320, 352, 384, 416, 448, 480, 512)
DEFAULT_MAX_SIZE_TRAIN = 768
DEFAULT_CROP_TYPE = "absolute_range"
DEFAULT_CROP_SIZE = (384, 600)


class PseudoVideoAugmentation:
    """Turns one image into T frames, each under its own transform.

    Args:
        frame_augmentations (ClipAugmentationList): crop / resize / flip / colour augmentations;
            those with ``by_clip`` False draw new parameters for every frame.
        rotation_range (tuple, optional): (min, max) degrees of the per-frame rotation; None
            rotates nothing.
        rotation_center_range (tuple): ((x0, y0), (x1, y1)) relative box the clip's rotation
            centre is drawn in.
    """

    def __init__(
        self,
        frame_augmentations: ClipAugmentationList,
        *,
        rotation_range: Optional[Tuple[float, float]] = ROTATION_ANGLE_RANGE,
        rotation_center_range=ROTATION_CENTER_RANGE,
    ):
        self.frame_augmentations = frame_augmentations
        self.rotation_range = rotation_range
        self.rotation_center_range = rotation_center_range

    def rotation_angles(self, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        """T angles in degrees, drawn independently, then sorted in one direction."""
        angles = np.sort(rng.uniform(*self.rotation_range, size=num_frames))
        return angles[::-1] if rng.random() < _REVERSE_ROTATION_PROB else angles

    def __call__(
        self, image: np.ndarray, num_frames: int, rng: np.random.Generator
    ) -> Tuple[List[np.ndarray], List[TransformList]]:
        """T frames of ``image`` (H0, W0, 3) and, per frame, the transform that made it."""
        frames, transforms = self.frame_augmentations([image] * num_frames, rng)
        if self.rotation_range is None:
            return frames, transforms
        angles = self.rotation_angles(num_frames, rng)
        (cx0, cy0), (cx1, cy1) = self.rotation_center_range
        cx, cy = rng.uniform(cx0, cx1), rng.uniform(cy0, cy1)
        for t, angle in enumerate(angles):
            h, w = frames[t].shape[:2]
            rotation = RotationTransform(h, w, float(angle), (w * cx, h * cy))
            frames[t] = rotation.apply_image(frames[t])
            transforms[t] = TransformList(transforms[t].transforms + [rotation])
        return frames, transforms

    def __repr__(self):
        return (
            f"PseudoVideoAugmentation({self.frame_augmentations}, "
            f"rotation_range={self.rotation_range})"
        )


def build_pseudo_video_augmentation(
    *,
    min_size_train: Sequence[int] = DEFAULT_MIN_SIZE_TRAIN,
    max_size_train: int = DEFAULT_MAX_SIZE_TRAIN,
    min_size_train_sampling: str = "choice",
    random_flip: str = "flip_by_clip",
    crop_enabled: bool = True,
    crop_type: str = DEFAULT_CROP_TYPE,
    crop_size: Sequence[float] = DEFAULT_CROP_SIZE,
    augmentations: Sequence[str] = ("rotation",),
) -> PseudoVideoAugmentation:
    """The pseudo-video augmentation; arguments are the ``cfg.INPUT.PSEUDO`` keys of the same name
    (``random_flip`` is ``cfg.INPUT.RANDOM_FLIP``). Order: crop -> resize -> flip -> colour ->
    rotation, as the clip augmentations of ``augmentation.build_clip_augmentation``.
    """
    unknown = [a for a in augmentations if a not in PSEUDO_AUGMENTATIONS]
    if unknown:
        raise ValueError(
            f"Unknown INPUT.PSEUDO.AUGMENTATIONS {unknown}; "
            f"expected some of {PSEUDO_AUGMENTATIONS}."
        )
    frame_augmentations = build_clip_augmentation(
        is_train=True,
        min_size_train=min_size_train,
        max_size_train=max_size_train,
        min_size_train_sampling=min_size_train_sampling,
        random_flip=random_flip,
        crop_enabled=crop_enabled,
        crop_type=crop_type,
        crop_size=crop_size,
        augmentations=[a for a in augmentations if a != "rotation"],
    )
    rotation = ROTATION_ANGLE_RANGE if "rotation" in augmentations else None
    return PseudoVideoAugmentation(frame_augmentations, rotation_range=rotation)


class PseudoVideoMapper:
    """Callable mapping an image record (``coco_images.py``) to a training clip of T frames.

    Args:
        augmentation (PseudoVideoAugmentation): see :func:`build_pseudo_video_augmentation`.
        num_frames (int): T (``INPUT.SAMPLING_FRAME_NUM``, as the video clips it is mixed with).
        image_format (str): channel order of the output images, "RGB" or "BGR" (``INPUT.FORMAT``).

    Randomness comes from the ``rng`` passed to ``__call__``; without one, a generator is seeded
    from NumPy's global state, which detectron2 seeds per data-loader worker.
    """

    def __init__(
        self,
        *,
        augmentation: PseudoVideoAugmentation,
        num_frames: int = 2,
        image_format: str = "RGB",
    ):
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}.")
        if num_frames < 1:
            raise ValueError(
                f"num_frames (INPUT.SAMPLING_FRAME_NUM) must be >= 1, got {num_frames}."
            )
        self.augmentation = augmentation
        self.num_frames = num_frames
        self.image_format = image_format

    def _read_image(self, record: dict) -> np.ndarray:
        file_name = record["file_name"]
        try:
            image = read_frame(file_name, self.image_format)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"Image {file_name!r} (image id {record['image_id']}) does not exist: check the "
                f"image folder the dataset was registered with."
            ) from None
        if image.shape[:2] != (record["height"], record["width"]):
            raise ValueError(
                f"Image {file_name!r} (image id {record['image_id']}) is "
                f"{image.shape[1]}x{image.shape[0]} (WxH), but the annotation file says "
                f"{record['width']}x{record['height']}."
            )
        return image

    def _image_instances(self, record: dict) -> Tuple[List[int], torch.Tensor, np.ndarray]:
        """Instance ids (sorted), classes (N,) and masks (N, H0, W0) of the non-crowd objects."""
        objs = sorted(
            (obj for obj in record["annotations"] if not obj.get("iscrowd", 0)),
            key=lambda obj: obj["id"],
        )
        ids = [obj["id"] for obj in objs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"Image {record['image_id']}: annotation ids {ids} are not unique.")
        height, width = record["height"], record["width"]
        masks = np.zeros((len(objs), height, width), dtype=bool)  # (N, H0, W0)
        for n, obj in enumerate(objs):
            masks[n] = decode_segmentation(obj["segmentation"], height, width)
        classes = torch.tensor([obj["category_id"] for obj in objs], dtype=torch.int64)
        return ids, classes, masks

    def __call__(self, record: dict, rng: Optional[np.random.Generator] = None) -> dict:
        """Map one image record.

        Returns:
            dict: ``image`` (T uint8 tensors (3, H, W)), ``instances`` (T FrameInstances with N
            instances each), ``height``, ``width`` (of the image), ``length`` (T), ``video_id``
            (the image id), ``file_names`` (the image T times) and ``frame_idx`` (0..T-1).
        """
        if rng is None:
            rng = np.random.default_rng(np.random.randint(np.iinfo(np.int64).max))
        image = self._read_image(record)
        ids, classes, image_masks = self._image_instances(record)
        frames, transforms = self.augmentation(image, self.num_frames, rng)
        instances = []
        for frame, transform in zip(frames, transforms):
            masks = transform.apply_masks(image_masks)  # (N, H, W)
            present = masks.any(axis=(1, 2))
            gt_ids = [inst if ok else -1 for inst, ok in zip(ids, present)]
            instances.append(
                FrameInstances(
                    image_size=tuple(frame.shape[:2]),
                    gt_classes=classes.clone(),
                    gt_ids=torch.tensor(gt_ids, dtype=torch.int64),
                    gt_masks=torch.from_numpy(masks),
                    gt_boxes=torch.from_numpy(masks_to_boxes(masks)),
                )
            )
        chw = [np.ascontiguousarray(f.transpose(2, 0, 1)) for f in frames]  # T x (3, H, W)
        return {
            "image": [torch.from_numpy(f) for f in chw],
            "instances": instances,
            "height": record["height"],
            "width": record["width"],
            "length": self.num_frames,
            "video_id": record["image_id"],
            "file_names": [record["file_name"]] * self.num_frames,
            "frame_idx": list(range(self.num_frames)),
        }

"""Clip augmentations: resize, flip, crop, colour and rotation applied to the T frames of a clip.

Frames are (H, W, 3) uint8 arrays; masks are (N, H, W) bool arrays. The semantics follow
detectron2's augmentations as the official video configs use them (``augmentation_impl.py`` and
``mask2former_video/data_video/augmentation.py``):

- Each augmentation draws its random parameters once per clip when ``by_clip`` is true, else once
  per frame. Officially only the resize (``MIN_SIZE_TRAIN_SAMPLING`` ``*_by_clip``) and the flip
  (``RANDOM_FLIP == "flip_by_clip"``) are per clip; crop, colour and rotation are drawn per frame.
- Parameters are drawn independently of the frame size and turned into a :class:`Transform` per
  frame, so a per-clip resize on frames of different sizes (after a per-frame crop) uses the same
  shortest edge, like the official one.
- Images are resized bilinearly with PIL and masks with PIL's nearest neighbour (as detectron2);
  colour transforms leave masks unchanged.
- The transforms (:mod:`.transforms`, re-exported here) are ``fvcore.transforms`` ones (the
  flips, the crop, the blend, :class:`TransformList`), each given ``apply_masks``; the resize and
  the rotation are this library's, for parity with detectron2's.
"""

import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .transforms import (
    BlendTransform,
    CropTransform,
    HFlipTransform,
    ResizeTransform,
    RotationTransform,
    Transform,
    TransformList,
    VFlipTransform,
)

__all__ = [
    "Transform",
    "TransformList",
    "ResizeTransform",
    "HFlipTransform",
    "VFlipTransform",
    "CropTransform",
    "BlendTransform",
    "RotationTransform",
    "ClipAugmentation",
    "ResizeShortestEdge",
    "RandomFlip",
    "RandomCrop",
    "RandomBrightness",
    "RandomContrast",
    "RandomSaturation",
    "RandomRotation",
    "ClipAugmentationList",
    "build_clip_augmentation",
]

# Official ``INPUT.AUGMENTATIONS`` settings (mask2former_video/data_video/augmentation.py).
COLOR_INTENSITY_RANGE = (0.9, 1.1)  # brightness / contrast / saturation blend weights
ROTATION_ANGLE_RANGE = (-15.0, 15.0)  # degrees, counter-clockwise
ROTATION_CENTER_RANGE = ((0.4, 0.4), (0.6, 0.6))  # relative (x, y) box of the rotation centre
# detectron2's default INPUT.MAX_SIZE_TRAIN / MAX_SIZE_TEST.
DEFAULT_MAX_SIZE = 1333


# ---------------------------------------------------------------------------------------------
# Random augmentations: draw parameters (per clip or per frame), then build a Transform per frame
# ---------------------------------------------------------------------------------------------
class ClipAugmentation:
    """Base class. ``sample`` draws size-independent parameters; ``get_transform`` turns them into
    a transform of a frame of size (h, w), or None for the identity."""

    by_clip: bool = False

    def sample(self, rng: np.random.Generator):
        raise NotImplementedError

    def get_transform(self, params, h: int, w: int) -> Optional[Transform]:
        raise NotImplementedError


class ResizeShortestEdge(ClipAugmentation):
    """Resize the shorter edge to a drawn length, the longer one to at most ``max_size``.

    Args:
        short_edge_length (int or sequence): ``[min, max]`` for the range styles, the lengths to
            choose from for the choice styles. A drawn length of 0 means no resize.
        max_size (int): limit of the longer edge.
        sample_style (str): ``"range"``/``"choice"`` (per frame) or ``"range_by_clip"`` /
            ``"choice_by_clip"`` (one length per clip), as ``INPUT.MIN_SIZE_TRAIN_SAMPLING``.
    """

    STYLES = ("range", "choice", "range_by_clip", "choice_by_clip")

    def __init__(self, *, short_edge_length, max_size: int = sys.maxsize, sample_style="choice"):
        if sample_style not in self.STYLES:
            raise ValueError(f"sample_style must be one of {self.STYLES}, got {sample_style!r}.")
        if isinstance(short_edge_length, int):
            short_edge_length = (short_edge_length, short_edge_length)
        self.short_edge_length = [int(v) for v in short_edge_length]
        self.is_range = sample_style.startswith("range")
        if self.is_range and len(self.short_edge_length) != 2:
            raise ValueError(
                f"sample_style {sample_style!r} needs short_edge_length [min, max], "
                f"got {short_edge_length}."
            )
        self.max_size = max_size
        self.by_clip = sample_style.endswith("_by_clip")

    def sample(self, rng):
        if self.is_range:
            return int(rng.integers(self.short_edge_length[0], self.short_edge_length[1] + 1))
        return int(rng.choice(self.short_edge_length))

    def get_transform(self, size, h, w):
        if size == 0:
            return None
        new_h, new_w = resized_shape(h, w, size, self.max_size)
        return ResizeTransform(h, w, new_h, new_w)


def resized_shape(h: int, w: int, short_edge: int, max_size: int) -> Tuple[int, int]:
    """(new_h, new_w) with the shorter edge ``short_edge`` and the longer at most ``max_size``."""
    scale = short_edge / min(h, w)
    new_h, new_w = (short_edge, scale * w) if h < w else (scale * h, short_edge)
    if max(new_h, new_w) > max_size:
        shrink = max_size / max(new_h, new_w)
        new_h, new_w = new_h * shrink, new_w * shrink
    return int(new_h + 0.5), int(new_w + 0.5)


class RandomFlip(ClipAugmentation):
    """Flip with probability ``prob``, horizontally or vertically (exactly one of them)."""

    def __init__(self, *, prob=0.5, horizontal=True, vertical=False, by_clip=True):
        if horizontal == vertical:
            raise ValueError("RandomFlip needs exactly one of horizontal / vertical.")
        self.prob, self.horizontal, self.by_clip = prob, horizontal, by_clip

    def sample(self, rng):
        return bool(rng.random() < self.prob)

    def get_transform(self, do_flip, h, w):
        if not do_flip:
            return None
        return HFlipTransform(w) if self.horizontal else VFlipTransform(h)


class RandomCrop(ClipAugmentation):
    """detectron2's ``RandomCrop`` types (``INPUT.CROP.TYPE`` / ``INPUT.CROP.SIZE``):

    - ``"relative"``: crop (H * size[0], W * size[1]);
    - ``"relative_range"``: fractions drawn in [size[0], 1] and [size[1], 1];
    - ``"absolute"``: crop (min(size[0], H), min(size[1], W));
    - ``"absolute_range"``: H_crop in [min(H, size[0]), min(H, size[1])], W_crop likewise.
    """

    TYPES = ("relative", "relative_range", "absolute", "absolute_range")

    def __init__(self, *, crop_type: str, crop_size: Sequence[float], by_clip: bool = False):
        if crop_type not in self.TYPES:
            raise ValueError(f"crop_type must be one of {self.TYPES}, got {crop_type!r}.")
        if crop_type == "absolute_range" and crop_size[0] > crop_size[1]:
            raise ValueError(f"absolute_range crop_size must be (min, max), got {crop_size}.")
        self.crop_type, self.crop_size, self.by_clip = crop_type, tuple(crop_size), by_clip

    def sample(self, rng):
        return rng.random(4)  # two for the crop size, two for its position

    def _crop_size(self, u, h, w) -> Tuple[int, int]:
        c0, c1 = self.crop_size
        if self.crop_type == "relative":
            return int(h * c0 + 0.5), int(w * c1 + 0.5)
        if self.crop_type == "relative_range":
            ch, cw = c0 + u[0] * (1 - c0), c1 + u[1] * (1 - c1)
            return int(h * ch + 0.5), int(w * cw + 0.5)
        if self.crop_type == "absolute":
            return min(int(c0), h), min(int(c1), w)
        lo_h, hi_h = min(h, int(c0)), min(h, int(c1))
        lo_w, hi_w = min(w, int(c0)), min(w, int(c1))
        return lo_h + int(u[0] * (hi_h - lo_h + 1)), lo_w + int(u[1] * (hi_w - lo_w + 1))

    def get_transform(self, u, h, w):
        ch, cw = self._crop_size(u, h, w)
        y0, x0 = int(u[2] * (h - ch + 1)), int(u[3] * (w - cw + 1))
        return CropTransform(x0, y0, cw, ch, orig_w=w, orig_h=h)


class _RandomBlend(ClipAugmentation):
    kind = ""

    def __init__(
        self,
        *,
        intensity_min: float = COLOR_INTENSITY_RANGE[0],
        intensity_max: float = COLOR_INTENSITY_RANGE[1],
        by_clip: bool = False,
    ):
        self.low, self.high, self.by_clip = intensity_min, intensity_max, by_clip

    def sample(self, rng):
        return float(rng.uniform(self.low, self.high))

    def get_transform(self, weight, h, w):
        return BlendTransform(self.kind, weight)


class RandomBrightness(_RandomBlend):
    """Scale intensities by a weight drawn in [intensity_min, intensity_max]."""

    kind = "brightness"


class RandomContrast(_RandomBlend):
    """Blend with the image mean by a weight drawn in [intensity_min, intensity_max]."""

    kind = "contrast"


class RandomSaturation(_RandomBlend):
    """Blend with the grayscale image (RGB input) by a weight drawn in the range."""

    kind = "saturation"


class RandomRotation(ClipAugmentation):
    """Rotate by an angle drawn in ``angle_range`` about a centre drawn in ``center_range``
    (relative coordinates), keeping the frame size."""

    def __init__(
        self,
        *,
        angle_range=ROTATION_ANGLE_RANGE,
        center_range=ROTATION_CENTER_RANGE,
        by_clip=False,
    ):
        self.angle_range, self.center_range, self.by_clip = angle_range, center_range, by_clip

    def sample(self, rng):
        (cx0, cy0), (cx1, cy1) = self.center_range
        angle = rng.uniform(*self.angle_range)
        return float(angle), (float(rng.uniform(cx0, cx1)), float(rng.uniform(cy0, cy1)))

    def get_transform(self, params, h, w):
        angle, (cx, cy) = params
        if angle % 360 == 0:
            return None
        return RotationTransform(h, w, angle, (w * cx, h * cy))


class ClipAugmentationList:
    """Apply augmentations in order to the frames of a clip.

    Args:
        augmentations (list[ClipAugmentation]): applied in order; each sees the output of the
            previous ones.
    """

    def __init__(self, augmentations: Sequence[ClipAugmentation]):
        self.augmentations = list(augmentations)

    def __call__(
        self, images: Sequence[np.ndarray], rng: np.random.Generator
    ) -> Tuple[List[np.ndarray], List[TransformList]]:
        """Augment T frames.

        Args:
            images: T (H, W, 3) uint8 frames.
            rng: source of randomness.

        Returns:
            (images, transforms): the T augmented frames and, per frame, the transform that was
            applied (use ``transforms[t].apply_masks`` on that frame's (N, H, W) masks).
        """
        images = list(images)
        transforms: List[List[Transform]] = [[] for _ in images]
        for aug in self.augmentations:
            clip_params = aug.sample(rng) if aug.by_clip else None
            for t, image in enumerate(images):
                params = clip_params if aug.by_clip else aug.sample(rng)
                transform = aug.get_transform(params, *image.shape[:2])
                if transform is not None:
                    images[t] = transform.apply_image(image)
                    transforms[t].append(transform)
        return images, [TransformList(ts) for ts in transforms]

    def __repr__(self):
        return f"ClipAugmentationList({[type(a).__name__ for a in self.augmentations]})"


def build_clip_augmentation(
    *,
    is_train: bool,
    min_size_train: Sequence[int] = (360, 480),
    max_size_train: int = DEFAULT_MAX_SIZE,
    min_size_train_sampling: str = "choice_by_clip",
    random_flip: str = "flip_by_clip",
    crop_enabled: bool = False,
    crop_type: str = "absolute_range",
    crop_size: Sequence[float] = (600, 720),
    augmentations: Sequence[str] = (),
    min_size_test: int = 360,
    max_size_test: int = DEFAULT_MAX_SIZE,
) -> ClipAugmentationList:
    """The official augmentation pipeline; arguments are the ``cfg.INPUT`` keys of the same name.

    Training: crop (per frame) -> shortest-edge resize -> flip -> brightness -> contrast ->
    saturation -> rotation (``augmentations`` picks the last four; all per frame). Test: resize
    the shortest edge to ``min_size_test``. Defaults are those of the YouTube-VIS 2019 configs.

    Args:
        random_flip (str): ``"none"``, ``"flip_by_clip"`` (horizontal, one draw per clip),
            ``"horizontal"`` or ``"vertical"`` (one draw per frame).
    """
    if not is_train:
        return ClipAugmentationList(
            [ResizeShortestEdge(short_edge_length=min_size_test, max_size=max_size_test)]
        )
    augs: List[ClipAugmentation] = []
    if crop_enabled:
        augs.append(RandomCrop(crop_type=crop_type, crop_size=crop_size))
    augs.append(
        ResizeShortestEdge(
            short_edge_length=min_size_train,
            max_size=max_size_train,
            sample_style=min_size_train_sampling,
        )
    )
    flip_modes = ("none", "flip_by_clip", "horizontal", "vertical")
    if random_flip not in flip_modes:
        raise ValueError(f"random_flip must be one of {flip_modes}, got {random_flip!r}.")
    if random_flip != "none":
        augs.append(
            RandomFlip(
                horizontal=random_flip != "vertical",
                vertical=random_flip == "vertical",
                by_clip=random_flip == "flip_by_clip",
            )
        )
    known = ("brightness", "contrast", "saturation", "rotation")
    unknown = [a for a in augmentations if a not in known]
    if unknown:
        raise ValueError(f"Unknown INPUT.AUGMENTATIONS {unknown}; expected some of {known}.")
    for name, cls in (
        ("brightness", RandomBrightness),
        ("contrast", RandomContrast),
        ("saturation", RandomSaturation),
    ):
        if name in augmentations:
            augs.append(cls())
    if "rotation" in augmentations:
        augs.append(RandomRotation())
    return ClipAugmentationList(augs)

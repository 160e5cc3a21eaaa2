"""Deterministic transforms of one frame and its masks, for the clip augmentations.

Frames are (H, W, 3) uint8 arrays; masks are (N, H, W) bool arrays; coordinates (K, 2) float
(x, y). The transforms follow fvcore's protocol (:class:`Transform`, :class:`TransformList`,
``apply_coords``, ``inverse``), each with an ``apply_masks`` (a :class:`TransformList` forwards
any ``apply_*`` call to its transforms in order). The flips, the crop and the blend are fvcore's;
the resize and the rotation are this module's, for parity with detectron2's (see their
docstrings).
"""

from typing import Tuple

import cv2
import numpy as np
from fvcore.transforms import transform as fvt
from fvcore.transforms.transform import Transform, TransformList
from PIL import Image

__all__ = [
    "Transform",
    "TransformList",
    "ResizeTransform",
    "HFlipTransform",
    "VFlipTransform",
    "CropTransform",
    "BlendTransform",
    "RotationTransform",
]

# ITU-R 601 luma weights of detectron2's RandomSaturation (for RGB input).
_RGB_TO_GRAY = np.array([0.299, 0.587, 0.114])


class HFlipTransform(fvt.HFlipTransform):
    """fvcore's left-right flip of a frame of width ``width``, with ``apply_masks``."""

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        """(H, W, 3) -> (H, W, 3). fvcore's result is a negative-stride view, which
        ``torch.from_numpy`` rejects; it is copied to a contiguous array."""
        return np.ascontiguousarray(super().apply_image(img))

    def apply_masks(self, masks: np.ndarray) -> np.ndarray:
        """(N, H, W) bool -> (N, H, W) bool."""
        return np.ascontiguousarray(masks[:, :, ::-1])


class VFlipTransform(fvt.VFlipTransform):
    """fvcore's up-down flip of a frame of height ``height``, with ``apply_masks``."""

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        """(H, W, 3) -> (H, W, 3). fvcore's flips through ``torch.from_numpy``, which warns on
        the read-only arrays that the PIL resize returns; NumPy gives the same pixels."""
        return np.ascontiguousarray(img[::-1])

    def apply_masks(self, masks: np.ndarray) -> np.ndarray:
        """(N, H, W) bool -> (N, H, W) bool."""
        return np.ascontiguousarray(masks[:, ::-1])


class CropTransform(fvt.CropTransform):
    """fvcore's crop ``[y0 : y0 + h, x0 : x0 + w]`` of a frame, with ``apply_masks``.

    Args:
        x0, y0 (int): top-left corner.
        w, h (int): size of the window.
        orig_w, orig_h (int, optional): frame size (makes the transform invertible).
    """

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        """(H, W, 3) -> (h, w, 3), a copy (fvcore's is a view into the input frame)."""
        return super().apply_image(img).copy()

    def apply_masks(self, masks: np.ndarray) -> np.ndarray:
        """(N, H, W) bool -> (N, h, w) bool."""
        return masks[:, self.y0 : self.y0 + self.h, self.x0 : self.x0 + self.w].copy()


class ResizeTransform(Transform):
    """Resize (h, w) -> (new_h, new_w): bilinear for images, nearest for masks (PIL).

    Kept instead of fvcore's ``ScaleTransform`` for parity with the official augmentation:
    detectron2's ``ResizeTransform`` resizes with PIL (which smooths when it shrinks), fvcore's
    with ``torch.nn.functional.interpolate``, whose pixels differ.
    """

    def __init__(self, h: int, w: int, new_h: int, new_w: int):
        super().__init__()
        self.h, self.w, self.new_h, self.new_w = h, w, new_h, new_w

    def _check(self, shape: Tuple[int, int]):
        if tuple(shape) != (self.h, self.w):
            raise ValueError(f"ResizeTransform for {(self.h, self.w)} applied to size {shape}.")

    def apply_image(self, image):
        """(h, w, 3) uint8 -> (new_h, new_w, 3) uint8."""
        self._check(image.shape[:2])
        resized = Image.fromarray(image).resize((self.new_w, self.new_h), Image.BILINEAR)
        return np.asarray(resized)

    def apply_masks(self, masks):
        """(N, h, w) bool -> (N, new_h, new_w) bool."""
        self._check(masks.shape[1:])
        out = np.zeros((masks.shape[0], self.new_h, self.new_w), dtype=bool)
        for i, mask in enumerate(masks):
            pil = Image.fromarray(mask.astype(np.uint8))
            out[i] = np.asarray(pil.resize((self.new_w, self.new_h), Image.NEAREST)) > 0
        return out

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        """(K, 2) float (x, y) -> (K, 2), scaled with the frame."""
        coords = np.array(coords, dtype=np.float64)
        coords[:, 0] *= self.new_w / self.w
        coords[:, 1] *= self.new_h / self.h
        return coords

    def inverse(self) -> "ResizeTransform":
        return ResizeTransform(self.new_h, self.new_w, self.h, self.w)

    def __repr__(self):
        return f"ResizeTransform({self.h}x{self.w} -> {self.new_h}x{self.new_w})"


class BlendTransform(Transform):
    """``weight * image + (1 - weight) * source`` with source 0 (brightness), the image mean
    (contrast) or its grayscale (saturation); masks are unchanged.

    The blend itself is fvcore's ``BlendTransform``; this class computes its source from the frame
    it is applied to. The source is computed in float32 (the official augmentation, detectron2's
    ``RandomContrast`` / ``RandomSaturation``, computes it from the uint8 frame in float64, which
    can round a pixel differently); kept so that the outputs stay those of this library.
    """

    KINDS = ("brightness", "contrast", "saturation")

    def __init__(self, kind: str, weight: float):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"BlendTransform kind must be one of {self.KINDS}, got {kind!r}.")
        self.kind, self.weight = kind, float(weight)

    def _source(self, image: np.ndarray):
        if self.kind == "brightness":
            return 0.0
        img = image.astype(np.float32)
        if self.kind == "contrast":
            return img.mean()
        return img.dot(_RGB_TO_GRAY).astype(np.float32)[:, :, None]

    def apply_image(self, image):
        """(H, W, 3) uint8 -> (H, W, 3) uint8."""
        blend = fvt.BlendTransform(self._source(image), 1.0 - self.weight, self.weight)
        return blend.apply_image(image)

    def apply_masks(self, masks):
        return masks

    def apply_coords(self, coords):
        return coords

    def inverse(self) -> Transform:
        """A colour change moves no coordinate: the identity (as fvcore's)."""
        return fvt.NoOpTransform()

    def __repr__(self):
        return f"BlendTransform({self.kind}, {self.weight:.3f})"


class RotationTransform(Transform):
    """Rotate counter-clockwise by ``angle`` degrees about ``center`` (x, y) in pixels, keeping
    the frame size (detectron2's ``expand=False``); bilinear for images, nearest for masks.

    fvcore has no rotation (detectron2's ``RotationTransform`` is in detectron2, which the core
    does not import); this one follows detectron2's, for parity with the official augmentation.
    """

    def __init__(self, h: int, w: int, angle: float, center: Tuple[float, float]):
        super().__init__()
        self.h, self.w, self.angle = h, w, float(angle)
        self.center = (float(center[0]), float(center[1]))
        # -0.5: OpenCV's pixel-centre convention, as detectron2 (opencv/opencv#11784).
        self.matrix = cv2.getRotationMatrix2D((center[0] - 0.5, center[1] - 0.5), self.angle, 1)

    def _warp(self, array: np.ndarray, interp: int) -> np.ndarray:
        return cv2.warpAffine(array, self.matrix, (self.w, self.h), flags=interp)

    def apply_image(self, image):
        """(H, W, 3) uint8 -> (H, W, 3) uint8."""
        return self._warp(image, cv2.INTER_LINEAR)

    def apply_masks(self, masks):
        """(N, H, W) bool -> (N, H, W) bool."""
        out = np.zeros_like(masks)
        for i, mask in enumerate(masks):
            out[i] = self._warp(mask.astype(np.uint8), cv2.INTER_NEAREST) > 0
        return out

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        """(K, 2) float (x, y) -> (K, 2), rotated about ``center`` (continuous coordinates, no
        pixel-centre offset, as detectron2's)."""
        coords = np.array(coords, dtype=np.float64).reshape(-1, 2)
        matrix = cv2.getRotationMatrix2D(self.center, self.angle, 1)
        return coords @ matrix[:, :2].T + matrix[:, 2]

    def __repr__(self):
        return f"RotationTransform(angle={self.angle:.2f})"

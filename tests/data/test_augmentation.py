"""Clip-consistent augmentation: same resize / flip per clip, masks follow the image."""

import numpy as np
import pytest

from video_mask2former.data.augmentation import (
    BlendTransform,
    ClipAugmentationList,
    RandomCrop,
    RandomFlip,
    ResizeShortestEdge,
    build_clip_augmentation,
    resized_shape,
)

RED = (255, 0, 0)


def _frames(t=3, h=32, w=48):
    """T frames with a red square at rows 8..15, cols 4..13 over a dark gradient; and its mask."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 2] = np.linspace(0, 90, w, dtype=np.uint8)[None]
    img[8:16, 4:14] = RED
    mask = np.zeros((1, h, w), dtype=bool)
    mask[0, 8:16, 4:14] = True
    return [img.copy() for _ in range(t)], mask


def _is_red(image):
    return (image[..., 0] > 150) & (image[..., 1] < 100)


def test_resized_shape():
    assert resized_shape(32, 48, 64, 10_000) == (64, 96)
    assert resized_shape(48, 32, 64, 10_000) == (96, 64)
    assert resized_shape(32, 48, 64, 80) == (53, 80)  # longer edge capped


def test_by_clip_resize_and_flip_are_shared_by_all_frames():
    aug = build_clip_augmentation(is_train=True, min_size_train=(16, 24, 40, 64))
    flips = set()
    for seed in range(30):
        frames, _ = _frames()
        out, _ = aug(frames, np.random.default_rng(seed))
        assert len({o.shape for o in out}) == 1
        assert all(np.array_equal(out[0], o) for o in out[1:])  # same flip, same size
        flips.add(bool(_is_red(out[0])[:, : out[0].shape[1] // 2].any()))
    assert flips == {True, False}  # both outcomes happen across clips


def test_per_frame_modes_draw_per_frame():
    aug = ClipAugmentationList(
        [ResizeShortestEdge(short_edge_length=(16, 64), sample_style="range"),
         RandomFlip(horizontal=True, by_clip=False)]
    )  # fmt: skip
    frames, _ = _frames(t=6)
    out, _ = aug(frames, np.random.default_rng(0))
    assert len({o.shape for o in out}) > 1


@pytest.mark.parametrize("random_flip", ["flip_by_clip", "horizontal", "vertical"])
@pytest.mark.parametrize("extra", [[], ["brightness", "contrast", "saturation", "rotation"]])
def test_masks_follow_the_image(random_flip, extra):
    aug = build_clip_augmentation(
        is_train=True, min_size_train=(40, 64), min_size_train_sampling="choice",
        random_flip=random_flip, crop_enabled=True, crop_type="relative_range",
        crop_size=(0.8, 0.8), augmentations=extra,
    )  # fmt: skip
    for seed in range(10):
        frames, mask = _frames()
        out, transforms = aug(frames, np.random.default_rng(seed))
        for image, transform in zip(out, transforms):
            m = transform.apply_masks(mask)[0]
            assert m.shape == image.shape[:2]
            red = _is_red(image)
            # Nearest (masks) and bilinear (image) differ on the square's border only.
            assert m.sum() > 0 and (red & m).sum() / (red | m).sum() > 0.6


def test_vertical_flip_moves_the_square_down():
    frames, mask = _frames(t=1)
    aug = ClipAugmentationList([RandomFlip(prob=1.0, horizontal=False, vertical=True)])
    out, transforms = aug(frames, np.random.default_rng(0))
    rows = np.flatnonzero(transforms[0].apply_masks(mask)[0].any(axis=1))
    assert (rows.min(), rows.max()) == (32 - 16, 32 - 9)
    assert _is_red(out[0])[rows].any(axis=1).all()


@pytest.mark.parametrize(
    "crop_type, crop_size, check",
    [
        ("absolute", (20, 30), lambda h, w: (h, w) == (20, 30)),
        ("absolute_range", (10, 25), lambda h, w: 10 <= h <= 25 and 10 <= w <= 25),
        ("relative", (0.5, 0.25), lambda h, w: (h, w) == (16, 12)),
        ("relative_range", (0.5, 0.5), lambda h, w: 16 <= h <= 32 and 24 <= w <= 48),
    ],
)
def test_crop_types(crop_type, crop_size, check):
    aug = ClipAugmentationList([RandomCrop(crop_type=crop_type, crop_size=crop_size)])
    for seed in range(20):
        frames, mask = _frames(t=2)
        out, transforms = aug(frames, np.random.default_rng(seed))
        for image, transform in zip(out, transforms):
            assert check(*image.shape[:2])
            assert transform.apply_masks(mask).shape[1:] == image.shape[:2]


def test_clip_crop_option_is_shared():
    crop = RandomCrop(crop_type="relative_range", crop_size=(0.5, 0.5), by_clip=True)
    aug = ClipAugmentationList([crop])
    frames, _ = _frames(t=4)
    out, _ = aug(frames, np.random.default_rng(1))
    assert all(np.array_equal(out[0], o) for o in out[1:])


def test_colour_transforms():
    frames, mask = _frames(t=1)
    image = frames[0]
    assert np.array_equal(BlendTransform("brightness", 1.0).apply_image(image), image)
    darker = BlendTransform("brightness", 0.5).apply_image(image)
    assert darker[10, 10, 0] == 127
    gray = BlendTransform("saturation", 0.0).apply_image(image)
    assert np.abs(gray[..., 0].astype(int) - gray[..., 1]).max() <= 1
    assert np.array_equal(BlendTransform("contrast", 0.3).apply_masks(mask), mask)


def test_test_time_resize_and_errors():
    frames, _ = _frames(t=5)
    aug = build_clip_augmentation(is_train=False, min_size_test=16)
    out, _ = aug(frames, np.random.default_rng())
    assert [o.shape for o in out] == [(16, 24, 3)] * 5
    with pytest.raises(ValueError, match="Unknown INPUT.AUGMENTATIONS"):
        build_clip_augmentation(is_train=True, augmentations=["blur"])
    with pytest.raises(ValueError, match="random_flip"):
        build_clip_augmentation(is_train=True, random_flip="diagonal")


# The flips, the crop and the blend are fvcore's transforms (with ``apply_masks``); these tests
# compare them with plain NumPy on random clips: pixel-exact images, exact masks, contiguous output.
def _random_clip(seed, t=3, n=4):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(9, 40)), int(rng.integers(9, 40))
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(t)]
    return frames, rng.random((n, h, w)) > 0.5, rng


def _same(ours, expected):
    assert ours.dtype == expected.dtype and ours.flags.c_contiguous
    assert np.array_equal(ours, expected)


@pytest.mark.parametrize("seed", range(5))
def test_fvcore_flips_and_crop_equal_numpy(seed):
    from video_mask2former.data.augmentation import CropTransform, HFlipTransform, VFlipTransform

    frames, masks, rng = _random_clip(seed)
    h, w = masks.shape[1:]
    y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
    ch, cw = int(rng.integers(1, h - y0 + 1)), int(rng.integers(1, w - x0 + 1))
    cases = [
        (HFlipTransform(w), lambda a: a[..., ::-1, :], lambda m: m[:, :, ::-1]),
        (VFlipTransform(h), lambda a: a[::-1], lambda m: m[:, ::-1]),
        (
            CropTransform(x0, y0, cw, ch, orig_w=w, orig_h=h),
            lambda a: a[y0 : y0 + ch, x0 : x0 + cw],
            lambda m: m[:, y0 : y0 + ch, x0 : x0 + cw],
        ),
    ]
    for transform, on_image, on_masks in cases:
        for frame in frames:
            out = transform.apply_image(frame)
            _same(out, np.ascontiguousarray(on_image(frame)))
            assert not np.shares_memory(out, frame)
        _same(transform.apply_masks(masks), np.ascontiguousarray(on_masks(masks)))
        assert transform.apply_masks(masks[:0]).shape == (0,) + on_masks(masks).shape[1:]


@pytest.mark.parametrize("kind", ["brightness", "contrast", "saturation"])
def test_fvcore_blend_equals_the_float32_formula(kind):
    for seed in range(5):
        frames, masks, rng = _random_clip(seed)
        weight = float(rng.uniform(0.5, 1.5))
        for frame in frames:
            img = frame.astype(np.float32)
            source = {
                "brightness": 0.0,
                "contrast": img.mean(),
                "saturation": img.dot([0.299, 0.587, 0.114]).astype(np.float32)[:, :, None],
            }[kind]
            expected = np.clip((1.0 - weight) * source + weight * img, 0, 255).astype(np.uint8)
            _same(BlendTransform(kind, weight).apply_image(frame), expected)
        assert BlendTransform(kind, weight).apply_masks(masks) is masks


def test_transform_lists_are_fvcore_and_invert_coordinates():
    from fvcore.transforms import Transform, TransformList

    aug = build_clip_augmentation(
        is_train=True, min_size_train=(40,), random_flip="horizontal", crop_enabled=True,
        crop_type="relative_range", crop_size=(0.5, 0.5), augmentations=["contrast"],
    )  # fmt: skip
    frames, _ = _frames()
    points = np.array([[3.0, 4.0], [20.5, 11.25]])
    for seed in range(5):
        _, transforms = aug(frames, np.random.default_rng(seed))
        for transform in transforms:
            assert isinstance(transform, TransformList)
            assert all(isinstance(t, Transform) for t in transform.transforms)
            moved = transform.apply_coords(points.copy())
            assert np.allclose(transform.inverse().apply_coords(moved), points)


def test_resize_and_rotation_coordinates_follow_the_masks():
    from video_mask2former.data.augmentation import ResizeTransform, RotationTransform

    resize = ResizeTransform(32, 48, 64, 72)
    assert np.allclose(
        resize.apply_coords(np.array([[48.0, 32.0], [6.0, 4.0]])), [[72, 64], [9, 8]]
    )
    rotation = RotationTransform(32, 32, 90.0, (16.0, 16.0))
    assert np.allclose(rotation.apply_coords(np.array([[16.0, 16.0]])), [[16, 16]])
    # Counter-clockwise on screen (y down): a point right of the centre moves above it.
    assert np.allclose(rotation.apply_coords(np.array([[20.0, 16.0]])), [[16, 12]])
    mask = np.zeros((1, 32, 32), dtype=bool)
    mask[0, 5, 25] = True  # pixel centre (25.5, 5.5)
    rows, cols = np.nonzero(rotation.apply_masks(mask)[0])
    x, y = rotation.apply_coords(np.array([[25.5, 5.5]]))[0]
    assert (rows.tolist(), cols.tolist()) == ([int(y)], [int(x)])

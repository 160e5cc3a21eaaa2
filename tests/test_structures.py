"""RLE encoding of binary masks: the run-length path is byte-identical to pycocotools."""

import warnings

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from torch.nn import functional as F

from tests.conftest import requires_cuda
from video_mask2former.structures import (
    RLEVideoMask,
    encode_masks,
    encode_masks_by_runs,
    rle_counts,
    rles_from_counts,
)


def _pycocotools(masks: torch.Tensor):
    """pycocotools' own encoding of (N, H, W) bool masks (the oracle)."""
    return mask_util.encode(np.asfortranarray(masks.permute(1, 2, 0).numpy().astype(np.uint8)))


def _single_pixel(height, width, row, col, num_masks=2):
    masks = torch.zeros(num_masks, height, width, dtype=torch.bool)
    masks[:, row, col] = True
    return masks


def _cases():
    g = torch.Generator().manual_seed(0)
    smooth = F.interpolate(torch.randn(4, 1, 3, 5, generator=g), size=(30, 50), mode="bilinear")
    return {
        "random": torch.rand(6, 9, 11, generator=g) > 0.5,
        "sparse": torch.rand(5, 12, 7, generator=g) > 0.95,
        "noisy_large": torch.rand(3, 36, 64, generator=g) > 0.5,
        "smooth": smooth[:, 0] > 0,
        "empty": torch.zeros(3, 8, 5, dtype=torch.bool),
        "full": torch.ones(3, 5, 8, dtype=torch.bool),
        "first_pixel": _single_pixel(6, 4, 0, 0),
        "last_pixel": _single_pixel(6, 4, 5, 3),
        "last_of_first_column": _single_pixel(6, 4, 5, 0),
        "first_of_last_column": _single_pixel(6, 4, 0, 3),
        "one_pixel_masks": torch.tensor([True, False]).view(2, 1, 1),
        "one_row": torch.rand(4, 1, 17, generator=g) > 0.5,
        "one_column": torch.rand(4, 17, 1, generator=g) > 0.5,
        # Runs longer than 2**15 pixels need several characters in the compressed string.
        "long_runs": torch.arange(3 * 300 * 400).view(3, 300, 400) % 70001 < 40000,
    }


@pytest.mark.parametrize("name", sorted(_cases()))
def test_run_lengths_encode_byte_identically_to_pycocotools(name):
    masks = _cases()[name]
    expected = _pycocotools(masks)
    assert encode_masks_by_runs(masks) == expected
    assert encode_masks(masks) == expected  # the CPU path, pycocotools itself
    assert all(isinstance(rle["counts"], bytes) for rle in encode_masks_by_runs(masks))


def test_no_masks_give_no_rles():
    masks = torch.zeros(0, 6, 9, dtype=torch.bool)
    counts, lengths = rle_counts(masks)
    assert counts.numel() == 0 and lengths.numel() == 0
    assert encode_masks_by_runs(masks) == [] == encode_masks(masks)


def test_counts_start_with_background_and_alternate():
    """Column-major runs, background first (0 when the first pixel is foreground)."""
    masks = torch.tensor(
        [
            [[0, 1, 1], [0, 0, 1]],  # by column: 0 0 | 1 0 | 1 1
            [[1, 1, 1], [1, 1, 1]],
            [[0, 0, 0], [0, 0, 0]],
            [[1, 0, 0], [0, 0, 0]],
            [[0, 0, 0], [0, 0, 1]],
        ],
        dtype=torch.bool,
    )
    counts, lengths = rle_counts(masks)
    assert counts.dtype == lengths.dtype == torch.int32
    per_mask = [c.tolist() for c in counts.split(lengths.tolist())]
    assert per_mask == [[2, 1, 1, 2], [0, 6], [6], [0, 1, 5], [5, 1]]


def test_counts_cover_every_pixel():
    masks = _cases()["random"]
    counts, lengths = rle_counts(masks)
    sums = torch.stack([c.sum() for c in counts.split(lengths.tolist())])
    assert (sums == 9 * 11).all()
    assert lengths.sum() == counts.numel()


def test_rles_from_counts_round_trip_through_decode():
    masks = _cases()["sparse"]
    counts, lengths = rle_counts(masks)
    rles = rles_from_counts(counts, lengths, tuple(masks.shape[1:]))
    assert torch.equal(RLEVideoMask(rles).to_tensor(), masks)


@requires_cuda
@pytest.mark.parametrize("name", sorted(_cases()))
def test_cuda_masks_encode_like_cpu_masks(name):
    masks = _cases()[name]
    assert encode_masks(masks.cuda()) == _pycocotools(masks)


@requires_cuda
def test_cuda_run_lengths_sync_the_host_once():
    """Only the data-dependent ``nonzero`` waits for the device."""
    masks = _cases()["smooth"].cuda()
    torch.cuda.synchronize()
    previous_mode = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rle_counts(masks)
    finally:
        torch.cuda.set_sync_debug_mode(previous_mode)
    assert len([w for w in caught if "synchroniz" in str(w.message)]) == 1

"""RLE checks without decoding: the compressed-string parser against pycocotools, and the errors."""

import numpy as np
import pycocotools.mask as mask_util
import pytest

import video_mask2former.data.rle as rle_module
from video_mask2former.data.rle import (
    RLEValidator,
    compressed_rle_totals,
    parse_compressed_rle,
    uncompressed_rle_problem,
)


def _random_counts(rng, size):
    """Uncompressed counts of a random H x W mask with runs of very different lengths (so that
    the deltas of the compressed string are positive and negative, short and long)."""
    h, w = size
    total, counts = h * w, []
    while total > 0:
        run = int(min(total, rng.integers(0, 1 + rng.choice([3, 40, 5000]))))
        counts.append(run)
        total -= run
    return counts


def _compressed(counts, size):
    return mask_util.frPyObjects({"size": list(size), "counts": counts}, *size)["counts"]


def test_parser_reads_back_what_pycocotools_writes():
    rng = np.random.default_rng(0)
    sizes = [tuple(int(v) for v in rng.integers(1, 300, size=2)) for _ in range(60)]
    counts = [_random_counts(rng, size) for size in sizes]
    strings = [_compressed(c, size) for c, size in zip(counts, sizes)]
    for c, s in zip(counts, strings):
        assert parse_compressed_rle(s) == c
    totals, ok = compressed_rle_totals(strings)
    assert ok.all()
    np.testing.assert_array_equal(totals, [h * w for h, w in sizes])


def test_vectorised_check_agrees_with_the_reference_parser(monkeypatch):
    rng = np.random.default_rng(1)
    # random strings over a range wider than the alphabet ('0'..'o'), empty ones included
    strings = [
        bytes(rng.integers(40, 116, rng.integers(0, 12)).astype(np.uint8)) for _ in range(800)
    ]
    strings += [b"", b"0", b"1", b"P0", b"O", b"PPPPPPPP0", b"P"]

    def reference(s):
        try:
            return True, sum(parse_compressed_rle(s))
        except ValueError:
            return False, 0

    expected_ok, expected_totals = map(np.array, zip(*map(reference, strings)))
    for chunk_chars in (7, 1 << 20):  # many chunks, one chunk
        monkeypatch.setattr(rle_module, "_CHUNK_CHARS", chunk_chars)
        totals, ok = compressed_rle_totals(strings)
        np.testing.assert_array_equal(ok, expected_ok)
        np.testing.assert_array_equal(totals[ok], expected_totals[ok])
    assert 0 < expected_ok.mean() < 1  # both kinds are exercised


@pytest.mark.parametrize(
    "counts, message",
    [
        (b"!!garbage", r"character '!' at position 0 is not an RLE character"),
        (b"O", r"run 0 .* is negative \(-1\)"),  # 'O': sign bit set, a negative first count
        (b"P", r"ends inside a number"),  # 'P': continuation bit on the last character
        (b"PPPPPPPP0", r"longer than 7 characters"),
    ],
)
def test_parser_names_the_problem(counts, message):
    with pytest.raises(ValueError, match=message):
        parse_compressed_rle(counts)


def test_uncompressed_counts():
    assert uncompressed_rle_problem([3, 2, 1], (2, 3)) is None
    assert "sums to 5 pixels, expected H x W = 2 x 3 = 6" in uncompressed_rle_problem(
        [3, 2], (2, 3)
    )
    assert "negative run length (-1)" in uncompressed_rle_problem([5, -1, 2], (2, 3))
    assert "non-negative integers, found '2'" in uncompressed_rle_problem([3, "2", 1], (2, 3))
    assert "non-negative integers, found 3.0" in uncompressed_rle_problem([3.0, 3.0], (2, 3))
    assert "non-negative integers, found None" in uncompressed_rle_problem([6, None], (2, 3))
    assert "2**32 or more" in uncompressed_rle_problem([2**32, 6], (2, 3))


def test_validator_reports_the_first_bad_rle_in_order():
    size = (4, 5)
    good = _compressed([20], size)
    validator = RLEValidator()
    assert validator.add(good, size, "a") is None
    assert validator.add("0", size, "b") is None  # queued: a string is checked at the end
    assert validator.add(b"!!", size, "c") is None
    assert "negative" in validator.add([21, -1], size, "d")  # a list is checked at once
    assert "expected a string or a list" in validator.add(7, size, "e")
    owner, problem = validator.first_problem()
    assert owner == "b" and problem == "sums to 0 pixels, expected H x W = 4 x 5 = 20"
    assert validator.first_problem() is None  # the queue was emptied
    validator.add("ab\u00e9", size, "f")  # a non-ASCII character is never valid
    owner, problem = validator.first_problem()
    assert owner == "f" and "not a valid compressed RLE string" in problem

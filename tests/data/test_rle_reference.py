"""The RLE checks against run lengths computed independently from the masks.

Written to kill the mutants that survived the rest of the suite (an operator or a bound changed in
:mod:`video_mask2former.data.rle` without any test noticing). The expected run lengths are counted
here from the bitmaps with NumPy; the strings come from pycocotools' own encoder.
"""

import numpy as np
import pycocotools.mask as mask_util
import pytest

from video_mask2former.data import rle as rle_module
from video_mask2former.data.rle import (
    RLEValidator,
    compressed_rle_totals,
    parse_compressed_rle,
    uncompressed_rle_problem,
)


def _runs_of(mask):
    """Alternating background / foreground run lengths, column-major, starting with background."""
    flat = np.asfortranarray(mask).flatten(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat[0] else runs


def _random_masks(seed, count=40):
    """Masks with short and very long runs (multi-character numbers, negative differences)."""
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(count):
        h, w = int(rng.integers(1, 70)), int(rng.integers(1, 70))
        kind = rng.integers(0, 4)
        if kind == 0:
            mask = rng.random((h, w)) < rng.random()
        elif kind == 1:  # one block: two long runs
            mask = np.zeros((h, w), bool)
            mask[: rng.integers(0, h + 1), : rng.integers(0, w + 1)] = True
        elif kind == 2:
            mask = np.full((h, w), bool(rng.integers(0, 2)))
        else:  # stripes of growing then shrinking width
            widths = np.abs(np.arange(w) - w // 2)
            mask = (np.arange(h)[:, None] < widths[None, :] * h // (w // 2 + 1)) ^ (widths % 3 == 0)
        masks.append(mask)
    return masks


def _encode(mask):
    return mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"]


@pytest.mark.parametrize("seed", range(3))
def test_parser_and_vectorised_totals_agree_with_counted_runs(seed, monkeypatch):
    masks = _random_masks(seed)
    strings = [_encode(m) for m in masks]
    for mask, counts in zip(masks, strings):
        assert parse_compressed_rle(counts) == _runs_of(mask)
    # small chunks: strings are split over several vectorised passes
    for chunk in (1 << 17, 7, 64):
        monkeypatch.setattr(rle_module, "_CHUNK_CHARS", chunk)
        totals, ok = compressed_rle_totals(strings)
        assert ok.all()
        assert totals.tolist() == [m.size for m in masks]


def test_large_runs_take_several_characters():
    mask = np.zeros((1000, 1000), bool)
    mask[500:, 999] = True  # runs 999500, 500: a 5-character number
    counts = _encode(mask)
    assert parse_compressed_rle(counts) == [999500, 500]
    totals, ok = compressed_rle_totals([counts, b"", counts])
    assert ok.tolist() == [True, True, True] and totals.tolist() == [10**6, 0, 10**6]


def _number(value):
    """One number in pycocotools' 5-bit, sign-in-the-last-group encoding (written here)."""
    out = []
    more = True
    while more:
        bits = value & 0x1F
        value >>= 5
        more = value != -1 if bits & 0x10 else value != 0
        if more:
            bits |= 0x20
        out.append(chr(bits + 48))
    return "".join(out)


def _string(numbers):
    return "".join(_number(n) for n in numbers).encode()


@pytest.mark.parametrize(
    "numbers, runs",
    [
        ([3, 4, 5, 1, -2], [3, 4, 5, 5, 3]),  # from index 3: difference to two places before
        ([0, 31, 32, 0, 100], [0, 31, 32, 31, 132]),
        ([7], [7]),
        ([1, 2, 3, -2], [1, 2, 3, 0]),
    ],
)
def test_delta_coding_from_the_fourth_count(numbers, runs):
    counts = _string(numbers)
    assert parse_compressed_rle(counts) == runs
    totals, ok = compressed_rle_totals([counts, counts])
    assert ok.all() and totals.tolist() == [sum(runs)] * 2


@pytest.mark.parametrize(
    "counts, message",
    [
        (_string([1, 2, 3, -3]), "run 3"),  # 2 - 3 < 0: negative run
        (b"0" * 8, None),  # fine: eight numbers 0
        (b"P" * 7 + b"0", "longer than 7"),  # an eight-character number
        (b"1p", "not an RLE character"),
        (b"12P", "ends inside a number"),
    ],
)
def test_malformed_strings_are_flagged_by_both_parsers(counts, message):
    totals, ok = compressed_rle_totals([b"3", counts, b"3"])
    assert ok.tolist() == [True, message is None, True]
    assert totals[0] == 3 and totals[2] == 3
    if message is None:
        assert parse_compressed_rle(counts) == [0] * 8
    else:
        with pytest.raises(ValueError, match=message):
            parse_compressed_rle(counts)


def test_seven_character_number_is_accepted():
    counts = _string([2**30, 5])
    assert len(_number(2**30)) == 7
    assert parse_compressed_rle(counts) == [2**30, 5]
    totals, ok = compressed_rle_totals([counts])
    assert ok.all() and totals.tolist() == [2**30 + 5]


def test_uncompressed_counts_problems():
    assert uncompressed_rle_problem([2, 4], (2, 3)) is None
    assert uncompressed_rle_problem([0, 6], (2, 3)) is None
    assert "sums to 5 pixels, expected H x W = 2 x 3 = 6" in uncompressed_rle_problem(
        [2, 3], (2, 3)
    )
    assert "negative run length (-1)" in uncompressed_rle_problem([7, -1], (2, 3))
    assert "2**32 or more" in uncompressed_rle_problem([2**32, 0], (2, 3))
    assert "non-negative integers" in uncompressed_rle_problem([2.0, 4], (2, 3))
    assert uncompressed_rle_problem([np.int64(2), 4], (2, 3)) is None


def test_validator_reports_the_first_bad_string_with_its_total():
    validator = RLEValidator()
    good = _encode(np.ones((3, 4), bool))
    assert validator.add(good.decode(), (3, 4), owner="a") is None
    assert validator.add(good, (4, 3), owner="b") is None
    assert validator.add(good, (3, 5), owner="c") is None
    assert validator.add(b"1p", (3, 4), owner="d") is None
    assert validator.first_problem() == ("c", "sums to 12 pixels, expected H x W = 3 x 5 = 15")
    assert validator.first_problem() is None  # the queue was emptied
    assert "expected a string" in validator.add(3, (1, 1), owner="e")
    assert validator.add([1, 1], (1, 1), owner="f") == (
        "sums to 2 pixels, expected H x W = 1 x 1 = 1"
    )
    validator.add(b"1p", (3, 4), owner="g")
    owner, problem = validator.first_problem()
    assert owner == "g" and "not a valid compressed RLE string: character 'p'" in problem


def _ones(num_chars):
    """A well-formed string of ``num_chars`` one-character numbers (runs of 1, then deltas)."""
    return b"1" * num_chars


def test_strings_are_grouped_into_as_few_passes_as_the_chunk_size_allows(monkeypatch):
    """Each vectorised pass takes whole strings, in order, as many as fit in _CHUNK_CHARS (a longer
    string alone): the grouping is greedy, so no pass outgrows the cache-sized chunk and no pass is
    wasted."""
    lengths = [3, 4, 1, 2, 5, 9, 2, 2, 3, 6]  # chunk 7: [3, 4], [1, 2], [5], [9], [2, 2, 3], [6]
    strings = [_ones(n) for n in lengths]
    passes = []
    totals_of_chunk = rle_module._totals_of_chunk
    monkeypatch.setattr(
        rle_module,
        "_totals_of_chunk",
        lambda chunk: passes.append([len(s) for s in chunk]) or totals_of_chunk(chunk),
    )
    monkeypatch.setattr(rle_module, "_CHUNK_CHARS", 7)
    totals, ok = compressed_rle_totals(strings)
    assert passes == [[3, 4], [1, 2], [5], [9], [2, 2, 3], [6]]
    assert ok.all() and totals.tolist() == [sum(parse_compressed_rle(s)) for s in strings]
    monkeypatch.setattr(rle_module, "_CHUNK_CHARS", 1)  # every string alone, the last one too
    passes.clear()
    assert compressed_rle_totals(strings)[0].tolist() == totals.tolist()
    assert passes == [[n] for n in lengths]


def test_default_chunk_takes_many_strings_in_one_pass(monkeypatch):
    """The default pass size holds a file's worth of short strings (40 x 5 characters) at once."""
    passes = []
    totals_of_chunk = rle_module._totals_of_chunk
    monkeypatch.setattr(
        rle_module,
        "_totals_of_chunk",
        lambda chunk: passes.append(len(chunk)) or totals_of_chunk(chunk),
    )
    totals, ok = compressed_rle_totals([_ones(5)] * 40)
    assert passes == [40] and ok.all()


def test_no_strings_give_empty_totals():
    totals, ok = compressed_rle_totals([])
    assert totals.shape == ok.shape == (0,)
    assert totals.dtype == np.int64 and ok.dtype == bool


# Mutants of video_mask2former/data/rle.py that no test can kill, because they are equivalent:
# - in _totals_of_chunk, ``if len(too_long) or runs.min() < 0`` with ``<= 0`` or ``< 1``: the
#   condition only skips the search for broken strings; inside it, ``runs < 0`` decides, so a
#   string with a run of 0 is still found well formed.
# - in _token_values, the cap ``np.minimum(token_len, 12)`` raised to 13: it only keeps the shift
#   of a number longer than 7 characters within 64 bits, and such a number's string is reported
#   broken (``too_long``) whatever value it gets.

"""Checking COCO run-length encodings (RLE) without decoding them to masks.

Shapes: S RLE strings, C characters of all strings, N numbers ("tokens") of all strings.

pycocotools trusts an RLE blindly: counts that do not add up to H x W pixels make ``decode`` read
uninitialised memory or write past the mask, and ``area`` / ``iou`` return nonsense (a garbage
string once gave a ground-truth area of 4,278,902,322 for a 128 x 160 frame). Every RLE read from
a file is therefore checked here first: its run lengths must be non-negative integers that sum to
exactly H x W. The check sums the run lengths; it never builds a mask.

An uncompressed RLE is ``{"size": [H, W], "counts": [c0, c1, ...]}``: alternating runs of
background and foreground pixels in column-major order, starting with background.

A compressed RLE has the same counts written as a string (pycocotools' ``rleToString``):

- every count is a signed integer written 5 bits at a time, least significant group first; each
  group is one character ``chr(48 + bits)`` where bit 0x20 says "another group follows" and, in the
  last group, bit 0x10 is the sign (two's complement over the groups written);
- from the fourth count on (index 3), the number written is the difference to the count two places
  before, so runs are running sums along the chains {0}, {1, 3, 5, ...} and {2, 4, 6, ...}.

So valid characters are ``'0'`` (48) to ``'o'`` (111), and the last character of a string ends a
number. The parser below is written from that definition; it is vectorised over all strings of a
file because a YouTube-VIS-sized results file holds about 10^5 of them (a Python loop per
character would take minutes).
"""

import array
from typing import Hashable, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "RLEValidator",
    "compressed_rle_totals",
    "parse_compressed_rle",
    "uncompressed_rle_problem",
]

_CHAR_OFFSET = 48  # "0"
_NUM_CHARS = 64  # "0" .. "o"
_CONTINUE_BIT = 0x20
_SIGN_BIT = 0x10
_DATA_MASK = 0x1F
_DATA_BITS = 5
# A count of a mask below 2**31 pixels takes at most 7 characters; pycocotools never writes more.
_MAX_NUMBER_CHARS = 7
# Counts from this index on are stored as differences to the count two places before.
_FIRST_DELTA_INDEX = 3
# Characters decoded per vectorised pass: small enough for its temporaries (~1 MB each) to stay
# in the CPU cache, which halves the time per character compared with 4M-character passes.
_CHUNK_CHARS = 1 << 17

Counts = Union[str, bytes, list]


def parse_compressed_rle(counts: Union[str, bytes]) -> List[int]:
    """Run lengths of one compressed RLE string, one character at a time (slow but explicit).

    Used to describe what is wrong with a string that :func:`compressed_rle_totals` rejected, and
    as the reference the vectorised parser is tested against.

    Args:
        counts (str or bytes): the RLE's ``counts``.

    Returns:
        list[int]: the run lengths.

    Raises:
        ValueError: naming the first problem (bad character, over-long or unterminated number,
            negative run) and its position.
    """
    data = counts.encode("utf-8") if isinstance(counts, str) else bytes(counts)
    runs: List[int] = []
    value = num_chars = 0
    for pos, byte in enumerate(data):
        bits = byte - _CHAR_OFFSET
        if not 0 <= bits < _NUM_CHARS:
            raise ValueError(
                f"character {chr(byte)!r} at position {pos} is not an RLE character "
                f"('0' to 'o')"
            )
        value |= (bits & _DATA_MASK) << (_DATA_BITS * num_chars)
        num_chars += 1
        if num_chars > _MAX_NUMBER_CHARS:
            raise ValueError(
                f"the number ending at position {pos} is longer than {_MAX_NUMBER_CHARS} characters"
            )
        if bits & _CONTINUE_BIT:
            continue
        if bits & _SIGN_BIT:
            value -= 1 << (_DATA_BITS * num_chars)
        if len(runs) >= _FIRST_DELTA_INDEX:
            value += runs[-2]
        if value < 0:
            raise ValueError(f"run {len(runs)} (ending at position {pos}) is negative ({value})")
        runs.append(value)
        value = num_chars = 0
    if num_chars:
        raise ValueError("the string ends inside a number (its last character continues it)")
    return runs


def uncompressed_rle_problem(counts: list, size: Tuple[int, int]) -> Optional[str]:
    """What is wrong with uncompressed RLE counts of an H x W frame (``size``), or None.

    Two C-speed passes over the list: converting it to a C array of uint32 (pycocotools' count
    type) rejects any count that is not an integer in [0, 2**32), and ``sum``.
    """
    try:
        array.array("I", counts)
    except (TypeError, OverflowError):
        return _uncompressed_count_problem(counts)
    total = sum(counts)
    if total != size[0] * size[1]:
        return f"sums to {total} pixels, {_expected_pixels(size)}"
    return None


def _uncompressed_count_problem(counts: list) -> str:
    """Why ``array("I", counts)`` refused ``counts`` (slow: only for a bad list)."""
    for count in counts:
        if not isinstance(count, (int, np.integer)):
            return f"must be a list of non-negative integers, found {count!r:.40}"
        if count < 0:
            return f"has a negative run length ({count})"
    return "has a run length of 2**32 or more"


def _expected_pixels(size: Tuple[int, int]) -> str:
    return f"expected H x W = {size[0]} x {size[1]} = {size[0] * size[1]}"


def compressed_rle_totals(counts: Sequence[bytes]) -> Tuple[np.ndarray, np.ndarray]:
    """Sum of the run lengths of compressed RLE strings, and whether each string is well formed.

    Args:
        counts (sequence of bytes): S compressed ``counts`` strings.

    Returns:
        tuple: ``totals`` (S,) int64, the sum of each string's run lengths (a valid RLE of an
        H x W frame sums to H*W), and ``ok`` (S,) bool, False where the string is not a
        well-formed run-length code (bad character, over-long or unterminated number, negative
        run; its total is then meaningless). :func:`parse_compressed_rle` says why.
    """
    ends = np.cumsum([len(c) for c in counts], dtype=np.int64)
    totals, oks, start = [], [], 0
    while start < len(counts):
        base = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + _CHUNK_CHARS, side="right")))
        total, ok = _totals_of_chunk(counts[start:stop])
        totals.append(total)
        oks.append(ok)
        start = stop
    if not totals:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    return np.concatenate(totals), np.concatenate(oks)


def _string_of_position(positions: np.ndarray, string_ends: np.ndarray) -> np.ndarray:
    """Index of the string holding each character position (``string_ends``: cumulative ends)."""
    return np.searchsorted(string_ends, positions, side="right")


def _totals_of_chunk(counts: Sequence[bytes]) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`compressed_rle_totals` of strings small enough to decode in one pass."""
    num = len(counts)
    lengths = np.fromiter((len(c) for c in counts), dtype=np.int64, count=num)
    string_ends = np.cumsum(lengths)  # (S,) one past each string's last character
    totals = np.zeros(num, dtype=np.int64)
    ok = np.ones(num, dtype=bool)
    if string_ends[-1] == 0:
        return totals, ok
    bits = np.frombuffer(b"".join(counts), dtype=np.uint8) - np.uint8(_CHAR_OFFSET)  # (C,)
    more = (bits & _CONTINUE_BIT) != 0  # (C,)
    nonempty = lengths > 0
    unterminated = nonempty & more[np.maximum(string_ends - 1, 0)]
    # characters below "0" wrap around to >= 208, so one comparison finds every bad character
    if (bits >= _NUM_CHARS).any() or unterminated.any():
        ok[_string_of_position(np.flatnonzero(bits >= _NUM_CHARS), string_ends)] = False
        ok &= ~unterminated
        good = np.flatnonzero(ok)
        if len(good):
            totals[good], ok[good] = _totals_of_chunk([counts[i] for i in good])
        return totals, ok

    value, token_end, too_long = _token_values(bits, more)
    first_token = np.searchsorted(token_end, string_ends[nonempty] - lengths[nonempty])
    runs = _runs(value, first_token)
    if len(too_long) or runs.min() < 0:
        broken = np.union1d(too_long, np.flatnonzero(runs < 0))
        ok[_string_of_position(token_end[broken], string_ends)] = False
    totals[nonempty] = np.add.reduceat(runs, first_token)
    return totals, ok


def _token_values(bits: np.ndarray, more: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numbers ("tokens") written in well-formed characters, before the delta decoding.

    Args:
        bits (ndarray): (C,) uint8 characters minus 48, all < 64.
        more (ndarray): (C,) bool, the continuation bit of each character.

    Returns:
        tuple: ``value`` (N,) int64 the numbers, ``token_end`` (N,) the position of each one's
        last character, ``too_long`` the indices of numbers longer than 7 characters.
    """
    token_end = np.flatnonzero(~more)  # a token ends at a character without continuation bit
    token_start = np.empty_like(token_end)
    token_start[0] = 0
    token_start[1:] = token_end[:-1] + 1
    token_len = token_end - token_start + 1
    value = (bits[token_start] & _DATA_MASK).astype(np.int64)  # (N,)
    longer = np.flatnonzero(token_len > 1)  # most numbers take one character
    for j in range(1, _MAX_NUMBER_CHARS):
        group = (bits[token_start[longer] + j] & _DATA_MASK).astype(np.int64)
        value[longer] |= group << (_DATA_BITS * j)
        longer = longer[token_len[longer] > j + 1]
        if not len(longer):
            break
    negative = np.flatnonzero(bits[token_end] & _SIGN_BIT)
    value[negative] -= np.int64(1) << (_DATA_BITS * np.minimum(token_len[negative], 12))
    return value, token_end, longer  # ``longer`` now holds the numbers of > 7 characters


def _runs(value: np.ndarray, first_token: np.ndarray) -> np.ndarray:
    """Run lengths from the numbers of consecutive strings (whose first numbers are at
    ``first_token``), undoing the delta coding.

    Within a string, runs 1, 3, 5, ... and runs 2, 4, 6, ... are running sums of their numbers;
    run 0 stands alone. Tokens of one global index parity form one of those chains in every
    string, so each chain is a stretch of ``cumsum(value[p::2])`` minus the sum before it.
    """
    num_tokens = len(value)
    last = np.append(first_token[1:], num_tokens)  # (S,) one past each string's last token
    runs = np.empty_like(value)
    for parity in (0, 1):
        running = np.concatenate([[0], np.cumsum(value[parity::2])])  # [0] is the empty sum
        # tokens of this parity before index x: (x - parity + 1) // 2
        start, stop = (first_token - parity + 1) // 2, (last - parity + 1) // 2
        # the chain holding run 0 starts at run 2: its base includes run 0
        base = running[start + (first_token % 2 == parity)]
        runs[parity::2] = running[1:] - np.repeat(base, stop - start)
    runs[first_token] = value[first_token]
    return runs


class RLEValidator:
    """Checks that the RLEs of a file cover exactly H x W pixels each, without decoding them.

    Uncompressed counts are checked when added (the caller can raise at once); compressed strings
    are collected and checked together, in one vectorised pass, by :meth:`first_problem`.

    Example::

        validator = RLEValidator()
        for ...:
            problem = validator.add(segm["counts"], (height, width), owner=(ann_id, frame))
            if problem: raise ...
        bad = validator.first_problem()  # None, or (owner, problem) of the first bad string
    """

    def __init__(self):
        self._clear()

    def _clear(self) -> None:
        self._strings: List[bytes] = []
        self._sizes: List[Tuple[int, int]] = []
        self._owners: List[Hashable] = []

    def add(self, counts: Counts, size: Tuple[int, int], owner: Hashable) -> Optional[str]:
        """Queue compressed ``counts`` for the check, or check uncompressed ones now.

        Args:
            counts (str, bytes or list): the RLE's ``counts``.
            size (tuple): (H, W) of the frame it belongs to.
            owner: what to report with a problem of these counts (e.g. ``(annotation, frame)``).

        Returns:
            str or None: the problem of uncompressed or wrongly typed counts (None when fine or
            queued).
        """
        if isinstance(counts, list):
            return uncompressed_rle_problem(counts, size)
        if isinstance(counts, str):
            counts = counts.encode("utf-8")  # a non-ASCII character becomes bytes >= 0x80: invalid
        elif not isinstance(counts, bytes):
            return f"is a {type(counts).__name__}, expected a string or a list of integers"
        self._strings.append(counts)
        self._sizes.append(size)
        self._owners.append(owner)
        return None

    def first_problem(self) -> Optional[Tuple[Hashable, str]]:
        """Check the queued strings; ``(owner, problem)`` of the first bad one (in the order
        added), or None when all are valid. Empties the queue."""
        strings, sizes, owners = self._strings, self._sizes, self._owners
        self._clear()
        totals, ok = compressed_rle_totals(strings)
        pixels = np.fromiter((h * w for h, w in sizes), dtype=np.int64, count=len(sizes))
        bad = np.flatnonzero(~ok | (totals != pixels))
        if not len(bad):
            return None
        i = int(bad[0])
        if not ok[i]:
            try:
                parse_compressed_rle(strings[i])
                problem = "is not a valid compressed RLE string"  # not reached: both agree
            except ValueError as e:
                problem = f"is not a valid compressed RLE string: {e}"
        else:
            problem = f"sums to {int(totals[i])} pixels, {_expected_pixels(sizes[i])}"
        return owners[i], problem

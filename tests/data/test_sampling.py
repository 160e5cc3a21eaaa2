"""Clip frame sampling (official semantics, seeded)."""

import numpy as np
import pytest

from video_mask2former.data.sampling import all_frames, sample_clip_frames


def _sample(length, seed, num=2, rng_range=20, shuffle=False):
    rng = np.random.default_rng(seed)
    return sample_clip_frames(
        length, num_frames=num, frame_range=rng_range, shuffle=shuffle, rng=rng
    )


@pytest.mark.parametrize("num, frame_range", [(2, 20), (5, 3), (3, 1)])
def test_count_and_range(num, frame_range):
    for seed in range(200):
        idx = _sample(50, seed, num, frame_range)
        assert len(idx) == num and idx == sorted(idx)
        assert all(0 <= i < 50 for i in idx)
        # Some frame (the reference) has every other frame within frame_range of it.
        assert any(all(abs(i - ref) <= frame_range for i in idx) for ref in idx)


def test_other_frames_differ_from_reference_when_possible():
    # With 2 frames and range 1 on a long video the second frame is the reference +- 1.
    for seed in range(100):
        a, b = _sample(30, seed, 2, 1)
        assert b - a == 1


def test_seeded_and_covers_video():
    assert _sample(40, 3, 4, 5) == _sample(40, 3, 4, 5)
    seen = set()
    for seed in range(300):
        seen.update(_sample(10, seed, 2, 20))
    assert seen == set(range(10))


def test_shuffle():
    results = [_sample(60, seed, 5, 20, shuffle=True) for seed in range(50)]
    assert any(r != sorted(r) for r in results)
    assert all(len(r) == 5 for r in results)


@pytest.mark.parametrize("length", [1, 2, 3])
def test_short_videos(length):
    for seed in range(30):
        idx = _sample(length, seed, 5, 20)
        assert len(idx) == 5 and all(0 <= i < length for i in idx)


def test_invalid_and_test_frames():
    with pytest.raises(ValueError, match="length 0"):
        _sample(0, 0)
    assert all_frames(4) == [0, 1, 2, 3]

"""Which frames of a video make a training clip (T = ``num_frames``).

Official semantics (``YTVISDatasetMapper``): draw a reference frame uniformly; draw the other
``num_frames - 1`` frames uniformly *with replacement* from the frames at most ``frame_range`` away
from it (the reference itself excluded); sort; optionally shuffle. A clip may therefore repeat a
frame, and videos shorter than the clip still give ``num_frames`` indices. A one-frame video (or
``frame_range == 0``), where the official code fails, repeats the reference frame.
"""

from typing import List

import numpy as np

__all__ = ["sample_clip_frames", "all_frames"]


def sample_clip_frames(
    video_length: int,
    *,
    num_frames: int,
    frame_range: int,
    shuffle: bool,
    rng: np.random.Generator,
) -> List[int]:
    """Frame indices of one training clip.

    Args:
        video_length (int): number of frames of the video (>= 1).
        num_frames (int): clip length T (``INPUT.SAMPLING_FRAME_NUM``).
        frame_range (int): the other frames lie within this distance of the reference frame
            (``INPUT.SAMPLING_FRAME_RANGE``).
        shuffle (bool): shuffle the sorted indices (``INPUT.SAMPLING_FRAME_SHUFFLE``).
        rng (np.random.Generator): source of randomness.

    Returns:
        list[int]: T indices in [0, video_length), sorted unless ``shuffle``.
    """
    if video_length < 1:
        raise ValueError(f"Cannot sample a clip from a video of length {video_length}.")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}.")
    ref = int(rng.integers(video_length))
    start = max(0, ref - frame_range)
    end = min(video_length, ref + frame_range + 1)
    candidates = np.array([i for i in range(start, end) if i != ref], dtype=np.int64)
    if len(candidates):
        others = rng.choice(candidates, size=num_frames - 1, replace=True).tolist()
    else:
        others = [ref] * (num_frames - 1)
    selected = sorted(others + [ref])
    if shuffle:
        rng.shuffle(selected)
    return [int(i) for i in selected]


def all_frames(video_length: int) -> List[int]:
    """Frame indices used at test time: every frame, in order."""
    return list(range(video_length))

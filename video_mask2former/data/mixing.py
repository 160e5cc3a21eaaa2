"""Training on several datasets at once, each drawn at a set ratio, each with its own mapper.

The datasets are concatenated (index ``offsets[d] + i`` is record i of dataset d).
:class:`RatioSampler` yields an endless stream of such indices in which every sample's dataset is
drawn with probability ``ratios[d] / sum(ratios)``, and within a dataset the records come in
shuffled passes (each record once per pass). :class:`MixedDataset` maps index -> the right
dataset's mapper applied to its record, so a batch may mix clips of videos and pseudo-video clips
of images.

Multi-process training follows detectron2's ``TrainingSampler``: every process computes the same
seeded stream and takes every ``world_size``-th index starting at its ``rank``, so the processes
get disjoint shares and together draw exactly the single-process stream (and the ratios hold over
each global batch, not only per process). Data-loader workers then split a process's share
(detectron2's ``ToIterableDataset``).
"""

import bisect
import itertools
import numbers
from typing import Callable, Iterator, List, Sequence

import numpy as np
import torch

__all__ = ["MixedDataset", "RatioSampler", "check_ratios"]

# Datasets drawn per call of the sampler's generator (changing it changes the stream of a seed).
_DRAWS_PER_CHUNK = 1024


def check_ratios(ratios: Sequence[float], names: Sequence[str], key: str = "ratios") -> List[float]:
    """``ratios`` as floats, after checking there is one per dataset, each a number (not a string
    or a boolean) >= 0, not all 0.

    Args:
        ratios: one weight per dataset.
        names: the datasets' names (for the error messages).
        key: what to call ``ratios`` in the messages (e.g. ``"DATASETS.DATASET_RATIO"``).

    Raises:
        ValueError: naming the lengths and datasets, or the bad value.
    """
    if isinstance(ratios, (str, bytes)) or not hasattr(ratios, "__len__"):
        raise ValueError(
            f"{key} is {ratios!r:.60}, expected a list of numbers, one per dataset, e.g. "
            f"[1.0, 0.75]."
        )
    not_numbers = [r for r in ratios if isinstance(r, bool) or not isinstance(r, numbers.Real)]
    if not_numbers:
        raise ValueError(
            f"{key} is {list(ratios)!r:.80}: {not_numbers[0]!r:.40} is not a number; expected a "
            f"list of numbers, one per dataset, e.g. [1.0, 0.75]."
        )
    ratios = [float(r) for r in ratios]
    if len(ratios) != len(names):
        raise ValueError(
            f"{key} has {len(ratios)} values {ratios}, but there are {len(names)} datasets "
            f"{list(names)}: give one ratio per dataset."
        )
    bad = [(n, r) for n, r in zip(names, ratios) if not np.isfinite(r) or r < 0]
    if bad:
        raise ValueError(f"{key}: ratios must be finite and >= 0, got {bad}.")
    if sum(ratios) <= 0:
        raise ValueError(f"{key}: at least one ratio must be > 0, got {ratios}.")
    return ratios


class RatioSampler(torch.utils.data.Sampler):
    """Endless indices into concatenated datasets, each sample's dataset drawn by ratio.

    Args:
        sizes (sequence of int): number of records of each dataset (each > 0).
        ratios (sequence of float): weight of each dataset (see :func:`check_ratios`).
        seed (int): seed of the stream; must be the same in every process.
        rank (int): this process's rank.
        world_size (int): number of processes.
        names (sequence of str, optional): dataset names for error messages.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        ratios: Sequence[float],
        *,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        names: Sequence[str] = (),
    ):
        names = list(names) or [f"dataset {d}" for d in range(len(sizes))]
        ratios = check_ratios(ratios, names)
        empty = [n for n, s in zip(names, sizes) if s <= 0]
        if empty:
            raise ValueError(f"Datasets {empty} have no records.")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}.")
        self.sizes = [int(s) for s in sizes]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.probabilities = np.asarray(ratios) / sum(ratios)
        self.seed, self.rank, self.world_size = int(seed), rank, world_size

    def __iter__(self) -> Iterator[int]:
        yield from itertools.islice(self.global_indices(), self.rank, None, self.world_size)

    def global_indices(self) -> Iterator[int]:
        """The stream of all processes together (this process takes every world_size-th)."""
        dataset_rng, *record_rngs = [
            np.random.default_rng(s)
            for s in np.random.SeedSequence(self.seed).spawn(len(self.sizes) + 1)
        ]
        passes = [self._shuffled_passes(size, rng) for size, rng in zip(self.sizes, record_rngs)]
        while True:
            draws = dataset_rng.choice(len(self.sizes), size=_DRAWS_PER_CHUNK, p=self.probabilities)
            for d in draws:
                yield int(self.offsets[d] + next(passes[d]))

    @staticmethod
    def _shuffled_passes(size: int, rng: np.random.Generator) -> Iterator[int]:
        while True:
            yield from rng.permutation(size).tolist()


class MixedDataset(torch.utils.data.Dataset):
    """Concatenated datasets, each record mapped by its own dataset's mapper.

    Args:
        datasets (sequence of sequences): the records of each dataset (lists, or detectron2's
            ``DatasetFromList``).
        mappers (sequence of callables): one per dataset, record -> model input.
    """

    def __init__(self, datasets: Sequence[Sequence[dict]], mappers: Sequence[Callable]):
        if len(datasets) != len(mappers):
            raise ValueError(f"Got {len(datasets)} datasets but {len(mappers)} mappers.")
        self.datasets, self.mappers = list(datasets), list(mappers)
        self.offsets = [0] + list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.offsets[-1]

    def dataset_index(self, index: int) -> int:
        """Which dataset the concatenated ``index`` falls in."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} records.")
        return bisect.bisect_right(self.offsets, index) - 1

    def __getitem__(self, index: int):
        d = self.dataset_index(index)
        return self.mappers[d](self.datasets[d][index - self.offsets[d]])

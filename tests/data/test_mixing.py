"""Mixing datasets by ratio: the sampler's proportions, its per-process shares, the dispatch of
records to their dataset's mapper, and a training step of the core model on a mixed batch."""

import itertools

import numpy as np
import pytest
import torch

from video_mask2former.data.mixing import MixedDataset, RatioSampler, check_ratios

NUM_DRAWS = 20000
# Allowed deviation of an observed share, in binomial standard deviations (fixed seed: the test
# is deterministic; the bound says how far a correct sampler may plausibly land).
NUM_STD = 4.0


def _take(iterable, n):
    return list(itertools.islice(iterable, n))


@pytest.mark.parametrize("ratios", [(3.0, 1.0), (1.0, 0.75), (1.0, 1.0, 2.0)])
def test_each_dataset_drawn_in_proportion(ratios):
    sizes = [5, 50, 7][: len(ratios)]  # shares follow the ratios, not the sizes
    sampler = RatioSampler(sizes, ratios, seed=0)
    offsets = np.cumsum([0] + sizes)
    drawn = np.searchsorted(offsets, _take(sampler, NUM_DRAWS), side="right") - 1
    for d, ratio in enumerate(ratios):
        p = ratio / sum(ratios)
        share = np.mean(drawn == d)
        assert abs(share - p) < NUM_STD * np.sqrt(p * (1 - p) / NUM_DRAWS), (d, share, p)


def test_records_come_in_shuffled_passes():
    sampler = RatioSampler([4, 6], [1.0, 1.0], seed=1)
    indices = _take(sampler, 2000)
    first = [i for i in indices if i < 4]
    second = [i - 4 for i in indices if i >= 4]
    for records, size in ((first, 4), (second, 6)):
        for p in range(len(records) // size):  # every full pass has each record once
            assert sorted(records[p * size : (p + 1) * size]) == list(range(size))
    assert first[:4] != [0, 1, 2, 3] or second[:6] != list(range(6))  # shuffled


def test_processes_share_the_single_process_stream():
    world_size, n = 3, 300
    single = _take(RatioSampler([10, 20], [1.0, 2.0], seed=5), n * world_size)
    shares = [
        _take(RatioSampler([10, 20], [1.0, 2.0], seed=5, rank=r, world_size=world_size), n)
        for r in range(world_size)
    ]
    for r, share in enumerate(shares):
        assert share == single[r::world_size]
    other_seed = _take(RatioSampler([10, 20], [1.0, 2.0], seed=6), n)
    assert other_seed != single[:n]


def test_zero_ratio_is_never_drawn():
    indices = _take(RatioSampler([3, 3], [0.0, 1.0], seed=0), 500)
    assert min(indices) >= 3


@pytest.mark.parametrize(
    "ratios, message",
    [
        ([1.0], r"has 1 values \[1.0\], but there are 2 datasets \['videos', 'images'\]"),
        ([1.0, -1.0], "finite and >= 0"),
        ([0.0, 0.0], "at least one ratio must be > 0"),
    ],
)
def test_bad_ratios(ratios, message):
    with pytest.raises(ValueError, match=message):
        check_ratios(ratios, ["videos", "images"])
    with pytest.raises(ValueError, match=message):
        RatioSampler([2, 2], ratios, seed=0, names=["videos", "images"])


def test_mixed_dataset_uses_each_datasets_mapper():
    dataset = MixedDataset(
        [[{"v": 0}, {"v": 1}], [{"i": 0}]],
        [lambda r: ("video", r["v"]), lambda r: ("image", r["i"])],
    )
    assert len(dataset) == 3
    assert [dataset[i] for i in range(3)] == [("video", 0), ("video", 1), ("image", 0)]
    with pytest.raises(IndexError):
        dataset[3]


def test_training_step_on_a_mixed_batch(tmp_path):
    """Core only (no detectron2): synthetic videos + synthetic images as pseudo-videos, drawn by
    ratio through a DataLoader, train the tiny model one step."""
    from tests.modeling.tiny_video_model import build_tiny_model
    from video_mask2former.data.augmentation import build_clip_augmentation
    from video_mask2former.data.clip_mapper import ClipDatasetMapper
    from video_mask2former.data.coco_images import load_coco_image_dataset
    from video_mask2former.data.pseudo_video import (
        PseudoVideoMapper,
        build_pseudo_video_augmentation,
    )
    from video_mask2former.data.synthetic import write_synthetic_ytvis
    from video_mask2former.data.synthetic_images import write_synthetic_coco
    from video_mask2former.data.ytvis import load_ytvis_json

    video_root, video_json = write_synthetic_ytvis(
        str(tmp_path / "videos"), num_train_videos=2, num_val_videos=1, num_frames=3, height=32,
        width=40,
    )["train"]  # fmt: skip
    image_root, image_json = write_synthetic_coco(
        str(tmp_path / "images"), num_images=3, height=32, width=40
    )
    videos = load_ytvis_json(video_json, video_root)
    images, _ = load_coco_image_dataset(image_json, image_root)
    mappers = [
        ClipDatasetMapper(
            is_train=True,
            augmentations=build_clip_augmentation(is_train=True, min_size_train=(32,)),
        ),
        PseudoVideoMapper(
            augmentation=build_pseudo_video_augmentation(
                min_size_train=(32,), crop_type="relative_range", crop_size=(0.7, 0.7)
            )
        ),
    ]
    dataset = MixedDataset([videos, images], mappers)
    sampler = RatioSampler([len(videos), len(images)], [1.0, 1.0], seed=0)
    loader = torch.utils.data.DataLoader(
        dataset, sampler=sampler, batch_size=4, collate_fn=lambda batch: batch
    )
    batch = next(iter(loader))
    kinds = {"file_names" in b and len(set(b["file_names"])) == 1 for b in batch}
    assert kinds == {True, False}  # this seed's first batch mixes pseudo-videos and videos
    model = build_tiny_model().train()
    losses = model(batch)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in model.sem_seg_head.predictor.class_embed.parameters())

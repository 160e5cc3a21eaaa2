"""video_mask2former.data.split: a seeded train / val split by video, stratified when asked."""

import pytest

from video_mask2former.data.split import SplitError, split_ytvis, val_video_ids


def _dataset(common: int = 10, rare: int = 2) -> dict:
    """``common`` videos with one "car" (id 1), ``rare`` more with a "car" and a "yak" (id 2),
    and two videos without instances."""
    num = common + rare + 2
    videos = [{"id": v, "height": 4, "width": 4, "length": 1} for v in range(1, num + 1)]
    anns = []
    for v in range(1, common + rare + 1):
        anns.append({"id": len(anns) + 1, "video_id": v, "category_id": 1,
                     "segmentations": [None]})  # fmt: skip
        if v > common:
            anns.append({"id": len(anns) + 1, "video_id": v, "category_id": 2,
                         "segmentations": [None]})  # fmt: skip
    cats = [{"id": 1, "name": "car"}, {"id": 2, "name": "yak"}]
    return {"info": {"x": 1}, "videos": videos, "annotations": anns, "categories": cats}


def test_split_by_video_is_seeded_and_complete():
    dataset = _dataset()
    train, val = split_ytvis(dataset, val_fraction=0.25, seed=3)
    train_ids = {v["id"] for v in train["videos"]}
    val_ids = {v["id"] for v in val["videos"]}
    assert not train_ids & val_ids and train_ids | val_ids == set(range(1, 15))
    assert len(val_ids) == round(0.25 * 14)
    for side, ids in ((train, train_ids), (val, val_ids)):
        assert {a["video_id"] for a in side["annotations"]} <= ids
        assert side["categories"] == dataset["categories"] and side["info"] == {"x": 1}
    assert len(train["annotations"]) + len(val["annotations"]) == len(dataset["annotations"])
    assert val_video_ids(dataset, val_fraction=0.25, seed=3) == sorted(val_ids)
    others = {tuple(val_video_ids(dataset, val_fraction=0.25, seed=s)) for s in range(8)}
    assert len(others) > 1  # the seed matters


def test_stratified_split_gives_a_rare_category_its_share():
    dataset = _dataset(common=10, rare=2)
    rare_videos = {11, 12}
    for seed in range(20):
        val = set(val_video_ids(dataset, val_fraction=0.5, seed=seed, stratify=True))
        assert len(val) == 7 and len(val & rare_videos) == 1, seed
        assert len(val & {13, 14}) == 1  # the videos without instances are a stratum too
    plain = [
        len(set(val_video_ids(dataset, val_fraction=0.5, seed=s)) & rare_videos) for s in range(20)
    ]
    assert set(plain) != {1}  # without --stratify the rare videos fall by chance


def test_at_least_one_video_on_each_side():
    dataset = _dataset(common=2, rare=0)  # 4 videos
    assert len(val_video_ids(dataset, val_fraction=0.01, seed=0)) == 1
    assert len(val_video_ids(dataset, val_fraction=0.99, seed=0)) == 3


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.2])
def test_fraction_outside_the_open_interval(fraction):
    with pytest.raises(SplitError, match="strictly between 0 and 1"):
        val_video_ids(_dataset(), val_fraction=fraction, seed=0)

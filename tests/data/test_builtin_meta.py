"""Built-in categories and split table."""

import os

import pytest

from video_mask2former.data import builtin_meta
from video_mask2former.data.builtin_meta import BUILTIN_SPLITS, metadata_for


@pytest.mark.parametrize(
    "name, count, first, last",
    [
        ("ytvis_2019_train", 40, "person", "tennis_racket"),
        ("ytvis_2021_val", 40, "airplane", "zebra"),
        ("ovis_test", 25, "Person", "Vehical"),
        ("ytvis_synthetic_train", 3, "circle", "triangle"),
    ],
)
def test_category_counts_and_contiguous_mapping(name, count, first, last):
    meta = metadata_for(name)
    assert len(meta["thing_classes"]) == len(meta["thing_colors"]) == count
    assert meta["thing_classes"][0] == first and meta["thing_classes"][-1] == last
    mapping = meta["thing_dataset_id_to_contiguous_id"]
    assert sorted(mapping.values()) == list(range(count))
    assert sorted(mapping) == list(range(1, count + 1))  # all four use ids 1..K
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in meta["thing_colors"])


def test_official_facts():
    assert metadata_for("ytvis_2019")["thing_classes"][6] == "ape"
    assert metadata_for("ytvis_2021")["thing_classes"][13] == "flying_disc"
    assert metadata_for("ytvis_2019")["thing_colors"][0] == (220, 20, 60)
    names = [c[1] for c in builtin_meta.OVIS_CATEGORIES]
    assert len(set(names)) == 25


def test_split_table_layout():
    expected = {
        "ytvis_2019_train": ("ytvis_2019/train/JPEGImages", "ytvis_2019/train.json"),
        "ytvis_2019_val": ("ytvis_2019/valid/JPEGImages", "ytvis_2019/valid.json"),
        "ytvis_2021_test": ("ytvis_2021/test/JPEGImages", "ytvis_2021/test.json"),
        "ovis_train": ("ovis/train", "ovis/annotations/annotations_train.json"),
        "ovis_val": ("ovis/valid", "ovis/annotations/annotations_valid.json"),
        "ytvis_synthetic_train": ("ytvis_synthetic/train/JPEGImages", "ytvis_synthetic/train.json"),
        "ytvis_synthetic_val": ("ytvis_synthetic/valid/JPEGImages", "ytvis_synthetic/valid.json"),
        "ytvis_2022_val": ("ytvis_2022/valid/JPEGImages", "ytvis_2022/valid.json"),
        "ytvis_2022_val_long": ("ytvis_2022/valid/JPEGImages", "ytvis_2022/gt_long.json"),
    }
    for name, (image_root, json_file) in expected.items():
        split = BUILTIN_SPLITS[name]
        assert (split.image_root, split.json_file) == (image_root, json_file)
        assert split.paths("/d") == (os.path.join("/d", image_root), os.path.join("/d", json_file))
    assert len(BUILTIN_SPLITS) == 14
    assert BUILTIN_SPLITS["ytvis_2022_val"].subset_paths("/d") == {
        "short": "/d/ytvis_2022/gt_short.json",
        "long": "/d/ytvis_2022/gt_long.json",
    }
    assert metadata_for("ytvis_2022_val_short") == metadata_for("ytvis_2021")


def test_datasets_root_and_unknown_name(monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", "/data/sets")
    assert builtin_meta.datasets_root() == "/data/sets"
    monkeypatch.delenv("DETECTRON2_DATASETS")
    assert builtin_meta.datasets_root() == "datasets"
    with pytest.raises(KeyError, match="ytvis_2022_train"):
        metadata_for("ytvis_2022_train")

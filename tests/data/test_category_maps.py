"""The COCO -> YouTube-VIS 2019 / 2021 / OVIS tables and the built-in image splits."""

import pytest

from video_mask2former.data.builtin_meta import CATEGORIES
from video_mask2former.data.category_maps import (
    BUILTIN_IMAGE_SPLITS,
    CATEGORY_MAPS,
    COCO_NAMES,
    COCO_TO_OVIS,
    COCO_TO_YTVIS_2019,
    COCO_TO_YTVIS_2021,
)

# COCO name -> video name where the peers' tables pair different names; every other entry pairs
# equal names (ignoring case, "_" vs " ").
SYNONYMS = {
    "bicycle": {"motorbike", "bicycle"},
    "motorcycle": {"motorbike", "motorcycle"},
    "car": {"sedan", "car", "vehical"},
    "bus": {"vehical"},
    "truck": {"truck", "vehical"},
    "skis": {"snowboard"},
    "frisbee": {"flying_disc"},
}


def _norm(name):
    return name.lower().replace(" ", "_")


@pytest.mark.parametrize(
    "table, categories, num_coco, num_video",
    [
        (COCO_TO_YTVIS_2019, "ytvis_2019", 21, 19),
        (COCO_TO_YTVIS_2021, "ytvis_2021", 23, 21),
        (COCO_TO_OVIS, "ovis", 17, 15),
    ],
)
def test_tables_pair_the_same_objects(table, categories, num_coco, num_video):
    video_names = {cid: _norm(name) for cid, name, _ in CATEGORIES[categories]}
    assert len(table) == num_coco and len(set(table.values())) == num_video
    for coco_id, video_id in table.items():
        coco, video = _norm(COCO_NAMES[coco_id]), video_names[video_id]
        assert video in SYNONYMS.get(coco, {coco}), (coco_id, coco, video)


def test_peers_tables_kept_as_published():
    # The peers' OVIS table has no COCO "bird" (16) although OVIS has "Bird"; 2021's has it.
    assert 16 not in COCO_TO_OVIS and COCO_TO_YTVIS_2021[16] == 3
    assert 16 not in COCO_TO_YTVIS_2019  # YouTube-VIS 2019 has parrot / duck / owl, no "bird"


def test_builtin_image_splits():
    for prefix, table, categories in (
        ("coco2ytvis2019", "coco_to_ytvis_2019", "ytvis_2019"),
        ("coco2ytvis2021", "coco_to_ytvis_2021", "ytvis_2021"),
        ("coco2ovis", "coco_to_ovis", "ovis"),
    ):
        for split in ("train", "val"):
            s = BUILTIN_IMAGE_SPLITS[f"{prefix}_{split}"]
            assert (s.category_map, s.categories) == (table, categories)
            assert s.paths("/d") == (
                f"/d/coco/{split}2017",
                f"/d/coco/annotations/instances_{split}2017.json",
            )
    synthetic = BUILTIN_IMAGE_SPLITS["coco_synthetic_train"]
    assert CATEGORY_MAPS[synthetic.category_map] is None  # already the synthetic categories
    assert synthetic.categories == "ytvis_synthetic"

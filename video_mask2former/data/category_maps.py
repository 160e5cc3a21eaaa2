"""Image-dataset categories -> video-dataset categories, and the built-in image splits.

Joint training reads an image dataset (COCO) as short pseudo-videos (``pseudo_video.py``) labelled
with the categories of the video dataset it is trained with. A correspondence table maps the image
dataset's category ids to the video dataset's ids; image annotations of unmapped categories are
dropped (``coco_images.py``). Several image categories may map to one video category (COCO "car",
"bus" and "truck" are all OVIS "Vehical").

Source of the three COCO tables: VITA (github.com/sukjunhwang/VITA), ``COCO_TO_YTVIS_2019`` and
``COCO_TO_YTVIS_2021`` in ``vita/data/datasets/ytvis.py``, ``COCO_TO_OVIS`` in
``vita/data/datasets/ovis.py``, the tables its ``convert_coco2ytvis.py`` writes the
``coco2ytvis2019_train`` / ``coco2ytvis2021_train`` / ``coco2ovis_train`` files with. GenVIS
(``vita/data/datasets/{ytvis,ovis}.py``) and DVIS (``dvis/data_video/datasets/ytvis.py``) ship the
same entries, which are kept here unchanged so that results compare with theirs: e.g. COCO
"bicycle" is YouTube-VIS 2019 "motorbike", and COCO "bird" is left out of the OVIS table although
OVIS has a "Bird" class. The COCO category ids and names are those of COCO 2017
(``instances_train2017.json``); the video ids are those of ``builtin_meta.py``.
"""

import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

__all__ = [
    "COCO_NAMES",
    "COCO_TO_YTVIS_2019",
    "COCO_TO_YTVIS_2021",
    "COCO_TO_OVIS",
    "CATEGORY_MAPS",
    "ImageSplit",
    "BUILTIN_IMAGE_SPLITS",
]

# Names of the COCO 2017 categories that appear in the tables below (COCO id -> name).
COCO_NAMES: Dict[int, str] = {
    1: "person",
    2: "bicycle",
    3: "car",
    4: "motorcycle",
    5: "airplane",
    6: "bus",
    7: "train",
    8: "truck",
    9: "boat",
    16: "bird",
    17: "cat",
    18: "dog",
    19: "horse",
    20: "sheep",
    21: "cow",
    22: "elephant",
    23: "bear",
    24: "zebra",
    25: "giraffe",
    34: "frisbee",
    35: "skis",
    36: "snowboard",
    41: "skateboard",
    42: "surfboard",
    43: "tennis racket",
}

# COCO id -> YouTube-VIS 2019 id (21 COCO categories onto 19 video ones).
COCO_TO_YTVIS_2019: Dict[int, int] = {
    1: 1,  # person -> person
    2: 21,  # bicycle -> motorbike
    3: 6,  # car -> sedan
    4: 21,  # motorcycle -> motorbike
    5: 28,  # airplane -> airplane
    7: 17,  # train -> train
    8: 29,  # truck -> truck
    9: 34,  # boat -> boat
    17: 14,  # cat -> cat
    18: 8,  # dog -> dog
    19: 18,  # horse -> horse
    21: 15,  # cow -> cow
    22: 32,  # elephant -> elephant
    23: 20,  # bear -> bear
    24: 30,  # zebra -> zebra
    25: 22,  # giraffe -> giraffe
    35: 33,  # skis -> snowboard
    36: 33,  # snowboard -> snowboard
    41: 5,  # skateboard -> skateboard
    42: 27,  # surfboard -> surfboard
    43: 40,  # tennis racket -> tennis_racket
}

# COCO id -> YouTube-VIS 2021 id (23 COCO categories onto 21 video ones).
COCO_TO_YTVIS_2021: Dict[int, int] = {
    1: 26,  # person -> person
    2: 23,  # bicycle -> motorbike
    3: 5,  # car -> car
    4: 23,  # motorcycle -> motorbike
    5: 1,  # airplane -> airplane
    7: 36,  # train -> train
    8: 37,  # truck -> truck
    9: 4,  # boat -> boat
    16: 3,  # bird -> bird
    17: 6,  # cat -> cat
    18: 9,  # dog -> dog
    19: 19,  # horse -> horse
    21: 7,  # cow -> cow
    22: 12,  # elephant -> elephant
    23: 2,  # bear -> bear
    24: 40,  # zebra -> zebra
    25: 18,  # giraffe -> giraffe
    34: 14,  # frisbee -> flying_disc
    35: 31,  # skis -> snowboard
    36: 31,  # snowboard -> snowboard
    41: 29,  # skateboard -> skateboard
    42: 33,  # surfboard -> surfboard
    43: 34,  # tennis racket -> tennis_racket
}

# COCO id -> OVIS id (17 COCO categories onto 15 video ones).
COCO_TO_OVIS: Dict[int, int] = {
    1: 1,  # person -> Person
    2: 21,  # bicycle -> Bicycle
    3: 25,  # car -> Vehical
    4: 22,  # motorcycle -> Motorcycle
    5: 23,  # airplane -> Airplane
    6: 25,  # bus -> Vehical
    8: 25,  # truck -> Vehical
    9: 24,  # boat -> Boat
    17: 3,  # cat -> Cat
    18: 4,  # dog -> Dog
    19: 5,  # horse -> Horse
    20: 6,  # sheep -> Sheep
    21: 7,  # cow -> Cow
    22: 8,  # elephant -> Elephant
    23: 9,  # bear -> Bear
    24: 10,  # zebra -> Zebra
    25: 11,  # giraffe -> Giraffe
}

# Table name -> table. None: the identity (the image set already uses the video categories).
CATEGORY_MAPS: Dict[str, Optional[Dict[int, int]]] = {
    "coco_to_ytvis_2019": COCO_TO_YTVIS_2019,
    "coco_to_ytvis_2021": COCO_TO_YTVIS_2021,
    "coco_to_ovis": COCO_TO_OVIS,
    "identity": None,
}


@dataclass(frozen=True)
class ImageSplit:
    """A predefined COCO-format image split read as pseudo-videos.

    Attributes:
        name (str): registered name, e.g. ``"coco2ytvis2019_train"``.
        image_root (str): folder of the images, relative to the datasets root.
        json_file (str): COCO-format annotation file, relative to the datasets root.
        category_map (str): key of :data:`CATEGORY_MAPS`.
        categories (str): key of ``builtin_meta.CATEGORIES``: the video categories it is
            relabelled to (its metadata is that category set's).
    """

    name: str
    image_root: str
    json_file: str
    category_map: str
    categories: str

    def paths(self, root: str) -> Tuple[str, str]:
        """Return ``(image_root, json_file)`` joined onto the datasets root ``root``."""
        return os.path.join(root, self.image_root), os.path.join(root, self.json_file)


def _coco_splits():
    # The COCO 2017 release as detectron2 expects it under the datasets root:
    # coco/{train2017,val2017}/*.jpg and coco/annotations/instances_{train2017,val2017}.json.
    # The split names are the peers' (VITA, GenVIS and DVIS register coco2ytvis2019_{train,val},
    # coco2ytvis2021_{train,val} and coco2ovis_{train,val}); they read the original COCO files and
    # filter / relabel when loading, so no converted copy of the annotations is needed.
    targets = (
        ("coco2ytvis2019", "coco_to_ytvis_2019", "ytvis_2019"),
        ("coco2ytvis2021", "coco_to_ytvis_2021", "ytvis_2021"),
        ("coco2ovis", "coco_to_ovis", "ovis"),
    )
    return [
        ImageSplit(
            name=f"{prefix}_{split}",
            image_root=f"coco/{split}2017",
            json_file=f"coco/annotations/instances_{split}2017.json",
            category_map=table,
            categories=categories,
        )
        for prefix, table, categories in targets
        for split in ("train", "val")
    ]


def _synthetic_split():
    # Written by datasets/prepare_synthetic_coco.py: the synthetic video set's shapes and classes
    # as single annotated images (COCO format), for joint training with ytvis_synthetic_train.
    return ImageSplit(
        name="coco_synthetic_train",
        image_root="coco_synthetic/images",
        json_file="coco_synthetic/annotations.json",
        category_map="identity",
        categories="ytvis_synthetic",
    )


BUILTIN_IMAGE_SPLITS: Dict[str, ImageSplit] = {
    split.name: split for split in _coco_splits() + [_synthetic_split()]
}

"""Categories and built-in splits of the video instance segmentation datasets.

Pure data plus two small look-ups; the detectron2 layer (``video_mask2former/d2/datasets.py``) loops
over :data:`BUILTIN_SPLITS` to register every split in DatasetCatalog / MetadataCatalog.

Category facts (ids, names, colours) are those of the official Mask2Former video code for
YouTube-VIS 2019/2021, and of the VIS projects built on it (MinVIS, VITA, DVIS) for OVIS, whose
annotation files spell the last category "Vehical".
"""

import os
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

# (dataset category id, name, RGB colour used for drawing)
Category = Tuple[int, str, Tuple[int, int, int]]

YTVIS_2019_CATEGORIES: List[Category] = [
    (1, "person", (220, 20, 60)),
    (2, "giant_panda", (0, 82, 0)),
    (3, "lizard", (119, 11, 32)),
    (4, "parrot", (165, 42, 42)),
    (5, "skateboard", (134, 134, 103)),
    (6, "sedan", (0, 0, 142)),
    (7, "ape", (255, 109, 65)),
    (8, "dog", (0, 226, 252)),
    (9, "snake", (5, 121, 0)),
    (10, "monkey", (0, 60, 100)),
    (11, "hand", (250, 170, 30)),
    (12, "rabbit", (100, 170, 30)),
    (13, "duck", (179, 0, 194)),
    (14, "cat", (255, 77, 255)),
    (15, "cow", (120, 166, 157)),
    (16, "fish", (73, 77, 174)),
    (17, "train", (0, 80, 100)),
    (18, "horse", (182, 182, 255)),
    (19, "turtle", (0, 143, 149)),
    (20, "bear", (174, 57, 255)),
    (21, "motorbike", (0, 0, 230)),
    (22, "giraffe", (72, 0, 118)),
    (23, "leopard", (255, 179, 240)),
    (24, "fox", (0, 125, 92)),
    (25, "deer", (209, 0, 151)),
    (26, "owl", (188, 208, 182)),
    (27, "surfboard", (145, 148, 174)),
    (28, "airplane", (106, 0, 228)),
    (29, "truck", (0, 0, 70)),
    (30, "zebra", (199, 100, 0)),
    (31, "tiger", (166, 196, 102)),
    (32, "elephant", (110, 76, 0)),
    (33, "snowboard", (133, 129, 255)),
    (34, "boat", (0, 0, 192)),
    (35, "shark", (183, 130, 88)),
    (36, "mouse", (130, 114, 135)),
    (37, "frog", (107, 142, 35)),
    (38, "eagle", (0, 228, 0)),
    (39, "earless_seal", (174, 255, 243)),
    (40, "tennis_racket", (255, 208, 186)),
]

YTVIS_2021_CATEGORIES: List[Category] = [
    (1, "airplane", (106, 0, 228)),
    (2, "bear", (174, 57, 255)),
    (3, "bird", (255, 109, 65)),
    (4, "boat", (0, 0, 192)),
    (5, "car", (0, 0, 142)),
    (6, "cat", (255, 77, 255)),
    (7, "cow", (120, 166, 157)),
    (8, "deer", (209, 0, 151)),
    (9, "dog", (0, 226, 252)),
    (10, "duck", (179, 0, 194)),
    (11, "earless_seal", (174, 255, 243)),
    (12, "elephant", (110, 76, 0)),
    (13, "fish", (73, 77, 174)),
    (14, "flying_disc", (250, 170, 30)),
    (15, "fox", (0, 125, 92)),
    (16, "frog", (107, 142, 35)),
    (17, "giant_panda", (0, 82, 0)),
    (18, "giraffe", (72, 0, 118)),
    (19, "horse", (182, 182, 255)),
    (20, "leopard", (255, 179, 240)),
    (21, "lizard", (119, 11, 32)),
    (22, "monkey", (0, 60, 100)),
    (23, "motorbike", (0, 0, 230)),
    (24, "mouse", (130, 114, 135)),
    (25, "parrot", (165, 42, 42)),
    (26, "person", (220, 20, 60)),
    (27, "rabbit", (100, 170, 30)),
    (28, "shark", (183, 130, 88)),
    (29, "skateboard", (134, 134, 103)),
    (30, "snake", (5, 121, 0)),
    (31, "snowboard", (133, 129, 255)),
    (32, "squirrel", (188, 208, 182)),
    (33, "surfboard", (145, 148, 174)),
    (34, "tennis_racket", (255, 208, 186)),
    (35, "tiger", (166, 196, 102)),
    (36, "train", (0, 80, 100)),
    (37, "truck", (0, 0, 70)),
    (38, "turtle", (0, 143, 149)),
    (39, "whale", (0, 228, 0)),
    (40, "zebra", (199, 100, 0)),
]

OVIS_CATEGORIES: List[Category] = [
    (1, "Person", (220, 20, 60)),
    (2, "Bird", (255, 109, 65)),
    (3, "Cat", (255, 77, 255)),
    (4, "Dog", (0, 226, 252)),
    (5, "Horse", (182, 182, 255)),
    (6, "Sheep", (0, 125, 92)),
    (7, "Cow", (120, 166, 157)),
    (8, "Elephant", (110, 76, 0)),
    (9, "Bear", (174, 57, 255)),
    (10, "Zebra", (199, 100, 0)),
    (11, "Giraffe", (72, 0, 118)),
    (12, "Poultry", (179, 0, 194)),
    (13, "Giant_panda", (0, 82, 0)),
    (14, "Lizard", (119, 11, 32)),
    (15, "Parrot", (165, 42, 42)),
    (16, "Monkey", (0, 60, 100)),
    (17, "Rabbit", (100, 170, 30)),
    (18, "Tiger", (166, 196, 102)),
    (19, "Fish", (73, 77, 174)),
    (20, "Turtle", (0, 143, 149)),
    (21, "Bicycle", (134, 134, 103)),
    (22, "Motorcycle", (0, 0, 230)),
    (23, "Airplane", (106, 0, 228)),
    (24, "Boat", (0, 0, 192)),
    (25, "Vehical", (0, 0, 70)),
]

# The synthetic dataset of ``video_mask2former.data.synthetic``: one shape and one colour per
# category, so that a small model separates them after a few CPU minutes of training.
SYNTHETIC_CATEGORIES: List[Category] = [
    (1, "circle", (230, 40, 40)),
    (2, "square", (40, 200, 40)),
    (3, "triangle", (40, 80, 240)),
]

CATEGORIES: Dict[str, List[Category]] = {
    "ytvis_2019": YTVIS_2019_CATEGORIES,
    "ytvis_2021": YTVIS_2021_CATEGORIES,
    "ovis": OVIS_CATEGORIES,
    "ytvis_synthetic": SYNTHETIC_CATEGORIES,
}


@dataclass(frozen=True)
class BuiltinSplit:
    """One predefined split: paths relative to the datasets root and its category set.

    Attributes:
        name (str): registered name, e.g. ``"ytvis_2019_train"``.
        image_root (str): folder of the frames, relative to the datasets root.
        json_file (str): annotation file, relative to the datasets root.
        categories (str): key of :data:`CATEGORIES`.
        subset_json_files (tuple): ``(subset, json_file)`` pairs of ground truths scored apart
            (YouTube-VIS 2022: ``short`` and ``long``), relative to the datasets root.
    """

    name: str
    image_root: str
    json_file: str
    categories: str
    subset_json_files: Tuple[Tuple[str, str], ...] = ()

    def paths(self, root: str) -> Tuple[str, str]:
        """Return ``(image_root, json_file)`` joined onto the datasets root ``root``."""
        return os.path.join(root, self.image_root), os.path.join(root, self.json_file)

    def subset_paths(self, root: str) -> Dict[str, str]:
        """``subset_json_files`` joined onto the datasets root ``root``."""
        return {subset: os.path.join(root, path) for subset, path in self.subset_json_files}


def _ytvis_splits(year_dir: str, categories: str) -> List[BuiltinSplit]:
    # Official layout: <dir>/{train,valid,test}.json and <dir>/{train,valid,test}/JPEGImages.
    folders = {"train": "train", "val": "valid", "test": "test"}
    return [
        BuiltinSplit(
            name=f"{year_dir}_{split}",
            image_root=f"{year_dir}/{folder}/JPEGImages",
            json_file=f"{year_dir}/{folder}.json",
            categories=categories,
        )
        for split, folder in folders.items()
    ]


def _ovis_splits() -> List[BuiltinSplit]:
    # Layout of the OVIS release as used by MinVIS / VITA / DVIS:
    # ovis/{train,valid,test}/<video>/<frame>.jpg and ovis/annotations/annotations_<folder>.json.
    folders = {"train": "train", "val": "valid", "test": "test"}
    return [
        BuiltinSplit(
            name=f"ovis_{split}",
            image_root=f"ovis/{folder}",
            json_file=f"ovis/annotations/annotations_{folder}.json",
            categories="ovis",
        )
        for split, folder in folders.items()
    ]


def _ytvis_2022_splits() -> List[BuiltinSplit]:
    # The 2022 validation set (the 2021 valid videos + 71 long videos) in the layout of its
    # release: ytvis_2022/valid.json, ytvis_2022/valid/JPEGImages, and its ground truth as two
    # files, gt_short.json and gt_long.json, scored apart (AP_S, AP_L:
    # video_mask2former.evaluation.ytvis2022). Training uses ytvis_2021_train (the same set).
    gt_files = (("short", "ytvis_2022/gt_short.json"), ("long", "ytvis_2022/gt_long.json"))
    image_root = "ytvis_2022/valid/JPEGImages"
    whole = BuiltinSplit(
        name="ytvis_2022_val",
        image_root=image_root,
        json_file="ytvis_2022/valid.json",
        categories="ytvis_2021",
        subset_json_files=gt_files,
    )
    subsets = [
        BuiltinSplit(f"ytvis_2022_val_{subset}", image_root, json_file, "ytvis_2021")
        for subset, json_file in gt_files
    ]
    return [whole] + subsets


def _synthetic_splits() -> List[BuiltinSplit]:
    # Written by datasets/prepare_synthetic_ytvis.py in the YouTube-VIS layout (val is annotated).
    folders = {"train": "train", "val": "valid"}
    return [
        BuiltinSplit(
            name=f"ytvis_synthetic_{split}",
            image_root=f"ytvis_synthetic/{folder}/JPEGImages",
            json_file=f"ytvis_synthetic/{folder}.json",
            categories="ytvis_synthetic",
        )
        for split, folder in folders.items()
    ]


BUILTIN_SPLITS: Dict[str, BuiltinSplit] = {
    split.name: split
    for split in (
        _ytvis_splits("ytvis_2019", "ytvis_2019")
        + _ytvis_splits("ytvis_2021", "ytvis_2021")
        + _ytvis_2022_splits()
        + _ovis_splits()
        + _synthetic_splits()
    )
}


def datasets_root() -> str:
    """The datasets root: ``$DETECTRON2_DATASETS``, or ``"datasets"`` when it is unset."""
    return os.getenv("DETECTRON2_DATASETS", "datasets")


def categories_metadata(categories: Sequence[Category]) -> dict:
    """Metadata of a category list, in detectron2's MetadataCatalog field names.

    Contiguous ids follow the order of increasing dataset id.

    Returns:
        dict: ``thing_classes`` (list[str]), ``thing_colors`` (list[tuple]),
        ``thing_dataset_id_to_contiguous_id`` (dict[int, int]).
    """
    ordered = sorted(categories, key=lambda c: c[0])
    return {
        "thing_classes": [name for _, name, _ in ordered],
        "thing_colors": [tuple(color) for _, _, color in ordered],
        "thing_dataset_id_to_contiguous_id": {cid: i for i, (cid, _, _) in enumerate(ordered)},
    }


def metadata_for(name: str) -> dict:
    """Metadata of a built-in split (e.g. ``"ytvis_2019_train"``) or category set (``"ovis"``).

    Raises:
        KeyError: naming the unknown name and the known ones.
    """
    if name in BUILTIN_SPLITS:
        return categories_metadata(CATEGORIES[BUILTIN_SPLITS[name].categories])
    if name in CATEGORIES:
        return categories_metadata(CATEGORIES[name])
    raise KeyError(
        f"Unknown dataset {name!r}: expected one of the built-in splits "
        f"{sorted(BUILTIN_SPLITS)} or category sets {sorted(CATEGORIES)}."
    )

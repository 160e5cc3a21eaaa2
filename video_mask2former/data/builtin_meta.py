"""Categories and built-in splits of the video instance, panoptic and semantic datasets.

Pure data plus two small look-ups; the detectron2 layer (``video_mask2former/d2/datasets.py``) loops
over :data:`BUILTIN_SPLITS` to register every split in DatasetCatalog / MetadataCatalog.

Category facts (ids, names, colours) are those of the official Mask2Former video code for
YouTube-VIS 2019/2021, and of the VIS projects built on it (MinVIS, VITA, DVIS) for OVIS, whose
annotation files spell the last category "Vehical".

Video panoptic splits (VIPSeg layout) are in :data:`BUILTIN_VPS_SPLITS`, video semantic splits (VSPW
layout) in :data:`BUILTIN_VSS_SPLITS`; both use the 124 VIPSeg categories
(``video_mask2former.data.vipseg_categories``) or the synthetic table, and
``video_mask2former/d2/datasets.py`` registers them too.
"""

import os
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from .vipseg_categories import VIPSEG_CATEGORIES

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

# The synthetic video panoptic / semantic datasets of ``video_mask2former.data.synthetic_video_seg``
# (``datasets/prepare_synthetic_vps.py``, ``..._vss.py``): (category id, name, isthing, colour);
# ids from 0 as VIPSeg's. Each class has its own colour and texture so a small model learns them.
VIDEO_SEG_SYNTHETIC_CATEGORIES: List[Tuple[int, str, int, Tuple[int, int, int]]] = [
    (0, "sky", 0, (110, 170, 235)),
    (1, "grass", 0, (60, 150, 50)),
    (2, "road", 0, (120, 110, 100)),
    (3, "disc", 1, (230, 50, 40)),
    (4, "box", 1, (40, 60, 220)),
    (5, "kite", 1, (240, 200, 30)),
]

# Category tables with thing/stuff flags: (id, name, isthing, colour).
SEGMENTATION_CATEGORIES = {
    "vipseg": VIPSEG_CATEGORIES,
    "video_seg_synthetic": VIDEO_SEG_SYNTHETIC_CATEGORIES,
}

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
    if name in BUILTIN_VPS_SPLITS:
        return panoptic_metadata(SEGMENTATION_CATEGORIES[BUILTIN_VPS_SPLITS[name].categories])
    if name in BUILTIN_VSS_SPLITS:
        return semantic_metadata(SEGMENTATION_CATEGORIES[BUILTIN_VSS_SPLITS[name].categories])
    raise KeyError(
        f"Unknown dataset {name!r}: expected one of the built-in splits "
        f"{sorted(BUILTIN_SPLITS) + sorted(BUILTIN_VPS_SPLITS) + sorted(BUILTIN_VSS_SPLITS)} or "
        f"category sets {sorted(CATEGORIES)}."
    )


# --------------------------------------------------------------------------------------------
# Video panoptic (VIPSeg layout) and video semantic (VSPW layout) splits
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VpsBuiltinSplit:
    """A predefined video panoptic split in the VIPSeg layout (``video_mask2former.data.vps``);
    paths relative to the datasets root.

    Attributes:
        name (str): registered name, e.g. ``"vipseg_val"``.
        image_root (str): frames ``<image_root>/<video>/<stem>.jpg``.
        gt_root (str): id PNGs ``<gt_root>/<video>/<stem>.png``.
        json_file (str): the panoptic JSON.
        categories (str): key of :data:`SEGMENTATION_CATEGORIES`.
        annotated (bool): False for a test split (frames listed in ``videos`` only).
    """

    name: str
    image_root: str
    gt_root: str
    json_file: str
    categories: str
    annotated: bool = True

    def paths(self, root: str) -> Tuple[str, str, str]:
        """``(json_file, image_root, gt_root)`` joined onto the datasets root ``root``."""
        return tuple(os.path.join(root, p) for p in (self.json_file, self.image_root, self.gt_root))


@dataclass(frozen=True)
class VssBuiltinSplit:
    """A predefined video semantic split in the VSPW layout (``video_mask2former.data.vss``).

    Attributes:
        name (str): registered name, e.g. ``"vspw_val"``.
        root (str): dataset root (holding ``data/`` and the split files), relative to the
            datasets root.
        split_file (str): the split's video list, relative to ``root``.
        categories (str): key of :data:`SEGMENTATION_CATEGORIES`.
        annotated (bool): False for a test split (no ``mask/`` folders).
    """

    name: str
    root: str
    split_file: str
    categories: str
    annotated: bool = True

    def paths(self, root: str) -> Tuple[str, str]:
        """``(root, split_file)`` joined onto the datasets root ``root``."""
        dataset_root = os.path.join(root, self.root)
        return dataset_root, os.path.join(dataset_root, self.split_file)


# Folders of the synthetic sets written by datasets/prepare_synthetic_{vps,vss}.py.
VPS_SYNTHETIC_DIR = "vps_synthetic"
VSS_SYNTHETIC_DIR = "vss_synthetic"


def _vps_splits() -> List[VpsBuiltinSplit]:
    # VIPSeg after its own conversion (change2_720p.py, create_panoptic_video_labels.py,
    # splitjson.py): VIPSeg_720P/{images,panomasksRGB}/<video>/ and panoptic_gt_VIPSeg_<split>.json.
    # splitjson.py writes train and val; the test JSON lists the frames only (datasets/README.md).
    vipseg = [
        VpsBuiltinSplit(
            name=f"vipseg_{split}",
            image_root="VIPSeg_720P/images",
            gt_root="VIPSeg_720P/panomasksRGB",
            json_file=f"VIPSeg_720P/panoptic_gt_VIPSeg_{split}.json",
            categories="vipseg",
            annotated=split != "test",
        )
        for split in ("train", "val", "test")
    ]
    synthetic = [
        VpsBuiltinSplit(
            name=f"vps_synthetic_{split}",
            image_root=f"{VPS_SYNTHETIC_DIR}/images",
            gt_root=f"{VPS_SYNTHETIC_DIR}/panomasksRGB",
            json_file=f"{VPS_SYNTHETIC_DIR}/panoptic_gt_synthetic_{split}.json",
            categories="video_seg_synthetic",
        )
        for split in ("train", "val")
    ]
    return vipseg + synthetic


def _vss_splits() -> List[VssBuiltinSplit]:
    # VSPW at 480p as the VSPW authors' change2_480p.py writes it (the release's layout:
    # data/<video>/{origin,mask}/ and {train,val,test}.txt); test has no masks.
    vspw = [
        VssBuiltinSplit(f"vspw_{split}", "VSPW_480p", f"{split}.txt", "vipseg", split != "test")
        for split in ("train", "val", "test")
    ]
    synthetic = [
        VssBuiltinSplit(
            f"vss_synthetic_{split}", VSS_SYNTHETIC_DIR, f"{split}.txt", "video_seg_synthetic"
        )
        for split in ("train", "val")
    ]
    return vspw + synthetic


BUILTIN_VPS_SPLITS: Dict[str, VpsBuiltinSplit] = {s.name: s for s in _vps_splits()}
BUILTIN_VSS_SPLITS: Dict[str, VssBuiltinSplit] = {s.name: s for s in _vss_splits()}


def panoptic_metadata(categories: Sequence[Tuple[int, str, int, Tuple[int, int, int]]]) -> dict:
    """Metadata of a panoptic category table ``(id, name, isthing, colour)``, in the field names of
    detectron2's / Mask2Former's panoptic datasets. Contiguous ids follow increasing dataset id
    and number all categories (things and stuff together).

    Returns:
        dict: ``thing_classes`` / ``thing_colors`` (things only), ``stuff_classes`` /
        ``stuff_colors`` (all categories), ``thing_dataset_id_to_contiguous_id`` (things),
        ``stuff_dataset_id_to_contiguous_id`` (all), ``categories`` (list of ``{id, name,
        isthing, color}``), ``ignore_label`` (255).
    """
    ordered = sorted(categories, key=lambda c: c[0])
    contiguous = {cid: i for i, (cid, _, _, _) in enumerate(ordered)}
    things = [c for c in ordered if c[2]]
    return {
        "thing_classes": [name for _, name, _, _ in things],
        "thing_colors": [tuple(color) for _, _, _, color in things],
        "stuff_classes": [name for _, name, _, _ in ordered],
        "stuff_colors": [tuple(color) for _, _, _, color in ordered],
        "thing_dataset_id_to_contiguous_id": {cid: contiguous[cid] for cid, _, _, _ in things},
        "stuff_dataset_id_to_contiguous_id": contiguous,
        "categories": [
            {"id": cid, "name": name, "isthing": int(isthing), "color": tuple(color)}
            for cid, name, isthing, color in ordered
        ],
        "ignore_label": 255,
    }


def semantic_metadata(categories: Sequence[Tuple[int, str, int, Tuple[int, int, int]]]) -> dict:
    """Metadata of a video semantic dataset over the category table ``categories``: class ``i``
    is the ``i``-th category by id (VSPW: mask value ``i + 1``).

    Returns:
        dict: ``stuff_classes``, ``stuff_colors``, ``stuff_dataset_id_to_contiguous_id`` (mask
        value - 1 -> class, the identity), ``ignore_label`` (255).
    """
    ordered = sorted(categories, key=lambda c: c[0])
    return {
        "stuff_classes": [name for _, name, _, _ in ordered],
        "stuff_colors": [tuple(color) for _, _, _, color in ordered],
        "stuff_dataset_id_to_contiguous_id": {i: i for i in range(len(ordered))},
        "ignore_label": 255,
    }

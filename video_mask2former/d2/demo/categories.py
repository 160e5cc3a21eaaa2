"""The demo's categories from the config's dataset (detectron2's catalogs) or ``--categories``;
the rules are in :mod:`video_mask2former.demo.categories`."""

import os
from typing import Optional

from detectron2.data import DatasetCatalog, MetadataCatalog

from ...demo.categories import Categories, CategoriesError, load_categories_file

__all__ = ["resolve_categories"]


def _segment_categories(name: str, metadata) -> Optional[Categories]:
    """The classes of a video panoptic / semantic dataset (``stuff_classes`` cover all its
    classes, things included), with ``stuff_colors``; None for another dataset."""
    names = metadata.get("stuff_classes", None)
    id_map = metadata.get("stuff_dataset_id_to_contiguous_id", None)
    if not names or not id_map:
        return None
    by_contiguous = {int(c): int(d) for d, c in id_map.items()}
    if sorted(by_contiguous) != list(range(len(names))):
        raise CategoriesError(
            f"dataset {name!r}: its metadata's stuff_dataset_id_to_contiguous_id does not number "
            f"its {len(names)} stuff_classes 0..{len(names) - 1}: give the categories with "
            "--categories FILE"
        )
    colors = metadata.get("stuff_colors", None)
    if colors is not None and len(colors) != len(names):
        raise CategoriesError(
            f"dataset {name!r}: its metadata has {len(colors)} stuff_colors for "
            f"{len(names)} stuff_classes"
        )
    ids = [by_contiguous[i] for i in range(len(names))]
    colors = None if colors is None else [tuple(int(v) for v in c) for c in colors]
    return Categories(list(names), ids, f"the metadata of dataset {name!r}", colors)


def _registered_categories(name: str) -> Optional[Categories]:
    """The categories of registered dataset ``name``: its metadata, else its annotation file."""
    metadata = MetadataCatalog.get(name)
    segment_classes = _segment_categories(name, metadata)
    if segment_classes is not None:
        return segment_classes
    names = metadata.get("thing_classes", None)
    id_map = metadata.get("thing_dataset_id_to_contiguous_id", None)
    if names and id_map:
        by_contiguous = {int(c): int(d) for d, c in id_map.items()}
        if sorted(by_contiguous) == list(range(len(names))):
            ids = [by_contiguous[i] for i in range(len(names))]
            return Categories(list(names), ids, f"the metadata of dataset {name!r}")
    json_file = metadata.get("json_file", None)
    if json_file and os.path.isfile(json_file):
        return load_categories_file(json_file)
    if names:  # thing_classes alone: YouTube-VIS numbering, ids from 1
        ids = list(range(1, len(names) + 1))
        return Categories(list(names), ids, f"the metadata of dataset {name!r}")
    return None


def resolve_categories(cfg, categories_file: Optional[str] = None) -> Categories:
    """The categories of the demo (see the module docstring), checked against the model's K.

    Args:
        cfg (CfgNode): the demo's config (``DATASETS``, ``MODEL.SEM_SEG_HEAD.NUM_CLASSES``).
        categories_file (str, optional): ``--categories``.

    Raises:
        CategoriesError: no categories are known, or their number is not K.
        FileNotFoundError, ValueError: ``categories_file`` cannot be read (naming it).
    """
    if categories_file:
        categories = load_categories_file(categories_file)
    else:
        datasets = list(cfg.DATASETS.TEST) or list(cfg.DATASETS.TRAIN)
        if not datasets:
            raise CategoriesError(
                "the config names no dataset (DATASETS.TEST / DATASETS.TRAIN): give the "
                "categories with --categories FILE (a YouTube-VIS json)"
            )
        name = datasets[0]
        if name not in DatasetCatalog.list():
            raise CategoriesError(
                f"dataset {name!r} of the config is not registered in the demo (only built-in "
                "datasets are): give its categories with --categories FILE (its YouTube-VIS "
                "json)"
            )
        categories = _registered_categories(name)
        if categories is None:
            raise CategoriesError(
                f"dataset {name!r} was registered without categories and without a readable "
                "json_file: give them with --categories FILE (its YouTube-VIS json)"
            )
    num_classes = cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
    if len(categories.names) != num_classes:
        raise CategoriesError(
            f"{categories.source} has {len(categories.names)} categories, but the model predicts "
            f"MODEL.SEM_SEG_HEAD.NUM_CLASSES = {num_classes}: give the categories the model was "
            "trained on"
        )
    return categories

"""The categories the demo names and saves: class names and dataset category ids.

The model predicts contiguous class ids 0..K-1 (K = ``MODEL.SEM_SEG_HEAD.NUM_CLASSES``); the demo
draws their names and writes their dataset ids (``category_id``). They come from, in order:

1. ``--categories FILE``: a YouTube-VIS-format json (its ``categories``), or a json list of
   ``{"id": ..., "name": ...}`` objects; contiguous ids follow increasing dataset ids, as when the
   dataset is loaded for training;
2. the config's dataset (``DATASETS.TEST[0]``, else ``DATASETS.TRAIN[0]``) when it is registered
   in the demo's process (the built-in ones are): its metadata, or its annotation file when it
   was registered without categories.

Anything else is an error (:class:`CategoriesError`): a dataset registered only by a training
script, a config without a dataset, or a number of categories other than K.

Only :func:`resolve_categories` needs detectron2 (its catalogs), imported there: the online loop
uses :class:`Categories` without it.
"""

import os
from dataclasses import dataclass
from typing import List, Optional

# One validation of a category list, shared with the dataset loader.
from video_mask2former.data.ytvis import category_mapping, check_categories, read_json

__all__ = ["Categories", "CategoriesError", "load_categories_file", "resolve_categories"]


class CategoriesError(ValueError):
    """The demo cannot tell which categories the model predicts (a usage error)."""


@dataclass
class Categories:
    """Class names and dataset category ids of contiguous ids 0..K-1.

    Attributes:
        names (list[str]): K names.
        dataset_ids (list[int]): K dataset category ids.
        source (str): where they come from, for messages.
    """

    names: List[str]
    dataset_ids: List[int]
    source: str

    def to_dataset_id(self) -> dict:
        """{contiguous id: dataset category id}."""
        return dict(enumerate(self.dataset_ids))


def load_categories_file(path: str) -> Categories:
    """The categories of a YouTube-VIS-format json, or of a json list of ``{"id", "name"}``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: naming ``path``: not JSON, no category list, a category without an integer
            ``id`` or a ``name``, an id given twice.
    """
    data, source = read_json(path, kind="categories")
    categories = data.get("categories") if isinstance(data, dict) else data
    if not isinstance(categories, list) or not categories:
        raise CategoriesError(
            f"{path}: expected a YouTube-VIS json with a non-empty 'categories' list, or a json "
            'list of {"id": ..., "name": ...} objects'
        )
    check_categories(categories, source)
    mapping, names = category_mapping({"categories": categories}, source, None)
    return Categories(list(names), sorted(mapping, key=mapping.get), source)


def _registered_categories(name: str) -> Optional[Categories]:
    """The categories of registered dataset ``name``: its metadata, else its annotation file."""
    from detectron2.data import MetadataCatalog

    metadata = MetadataCatalog.get(name)
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
    from detectron2.data import DatasetCatalog

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

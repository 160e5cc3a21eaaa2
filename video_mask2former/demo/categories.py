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

Finding them from the config's dataset needs detectron2's catalogs:
:func:`video_mask2former.d2.demo.categories.resolve_categories`; the online loop uses
:class:`Categories` without it.
"""

from dataclasses import dataclass
from typing import List

# One validation of a category list, shared with the dataset loader.
from ..data.ytvis import category_mapping, check_categories, read_json

__all__ = ["Categories", "CategoriesError", "load_categories_file"]


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

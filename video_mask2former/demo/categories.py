"""The categories the demo names and saves: class names and dataset category ids.

The model predicts contiguous class ids 0..K-1 (K = ``MODEL.SEM_SEG_HEAD.NUM_CLASSES``); the demo
draws their names and writes their dataset ids (``category_id``). They come from, in order:

1. ``--categories FILE``: a YouTube-VIS-format or VIPSeg-format json (its ``categories``), or a
   json list of ``{"id": ..., "name": ...}`` objects (an optional ``"color": [r, g, b]`` is the
   class's colour in panoptic / semantic drawings); contiguous ids follow increasing dataset ids,
   as when the dataset is loaded for training;
2. the config's dataset (``DATASETS.TEST[0]``, else ``DATASETS.TRAIN[0]``) when it is registered
   in the demo's process (the built-in ones are): its metadata (a video panoptic / semantic
   dataset's ``stuff_classes``, ``stuff_colors`` and ``stuff_dataset_id_to_contiguous_id``, which
   cover all its classes; else ``thing_classes``), or its annotation file when it was registered
   without categories.

Anything else is an error (:class:`CategoriesError`): a dataset registered only by a training
script, a config without a dataset, or a number of categories other than K.

Finding them from the config's dataset needs detectron2's catalogs:
:func:`video_mask2former.d2.demo.categories.resolve_categories`; the online loop uses
:class:`Categories` without it.
"""

from dataclasses import dataclass
from typing import List, Optional

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
        colors (list, optional): K RGB tuples (an entry may be None), the classes' colours in
            panoptic / semantic drawings; None: a fixed palette.
    """

    names: List[str]
    dataset_ids: List[int]
    source: str
    colors: Optional[List[Optional[tuple]]] = None

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
    ids = sorted(mapping, key=mapping.get)
    colors = {c["id"]: _color(c.get("color"), c, source) for c in categories}
    has_colors = any(color is not None for color in colors.values())
    return Categories(list(names), ids, source, [colors[i] for i in ids] if has_colors else None)


def _color(color, category: dict, source: str) -> Optional[tuple]:
    """A category's optional ``color``, checked: [r, g, b] integers in 0..255."""
    if color is None:
        return None
    if not (
        isinstance(color, list)
        and len(color) == 3
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)
    ):
        raise CategoriesError(
            f"{source}: category {category.get('id')!r} has color {color!r}; expected "
            "[r, g, b] integers in 0..255"
        )
    return tuple(color)

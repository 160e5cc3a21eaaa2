"""Joint training on video and image datasets: image-set registration and the mixed loader.

``DATASETS.TRAIN`` may name video datasets (YouTube-VIS format) and image datasets (COCO format,
registered by :func:`register_image_pseudo_video`) together. Each dataset keeps its own mapper:
videos go through ``YTVISDatasetMapper``, images through :class:`PseudoVideoDatasetMapper`, which
makes a clip of ``INPUT.SAMPLING_FRAME_NUM`` frames out of one image (``INPUT.PSEUDO.*``). Each
training clip comes from dataset i with probability ``DATASETS.DATASET_RATIO[i] / sum(...)``
(:class:`~video_mask2former.data.mixing.RatioSampler`: a seeded stream shared by the processes,
each taking its own share), so a batch may mix clips of both kinds.

Built-in image splits (``video_mask2former.data.category_maps.BUILTIN_IMAGE_SPLITS``:
``coco2ytvis2019_{train,val}``, ``coco2ytvis2021_{train,val}``, ``coco2ovis_{train,val}`` on COCO
2017, and ``coco_synthetic_train``) are registered lazily under ``$DETECTRON2_DATASETS`` by
:func:`register_all_builtin_images`, at package import.
"""

import logging
import os
from typing import Dict, List, Optional

import detectron2.utils.comm as comm
from detectron2.config import configurable
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_train_loader
from detectron2.data.common import DatasetFromList
from tabulate import tabulate

from ..data.builtin_meta import CATEGORIES, categories_metadata, datasets_root
from ..data.category_maps import BUILTIN_IMAGE_SPLITS, CATEGORY_MAPS
from ..data.coco_images import load_coco_image_dataset
from ..data.mixing import MixedDataset, RatioSampler, check_ratios
from ..data.pseudo_video import PseudoVideoMapper, build_pseudo_video_augmentation
from .datasets import check_dataset_classes, get_video_dataset_dicts
from .mapper import YTVISDatasetMapper, to_d2_instances

__all__ = [
    "PseudoVideoDatasetMapper",
    "build_joint_train_loader",
    "get_image_dataset_dicts",
    "is_image_dataset",
    "register_all_builtin_images",
    "register_image_pseudo_video",
    "uses_joint_loader",
]

logger = logging.getLogger(__name__)

# MetadataCatalog flag of the datasets registered by register_image_pseudo_video.
PSEUDO_VIDEO_FLAG = "pseudo_video"


def _load_images(name: str, json_file: str, image_root: str, category_map) -> List[dict]:
    meta = MetadataCatalog.get(name)
    records, file_meta = load_coco_image_dataset(
        json_file,
        image_root,
        category_map=category_map,
        dataset_id_to_contiguous_id=meta.get("thing_dataset_id_to_contiguous_id", None),
        filter_empty=False,  # build_joint_train_loader filters (DATALOADER.FILTER_EMPTY_...)
    )
    if meta.get("thing_classes", None) is None:
        meta.set(**file_meta)
    return records


def register_image_pseudo_video(
    name: str,
    json_file: str,
    image_root: str,
    category_map: Optional[Dict[int, int]],
    metadata: dict,
) -> None:
    """Register a COCO-format image set, to be trained on as pseudo-videos.

    Args:
        name (str): dataset name for ``DATASETS.TRAIN``, e.g. ``"my_images_train"``.
        json_file (str): COCO-format annotation file (``images``, ``annotations`` with polygon or
            RLE ``segmentation``, ``categories``; category ids need not be contiguous).
        image_root (str): folder the images' ``file_name`` are relative to.
        category_map (dict or None): file category id -> category id of the video dataset it is
            trained with (e.g. ``category_maps.COCO_TO_YTVIS_2019``); annotations of other
            categories are dropped. None keeps the file's categories.
        metadata (dict): the video dataset's category metadata, e.g.
            ``builtin_meta.metadata_for("ytvis_2019")`` (``thing_classes``,
            ``thing_dataset_id_to_contiguous_id``); empty: taken from the file.
    """
    if not isinstance(name, str):
        raise TypeError(f"Dataset name must be a str, got {name!r}.")
    DatasetCatalog.register(name, lambda: _load_images(name, json_file, image_root, category_map))
    MetadataCatalog.get(name).set(
        json_file=json_file, image_root=image_root, **{PSEUDO_VIDEO_FLAG: True}, **metadata
    )


def register_all_builtin_images(root: Optional[str] = None) -> None:
    """Register every built-in image split not registered yet, with paths under ``root``.

    Args:
        root (str, optional): datasets root; default ``$DETECTRON2_DATASETS`` or ``"datasets"``.
    """
    root = os.path.expanduser(root if root is not None else datasets_root())
    registered = set(DatasetCatalog.list())
    for name, split in BUILTIN_IMAGE_SPLITS.items():
        if name in registered:
            continue
        image_root, json_file = split.paths(root)
        metadata = categories_metadata(CATEGORIES[split.categories])
        register_image_pseudo_video(
            name, json_file, image_root, CATEGORY_MAPS[split.category_map], metadata
        )


def is_image_dataset(name: str) -> bool:
    """Whether ``name`` was registered by :func:`register_image_pseudo_video`."""
    return bool(MetadataCatalog.get(name).get(PSEUDO_VIDEO_FLAG, False))


def get_image_dataset_dicts(name: str, filter_empty: bool = True) -> List[dict]:
    """Records of the registered image set ``name``; ``filter_empty`` drops images without a
    non-crowd instance.

    Raises:
        ValueError: when no image is left, naming the dataset.
    """
    records = DatasetCatalog.get(name)
    if filter_empty:
        kept = [r for r in records if any(not o["iscrowd"] for o in r["annotations"])]
        logger.info(f"Removed {len(records) - len(kept)} images without instances from {name}.")
        records = kept
    if not records:
        raise ValueError(f"Image dataset {name!r} has no image with an instance to train on.")
    return records


def build_pseudo_video_augmentation_from_cfg(cfg):
    """The pseudo-video augmentation described by ``cfg.INPUT.PSEUDO``."""
    pseudo = cfg.INPUT.PSEUDO
    return build_pseudo_video_augmentation(
        min_size_train=pseudo.MIN_SIZE_TRAIN,
        max_size_train=pseudo.MAX_SIZE_TRAIN,
        min_size_train_sampling=pseudo.MIN_SIZE_TRAIN_SAMPLING,
        random_flip=cfg.INPUT.RANDOM_FLIP,
        crop_enabled=pseudo.CROP.ENABLED,
        crop_type=pseudo.CROP.TYPE,
        crop_size=pseudo.CROP.SIZE,
        augmentations=pseudo.AUGMENTATIONS,
    )


class PseudoVideoDatasetMapper(PseudoVideoMapper):
    """Maps an image record to a training clip; targets are detectron2 ``Instances``.

    Takes the arguments of :class:`~video_mask2former.data.pseudo_video.PseudoVideoMapper`, or
    ``cfg``.
    """

    @configurable
    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return {
            "augmentation": build_pseudo_video_augmentation_from_cfg(cfg),
            "num_frames": cfg.INPUT.SAMPLING_FRAME_NUM,
            "image_format": cfg.INPUT.FORMAT,
        }

    def __call__(self, record: dict, rng=None) -> dict:
        """Map one record; ``instances`` becomes a list of T detectron2 ``Instances``."""
        out = super().__call__(record, rng)
        out["instances"] = [to_d2_instances(f) for f in out["instances"]]
        return out


def uses_joint_loader(cfg) -> bool:
    """Whether ``DATASETS.TRAIN`` names an image dataset or ``DATASETS.DATASET_RATIO`` is set."""
    return bool(cfg.DATASETS.DATASET_RATIO) or any(is_image_dataset(n) for n in cfg.DATASETS.TRAIN)


def _check_same_categories(names: List[str]) -> None:
    classes = {n: MetadataCatalog.get(n).get("thing_classes", None) for n in names}
    if len({tuple(c) for c in classes.values() if c is not None}) > 1:
        listed = "; ".join(f"{n}: {len(c)} classes {c[:3]}..." for n, c in classes.items() if c)
        raise ValueError(
            f"The datasets of DATASETS.TRAIN have different categories ({listed}). Register the "
            f"image sets with the video dataset's metadata and a category map onto it."
        )


def build_joint_train_loader(cfg):
    """The training loader over ``DATASETS.TRAIN`` mixed by ``DATASETS.DATASET_RATIO``.

    An empty ratio list weighs the datasets by their sizes. ``DATALOADER.FILTER_EMPTY_ANNOTATIONS``
    drops videos and images without instances. Every dataset's categories (for an image set, the
    video categories its category map sends to) are checked against
    ``MODEL.SEM_SEG_HEAD.NUM_CLASSES`` (:func:`.datasets.check_dataset_classes`).

    Returns:
        an endless loader of per-process batches (lists of clip dicts), as
        ``build_detection_train_loader``.
    """
    names = list(cfg.DATASETS.TRAIN)
    if cfg.DATASETS.DATASET_RATIO:  # fail before loading any file
        check_ratios(cfg.DATASETS.DATASET_RATIO, names, key="DATASETS.DATASET_RATIO")
    filter_empty = cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
    datasets, mappers, kinds = [], [], []
    for name in names:
        if is_image_dataset(name):
            records = get_image_dataset_dicts(name, filter_empty=filter_empty)
            mappers.append(PseudoVideoDatasetMapper(cfg))
            kinds.append("images")
        else:
            records = get_video_dataset_dicts(name, filter_empty=filter_empty)
            mappers.append(YTVISDatasetMapper(cfg, is_train=True))
            kinds.append("videos")
        datasets.append(DatasetFromList(records, copy=False))
    _check_same_categories(names)
    check_dataset_classes(cfg, names, training=True)
    sizes = [len(d) for d in datasets]
    ratios = list(cfg.DATASETS.DATASET_RATIO) or sizes
    sampler = RatioSampler(
        sizes,
        ratios,
        seed=comm.shared_random_seed(),
        rank=comm.get_rank(),
        world_size=comm.get_world_size(),
        names=names,
    )
    rows = [(n, k, s, f"{p:.3f}") for n, k, s, p in zip(names, kinds, sizes, sampler.probabilities)]
    table = tabulate(rows, headers=["dataset", "kind", "records", "share of clips"])
    logger.info(f"Joint training loader:\n{table}")
    return build_detection_train_loader(
        dataset=MixedDataset(datasets, mappers),
        mapper=None,
        sampler=sampler,
        total_batch_size=cfg.SOLVER.IMS_PER_BATCH,
        aspect_ratio_grouping=cfg.DATALOADER.ASPECT_RATIO_GROUPING,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
    )

"""Register YouTube-VIS-format datasets in detectron2's DatasetCatalog / MetadataCatalog.

Built-in splits (``video_mask2former.data.builtin_meta.BUILTIN_SPLITS``: YouTube-VIS
2019/2021/2022, OVIS, the synthetic set) are registered under the datasets root
``$DETECTRON2_DATASETS`` (default ``"datasets"``), read when :func:`register_all_builtin` runs (at
package import).
Video panoptic (VIPSeg layout, :func:`register_vps_video`) and video semantic (VSPW layout,
:func:`register_vss_video`) datasets and their built-in splits (``BUILTIN_VPS_SPLITS``,
``BUILTIN_VSS_SPLITS``: :func:`register_all_builtin_video_seg`) are registered here too.
Loading is lazy: a file is read only when ``DatasetCatalog.get(name)`` is called.
:func:`check_dataset_classes` is the one check of the datasets' categories against
``MODEL.SEM_SEG_HEAD.NUM_CLASSES``, called by the trainer's loaders (``train_net_video.py``) and
the joint loader.
:func:`prepare_synthetic_datasets` writes the built-in synthetic datasets on first use (the files
of ``datasets/prepare_synthetic_*.py`` with their defaults), so the quick start is one command.
"""

import logging
import os
import shutil
import socket
from typing import Callable, Dict, List, Optional, Sequence, Union

import detectron2.utils.comm as comm
from detectron2.data import DatasetCatalog, MetadataCatalog

from ..data.builtin_meta import (
    BUILTIN_SPLITS,
    BUILTIN_VPS_SPLITS,
    BUILTIN_VSS_SPLITS,
    datasets_root,
    metadata_for,
    panoptic_metadata,
)
from ..data.synthetic import write_synthetic_ytvis
from ..data.synthetic_images import write_synthetic_coco
from ..data.synthetic_video_seg import write_synthetic_vps, write_synthetic_vss
from ..data.vps import load_vps_dataset
from ..data.vss import load_vss_video_dicts
from ..data.ytvis import load_ytvis_dataset

__all__ = [
    "DatasetConfigError",
    "check_dataset_classes",
    "dataset_num_categories",
    "get_video_dataset_dicts",
    "prepare_synthetic_datasets",
    "register_all_builtin",
    "register_all_builtin_video_seg",
    "register_vps_video",
    "register_user_datasets",
    "register_vss_video",
    "register_ytvis_instances",
]

logger = logging.getLogger(__name__)

# MetadataCatalog's "evaluator_type" of every dataset registered here.
EVALUATOR_TYPE = "ytvis"
# The config key the datasets' categories are checked against.
NUM_CLASSES_KEY = "MODEL.SEM_SEG_HEAD.NUM_CLASSES"
# Where a user learns how to get the built-in datasets (named by the missing-file errors).
DATASETS_README = "datasets/README.md"

# Built-in synthetic splits written on first use: split -> (writer of the dataset's folder, called
# with the folder only, i.e. the defaults of the script that writes it by hand).
SYNTHETIC_WRITERS: Dict[str, Callable[[str], object]] = {
    "ytvis_synthetic_train": write_synthetic_ytvis,
    "ytvis_synthetic_val": write_synthetic_ytvis,
    "coco_synthetic_train": write_synthetic_coco,
}
SYNTHETIC_SCRIPTS = {
    write_synthetic_ytvis: "datasets/prepare_synthetic_ytvis.py",
    write_synthetic_coco: "datasets/prepare_synthetic_coco.py",
}


class DatasetConfigError(ValueError):
    """The datasets do not fit the config (e.g. more categories than the model has classes)."""


def _load(name: str, json_file: str, image_root: str) -> list:
    """Records of ``name``; fills in its category metadata when registration did not give any."""
    if not os.path.isfile(json_file):
        raise FileNotFoundError(
            f"Dataset {name!r}: annotation file {json_file} does not exist. Download or prepare "
            f"the dataset as {DATASETS_README} says (the datasets root is $DETECTRON2_DATASETS, "
            f"now {datasets_root()!r})."
        )
    meta = MetadataCatalog.get(name)
    records, file_meta = load_ytvis_dataset(
        json_file,
        image_root,
        dataset_id_to_contiguous_id=meta.get("thing_dataset_id_to_contiguous_id", None),
    )
    if meta.get("thing_classes", None) is None:
        meta.set(**file_meta)
    return records


def register_ytvis_instances(name: str, metadata: dict, json_file: str, image_root: str) -> None:
    """Register a dataset in YouTube-VIS format (videos, categories, per-frame segmentations).

    Args:
        name (str): dataset name, e.g. ``"my_vis_train"`` (use it in ``DATASETS.TRAIN/TEST``).
        metadata (dict): extra metadata, e.g. ``thing_classes`` and
            ``thing_dataset_id_to_contiguous_id``; may be empty, then the categories are taken
            from the file (sorted by id) when it is first loaded. Training and evaluation check
            their number against ``MODEL.SEM_SEG_HEAD.NUM_CLASSES``.
        json_file (str): path of the annotation file.
        image_root (str): folder that the videos' ``file_names`` are relative to.
    """
    if not isinstance(name, str):
        raise TypeError(f"Dataset name must be a str, got {name!r}.")
    DatasetCatalog.register(name, lambda: _load(name, json_file, image_root))
    MetadataCatalog.get(name).set(
        json_file=json_file, image_root=image_root, evaluator_type=EVALUATOR_TYPE, **metadata
    )


def register_user_datasets(entries: Sequence[Sequence[str]], option: str = "--dataset") -> None:
    """Register YouTube-VIS-format files given on a command line (``train_net_video.py`` and
    ``tools/visualize_data.py`` take ``--dataset NAME JSON IMAGE_ROOT``, repeatable), their
    categories taken from the JSON (see :func:`register_ytvis_instances`).

    Args:
        entries: (name, json_file, image_root) triples.
        option (str): the option's name, for the messages.

    Raises:
        ConfigError: a name that is already registered (a built-in split or an earlier entry).
        FileNotFoundError: an annotation file or frame folder that does not exist.
    """
    from .config import ConfigError

    for name, json_file, image_root in entries:
        if name in DatasetCatalog.list():
            raise ConfigError(
                f"{option} {name}: a dataset of that name is already registered (a built-in "
                f"split or an earlier {option}); choose another name."
            )
        if not os.path.isfile(json_file):
            raise FileNotFoundError(f"{option} {name}: annotation file {json_file} not found.")
        if not os.path.isdir(image_root):
            raise FileNotFoundError(f"{option} {name}: frame folder {image_root} not found.")
        register_ytvis_instances(name, {}, json_file, image_root)


def register_all_builtin(root: Optional[str] = None) -> None:
    """Register every built-in split not registered yet, with paths under ``root``.

    Args:
        root (str, optional): datasets root; default ``$DETECTRON2_DATASETS`` or ``"datasets"``.
    """
    root = os.path.expanduser(root if root is not None else datasets_root())
    registered = set(DatasetCatalog.list())
    for name, split in BUILTIN_SPLITS.items():
        if name in registered:
            continue
        image_root, json_file = split.paths(root)
        metadata = metadata_for(name)
        if split.subset_json_files:  # scored per subset when the files exist (evaluator.py)
            metadata["subset_json_files"] = split.subset_paths(root)
        register_ytvis_instances(name, metadata, json_file, image_root)


def _synthetic_marker(name: str) -> Optional[str]:
    """The file whose absence means that the built-in synthetic dataset ``name`` is not written
    yet: its annotation file (``json_file``) or, for a VSPW-layout set, its split file; it lies
    in the dataset's folder. None for other datasets."""
    if name not in SYNTHETIC_WRITERS:
        return None
    meta = MetadataCatalog.get(name)
    return meta.get("json_file", None) or meta.get("split_file", None)


def prepare_synthetic_datasets(names: Sequence[str]) -> None:
    """Write the built-in synthetic datasets among ``names`` whose annotation file is missing.

    Each is written with the defaults of its script (``datasets/prepare_synthetic_ytvis.py``:
    ``ytvis_synthetic_{train,val}``; ``datasets/prepare_synthetic_coco.py``:
    ``coco_synthetic_train``; ``datasets/prepare_synthetic_vps.py``: ``vps_synthetic_*``;
    ``datasets/prepare_synthetic_vss.py``: ``vss_synthetic_*``, whose split file stands for the
    annotation file), seeded, so the files are those the script writes. Other datasets
    are left alone (a missing one is an error when it is loaded). Call it from every process:
    the first process of each machine writes, the others wait. A dataset is written into a
    temporary folder beside its own and renamed, so a killed run never leaves a partial dataset.

    Raises:
        FileNotFoundError: the dataset's folder exists but lacks the annotation file (not ours to
            overwrite).
    """
    missing = {}  # folder -> (split name, json file, writer)
    for name in names:
        json_file = _synthetic_marker(name)
        if json_file and not os.path.isfile(json_file):
            missing.setdefault(
                os.path.dirname(json_file), (name, json_file, SYNTHETIC_WRITERS[name])
            )
    if missing and comm.get_local_rank() == 0:
        for folder, (name, json_file, writer) in missing.items():
            _write_synthetic(folder, name, json_file, writer)
    comm.synchronize()


def _write_synthetic(folder: str, name: str, json_file: str, writer: Callable) -> None:
    """Write ``folder`` with ``writer`` through a temporary folder beside it."""
    script = SYNTHETIC_SCRIPTS[writer]
    if os.path.exists(folder):
        raise FileNotFoundError(
            f"Dataset {name!r}: {json_file} is missing but {folder} exists. Remove {folder} to "
            f"have it written again, or write it with {script}."
        )
    logger.info(
        f"Writing the synthetic dataset {folder} ({name} is used and {json_file} is missing; the "
        f"same files as {script} writes with its defaults)."
    )
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    # Unique per machine and process (a shared datasets root); made with the umask's permissions.
    tmp = os.path.join(
        parent, f".{os.path.basename(folder)}.{socket.gethostname()}.{os.getpid()}.tmp"
    )
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        writer(tmp)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not os.path.isfile(json_file):  # not another machine's complete copy
                raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    if not os.path.isfile(json_file):
        raise FileNotFoundError(
            f"Dataset {name!r}: {script}'s writer did not write {json_file} in {folder}."
        )


def _has_instances(record: dict) -> bool:
    """Whether any frame of the video has a non-crowd instance (a video panoptic record: a
    non-crowd segment; a video semantic record is kept, its labels are not read here)."""
    if "sem_seg_file_names" in record:
        return True
    if "segments_info" in record:
        return any(not s.get("iscrowd", 0) for frame in record["segments_info"] for s in frame)
    frames = record.get("annotations") or []
    return any(not obj.get("iscrowd", 0) for frame in frames for obj in frame)


def get_video_dataset_dicts(
    names: Union[str, Sequence[str]], filter_empty: bool = False
) -> List[dict]:
    """Records of the registered video datasets ``names``, concatenated.

    detectron2's ``get_detection_dataset_dicts`` expects one annotation list per image; video
    records have one per frame, hence this function.

    Args:
        names (str or sequence of str): registered dataset names.
        filter_empty (bool): drop videos without any non-crowd instance
            (``DATALOADER.FILTER_EMPTY_ANNOTATIONS``).

    Raises:
        ValueError: when no dataset is named or the result is empty, naming the datasets.
    """
    if isinstance(names, str):
        names = [names]
    if len(names) == 0:
        raise ValueError("No dataset given: set DATASETS.TRAIN / DATASETS.TEST.")
    records = []
    for name in names:
        dataset = DatasetCatalog.get(name)
        if len(dataset) == 0:
            raise ValueError(f"Dataset {name!r} has no videos.")
        if "file_names" not in dataset[0]:
            raise ValueError(
                f"Dataset {name!r} holds images, not videos: an image set trains as pseudo-videos "
                f"in DATASETS.TRAIN (video_mask2former.d2.joint) and cannot be evaluated on."
            )
        records.extend(dataset)
    if filter_empty:
        kept = [r for r in records if _has_instances(r)]
        logger.info(f"Removed {len(records) - len(kept)} videos without instances from {names}.")
        records = kept
        if not records:
            raise ValueError(
                f"No video of {list(names)} has an instance (FILTER_EMPTY_ANNOTATIONS is on)."
            )
    return records


def dataset_num_categories(name: str) -> Optional[int]:
    """K, the classes that the records of dataset ``name`` use, from its metadata: the lengths of
    ``thing_classes`` and ``stuff_classes`` (video panoptic / semantic sets: every class) and the
    highest contiguous id of ``thing_dataset_id_to_contiguous_id`` /
    ``stuff_dataset_id_to_contiguous_id`` + 1 (the largest; for an image set, the video
    categories its category map sends to). None when the metadata has none of them (a dataset
    registered without metadata, not loaded yet)."""
    meta = MetadataCatalog.get(name)
    counts = []
    for key in ("thing_classes", "stuff_classes"):
        classes = meta.get(key, None)
        if classes is not None:
            counts.append(len(classes))
    for key in ("thing_dataset_id_to_contiguous_id", "stuff_dataset_id_to_contiguous_id"):
        id_map = meta.get(key, None)
        if id_map:
            counts.append(max(int(v) for v in id_map.values()) + 1)
    return max(counts) if counts else None


def _ids(start: int, stop: int) -> str:
    """The contiguous class ids start..stop-1, for a message."""
    return f"class {start}" if stop == start + 1 else f"classes {start}..{stop - 1}"


def check_dataset_classes(cfg, names: Sequence[str], *, training: bool) -> None:
    """Check the categories of the datasets ``names`` against ``MODEL.SEM_SEG_HEAD.NUM_CLASSES``.

    Called where training and evaluation build their data (after loading, when the metadata of a
    dataset registered without categories has been filled in from its file); a dataset whose
    category count is still unknown is skipped (it is checked when its loader is built).

    * More categories than classes is an error: class ids >= NUM_CLASSES would be "no object" (or
      out of the classifier's range), silently.
    * Fewer, for evaluation, is an error: predictions of the classes the dataset lacks have no
      category to be scored as.
    * Fewer, for training, is a warning: the extra classes only ever learn "no object" (e.g. a
      40-class head fine-tuned on a subset registered with its own categories).

    Raises:
        DatasetConfigError: naming the dataset, its category count and the config key.
    """
    num_classes = cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
    for name in names:
        count = dataset_num_categories(name)
        if count is None or count == num_classes:
            continue
        what = f"Dataset {name!r} has {count} categories but {NUM_CLASSES_KEY} is {num_classes}"
        if count > num_classes:
            raise DatasetConfigError(
                f"{what}: its {_ids(num_classes, count)} would have no class of the model. Set "
                f"{NUM_CLASSES_KEY} {count}."
            )
        if not training:
            raise DatasetConfigError(
                f"{what}: predictions of the {_ids(count, num_classes)} would have no "
                f"category to be scored as. Set {NUM_CLASSES_KEY} {count}, or register the "
                f"dataset with the model's category table (thing_classes, "
                f"thing_dataset_id_to_contiguous_id)."
            )
        logger.warning(
            f"{what}: the {_ids(count, num_classes)} never occur in its training data (they "
            f"learn only 'no object')."
        )


# --------------------------------------------------------------------------------------------
# Video panoptic (VIPSeg layout) and video semantic (VSPW layout) datasets
# --------------------------------------------------------------------------------------------

# MetadataCatalog's "evaluator_type" of the video panoptic / semantic datasets.
VPS_EVALUATOR_TYPE = "vps"
VSS_EVALUATOR_TYPE = "vss"

# The built-in synthetic video panoptic and semantic splits are written on first use, like the
# others (prepare_synthetic_datasets; a VSPW-layout set's split file stands for its json_file).
SYNTHETIC_WRITERS.update(
    {
        "vps_synthetic_train": write_synthetic_vps,
        "vps_synthetic_val": write_synthetic_vps,
        "vss_synthetic_train": write_synthetic_vss,
        "vss_synthetic_val": write_synthetic_vss,
    }
)
SYNTHETIC_SCRIPTS[write_synthetic_vps] = "datasets/prepare_synthetic_vps.py"
SYNTHETIC_SCRIPTS[write_synthetic_vss] = "datasets/prepare_synthetic_vss.py"


def _missing_builtin(name: str, path: str, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"Dataset {name!r}: {what} {path} does not exist. Download or prepare the dataset as "
        f"{DATASETS_README} says (the datasets root is $DETECTRON2_DATASETS, now "
        f"{datasets_root()!r})."
    )


def _category_key(categories) -> List[tuple]:
    return sorted((int(c["id"]), c["name"], int(c["isthing"])) for c in categories)


def _check_registered_categories(name: str, meta, categories: List[dict], json_file: str) -> None:
    """The file's categories must be those the dataset was registered with (same ids, names and
    thing flags), else class indices would silently mean other classes. A dataset registered
    without categories takes the file's."""
    registered = meta.get("categories", None)
    if registered is None:
        table = [(c["id"], c["name"], c["isthing"], c["color"] or (0, 0, 0)) for c in categories]
        meta.set(**panoptic_metadata(table))
        return
    if _category_key(registered) != _category_key(categories):
        raise DatasetConfigError(
            f"Dataset {name!r}: the categories of {json_file} ({len(categories)}) differ from "
            f"those it was registered with ({len(registered)}); register it with metadata=None to "
            f"take the file's, or fix the file."
        )


def _load_vps(name: str, json_file: str, image_root: str, gt_root: str, annotated: bool) -> list:
    if not os.path.isfile(json_file):
        raise _missing_builtin(name, json_file, "annotation file")
    meta = MetadataCatalog.get(name)
    records, categories = load_vps_dataset(
        json_file,
        image_root,
        gt_root if annotated else None,
        dataset_id_to_contiguous_id=meta.get("stuff_dataset_id_to_contiguous_id", None),
        require_annotations=annotated,
    )
    _check_registered_categories(name, meta, categories, json_file)
    return records


def register_vps_video(
    name: str,
    json_file: str,
    image_root: str,
    gt_root: Optional[str],
    metadata: Optional[dict] = None,
    *,
    annotated: bool = True,
) -> None:
    """Register a video panoptic dataset in the VIPSeg layout (``video_mask2former.data.vps``).

    Records are those of ``load_vps_video_dicts`` (``file_names``, ``pan_seg_file_names``,
    ``segments_info`` per frame with contiguous ``category_id``).

    Args:
        name (str): dataset name (use it in ``DATASETS.TRAIN/TEST``).
        json_file (str): the panoptic JSON (``videos``, ``annotations``, ``categories``).
        image_root (str): frames ``<image_root>/<video>/<stem>.jpg``.
        gt_root (str or None): id PNGs ``<gt_root>/<video>/<file_name>``.
        metadata (dict, optional): e.g. ``builtin_meta.panoptic_metadata(table)``; None takes
            the categories from the file when it is first loaded. When given, the file's
            categories must match its ``categories``.
        annotated (bool): False for a split without annotations (a test set).
    """
    if not isinstance(name, str):
        raise TypeError(f"Dataset name must be a str, got {name!r}.")
    DatasetCatalog.register(
        name, lambda: _load_vps(name, json_file, image_root, gt_root, annotated)
    )
    MetadataCatalog.get(name).set(
        json_file=json_file,
        image_root=image_root,
        panoptic_root=gt_root,
        evaluator_type=VPS_EVALUATOR_TYPE,
        annotated=annotated,  # whether the evaluator can score predictions
        **(metadata or {}),
    )


def _load_vss(name: str, root: str, split_file: str, annotated: bool) -> list:
    if not os.path.isdir(os.path.join(root, "data")):
        raise _missing_builtin(name, os.path.join(root, "data"), "frame folder")
    return load_vss_video_dicts(root, split_file, with_masks=annotated)


def register_vss_video(
    name: str,
    root: str,
    split_file: str,
    metadata: Optional[dict] = None,
    *,
    annotated: bool = True,
) -> None:
    """Register a video semantic dataset in the VSPW layout (``video_mask2former.data.vss``).

    Records are those of ``load_vss_video_dicts`` (``file_names``, ``sem_seg_file_names``).

    Args:
        name (str): dataset name.
        root (str): the dataset root (holding ``data/<video>/{origin,mask}/``).
        split_file (str): the split's video list (a bare name is looked up in ``root``).
        metadata (dict, optional): e.g. ``builtin_meta.semantic_metadata(table)``
            (``stuff_classes``, ``ignore_label``).
        annotated (bool): False for a split without masks (a test set).
    """
    if not isinstance(name, str):
        raise TypeError(f"Dataset name must be a str, got {name!r}.")
    DatasetCatalog.register(name, lambda: _load_vss(name, root, split_file, annotated))
    fields = {"ignore_label": 255, **(metadata or {})}
    MetadataCatalog.get(name).set(
        root=root,
        split_file=split_file,
        evaluator_type=VSS_EVALUATOR_TYPE,
        annotated=annotated,  # whether the evaluator can score predictions
        **fields,
    )


def register_all_builtin_video_seg(root: Optional[str] = None) -> None:
    """Register every built-in video panoptic (``BUILTIN_VPS_SPLITS``: VIPSeg, the synthetic
    set) and video semantic split (``BUILTIN_VSS_SPLITS``: VSPW, the synthetic set) not
    registered yet, with paths under ``root`` (default ``$DETECTRON2_DATASETS`` or
    ``"datasets"``)."""
    root = os.path.expanduser(root if root is not None else datasets_root())
    registered = set(DatasetCatalog.list())
    for name, split in BUILTIN_VPS_SPLITS.items():
        if name not in registered:
            json_file, image_root, gt_root = split.paths(root)
            register_vps_video(
                name, json_file, image_root, gt_root, metadata_for(name), annotated=split.annotated
            )
    for name, split in BUILTIN_VSS_SPLITS.items():
        if name not in registered:
            dataset_root, split_file = split.paths(root)
            register_vss_video(
                name, dataset_root, split_file, metadata_for(name), annotated=split.annotated
            )

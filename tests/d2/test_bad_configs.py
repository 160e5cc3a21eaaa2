"""Configs that do not fit their datasets, and config values of the wrong type (detectron2 level).

``NUM_CLASSES_ROWS``: (NUM_CLASSES, training or evaluation, text the error must hold; None: no
error) for a 3-category dataset, through the trainer's loaders. ``RATIO_ROWS``: (how
``DATASETS.DATASET_RATIO`` is given, text the error must hold), at config time. The twin of
``tests/bad_inputs/test_datasets.py`` for the entry points that need detectron2.
"""

import glob
import logging
import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2

# Categories of the synthetic dataset (builtin_meta "ytvis_synthetic").
NUM_CATEGORIES = 3
RUN_TIMEOUT_S = 600


def _register_videos(root, split="train", metadata=None):
    """A fresh name for the synthetic videos; categories from the file unless ``metadata``."""
    from video_mask2former.d2.datasets import register_ytvis_instances

    folder = {"train": "train", "val": "valid"}[split]
    name = f"bad_cfg_{split}_{uuid.uuid4().hex[:8]}"
    base = os.path.join(str(root), "ytvis_synthetic")
    register_ytvis_instances(
        name,
        metadata or {},
        os.path.join(base, f"{folder}.json"),
        os.path.join(base, folder, "JPEGImages"),
    )
    return name


def _trainer():
    import train_net_video

    return train_net_video.Trainer


def _cfg(num_classes, train=(), test=(), opts=()):
    from tests.d2.helpers import SMOKE_CONFIG, video_cfg

    return video_cfg(
        SMOKE_CONFIG,
        ["MODEL.SEM_SEG_HEAD.NUM_CLASSES", num_classes, "DATASETS.TRAIN", tuple(train),
         "DATASETS.TEST", tuple(test), *opts],
    )  # fmt: skip


NUM_CLASSES_ROWS = [
    (2, "train", "has 3 categories but MODEL.SEM_SEG_HEAD.NUM_CLASSES is 2"),
    (1, "train", "has 3 categories but MODEL.SEM_SEG_HEAD.NUM_CLASSES is 1"),
    (2, "test", "has 3 categories but MODEL.SEM_SEG_HEAD.NUM_CLASSES is 2"),
    (5, "test", "have no category to be scored as"),
    (5, "train", None),  # a warning: the extra classes learn only "no object"
    (3, "train", None),
    (3, "test", None),
]


@pytest.mark.parametrize("num_classes, mode, text", NUM_CLASSES_ROWS)
def test_categories_against_num_classes(synthetic_root, caplog, num_classes, mode, text):
    """The dataset is registered without categories: they come from its file, when loaded."""
    from video_mask2former.d2.datasets import DatasetConfigError

    trainer = _trainer()
    if mode == "train":
        name = _register_videos(synthetic_root, "train")
        cfg = _cfg(num_classes, train=[name])
        build = lambda: trainer.build_train_loader(cfg)  # noqa: E731
    else:
        name = _register_videos(synthetic_root, "val")
        cfg = _cfg(num_classes, train=[name], test=[name])
        build = lambda: trainer.build_test_loader(cfg, name)  # noqa: E731
    if text is None:
        with caplog.at_level(logging.WARNING, logger="video_mask2former.d2.datasets"):
            build()
        warned = "classes 3..4 never occur in its training data" in caplog.text
        assert warned == (num_classes > NUM_CATEGORIES)
        return
    with pytest.raises(DatasetConfigError) as info:
        build()
    message = str(info.value)
    assert f"Dataset {name!r} {text}" in message or text in message
    assert name in message and "\n" not in message


def test_test_datasets_are_checked_before_training(synthetic_root):
    """A test set whose categories are known from its registration fails at training start,
    not after training."""
    from video_mask2former.d2.datasets import DatasetConfigError
    from video_mask2former.data.builtin_meta import metadata_for

    train = _register_videos(synthetic_root, "train")
    test = _register_videos(synthetic_root, "val", metadata=metadata_for("ytvis_2019"))
    cfg = _cfg(NUM_CATEGORIES, train=[train], test=[test])
    with pytest.raises(DatasetConfigError, match=f"{test}' has 40 categories but"):
        _trainer().build_train_loader(cfg)


def test_joint_training_checks_the_mapped_category_table(synthetic_root):
    """An image set trained with the synthetic videos: its mapped table (3 video categories)
    against NUM_CLASSES 2."""
    from video_mask2former.d2.datasets import DatasetConfigError
    from video_mask2former.d2.joint import build_joint_train_loader, register_image_pseudo_video
    from video_mask2former.data.builtin_meta import metadata_for
    from video_mask2former.data.synthetic_images import write_synthetic_coco

    coco = synthetic_root / "coco_synthetic"
    if not coco.exists():
        write_synthetic_coco(str(coco), num_images=8, height=64, width=80)
    meta = metadata_for("ytvis_synthetic")
    images = f"bad_cfg_images_{uuid.uuid4().hex[:8]}"
    register_image_pseudo_video(
        images, str(coco / "annotations.json"), str(coco / "images"), None, meta
    )
    videos = _register_videos(synthetic_root, "train", metadata=meta)
    cfg = _cfg(2, train=[images, videos], opts=["DATASETS.DATASET_RATIO", [1.0, 1.0]])
    with pytest.raises(DatasetConfigError, match="has 3 categories but MODEL.SEM_SEG_HEAD"):
        build_joint_train_loader(cfg)


def test_builtin_configs_fit_their_datasets():
    """Every shipped config's NUM_CLASSES equals the category count of each of its datasets
    (the joint COCO configs included: their image sets carry the video dataset's table)."""
    import video_mask2former.d2  # noqa: F401  (registers the built-in splits)
    from tests.d2.helpers import CONFIG_DIR, video_cfg
    from video_mask2former.d2.datasets import check_dataset_classes, dataset_num_categories

    configs = [
        f
        for f in glob.glob(os.path.join(CONFIG_DIR, "**", "*.yaml"), recursive=True)
        if not os.path.basename(f).startswith("Base-")
    ]
    assert len(configs) >= 20
    for config in configs:
        cfg = video_cfg(config)
        names = list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST)
        counts = {name: dataset_num_categories(name) for name in names}
        assert set(counts.values()) == {cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES}, (config, counts)
        check_dataset_classes(cfg, cfg.DATASETS.TRAIN, training=True)
        check_dataset_classes(cfg, cfg.DATASETS.TEST, training=False)


RATIO_ROWS = [
    # (DATASETS.DATASET_RATIO as given on the command line, text the error must hold)
    ("['1.0', 'x']", "'1.0' is not a number"),
    ("[True, 1]", "True is not a number"),
    ("abc", "command-line options: Type mismatch"),
    ("[1.0, 1.0, 1.0]", "has 3 values [1.0, 1.0, 1.0], but there are 2 datasets"),
    ("[1.0, -1.0]", "ratios must be finite and >= 0"),
]


@pytest.mark.parametrize("ratio, text", RATIO_ROWS, ids=[row[0] for row in RATIO_ROWS])
def test_dataset_ratio_is_checked_at_setup(ratio, text):
    from tests.d2.helpers import video_cfg
    from video_mask2former.d2.config import ConfigError

    opts = ["DATASETS.TRAIN", "('a', 'b')", "DATASETS.DATASET_RATIO", ratio]
    with pytest.raises(ConfigError) as info:
        video_cfg(None, opts)
    message = str(info.value)
    assert text in message and "DATASETS.DATASET_RATIO" in message and "\n" not in message


@pytest.mark.parametrize(
    "opts, text",
    [
        (["MODEL.FOO", "1"], "command-line options: Non-existent key: MODEL.FOO"),
        (["SOLVER.MAX_ITER"], "command-line options: Override list has odd length"),
    ],
    ids=["unknown key", "key without value"],
)
def test_unknown_keys_are_config_errors(opts, text):
    """yacs asserts on these (a traceback from train_net_video.py); a ConfigError is one line."""
    from tests.d2.helpers import video_cfg
    from video_mask2former.d2.config import ConfigError

    with pytest.raises(ConfigError) as info:
        video_cfg(None, opts)
    assert str(info.value).startswith(text) and "\n" not in str(info.value)


def test_train_net_with_too_few_classes_stops_before_training(synthetic_root, tmp_path):
    """The script end to end: NUM_CLASSES 2 on the 3-category synthetic set exits non-zero with
    the one-line reason, and no iteration runs."""
    from tests.d2.helpers import REPO_ROOT, SMOKE_CONFIG

    env = dict(os.environ, DETECTRON2_DATASETS=str(synthetic_root), PYTHONPATH=REPO_ROOT)
    script = os.path.join(REPO_ROOT, "train_net_video.py")
    cmd = [sys.executable, script, "--config-file", SMOKE_CONFIG,
           "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "2", "OUTPUT_DIR", str(tmp_path)]  # fmt: skip
    proc = subprocess.run(
        cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Dataset 'ytvis_")
    assert "has 3 categories but MODEL.SEM_SEG_HEAD.NUM_CLASSES is 2: its class 2 would" in last
    assert not os.path.exists(tmp_path / "metrics.json")

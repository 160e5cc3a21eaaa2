"""Joint training with detectron2: image-set registration, the mixed loader, train_net_video.py."""

import json
import math
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2

# Seconds before a training run is considered hung.
RUN_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def joint_root(synthetic_root):
    """The d2 tests' datasets root plus ``coco_synthetic/`` (8 images, 64 x 80)."""
    from video_mask2former.data.synthetic_images import write_synthetic_coco

    if not (synthetic_root / "coco_synthetic").exists():
        write_synthetic_coco(
            str(synthetic_root / "coco_synthetic"), num_images=8, height=64, width=80
        )
    return synthetic_root


def _register_pair(root, image_metadata=None):
    """A fresh image set and video set over the files under ``root``; their names."""
    from video_mask2former.d2.datasets import register_ytvis_instances
    from video_mask2former.d2.joint import register_image_pseudo_video
    from video_mask2former.data.builtin_meta import metadata_for

    suffix = uuid.uuid4().hex[:8]
    images, videos = f"test_images_{suffix}", f"test_videos_{suffix}"
    meta = metadata_for("ytvis_synthetic")
    coco = os.path.join(str(root), "coco_synthetic")
    register_image_pseudo_video(
        images,
        os.path.join(coco, "annotations.json"),
        os.path.join(coco, "images"),
        None,
        meta if image_metadata is None else image_metadata,
    )
    ytvis = os.path.join(str(root), "ytvis_synthetic")
    register_ytvis_instances(
        videos, meta, os.path.join(ytvis, "train.json"), os.path.join(ytvis, "train", "JPEGImages")
    )
    return images, videos


def _joint_cfg(names, ratio=(1.0, 1.0), batch=4):
    from tests.d2.helpers import CONFIG_DIR, video_cfg

    config = os.path.join(
        CONFIG_DIR, "quick_schedules", "video_maskformer2_R18_synthetic_joint_smoke.yaml"
    )
    return video_cfg(
        config,
        ["DATASETS.TRAIN", tuple(names), "DATASETS.DATASET_RATIO", list(ratio),
         "SOLVER.IMS_PER_BATCH", batch],
    )  # fmt: skip


def test_builtin_image_splits_registered():
    from detectron2.data import MetadataCatalog

    from video_mask2former.d2.joint import is_image_dataset

    for name, classes in (
        ("coco2ytvis2019_train", 40),
        ("coco2ytvis2021_val", 40),
        ("coco2ovis_train", 25),
        ("coco_synthetic_train", 3),
    ):
        assert is_image_dataset(name)
        assert len(MetadataCatalog.get(name).thing_classes) == classes
    meta = MetadataCatalog.get("coco2ytvis2019_train")
    assert meta.json_file.endswith(os.path.join("coco", "annotations", "instances_train2017.json"))
    assert meta.image_root.endswith(os.path.join("coco", "train2017"))
    assert meta.thing_classes == MetadataCatalog.get("ytvis_2019_train").thing_classes
    assert not is_image_dataset("ytvis_2019_train")


def test_coco_registration_relabels_to_the_video_categories(tmp_path):
    """A COCO file with non-contiguous ids, registered with the 2021 table and metadata."""
    from detectron2.data import DatasetCatalog
    from PIL import Image

    from video_mask2former.d2.joint import register_image_pseudo_video
    from video_mask2former.data.builtin_meta import metadata_for
    from video_mask2former.data.category_maps import COCO_TO_YTVIS_2021

    square = [[1.0, 1.0, 6.0, 1.0, 6.0, 6.0, 1.0, 6.0]]
    coco = {
        "images": [{"id": 3, "file_name": "a.jpg", "height": 8, "width": 8}],
        "annotations": [
            {"id": i, "image_id": 3, "category_id": c, "segmentation": square}
            for i, c in enumerate([16, 44, 18], start=1)  # bird, bottle (unmapped), dog
        ],
        "categories": [
            {"id": 16, "name": "bird"},
            {"id": 18, "name": "dog"},
            {"id": 44, "name": "bottle"},
        ],
    }
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    Image.new("RGB", (8, 8)).save(tmp_path / "a.jpg")
    name = f"test_coco_{uuid.uuid4().hex[:8]}"
    meta = metadata_for("ytvis_2021")
    register_image_pseudo_video(
        name, str(tmp_path / "instances.json"), str(tmp_path), COCO_TO_YTVIS_2021, meta
    )
    (record,) = DatasetCatalog.get(name)
    names = [meta["thing_classes"][o["category_id"]] for o in record["annotations"]]
    assert names == ["bird", "dog"]


def test_joint_loader_mixes_videos_and_pseudo_videos(joint_root):
    from detectron2.structures import Instances

    from video_mask2former.d2.joint import build_joint_train_loader, uses_joint_loader

    np.random.seed(0)  # the loader's seed comes from NumPy's global state (shared_random_seed)
    cfg = _joint_cfg(_register_pair(joint_root))
    assert uses_joint_loader(cfg)
    loader = iter(build_joint_train_loader(cfg))
    kinds = []
    for _ in range(4):
        batch = next(loader)
        assert len(batch) == 4
        kinds.append({len(set(clip["file_names"])) == 1 for clip in batch})  # True: an image
        for clip in batch:
            assert len(clip["image"]) == len(clip["instances"]) == cfg.INPUT.SAMPLING_FRAME_NUM
            for image, inst in zip(clip["image"], clip["instances"]):
                assert isinstance(inst, Instances) and inst.image_size == tuple(image.shape[1:])
                assert inst.gt_masks.tensor.shape[1:] == image.shape[1:]
    assert {True, False} in kinds  # some batch holds clips of both kinds


def test_plain_video_training_keeps_the_default_loader():
    from tests.d2.helpers import SMOKE_CONFIG, video_cfg
    from video_mask2former.d2.joint import uses_joint_loader

    assert not uses_joint_loader(video_cfg(SMOKE_CONFIG))


def test_ratio_list_of_the_wrong_length_is_an_error(joint_root):
    from video_mask2former.d2.joint import build_joint_train_loader

    names = _register_pair(joint_root)
    with pytest.raises(ValueError, match=r"DATASETS.DATASET_RATIO has 3 values.*2 datasets"):
        build_joint_train_loader(_joint_cfg(names, ratio=(1.0, 1.0, 1.0)))


def test_image_set_cannot_be_evaluated_on(joint_root):
    from video_mask2former.d2.datasets import get_video_dataset_dicts

    images, _ = _register_pair(joint_root)
    with pytest.raises(ValueError, match="holds images, not videos"):
        get_video_dataset_dicts(images)


def test_datasets_with_different_categories_are_an_error(joint_root):
    from video_mask2former.d2.joint import build_joint_train_loader
    from video_mask2former.data.builtin_meta import metadata_for

    # The synthetic images (ids 1-3) fit YouTube-VIS 2019's ids, so they load: as 2019 classes.
    names = _register_pair(joint_root, image_metadata=metadata_for("ytvis_2019"))
    with pytest.raises(ValueError, match="different categories"):
        build_joint_train_loader(_joint_cfg(names))


def test_train_net_joint_training(joint_root, tmp_path):
    """A few iterations of train_net_video.py on synthetic videos + synthetic images (no final
    evaluation: train_net's evaluation is tested in test_train_net.py)."""
    from tests.d2.helpers import CONFIG_DIR, REPO_ROOT

    config = os.path.join(
        CONFIG_DIR, "quick_schedules", "video_maskformer2_R18_synthetic_joint_smoke.yaml"
    )
    env = dict(os.environ, DETECTRON2_DATASETS=str(joint_root), PYTHONPATH=REPO_ROOT)
    cmd = [
        sys.executable, os.path.join(REPO_ROOT, "train_net_video.py"), "--config-file", config,
        "DATASETS.TEST", "()",
        "OUTPUT_DIR", str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "Joint training loader" in log
    assert any("coco_synthetic_train" in line and "images" in line for line in log.splitlines())
    with open(tmp_path / "metrics.json") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    losses = [r for r in rows if "total_loss" in r]
    assert losses and losses[-1]["iteration"] == 3  # the smoke schedule's 4 iterations
    assert all(math.isfinite(v) for k, v in losses[-1].items() if k.startswith("loss_"))

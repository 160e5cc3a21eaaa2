"""Dataset registration and the detectron2 dataset mapper."""

import os
import uuid

import pytest
import torch

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2


def _register(root, split="train"):
    from video_mask2former.d2.datasets import register_ytvis_instances

    folder = {"train": "train", "val": "valid"}[split]
    name = f"test_synthetic_{split}_{uuid.uuid4().hex[:8]}"
    base = os.path.join(str(root), "ytvis_synthetic")
    register_ytvis_instances(
        name, {}, os.path.join(base, f"{folder}.json"), os.path.join(base, folder, "JPEGImages")
    )
    return name


def test_builtin_splits_registered():
    from detectron2.data import DatasetCatalog, MetadataCatalog

    import video_mask2former  # noqa: F401  (registers)

    names = set(DatasetCatalog.list())
    for name in (
        "ytvis_2019_train",
        "ytvis_2019_val",
        "ytvis_2021_train",
        "ovis_train",
        "ovis_val",
        "ytvis_synthetic_train",
        "ytvis_synthetic_val",
    ):
        assert name in names
    meta = MetadataCatalog.get("ytvis_2019_train")
    assert len(meta.thing_classes) == 40 and meta.evaluator_type == "ytvis"
    assert meta.json_file.endswith(os.path.join("ytvis_2019", "train.json"))
    assert len(MetadataCatalog.get("ovis_val").thing_classes) == 25
    synthetic = MetadataCatalog.get("ytvis_synthetic_val")
    assert synthetic.thing_classes == ["circle", "square", "triangle"]


def test_custom_dataset_takes_categories_from_file(synthetic_root):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    name = _register(synthetic_root)
    records = DatasetCatalog.get(name)
    assert len(records) == 4 and records[0]["length"] == 3
    assert MetadataCatalog.get(name).thing_classes == ["circle", "square", "triangle"]


def test_video_dataset_dicts_filter_empty(synthetic_root):
    from video_mask2former.d2.datasets import get_video_dataset_dicts

    name = _register(synthetic_root)
    records = get_video_dataset_dicts([name], filter_empty=True)
    assert 0 < len(records) <= 4
    with pytest.raises(ValueError, match="DATASETS"):
        get_video_dataset_dicts([])


def test_mapper_gives_detectron2_instances(synthetic_root):
    from detectron2.data import DatasetCatalog
    from detectron2.structures import BitMasks, Boxes, Instances

    from tests.d2.helpers import SMOKE_CONFIG, video_cfg
    from video_mask2former.d2.mapper import YTVISDatasetMapper

    cfg = video_cfg(SMOKE_CONFIG)
    records = DatasetCatalog.get(_register(synthetic_root))
    record = next(r for r in records if any(r["annotations"]))
    out = YTVISDatasetMapper(cfg, is_train=True)(record)
    assert len(out["image"]) == cfg.INPUT.SAMPLING_FRAME_NUM == 2
    assert out["image"][0].dtype == torch.uint8 and out["image"][0].shape[1] == 64  # short side
    num = len(out["instances"][0])
    assert num > 0
    for frame, image in zip(out["instances"], out["image"]):
        assert isinstance(frame, Instances) and frame.image_size == tuple(image.shape[1:])
        assert isinstance(frame.gt_masks, BitMasks) and isinstance(frame.gt_boxes, Boxes)
        assert frame.gt_masks.tensor.shape == (num, *image.shape[1:])
        assert frame.gt_classes.dtype == torch.int64 and frame.gt_ids.shape == (num,)
    # The same instances, in the same order, in every frame of the clip.
    assert torch.equal(out["instances"][0].gt_classes, out["instances"][1].gt_classes)

    test_out = YTVISDatasetMapper(cfg, is_train=False)(record)
    assert len(test_out["image"]) == record["length"]
    assert test_out["height"] == 64 and test_out["width"] == 80


def test_mapper_output_trains_the_model(synthetic_root):
    from detectron2.data import DatasetCatalog
    from detectron2.modeling import build_model

    from tests.d2.helpers import SMOKE_CONFIG, video_cfg
    from video_mask2former.d2.mapper import YTVISDatasetMapper

    cfg = video_cfg(SMOKE_CONFIG)
    records = DatasetCatalog.get(_register(synthetic_root))
    mapper = YTVISDatasetMapper(cfg, is_train=True)
    model = build_model(cfg).train()
    losses = model([mapper(r) for r in records[:2]])
    assert set(losses) >= {"loss_ce", "loss_mask", "loss_dice"}
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.parametrize("is_train", [True, False])  # training, and evaluation's frames
def test_mapper_rejects_a_damaged_frame(synthetic_root, tmp_path, is_train):
    from detectron2.data import DatasetCatalog

    from tests.d2.helpers import SMOKE_CONFIG, video_cfg
    from tests.data.helpers import write_damaged_jpeg
    from video_mask2former.d2.mapper import YTVISDatasetMapper
    from video_mask2former.data.frames import CorruptFrameError

    record = dict(DatasetCatalog.get(_register(synthetic_root))[0])
    bad = write_damaged_jpeg(tmp_path / "00000.jpg", "zeroed_tail", height=64, width=80)
    record["file_names"] = [bad] * record["length"]
    with pytest.raises(CorruptFrameError, match=f"Frame '{bad}' is a damaged JPEG"):
        YTVISDatasetMapper(video_cfg(SMOKE_CONFIG), is_train=is_train)(record)

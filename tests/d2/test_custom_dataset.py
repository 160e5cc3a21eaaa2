"""Training on your own videos through detectron2: a custom YouTube-VIS dataset registered
without metadata, its class count against the config, and fine-tuning a checkpoint of another
class count (the class head re-initialised, reported in one line)."""

import json
import logging
import uuid

import numpy as np
import pytest
import torch

from tests.conftest import requires_detectron2
from tests.data.own_data import tracks_dataset, write_dataset

pytestmark = requires_detectron2


def _custom(tmp_path):
    """tracks_dataset with its categories renumbered 7 ("zebra"), 3 ("ant") and 5 ("owl"), in
    that order in the file: the class table must come out sorted by id."""
    dataset = tracks_dataset()
    renumber = {1: 7, 2: 3, 3: 5}
    dataset["categories"] = [{"id": 7, "name": "zebra"}, {"id": 3, "name": "ant"},
                             {"id": 5, "name": "owl"}]  # fmt: skip
    for ann in dataset["annotations"]:
        ann["category_id"] = renumber[ann["category_id"]]
    return write_dataset(tmp_path, dataset)


def _register(json_file, image_root):
    from video_mask2former.d2.datasets import register_ytvis_instances

    name = f"own_videos_{uuid.uuid4().hex[:8]}"
    register_ytvis_instances(name, {}, json_file, image_root)
    return name


def test_categories_come_from_the_json(tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from video_mask2former.d2.datasets import dataset_num_categories

    name = _register(*_custom(tmp_path))
    assert dataset_num_categories(name) is None  # nothing read at registration
    records = DatasetCatalog.get(name)
    meta = MetadataCatalog.get(name)
    assert meta.thing_classes == ["ant", "owl", "zebra"]
    assert meta.thing_dataset_id_to_contiguous_id == {3: 0, 5: 1, 7: 2}
    assert dataset_num_categories(name) == 3
    frame0 = {obj["id"]: obj["category_id"] for obj in records[0]["annotations"][0]}
    assert frame0 == {10: 2, 11: 0, 12: 2}  # zebra, ant, zebra (crowd)


@pytest.mark.parametrize("num_classes", [1, 2])
def test_too_few_classes_names_both_numbers(tmp_path, num_classes):
    import train_net_video

    from tests.d2.helpers import SMOKE_CONFIG, video_cfg
    from video_mask2former.d2.datasets import DatasetConfigError

    name = _register(*_custom(tmp_path))
    cfg = video_cfg(
        SMOKE_CONFIG,
        ["MODEL.SEM_SEG_HEAD.NUM_CLASSES", num_classes, "DATASETS.TRAIN", (name,),
         "DATASETS.TEST", ()],
    )  # fmt: skip
    with pytest.raises(DatasetConfigError) as info:
        train_net_video.Trainer.build_train_loader(cfg)
    message = str(info.value)
    assert f"{name!r} has 3 categories but MODEL.SEM_SEG_HEAD.NUM_CLASSES is {num_classes}" in (
        message
    )
    assert "Set MODEL.SEM_SEG_HEAD.NUM_CLASSES 3" in message


def _model(seed, num_classes):
    from detectron2.modeling import build_model

    from tests.d2.helpers import SMOKE_CONFIG, video_cfg

    torch.manual_seed(seed)
    return build_model(
        video_cfg(SMOKE_CONFIG, ["MODEL.SEM_SEG_HEAD.NUM_CLASSES", num_classes])
    ).eval()


def test_fine_tuning_another_class_count_reports_one_line(tmp_path, caplog):
    """An official-style .pkl of 40 classes (YouTube-VIS 2019) initialises a 3-class model:
    everything but the class head is loaded, the head keeps its initialisation, one INFO line."""
    import pickle

    from video_mask2former.d2.checkpoint import VideoCheckpointer

    official = {k: v.numpy() for k, v in _model(0, 40).state_dict().items()}
    path = tmp_path / "model_final_ytvis2019.pkl"
    path.write_bytes(pickle.dumps({"model": official, "__author__": "official"}))
    model = _model(1, 3)
    head = model.sem_seg_head.predictor.class_embed.weight.detach().clone()
    with caplog.at_level(logging.INFO, logger="video_mask2former.checkpoint"):
        VideoCheckpointer(model, for_training=True).resume_or_load(str(path), resume=False)
    state = model.state_dict()
    query_feat = "sem_seg_head.predictor.query_feat.weight"
    assert np.array_equal(state[query_feat].numpy(), official[query_feat])
    assert torch.equal(model.sem_seg_head.predictor.class_embed.weight, head)
    (line,) = [r for r in caplog.records if r.name == "video_mask2former.checkpoint"]
    assert line.levelname == "INFO" and "\n" not in line.message
    assert "class head is re-initialised for 3 classes (the checkpoint's is for 40)" in (
        line.message
    )
    assert str(path) in line.message


def test_inspect_and_split_output_registers(tmp_path):
    """The split tool's files register and load like the original (the categories of both
    sides are the file's, so a val side without some category keeps the class table)."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from video_mask2former.data.split import split_ytvis

    json_file, image_root = _custom(tmp_path)
    train, val = split_ytvis(json.load(open(json_file)), val_fraction=0.5, seed=0)
    names = []
    for side_name, side in (("train", train), ("val", val)):
        path = tmp_path / f"{side_name}.json"
        path.write_text(json.dumps(side))
        names.append(_register(str(path), image_root))
    assert sum(len(DatasetCatalog.get(n)) for n in names) == 2
    assert all(MetadataCatalog.get(n).thing_classes == ["ant", "owl", "zebra"] for n in names)


def test_visualize_the_training_clips(tmp_path, monkeypatch):
    """--source dataloader draws clips from the loader that training builds (the smoke config)."""
    from tests.d2.helpers import SMOKE_CONFIG
    from tests.tools.scripts import load_tool

    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "datasets"))
    json_file, image_root = _custom(tmp_path)
    name = _register(json_file, image_root)
    out = tmp_path / "clips"
    argv = ["--source", "dataloader", "--config-file", SMOKE_CONFIG, "--output", str(out),
            "--num-clips", "2", "DATASETS.TRAIN", f"('{name}',)", "MODEL.SEM_SEG_HEAD.NUM_CLASSES",
            "3"]  # fmt: skip
    assert load_tool("visualize_data").main(argv) == 0
    clips = sorted(out.iterdir())
    assert len(clips) == 2 and all(len(list(c.glob("*.png"))) == 2 for c in clips)

"""The video task from the config (MODEL.MASK_FORMER.TEST.{INSTANCE_ON, PANOPTIC_ON, SEMANTIC_ON}),
the mapper chosen by the datasets, the class count of video panoptic / semantic datasets, the
synthetic VSPW-layout splits written on first use, and the shipped VIPSeg / VSPW configs.

``BAD_TASK_ROWS``: (what is wrong, config options, text the ConfigError must hold).
"""

import os

import pytest

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2

TASK_KEYS = ("INSTANCE_ON", "PANOPTIC_ON", "SEMANTIC_ON")


@pytest.fixture(scope="module")
def tiny_video_seg(tmp_path_factory):
    from tests.d2.video_seg_helpers import write_tiny_video_seg

    return write_tiny_video_seg(tmp_path_factory.mktemp("video_seg"))


def _flags(instance, panoptic, semantic):
    values = (instance, panoptic, semantic)
    return [x for key, on in zip(TASK_KEYS, values) for x in (f"MODEL.MASK_FORMER.TEST.{key}", on)]


def _cfg(config=None, opts=()):
    import video_mask2former.d2  # noqa: F401  (registers the built-in splits)
    from tests.d2.helpers import SMOKE_CONFIG, video_cfg

    return video_cfg(config or SMOKE_CONFIG, list(opts))


def _config(name):
    from tests.d2.helpers import CONFIG_DIR

    return os.path.join(CONFIG_DIR, *name.split("/"))


VPS_SMOKE = "quick_schedules/video_maskformer2_R18_vps_synthetic_smoke.yaml"
VSS_SMOKE = "quick_schedules/video_maskformer2_R18_vss_synthetic_smoke.yaml"


@pytest.mark.parametrize(
    "flags, kind",
    [((True, False, False), "instance"), ((False, True, False), "panoptic"),
     ((False, False, True), "semantic")],
)  # fmt: skip
def test_each_flag_selects_its_task(flags, kind):
    from video_mask2former.d2.registration import build_segmentation_task, video_task

    cfg = _cfg(_config(VPS_SMOKE), _flags(*flags))
    assert video_task(cfg) == kind
    task = build_segmentation_task(cfg)
    if kind == "instance":
        assert task is None
    else:
        assert task.kind == kind
        # the synthetic table: sky, grass, road (stuff), disc, box, kite (things)
        assert task.thing_classes == ((3, 4, 5) if kind == "panoptic" else ())


def test_thresholds_come_from_the_config():
    from video_mask2former.d2.registration import build_segmentation_task

    opts = ["MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD", 0.25]
    task = build_segmentation_task(
        _cfg(_config(VPS_SMOKE), opts + ["MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD", 0.6])
    )
    assert (task.object_mask_threshold, task.overlap_threshold) == (0.25, 0.6)


BAD_TASK_ROWS = [
    ("no task", _flags(False, False, False), "Exactly one of MODEL.MASK_FORMER.TEST.INSTANCE_ON"),
    ("two tasks", _flags(True, True, False), "INSTANCE_ON=True, MODEL.MASK_FORMER.TEST.PANOPTIC"),
    ("all three", _flags(True, True, True), "SEMANTIC_ON=True"),
    (
        "panoptic without a panoptic dataset",
        _flags(False, True, False) + ["DATASETS.TEST", ("vss_synthetic_val",),
                                      "DATASETS.TRAIN", ("vss_synthetic_train",)],
        "name no registered video panoptic dataset",
    ),  # fmt: skip
    (
        "threshold above 1",
        _flags(False, True, False) + ["MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD", 1.5],
        "OBJECT_MASK_THRESHOLD must be in [0, 1], got 1.5",
    ),
]


@pytest.mark.parametrize("what, opts, text", BAD_TASK_ROWS, ids=[r[0] for r in BAD_TASK_ROWS])
def test_bad_task_configs(what, opts, text):
    from video_mask2former.d2.config import ConfigError
    from video_mask2former.d2.registration import build_segmentation_task

    with pytest.raises(ConfigError, match=text.replace("[", r"\[").replace("]", r"\]")):
        build_segmentation_task(_cfg(_config(VPS_SMOKE), opts))


def test_thing_classes_of_disagreeing_datasets_are_an_error():
    from detectron2.data import MetadataCatalog

    from video_mask2former.d2 import register_vps_video
    from video_mask2former.d2.config import ConfigError
    from video_mask2former.d2.registration import build_segmentation_task
    from video_mask2former.data.builtin_meta import panoptic_metadata

    table = [(0, "a", 1, (0, 0, 0)), (1, "b", 0, (1, 1, 1))]
    name = "h7_two_class_vps"
    if name not in MetadataCatalog.list():
        register_vps_video(name, "missing.json", "images", "gt", panoptic_metadata(table))
    cfg = _cfg(_config(VPS_SMOKE), ["DATASETS.TRAIN", (name,)])
    with pytest.raises(ConfigError, match="disagree on which classes are things"):
        build_segmentation_task(cfg)


def test_video_defaults_select_instances():
    """A config that sets none of the three keys (the official video configs' habit) keeps
    video instances: the video defaults are INSTANCE_ON=True, SEMANTIC_ON=False."""
    from tests.d2.helpers import video_cfg
    from video_mask2former.d2.registration import video_task

    cfg = video_cfg()
    assert video_task(cfg) == "instance"
    assert not cfg.MODEL.MASK_FORMER.TEST.SEMANTIC_ON


def test_shipped_configs_select_the_task_of_their_datasets():
    """Instance configs are unchanged (instances, no segmentation_task); VIPSeg configs are
    panoptic, VSPW ones semantic; each fits the evaluator of its test sets."""
    import glob

    from tests.d2.helpers import CONFIG_DIR
    from video_mask2former.d2.registration import build_segmentation_task, video_task
    from video_mask2former.d2.video_seg_evaluator import check_task_for_dataset

    configs = [
        f
        for f in glob.glob(os.path.join(CONFIG_DIR, "**", "*.yaml"), recursive=True)
        if not os.path.basename(f).startswith("Base-")
    ]
    kinds = {}
    for config in configs:
        cfg = _cfg(config)
        kind = video_task(cfg)
        for name in cfg.DATASETS.TEST:
            check_task_for_dataset(kind, name)
        kinds[os.path.relpath(config, CONFIG_DIR)] = kind
        if kind == "instance":
            assert build_segmentation_task(cfg) is None
    for rel, kind in kinds.items():
        expected = "instance"
        if rel.startswith("vipseg") or "_vps_" in rel:
            expected = "panoptic"
        elif rel.startswith("vspw") or "_vss_" in rel:
            expected = "semantic"
        assert kind == expected, rel
    assert sum(k.startswith(("vipseg", "vspw")) for k in kinds) == 4


def test_vipseg_and_vspw_configs_follow_the_cited_recipe():
    r50 = _cfg(_config("vipseg/video_maskformer2_R50_bs16_20k.yaml"))
    assert r50.MODEL.SEM_SEG_HEAD.NUM_CLASSES == 124
    assert (r50.SOLVER.IMS_PER_BATCH, r50.SOLVER.MAX_ITER) == (16, 20000)
    assert tuple(r50.SOLVER.STEPS) == (14000, 18000)
    assert (r50.INPUT.SAMPLING_FRAME_NUM, r50.INPUT.SAMPLING_FRAME_RANGE) == (5, 10)
    assert r50.INPUT.MIN_SIZE_TEST == 720
    assert r50.MODEL.WEIGHTS.endswith(
        "coco/panoptic/maskformer2_R50_bs16_50ep/model_final_94dc52.pkl"
    )
    swin = _cfg(_config("vspw/swin/video_maskformer2_swin_large_IN21k_384_bs16_20k.yaml"))
    assert swin.MODEL.WEIGHTS.endswith("model_final_f07440.pkl")
    assert swin.MODEL.MASK_FORMER.NUM_OBJECT_QUERIES == 200 and swin.MODEL.SWIN.EMBED_DIM == 192
    assert (swin.INPUT.SAMPLING_FRAME_NUM, swin.INPUT.SAMPLING_FRAME_RANGE) == (4, 8)
    assert swin.DATASETS.TEST == ("vspw_val",)


@pytest.mark.parametrize(
    "name", ["vipseg_val", "vspw_val", "vps_synthetic_val", "vss_synthetic_val"]
)
def test_num_categories_counts_stuff_classes(name):
    """Video panoptic sets count all their classes (not only things), semantic sets are counted
    at all (they were None, so the NUM_CLASSES check was skipped)."""
    from detectron2.data import MetadataCatalog

    import video_mask2former.d2  # noqa: F401
    from video_mask2former.d2.datasets import dataset_num_categories

    expected = 6 if "synthetic" in name else 124
    assert len(MetadataCatalog.get(name).stuff_classes) == expected
    assert dataset_num_categories(name) == expected


def test_semantic_dataset_is_checked_against_num_classes():
    from video_mask2former.d2.datasets import DatasetConfigError, check_dataset_classes

    cfg = _cfg(_config(VSS_SMOKE), ["MODEL.SEM_SEG_HEAD.NUM_CLASSES", 5])
    with pytest.raises(DatasetConfigError, match="'vss_synthetic_val' has 6 categories"):
        check_dataset_classes(cfg, cfg.DATASETS.TEST, training=False)


def test_mapper_is_chosen_by_the_datasets():
    from video_mask2former.d2.config import ConfigError
    from video_mask2former.d2.mapper import (
        VideoSegDatasetMapper,
        YTVISDatasetMapper,
        build_video_mapper,
    )

    cfg = _cfg(_config(VPS_SMOKE))
    for names in (["vps_synthetic_train"], ["vss_synthetic_val"]):
        mapper = build_video_mapper(cfg, names, is_train=True)
        assert isinstance(mapper, VideoSegDatasetMapper) and mapper.num_classes == 6
        assert mapper.sampling_frame_num == cfg.INPUT.SAMPLING_FRAME_NUM
    assert type(build_video_mapper(cfg, ["ytvis_synthetic_train"], True)) is YTVISDatasetMapper
    with pytest.raises(ConfigError, match="mix video instance and video panoptic"):
        build_video_mapper(cfg, ["ytvis_synthetic_train", "vps_synthetic_train"], True)


def test_segmentation_mapper_gives_d2_instances_and_every_test_frame(tiny_video_seg):
    from detectron2.data import DatasetCatalog
    from detectron2.structures import Instances

    from video_mask2former.d2.mapper import build_video_mapper

    cfg = _cfg(_config(VPS_SMOKE))
    vps, vss = tiny_video_seg["vps_val"], tiny_video_seg["vss_val"]
    record = DatasetCatalog.get(vps)[0]
    out = build_video_mapper(cfg, [vps], is_train=True)(record)
    assert len(out["instances"]) == 2 and all(isinstance(i, Instances) for i in out["instances"])
    assert len(out["instances"][0].gt_classes) > 0
    record = DatasetCatalog.get(vss)[0]
    out = build_video_mapper(cfg, [vss], is_train=False)(record)
    assert out["frame_idx"] == [0, 1, 2] and out["instances"] == []
    assert (out["height"], out["width"]) == (32, 40)


def test_filter_empty_keeps_segmentation_videos(tiny_video_seg):
    from video_mask2former.d2.datasets import get_video_dataset_dicts

    names = [tiny_video_seg["vps_val"], tiny_video_seg["vss_val"]]
    assert len(get_video_dataset_dicts(names, filter_empty=True)) == 4  # 2 videos each


def test_synthetic_vss_splits_are_written_on_first_use(tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    import video_mask2former.d2.datasets as datasets
    from video_mask2former.d2.datasets import prepare_synthetic_datasets, register_vss_video
    from video_mask2former.data.builtin_meta import metadata_for
    from video_mask2former.data.synthetic_video_seg import DEFAULT_VAL_VIDEOS

    # the built-in split, registered for a while under a temporary root
    root = tmp_path / "vss_synthetic"
    name = "vss_synthetic_val"
    meta = MetadataCatalog.get(name)
    before = (meta.root, meta.split_file)
    MetadataCatalog.remove(name)
    DatasetCatalog.remove(name)
    try:
        register_vss_video(name, str(root), str(root / "val.txt"), metadata_for(name))
        prepare_synthetic_datasets([name])
        assert (root / "val.txt").is_file() and (root / "train.txt").is_file()
        assert len(DatasetCatalog.get(name)) == DEFAULT_VAL_VIDEOS
    finally:
        MetadataCatalog.remove(name)
        DatasetCatalog.remove(name)
        register_vss_video(name, before[0], before[1], metadata_for(name))
    assert datasets.SYNTHETIC_WRITERS[name].__name__ == "write_synthetic_vss"

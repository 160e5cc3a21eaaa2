"""The synthetic YouTube-VIS generator: deterministic, masks agree with the painted frames."""

import json
import os

import numpy as np
import pycocotools.mask as mask_util

from video_mask2former.data.builtin_meta import SYNTHETIC_CATEGORIES
from video_mask2former.data.synthetic import generate_synthetic_ytvis, write_synthetic_ytvis


def _gen(**kwargs):
    args = dict(num_videos=6, num_frames=5, height=32, width=40, seed=0, with_images=True)
    args.update(kwargs)
    return generate_synthetic_ytvis(**args)


def test_deterministic_by_seed():
    d1, f1 = _gen()
    d2, f2 = _gen()
    assert json.dumps(d1) == json.dumps(d2)
    assert all(np.array_equal(a, b) for v1, v2 in zip(f1, f2) for a, b in zip(v1, v2))
    d3, _ = _gen(seed=1)
    assert json.dumps(d3) != json.dumps(d1)
    d4, _ = _gen(split="val")
    assert json.dumps(d4["annotations"]) != json.dumps(d1["annotations"])


def test_masks_match_painted_shapes_and_boxes():
    dataset, frames = _gen(num_videos=8, height=48, width=64)
    colors = {cid: np.array(color) for cid, _, color in SYNTHETIC_CATEGORIES}
    checked = 0
    for ann in dataset["annotations"]:
        video = frames[ann["video_id"] - 1]
        assert len(ann["segmentations"]) == len(video)
        for t, segm in enumerate(ann["segmentations"]):
            if segm is None:
                assert ann["bboxes"][t] is None
                continue
            mask = mask_util.decode(segm).astype(bool)
            assert mask.sum() == ann["areas"][t]
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann["bboxes"][t]
            assert (x, y, x + w - 1, y + h - 1) == (xs.min(), ys.min(), xs.max(), ys.max())
            mean = video[t][mask].mean(axis=0)
            assert np.abs(mean - colors[ann["category_id"]]).max() < 40
            checked += 1
    assert checked > 10


def test_uncompressed_rle_equals_compressed():
    compressed, _ = _gen(with_images=False)
    raw, _ = _gen(with_images=False, segmentation_format="uncompressed_rle")
    for a, b in zip(compressed["annotations"], raw["annotations"]):
        for s, r in zip(a["segmentations"], b["segmentations"]):
            assert (s is None) == (r is None)
            if s is not None:
                assert isinstance(r["counts"], list) and isinstance(s["counts"], str)
                rle = mask_util.frPyObjects(r, *r["size"])
                assert np.array_equal(mask_util.decode(rle), mask_util.decode(s))


def test_objects_enter_and_leave():
    dataset, _ = _gen(num_videos=30, with_images=False)
    nulls = [[s is None for s in ann["segmentations"]] for ann in dataset["annotations"]]
    assert any(n[0] and not all(n) for n in nulls)  # enters after the first frame
    assert any(n[-1] and not all(n) for n in nulls)  # gone before the last frame
    assert {a["category_id"] for a in dataset["annotations"]} == {1, 2, 3}


def test_write_layout(tmp_path):
    written = write_synthetic_ytvis(
        str(tmp_path), num_train_videos=2, num_val_videos=1, num_frames=3, height=24, width=32
    )
    assert set(written) == {"train", "val"}
    image_root, json_file = written["val"]
    assert json_file == os.path.join(str(tmp_path), "valid.json")
    data = json.load(open(json_file))
    assert len(data["videos"]) == 1 and data["annotations"]
    for name in data["videos"][0]["file_names"]:
        assert os.path.isfile(os.path.join(image_root, name))


def _script_defaults(name):
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "..", "datasets", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    captured = {}
    writer = "write_synthetic_ytvis" if name.endswith("ytvis") else "write_synthetic_coco"
    result = {} if name.endswith("ytvis") else ("images", "annotations.json")
    setattr(module, writer, lambda out, **kwargs: captured.update(kwargs) or result)
    module.main([])
    return captured


def test_scripts_write_with_the_writers_defaults():
    """train_net_video.py writes a missing synthetic dataset by calling the writer with its
    defaults: those must be the scripts' defaults (the same files)."""
    import inspect

    from video_mask2former.data.synthetic_images import write_synthetic_coco

    for script, writer in (
        ("prepare_synthetic_ytvis", write_synthetic_ytvis),
        ("prepare_synthetic_coco", write_synthetic_coco),
    ):
        defaults = {
            k: p.default
            for k, p in inspect.signature(writer).parameters.items()
            if p.default is not inspect.Parameter.empty and k != "config"
        }
        assert _script_defaults(script) == defaults, script

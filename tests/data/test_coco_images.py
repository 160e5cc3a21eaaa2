"""COCO-format image sets: category mapping, relabelling, and the errors on bad input."""

import json

import pytest
from PIL import Image

from video_mask2former.data.builtin_meta import metadata_for
from video_mask2former.data.category_maps import COCO_TO_YTVIS_2019
from video_mask2former.data.coco_images import ImageDatasetFormatError, load_coco_image_dataset
from video_mask2former.data.synthetic_images import generate_synthetic_coco

SQUARE = [[2.0, 2.0, 10.0, 2.0, 10.0, 10.0, 2.0, 10.0]]


def _coco(annotations, categories, num_images=2):
    return {
        "images": [
            {"id": i, "file_name": f"{i}.jpg", "height": 16, "width": 20}
            for i in range(1, num_images + 1)
        ],
        "annotations": [
            {"id": n + 1, "image_id": image_id, "category_id": cid, "segmentation": SQUARE}
            for n, (image_id, cid) in enumerate(annotations)
        ],
        "categories": [{"id": cid, "name": name} for cid, name in categories],
    }


def _write(tmp_path, dataset, with_images=True):
    if with_images:
        for image in dataset["images"]:
            Image.new("RGB", (image["width"], image["height"])).save(tmp_path / image["file_name"])
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(dataset))
    return str(path)


def test_mapping_drops_unmapped_and_relabels(tmp_path):
    # Non-contiguous file ids; 90 is unmapped; 7 and 42 go to target ids 3 and 1.
    dataset = _coco([(1, 7), (1, 90), (1, 42), (2, 90)], [(7, "a"), (42, "b"), (90, "c")])
    records, meta = load_coco_image_dataset(
        _write(tmp_path, dataset),
        str(tmp_path),
        category_map={7: 3, 42: 1},
        dataset_id_to_contiguous_id={1: 0, 2: 1, 3: 2},
    )
    assert [r["image_id"] for r in records] == [1]  # image 2 had only an unmapped category
    objs = records[0]["annotations"]
    assert [(o["id"], o["category_id"]) for o in objs] == [(1, 2), (3, 0)]
    assert records[0]["file_name"] == str(tmp_path / "1.jpg")
    assert meta["thing_dataset_id_to_contiguous_id"] == {1: 0, 2: 1, 3: 2}
    kept, _ = load_coco_image_dataset(
        dataset, str(tmp_path), category_map={7: 3, 42: 1}, filter_empty=False
    )
    assert [len(r["annotations"]) for r in kept] == [2, 0]


def test_coco_to_ytvis_2019_merges_and_drops(tmp_path):
    coco_categories = [(1, "person"), (2, "bicycle"), (4, "motorcycle"), (10, "traffic light")]
    dataset = _coco([(1, 1), (1, 2), (1, 4), (1, 10)], coco_categories, num_images=1)
    ytvis = metadata_for("ytvis_2019")
    records, _ = load_coco_image_dataset(
        dataset,
        str(tmp_path),
        category_map=COCO_TO_YTVIS_2019,
        dataset_id_to_contiguous_id=ytvis["thing_dataset_id_to_contiguous_id"],
        check_files=False,
    )
    # person -> person (0); bicycle and motorcycle -> motorbike (20); traffic light dropped.
    classes = [ytvis["thing_classes"][o["category_id"]] for o in records[0]["annotations"]]
    assert classes == ["person", "motorbike", "motorbike"]


def test_no_annotation_of_a_mapped_category_is_an_error(tmp_path):
    path = _write(tmp_path, _coco([(1, 90), (2, 90)], [(7, "a"), (90, "c")]))
    with pytest.raises(ImageDatasetFormatError, match="no annotation has a mapped category") as e:
        load_coco_image_dataset(path, str(tmp_path), category_map={7: 1})
    assert path in str(e.value) and "[7]" in str(e.value)


def test_missing_image_file_is_an_error(tmp_path):
    dataset = _coco([(1, 7), (2, 7)], [(7, "a")])
    path = _write(tmp_path, dataset)
    (tmp_path / "2.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="1 of 2 image files do not exist") as e:
        load_coco_image_dataset(path, str(tmp_path))
    assert str(tmp_path / "2.jpg") in str(e.value)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("annotations"), "'annotations' is missing"),
        (lambda d: d["annotations"][0].update(image_id=99), "image is not in 'images'"),
        (lambda d: d["images"][0].pop("height"), "needs an integer 'height'"),
        (
            lambda d: d["annotations"][0].update(segmentation={"size": [8, 8], "counts": "0"}),
            "does not match the image",
        ),
        (
            lambda d: d["annotations"][0].update(segmentation={"size": [16, 20], "counts": [5]}),
            "sum",
        ),
    ],
)
def test_malformed_files(change, message):
    dataset = _coco([(1, 7)], [(7, "a")])
    change(dataset)
    with pytest.raises(ImageDatasetFormatError, match=message):
        load_coco_image_dataset(dataset, "/images", check_files=False)


def test_category_map_that_does_not_fit(tmp_path):
    dataset = _coco([(1, 7)], [(7, "a")])
    with pytest.raises(
        ImageDatasetFormatError, match=r"map's categories: \[8\].*categories: \[7\]"
    ):
        load_coco_image_dataset(dataset, "/images", category_map={8: 1}, check_files=False)
    with pytest.raises(ImageDatasetFormatError, match=r"target ids \[5\]"):
        load_coco_image_dataset(
            dataset, "/images", category_map={7: 5}, dataset_id_to_contiguous_id={1: 0},
            check_files=False,
        )  # fmt: skip


@pytest.mark.parametrize("fmt", ["rle", "polygon"])
def test_synthetic_images_load(fmt):
    dataset, _ = generate_synthetic_coco(num_images=6, height=32, width=40, segmentation_format=fmt)
    records, meta = load_coco_image_dataset(dataset, "/images", check_files=False)
    assert meta["thing_classes"] == ["circle", "square", "triangle"]
    assert records and all(r["annotations"] for r in records)
    segm = records[0]["annotations"][0]["segmentation"]
    assert isinstance(segm, dict if fmt == "rle" else list)

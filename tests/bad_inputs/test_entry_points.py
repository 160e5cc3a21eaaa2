"""One table of bad inputs, fed through the public entry points of the core (no detectron2).

Each row builds a bad file, calls what a user calls (loading annotations, scoring results,
reading frames, loading a checkpoint) and checks the error type and that the message names the
file and the entry at fault, so that none of these can silently regress into a wrong result. The
detectron2 entry points (--eval-only, --resume, the demo) have their own tests in tests/d2/.
"""

import json
import math
import os

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from tests.data.helpers import write_damaged_jpeg
from tests.modeling.tiny_video_model import build_tiny_model
from video_mask2former.checkpoint import (
    CheckpointFileError,
    CheckpointMismatchError,
    load_checkpoint,
)
from video_mask2former.data.frames import FrameSource, read_frame
from video_mask2former.data.ytvis import YTVISFormatError, load_ytvis_json
from video_mask2former.evaluation import evaluate_ytvis

HEIGHT, WIDTH, FRAMES = 16, 20, 2


def _rle(mask):
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def _dataset():
    """A valid two-frame video with one annotated instance."""
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[4:10, 5:12] = True
    video = {
        "id": 7,
        "height": HEIGHT,
        "width": WIDTH,
        "length": FRAMES,
        "file_names": [f"v7/{i:05d}.jpg" for i in range(FRAMES)],
    }
    annotation = {
        "id": 3,
        "video_id": 7,
        "category_id": 1,
        "iscrowd": 0,
        "segmentations": [_rle(mask)] * FRAMES,
        "areas": [float(mask.sum())] * FRAMES,
        "bboxes": [[5.0, 4.0, 7.0, 6.0]] * FRAMES,
    }
    return {
        "videos": [video],
        "annotations": [annotation],
        "categories": [{"id": 1, "name": "thing"}],
    }


def _results():
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[4:10, 5:12] = True
    return [{"video_id": 7, "score": 0.9, "category_id": 1, "segmentations": [_rle(mask)] * 2}]


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


# --- annotation files: (what is wrong, how the dataset is changed, text the error must hold) ---
def _set_counts(counts):
    def change(data):
        data["annotations"][0]["segmentations"][1] = {"size": [HEIGHT, WIDTH], "counts": counts}

    return change


ANNOTATION_CASES = [
    ("RLE that covers no pixel", _set_counts("0"), ["annotation 3", "video 7", "frame 1"]),
    ("garbage RLE string", _set_counts("!!garbage"), ["annotation 3", "video 7", "frame 1"]),
    ("negative run length", _set_counts([-1, HEIGHT * WIDTH + 1]), ["frame 1", "negative"]),
    ("videos is an object", lambda d: d.update(videos={"7": d["videos"][0]}), ["'videos'"]),
    ("no videos", lambda d: d.pop("videos"), ["videos"]),
    ("video id is a list", lambda d: d["videos"][0].update(id=[7]), ["video", "id"]),
    (
        "null segmentations",
        lambda d: d["annotations"][0].update(segmentations=None),
        ["annotation 3", "segmentations"],
    ),
    (
        "wrong number of frames",
        lambda d: d["annotations"][0].update(
            segmentations=d["annotations"][0]["segmentations"][:1]
        ),
        ["annotation 3", "video 7"],
    ),
    (
        "annotation of an unknown video",
        lambda d: d["annotations"][0].update(video_id=99),
        ["99"],
    ),
]


@pytest.mark.parametrize(
    "change,expected", [c[1:] for c in ANNOTATION_CASES], ids=[c[0] for c in ANNOTATION_CASES]
)
def test_bad_annotation_file(tmp_path, change, expected):
    data = _dataset()
    change(data)
    path = _write(tmp_path, "train.json", data)
    with pytest.raises(YTVISFormatError) as error:
        load_ytvis_json(path, str(tmp_path))
    message = str(error.value)
    assert "train.json" in message and all(text in message for text in expected), message


def test_truncated_annotation_file(tmp_path):
    path = _write(tmp_path, "train.json", json.dumps(_dataset())[:-20])
    with pytest.raises(YTVISFormatError, match="train.json"):
        load_ytvis_json(path, str(tmp_path))


# --- scoring: ground truth and results files --------------------------------------------------
def _result_with(**fields):
    def change(results):
        results[0].update(fields)

    return change


RESULT_CASES = [
    ("video id given as a list", _result_with(video_id=[7]), ["entry 0", "video_id"]),
    ("unknown video", _result_with(video_id=99), ["99"]),
    ("NaN score", _result_with(score=math.nan), ["entry 0", "score"]),
    ("unknown category", _result_with(category_id=5), ["entry 0", "5"]),
    (
        "wrong number of frames",
        lambda r: r[0].update(segmentations=r[0]["segmentations"][:1]),
        ["entry 0", "video 7"],
    ),
    (
        "RLE that covers no pixel",
        lambda r: r[0]["segmentations"].__setitem__(1, {"size": [HEIGHT, WIDTH], "counts": "0"}),
        ["entry 0", "video 7", "frame 1"],
    ),
]


@pytest.mark.parametrize(
    "change,expected", [c[1:] for c in RESULT_CASES], ids=[c[0] for c in RESULT_CASES]
)
def test_bad_results_file(tmp_path, change, expected):
    gt = _write(tmp_path, "gt.json", _dataset())
    results = _results()
    change(results)
    path = _write(tmp_path, "results.json", json.dumps(results, allow_nan=True))
    with pytest.raises(YTVISFormatError) as error:
        evaluate_ytvis(gt, path)
    message = str(error.value)
    assert "results.json" in message and all(text in message for text in expected), message


@pytest.mark.parametrize(
    "change,expected",
    [
        (_set_counts("0"), ["annotation 3", "frame 1"]),
        (lambda d: d.update(videos={"7": d["videos"][0]}), ["'videos'"]),
    ],
    ids=["RLE that covers no pixel", "videos is an object"],
)
def test_bad_ground_truth_file(tmp_path, change, expected):
    data = _dataset()
    change(data)
    gt = _write(tmp_path, "gt.json", data)
    with pytest.raises(YTVISFormatError) as error:
        evaluate_ytvis(gt, _write(tmp_path, "results.json", _results()))
    message = str(error.value)
    assert "gt.json" in message and all(text in message for text in expected), message


def test_valid_files_score_as_expected(tmp_path):
    """The table's valid baseline: the same files, unchanged, score a perfect AP."""
    gt = _write(tmp_path, "gt.json", _dataset())
    stats = evaluate_ytvis(gt, _write(tmp_path, "results.json", _results()))
    assert stats["AP"] == pytest.approx(1.0)


# --- frames --------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "zeroed_tail", "random_tail"])
def test_damaged_frame(tmp_path, damage):
    path = write_damaged_jpeg(tmp_path / "00001.jpg", damage)
    with pytest.raises(OSError, match="00001.jpg"):
        read_frame(path)
    with pytest.raises(ValueError, match="00001.jpg"):
        list(FrameSource(str(tmp_path)))


def test_empty_frame_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        FrameSource(str(tmp_path / "empty"))


def test_missing_frame(tmp_path):
    with pytest.raises((OSError, ValueError), match="missing.jpg"):
        read_frame(str(tmp_path / "missing.jpg"))


# --- checkpoints ---------------------------------------------------------------------------
def _truncated(path):
    torch.save({"model": build_tiny_model().state_dict()}, path)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


CHECKPOINT_FILE_CASES = [
    ("empty", lambda p: open(p, "wb").close()),
    ("truncated", _truncated),
    ("random bytes", lambda p: open(p, "wb").write(os.urandom(256))),
    ("text", lambda p: open(p, "w").write("not a checkpoint\n")),
    ("no weights", lambda p: torch.save({"model": {}}, p)),
]


@pytest.mark.parametrize(
    "write", [c[1] for c in CHECKPOINT_FILE_CASES], ids=[c[0] for c in CHECKPOINT_FILE_CASES]
)
def test_file_that_is_not_a_checkpoint(tmp_path, write):
    path = str(tmp_path / "model_final.pth")
    write(path)
    with pytest.raises(CheckpointFileError) as error:
        load_checkpoint(build_tiny_model(), path)
    message = str(error.value)
    assert "model_final.pth" in message and "\n" not in message
    assert "weights_only=False" not in message


def test_checkpoint_of_another_architecture(tmp_path):
    state = build_tiny_model().state_dict()
    state["sem_seg_head.predictor.query_feat.weight"] = torch.zeros(7, 32)  # 7 queries, not 5
    path = str(tmp_path / "other.pth")
    torch.save({"model": state}, path)
    model = build_tiny_model(seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match="other.pth") as error:
        load_checkpoint(model, path)
    assert "query_feat" in str(error.value)
    for key, value in model.state_dict().items():  # nothing was loaded
        assert torch.equal(value, before[key]), key

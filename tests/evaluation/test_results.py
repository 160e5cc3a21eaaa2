"""results.json: encoding, atomic writes, the submission zip, validation errors."""

import json
import os
import zipfile

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

import video_mask2former.evaluation.results as results_module
from tests.conftest import FIXTURES_DIR
from video_mask2former.evaluation import (
    VideoSpec,
    YTVISFormatError,
    YTVISGroundTruth,
    load_results,
    save_results,
    validate_results,
    video_predictions_to_results,
    write_results_json,
)

T, H, W = 2, 32, 32
VIDEOS = {7: VideoSpec(length=T, height=H, width=W)}


def _prediction(num=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    masks = [torch.rand(T, H, W, generator=g) > 0.5 for _ in range(num)]
    masks[0][1] = False  # an empty frame
    return {"image_size": (H, W), "pred_scores": [0.9, 0.5, 0.1][:num],
            "pred_labels": [0, 2, 1][:num], "pred_masks": masks}  # fmt: skip


def test_round_trip_through_pycocotools_decode(tmp_path):
    pred = _prediction()
    entries = video_predictions_to_results(7, pred, contiguous_to_dataset_id={0: 1, 1: 2, 2: 3})
    json_path, zip_path = save_results(entries, str(tmp_path))
    loaded = load_results(json_path, VIDEOS, category_ids=[1, 2, 3])
    assert [e["category_id"] for e in loaded] == [1, 3, 2]
    assert [e["score"] for e in loaded] == pytest.approx([0.9, 0.5, 0.1])
    for entry, masks in zip(loaded, pred["pred_masks"]):
        assert entry["video_id"] == 7 and len(entry["segmentations"]) == T
        for rle, mask in zip(entry["segmentations"], masks):
            assert isinstance(rle["counts"], str) and rle["size"] == [H, W]
            np.testing.assert_array_equal(mask_util.decode(rle), mask.numpy())
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.namelist() == ["results.json"]
        assert json.loads(zf.read("results.json")) == loaded


def test_unknown_class_is_an_error():
    with pytest.raises(ValueError, match="video 7.*class 2"):
        video_predictions_to_results(7, _prediction(), contiguous_to_dataset_id=[1, 2])


def test_failed_write_keeps_existing_file(tmp_path):
    path = str(tmp_path / "results.json")
    write_results_json([{"video_id": 1}], path)
    with pytest.raises(TypeError):
        write_results_json([{"video_id": object()}], path)  # not JSON-serialisable
    with open(path) as f:
        assert json.load(f) == [{"video_id": 1}]
    assert os.listdir(tmp_path) == ["results.json"]  # no temporary file left behind


def _valid_entries():
    return video_predictions_to_results(7, _prediction(), contiguous_to_dataset_id=[1, 2, 3])


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda e: e[1].update(video_id=99), r"entry 1 \(video 99\).*not in the ground truth"),
        (lambda e: e[2]["segmentations"].pop(), r"entry 2 \(video 7\).*1 segmentations.*2 frames"),
        (lambda e: e[0]["segmentations"][1].update(size=[16, 32]), r"entry 0 \(video 7\).*size"),
        (lambda e: e[1]["segmentations"][0].update(counts="\x01bad"), r"entry 1 .*frame 0.*valid"),
        (lambda e: e[1]["segmentations"][0].update(counts="62"), r"entry 1 .*frame 0.*pixels"),
        (lambda e: e[0].update(category_id=0), r"entry 0 \(video 7\).*category_id 0"),
        (lambda e: e[0].update(score=float("nan")), r"entry 0 \(video 7\).*score"),
        # wrong JSON types (used to crash with "unhashable type: 'list'")
        (lambda e: e[1].update(video_id=[7]),
         r"entry 1: video_id \[7\] is a list, expected an integer video id"),
        (lambda e: e[1].update(category_id=[1]),
         r"entry 1 \(video 7\): category_id \[1\] is a list, expected an integer category id"),
        # RLEs that do not cover H x W
        (lambda e: e[1]["segmentations"][0].update(counts="0"),
         r"entry 1 \(video 7\), frame 0: 'counts' sums to 0 pixels, expected H x W = 32 x 32"),
        (lambda e: e[2]["segmentations"][1].update(counts="!!garbage"),
         r"entry 2 \(video 7\), frame 1: 'counts' is not a valid compressed RLE string: "
         r"character '!' at position 0"),
    ],
)  # fmt: skip
def test_validation_names_the_offending_entry(corrupt, message):
    entries = _valid_entries()
    validate_results(entries, VIDEOS, category_ids=[1, 2, 3])
    corrupt(entries)
    with pytest.raises(YTVISFormatError, match=message):
        validate_results(entries, VIDEOS, category_ids=[1, 2, 3])


def test_case_results_validate_against_case_ground_truth():
    gt = YTVISGroundTruth.from_json(os.path.join(FIXTURES_DIR, "ytvis_eval", "case4_gt.json"))
    path = os.path.join(FIXTURES_DIR, "ytvis_eval", "case4_results.json")
    assert len(load_results(path, gt.videos, category_ids=gt.category_ids)) == 32


def test_windowed_rle_masks_encode_like_dense_masks():
    from video_mask2former.evaluation.results import encode_mask_frames
    from video_mask2former.structures import RLEVideoMask, encode_masks

    generator = torch.Generator().manual_seed(7)
    dense = torch.rand(3, 9, 11, generator=generator) > 0.6
    compact = RLEVideoMask(encode_masks(dense))
    assert encode_mask_frames(compact) == encode_mask_frames(dense)
    assert encode_mask_frames(dense.numpy().astype(np.uint8)) == encode_mask_frames(dense)


def test_written_files_get_a_normal_mode(tmp_path):
    import stat

    from video_mask2former.evaluation import write_results_json

    path = write_results_json([], str(tmp_path / "results.json"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def _pair(folder):
    """(results.json entries, the results.json inside results.zip or None when no zip)."""
    with open(os.path.join(folder, "results.json")) as f:
        entries = json.load(f)
    zip_path = os.path.join(folder, "results.zip")
    if not os.path.exists(zip_path):
        return entries, None
    with zipfile.ZipFile(zip_path) as zf:
        return entries, json.loads(zf.read("results.json"))


def _interrupt_on_call(monkeypatch, owner, name, call):
    """Make the ``call``-th call of ``owner.name`` raise KeyboardInterrupt (a kill seen by
    Python); other calls go through."""
    original, calls = getattr(owner, name), []

    def wrapper(*args, **kwargs):
        calls.append(args)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)


@pytest.mark.parametrize(
    "owner, name, call",
    [
        (results_module, "_json_bytes", 1),  # serialising the results
        (results_module, "_zip_bytes", 1),
        (os, "remove", 1),  # deleting the previous zip
        (results_module, "atomic_write", 1),  # writing the json's temporary
        (os, "replace", 1),  # moving the json into place
        (results_module, "atomic_write", 2),  # writing the zip's temporary
        (os, "replace", 2),  # moving the zip into place
    ],
)
def test_interrupted_save_never_leaves_a_stale_zip(tmp_path, monkeypatch, owner, name, call):
    old, new = [{"run": "old"}], [{"run": "new"}]
    save_results(old, str(tmp_path))
    _interrupt_on_call(monkeypatch, owner, name, call)
    with pytest.raises(KeyboardInterrupt):
        save_results(new, str(tmp_path))
    monkeypatch.undo()
    entries, zipped = _pair(tmp_path)
    assert entries in (old, new)
    assert zipped is None or zipped == entries  # a zip present is the zip of the json beside it
    assert sorted(os.listdir(tmp_path)) in (["results.json"], ["results.json", "results.zip"])
    save_results(new, str(tmp_path))
    assert _pair(tmp_path) == (new, new)


def test_leftover_temporaries_of_a_killed_save_are_removed(tmp_path):
    (tmp_path / ".results.json.ab12cd34.tmp").write_text('[{"partial')  # as a kill leaves them
    (tmp_path / ".results.zip.ef56ab78.tmp").write_bytes(b"PK")
    (tmp_path / "notes.tmp").write_text("not ours")
    save_results([], str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["notes.tmp", "results.json", "results.zip"]
    write_results_json([], str(tmp_path / "results.json"))  # the single-file writer cleans up too
    (tmp_path / ".results.json.0badf00d.tmp").write_text("")
    write_results_json([], str(tmp_path / "results.json"))
    assert sorted(os.listdir(tmp_path)) == ["notes.tmp", "results.json", "results.zip"]


def test_saved_pair_gets_a_normal_mode(tmp_path):
    import stat

    umask = os.umask(0)
    os.umask(umask)
    for path in save_results([], str(tmp_path)):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask

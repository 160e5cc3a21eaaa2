"""Bad inputs of the own-data tools' libraries (inspection, split), one row each: (what is
wrong, how the call is made, the error type, text the error must contain). detectron2-level
rows (class counts, checkpoints) are in tests/d2/test_custom_dataset.py."""

import json

import pytest

from tests.data.own_data import tracks_dataset, write_dataset
from video_mask2former.data.inspect import inspect_ytvis_dataset
from video_mask2former.data.split import SplitError, split_ytvis
from video_mask2former.data.ytvis import YTVISFormatError


def _inspect_missing(tmp_path):
    inspect_ytvis_dataset(tmp_path / "nope.json", tmp_path)


def _inspect_not_json(tmp_path):
    (tmp_path / "a.json").write_text("{videos: ")
    inspect_ytvis_dataset(tmp_path / "a.json", tmp_path)


def _inspect_bad_check(tmp_path):
    json_file, image_root = write_dataset(tmp_path, tracks_dataset(), with_frames=False)
    inspect_ytvis_dataset(json_file, image_root, frames="all")


def _inspect_rle_of_another_size(tmp_path):
    dataset = tracks_dataset()
    segmentations = dataset["annotations"][0]["segmentations"]
    segmentations[2] = dict(segmentations[2], size=[4, 4])
    json_file, image_root = write_dataset(tmp_path, dataset, with_frames=False)
    inspect_ytvis_dataset(json_file, image_root)


def _split(dataset, **kwargs):
    kwargs = {"val_fraction": 0.5, "seed": 0, **kwargs}
    return lambda tmp_path: split_ytvis(dataset, source="own.json", **kwargs)


def _one_video():
    dataset = tracks_dataset()
    dataset["videos"] = dataset["videos"][:1]
    return dataset


def _unknown_video():
    dataset = tracks_dataset()
    dataset["annotations"][0]["video_id"] = 42
    return dataset


ROWS = [
    ("inspect: no annotation file", _inspect_missing, FileNotFoundError, "does not exist"),
    ("inspect: not JSON", _inspect_not_json, YTVISFormatError, "a.json: not valid JSON"),
    ("inspect: unknown frame check", _inspect_bad_check, ValueError, "frames must be one of"),
    ("inspect: RLE of another size", _inspect_rle_of_another_size, YTVISFormatError,
     "annotation 10 of video 1, frame 2: RLE size [4, 4] does not match"),
    ("split: one video", _split(_one_video()), SplitError, "own.json: has 1 video(s)"),
    ("split: fraction 0", _split(tracks_dataset(), val_fraction=0), SplitError,
     "strictly between 0 and 1, got 0"),
    ("split: fraction as text", _split(tracks_dataset(), val_fraction="0.2"), SplitError,
     "got '0.2'"),
    ("split: annotation of an unknown video", _split(_unknown_video(), stratify=True),
     YTVISFormatError, "own.json: annotation 10 refers to video 42"),
]  # fmt: skip


@pytest.mark.parametrize("what, call, error, text", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input(tmp_path, what, call, error, text):
    with pytest.raises(error) as info:
        call(tmp_path)
    assert text in str(info.value)
    json.dumps(str(info.value))  # a plain one-message error

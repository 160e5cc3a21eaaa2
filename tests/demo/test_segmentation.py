"""The demo's panoptic / semantic mode without detectron2 (video_mask2former.demo.segmentation
and the online loop with a tiny segmentation model): --save-masks folders readable by the
scorers' readers, several runs filling one folder, nothing replaced by a failed run, the online
maps equal to the windowed model's, and a table of bad inputs."""

import json
import os
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from tests.data.test_live import FakeCapture
from tests.modeling.tiny_video_model import build_tiny_model
from video_mask2former.data.live import LiveSource
from video_mask2former.data.vps import check_frame_segments, load_vps_predictions, read_id_png
from video_mask2former.data.vss import read_vss_prediction
from video_mask2former.demo import segmentation as seg
from video_mask2former.demo.categories import Categories
from video_mask2former.inference.segment_windows import FrameSegmentation, SegmentationTask

H = W = 64  # one 64x64 frame still gives the tiny backbone a 2x2 res5 map
WINDOW_SIZE = 2
CATEGORIES = Categories(["thing", "sky", "road"], [7, 20, 30], "test", [None, (0, 0, 255), None])
PANOPTIC = SegmentationTask(
    "panoptic", thing_classes=(0,), object_mask_threshold=0.0, overlap_threshold=0.0
)
SEMANTIC = SegmentationTask("semantic")


def _panoptic_frame(index, thing_id=1):
    ids = np.full((H, W), 9, np.int32)  # stuff "road" (class 2)
    ids[:20] = 0  # void
    ids[30:40, 30:40] = thing_id
    infos = [
        {"id": 9, "category_id": 2, "isthing": False, "score": 0.9, "area": 1},
        {"id": thing_id, "category_id": 0, "isthing": True, "score": 0.8, "area": 1},
    ]
    return FrameSegmentation(index, torch.as_tensor(ids), infos)


def _write(writer, frames):
    for frame in frames:
        writer.write(f"{frame.index:05d}.jpg", frame)
    writer.close()


def test_panoptic_masks_in_the_scorers_layout_and_several_videos_in_one_folder(tmp_path):
    out = str(tmp_path / "pred")
    first = seg.SegmentationMasksWriter(out, "panoptic", "v1", CATEGORIES.dataset_ids, 3)
    _write(first, [_panoptic_frame(0), _panoptic_frame(1)])
    _write(
        seg.SegmentationMasksWriter(out, "panoptic", "v2", CATEGORIES.dataset_ids, 3),
        [_panoptic_frame(0, thing_id=4)],
    )
    # v1 again, with one frame: its folder and entry are replaced, v2 is kept, in file order.
    _write(
        seg.SegmentationMasksWriter(out, "panoptic", "v1", CATEGORIES.dataset_ids, 3),
        [_panoptic_frame(0, thing_id=2)],
    )
    videos = load_vps_predictions(os.path.join(out, "pred.json"), categories=[7, 20, 30])
    with open(os.path.join(out, "pred.json")) as f:
        assert [v["video_id"] for v in json.load(f)["annotations"]] == ["v1", "v2"]
    assert sorted(os.listdir(os.path.join(out, "pan_pred", "v1"))) == ["00000.png"]
    for video_id, thing in (("v1", 2), ("v2", 4)):
        (frame,) = videos[video_id].frames
        png = os.path.join(out, "pan_pred", video_id, frame.file_name)
        ids = read_id_png(png)
        check_frame_segments(ids, frame, png_path=png, json_file="pred.json", video_id=video_id)
        assert {s: frame.segments[s].category_id for s in frame.segments} == {9: 30, thing: 7}
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # no stage left


def test_semantic_masks_readable_by_the_scorer(tmp_path):
    out = str(tmp_path / "pred")
    labels = torch.zeros((H, W), dtype=torch.int64)
    labels[10:] = 2
    writer = seg.SegmentationMasksWriter(out, "semantic", "clip", CATEGORIES.dataset_ids, 3)
    _write(writer, [FrameSegmentation(0, labels), FrameSegmentation(1, labels.flip(0))])
    read = read_vss_prediction(os.path.join(out, "clip", "00001.png"), 3)
    assert np.array_equal(read, labels.flip(0).numpy())


def test_a_discarded_or_empty_run_leaves_the_folder_as_it_was(tmp_path):
    out = str(tmp_path / "pred")
    _write(
        seg.SegmentationMasksWriter(out, "panoptic", "v1", CATEGORIES.dataset_ids, 3),
        [_panoptic_frame(0)],
    )
    before = {p: open(p, "rb").read() for p in _files(out)}
    writer = seg.SegmentationMasksWriter(out, "panoptic", "v1", CATEGORIES.dataset_ids, 3)
    writer.write("00000.jpg", _panoptic_frame(0, thing_id=3))
    writer.write("00001.jpg", _panoptic_frame(1, thing_id=3))
    writer.discard()  # an offline run that failed after two frames
    seg.SegmentationMasksWriter(out, "panoptic", "v1", CATEGORIES.dataset_ids, 3).close()  # none
    assert {p: open(p, "rb").read() for p in _files(out)} == before
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


def _files(root):
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)


def test_default_video_id(tmp_path):
    (tmp_path / "1241_abc").mkdir()
    (tmp_path / "vspw_video" / "origin").mkdir(parents=True)
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert seg.default_video_id([str(tmp_path / "1241_abc") + os.sep]) == "1241_abc"
    assert seg.default_video_id([str(tmp_path / "vspw_video" / "origin")]) == "vspw_video"
    assert seg.default_video_id([str(tmp_path / "clip.mp4")]) == "clip"
    assert seg.default_video_id([str(tmp_path / "*.jpg")]) == seg.DEFAULT_VIDEO_ID
    assert seg.default_video_id(["a.jpg", "b.jpg"]) == seg.DEFAULT_VIDEO_ID


def test_frames_of_result_and_frame_memory():
    result = {
        "panoptic_seg": torch.zeros((2, 4, 4), dtype=torch.int32),
        "segments_info": [[], [{"id": 1}]],
    }
    frames = list(seg.frames_of_result(result))
    assert [f.index for f in frames] == [0, 1] and frames[1].segments_info == [{"id": 1}]
    assert len(list(seg.frames_of_result({"sem_seg": torch.zeros((3, 4, 4))}))) == 3
    memory = seg.FrameMemory(iter(["a", "b"]))
    assert list(memory) == ["a", "b"] and memory.take(1) == "b" and memory.take(0) == "a"
    with pytest.raises(ValueError, match="frame 0, which was not read or was taken"):
        memory.take(0)


# --- the online loop on a fake camera with a tiny segmentation model ------------------------
class _Predictor:
    def __init__(self, task):
        self.model = build_tiny_model(seed=3).eval()
        self.model.segmentation_task = task
        self.segmentation_task = task

    def check_frame_size(self, size):
        pass

    def stream(self, window_size, policy=None):
        return self.model.stream(window_size, policy=policy)


def _rgb_frames(num):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(num)]


def _run_online(monkeypatch, tmp_path, task, capture):
    from video_mask2former.demo import online

    monkeypatch.setattr(
        online, "open_stream_input", lambda inputs: LiveSource(0, capture_factory=lambda s: capture)
    )
    cfg = SimpleNamespace(
        MODEL=SimpleNamespace(MASK_FORMER=SimpleNamespace(TEST=SimpleNamespace(WINDOW_SIZE=2)))
    )
    args = SimpleNamespace(
        input=["0"], output=str(tmp_path / "vis.mp4"), save_masks=str(tmp_path / "pred")
    )
    predictor = _Predictor(task)
    status = online.run_online(args, cfg, lambda cfg: predictor, CATEGORIES, video_id="cam")
    return status, predictor.model, args


@pytest.mark.parametrize("task", [PANOPTIC, SEMANTIC], ids=["panoptic", "semantic"])
def test_online_masks_equal_the_windowed_model_and_ctrl_c_keeps_them(monkeypatch, tmp_path, task):
    frames = _rgb_frames(5)
    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
    capture = FakeCapture(bgr, end=KeyboardInterrupt())  # Ctrl-C while reading frame 6
    status, model, args = _run_online(monkeypatch, tmp_path, task, capture)
    assert status == 0 and capture.released
    # Frames 0-3 (two windows) were written; frame 4 waited for its window and is dropped.
    model.window_size = WINDOW_SIZE
    with torch.no_grad():
        expected = model([{"image": frames[:4]}])
    video = cv2.VideoCapture(args.output)
    assert sum(1 for _ in iter(lambda: video.read()[0], False)) == 4
    if task.kind == "semantic":
        for t in range(4):
            read = read_vss_prediction(os.path.join(args.save_masks, "cam", f"{t:05d}.png"), 3)
            assert np.array_equal(read, expected["sem_seg"][t].numpy())
        return
    (video_entry,) = load_vps_predictions(os.path.join(args.save_masks, "pred.json")).values()
    assert [f.file_name for f in video_entry.frames] == [f"{t:05d}.png" for t in range(4)]
    for t, frame in enumerate(video_entry.frames):
        ids = read_id_png(os.path.join(args.save_masks, "pan_pred", "cam", frame.file_name))
        assert np.array_equal(ids, expected["panoptic_seg"][t].numpy())
        categories = {
            s["id"]: CATEGORIES.dataset_ids[s["category_id"]] for s in expected["segments_info"][t]
        }
        assert {s: frame.segments[s].category_id for s in frame.segments} == categories


# --- bad inputs: (what is wrong, how to build it, error type, text the error must contain) ---
def _existing_json(tmp_path, text):
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "pred.json").write_text(text)
    return str(tmp_path / "pred")


def _a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    return str(tmp_path / "f")


def _write_one(writer, frame):
    """Write one frame as the demo does: a failing run discards what it staged."""
    try:
        writer.write("00000.jpg", frame)
    except BaseException:
        writer.discard()
        raise


BAD = [
    (
        "a video id with a path separator",
        lambda tmp: seg.SegmentationMasksWriter(str(tmp / "p"), "panoptic", "a/b", [1], 1),
        ValueError,
        "video id 'a/b' cannot name a folder of predictions",
    ),
    (
        "an empty video id",
        lambda tmp: seg.SegmentationMasksWriter(str(tmp / "p"), "semantic", "", [1], 1),
        ValueError,
        "video id '' cannot name a folder",
    ),
    (
        "DIR is a file",
        lambda tmp: seg.SegmentationMasksWriter(_a_file(tmp), "panoptic", "v", [1], 1),
        OSError,
        "is a file, expected a folder",
    ),
    (
        "an existing pred.json that is not JSON",
        lambda tmp: seg.SegmentationMasksWriter(_existing_json(tmp, "{"), "panoptic", "v", [1], 1),
        ValueError,
        "pred.json as JSON",
    ),
    (
        "an existing pred.json without annotations",
        lambda tmp: seg.SegmentationMasksWriter(
            _existing_json(tmp, '{"videos": 3}'), "panoptic", "v", [1], 1
        ),
        ValueError,
        "pred.json",
    ),
    (
        "an unknown kind",
        lambda tmp: seg.SegmentationMasksWriter(str(tmp / "p"), "instance", "v", [1], 1),
        ValueError,
        "kind must be one of ('panoptic', 'semantic')",
    ),
    (
        "a semantic map with a class >= K",
        lambda tmp: _write_one(
            seg.SegmentationMasksWriter(str(tmp / "p"), "semantic", "v", [1, 2], 2),
            FrameSegmentation(0, torch.full((4, 4), 2)),
        ),
        ValueError,
        "class indices 2..2, expected 0..1",
    ),
    (
        "a result dict of instances",
        lambda tmp: list(seg.frames_of_result({"pred_masks": []})),
        ValueError,
        "expected a panoptic ('panoptic_seg', 'segments_info') or semantic ('sem_seg') result",
    ),
]


@pytest.mark.parametrize("build, error, text", [r[1:] for r in BAD], ids=[r[0] for r in BAD])
def test_bad_inputs(tmp_path, build, error, text):
    with pytest.raises(error) as caught:
        build(tmp_path)
    assert text in str(caught.value)
    # Refused before anything was staged.
    assert not [name for name in os.listdir(tmp_path) if ".partial" in name]

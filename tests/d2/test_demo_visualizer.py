"""The demo's drawing and frame I/O (OpenCV / NumPy only: runs without detectron2)."""

import importlib.util
import os

import numpy as np
import pytest
import torch

DEMO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "demo_video")


def _load(name):
    path = os.path.join(DEMO_DIR, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"demo_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


visualizer = _load("visualizer")
video_io = _load("video_io")


def _prediction(T=3, H=32, W=40):
    masks = torch.zeros(3, T, H, W, dtype=torch.bool)
    masks[0, :, 2:12, 2:12] = True
    masks[1, :, 20:30, 25:38] = True
    masks[2, :, 0:5, 30:40] = True
    return {
        "image_size": (H, W),
        "pred_scores": [0.9, 0.6, 0.2],
        "pred_labels": [0, 2, 1],
        "pred_masks": list(masks),
    }


def test_instance_colors_distinct_and_stable():
    colors = visualizer.instance_colors(10)
    assert len(set(colors)) == 10
    assert visualizer.instance_colors(3) == colors[:3]


def test_draw_instances_overlays_only_the_masks():
    frame = np.full((32, 40, 3), 100, np.uint8)
    masks = np.zeros((1, 32, 40), bool)
    masks[0, 10:20, 10:20] = True
    out = visualizer.draw_instances(frame, masks, [(255, 0, 0)], labels=None, alpha=0.5)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert tuple(out[15, 15]) == (178, 50, 50)  # 0.5 * 100 + 0.5 * colour (interior)
    assert tuple(out[0, 0]) == (100, 100, 100)  # outside untouched
    assert (frame == 100).all()  # input not modified
    with pytest.raises(ValueError, match="do not match"):
        visualizer.draw_instances(frame, np.zeros((1, 8, 8), bool), [(0, 0, 0)])


def test_video_visualizer_threshold_and_consistent_colours():
    vis = visualizer.VideoVisualizer(["a", "b", "c"], confidence_threshold=0.5)
    prediction = _prediction()
    kept = vis.select(prediction)
    assert kept["pred_scores"] == [0.9, 0.6] and kept["pred_labels"] == [0, 2]
    frames = [np.zeros((32, 40, 3), np.uint8) for _ in range(3)]
    drawn = vis.draw(frames, prediction)
    assert len(drawn) == 3
    # Same instance, same colour in every frame; the low-score instance is not drawn.
    for out in drawn:
        assert tuple(out[7, 7]) == tuple(drawn[0][7, 7]) and out[7, 7].any()
        assert not out[2, 35].any()
    assert not np.array_equal(drawn[0][7, 7], drawn[0][25, 30])
    with pytest.raises(ValueError, match="do not match"):
        vis.draw(frames[:2], prediction)


def test_frame_writer_folder_keeps_names_and_rgb(tmp_path):
    from video_mask2former.data.frames import FrameSource

    frames = [np.full((16, 20, 3), (40 * i, 0, 200), np.uint8) for i in range(3)]
    folder = tmp_path / "frames"
    with video_io.FrameWriter(str(folder), ["00002.jpg", "00000.jpg", "00001.png"], 6.0) as w:
        for frame in frames:
            w.write(frame)
    source = FrameSource(str(folder))
    assert source.frame_names() == ["00000.jpg", "00001.png", "00002.jpg"]  # name order
    read = list(source)
    assert tuple(read[1][0, 0]) == (80, 0, 200)  # png is lossless and RGB order is kept


def test_frame_writer_video_round_trip_and_empty_output(tmp_path):
    from video_mask2former.data.frames import FrameSource

    path = str(tmp_path / "out.mp4")
    with video_io.FrameWriter(path, [], fps=5.0) as writer:
        for i in range(4):
            writer.write(np.full((32, 48, 3), 30 * i, np.uint8))
    source = FrameSource(path)
    assert source.fps == pytest.approx(5.0) and source.size == (32, 48)
    assert len(list(source)) == 4 and source.frame_names()[0] == "00000.jpg"
    with pytest.raises(ValueError, match="no frame was written"):
        with video_io.FrameWriter(str(tmp_path / "none.mp4"), [], fps=5.0):
            pass


def test_iter_draw_streams_and_checks_the_frame_count():
    vis = visualizer.VideoVisualizer(["a", "b", "c"], confidence_threshold=0.5)
    prediction = _prediction()
    frames = (np.zeros((32, 40, 3), np.uint8) for _ in range(3))  # a generator
    assert len(list(vis.iter_draw(frames, prediction))) == 3
    with pytest.raises(ValueError, match="do not match frame 3"):
        list(vis.iter_draw([np.zeros((32, 40, 3), np.uint8)] * 4, prediction))


def test_video_visualizer_draws_rle_masks_like_tensors():
    from video_mask2former.structures import RLEVideoMask
    from video_mask2former.evaluation.results import encode_mask_frames

    prediction = _prediction()
    as_rle = dict(
        prediction,
        pred_masks=[RLEVideoMask(encode_mask_frames(m)) for m in prediction["pred_masks"]],
    )
    vis = visualizer.VideoVisualizer(["a", "b", "c"], confidence_threshold=0.5)
    frames = [np.zeros((32, 40, 3), np.uint8) for _ in range(3)]
    for a, b in zip(vis.draw(frames, prediction), vis.draw(frames, as_rle)):
        assert np.array_equal(a, b)

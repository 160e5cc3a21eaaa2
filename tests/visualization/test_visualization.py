"""Drawing and frame writing (video_mask2former.visualization: OpenCV / NumPy, no detectron2)."""

import logging
import os

import numpy as np
import pytest
import torch

from video_mask2former.visualization import draw as visualizer
from video_mask2former.visualization import video_io


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


# --- labels on small frames -----------------------------------------------------------------
def _box_masks(height, width, boxes):
    """(N, H, W) masks, one per (y0, y1, x0, x1) box."""
    masks = np.zeros((len(boxes), height, width), bool)
    for mask, (y0, y1, x0, x1) in zip(masks, boxes):
        mask[y0:y1, x0:x1] = True
    return masks


# Instances at the four borders and corners, and two pairs that nearly touch.
CROWDED = [(0, 4, 0, 4), (1, 5, 2, 6), (40, 48, 56, 64), (20, 30, 60, 64), (0, 6, 58, 64)]
CROWDED += [(44, 48, 0, 8), (20, 26, 20, 30), (22, 28, 24, 34)]


@pytest.mark.parametrize("height, width", [(48, 64), (17, 31), (120, 160)])
def test_labels_stay_inside_the_frame_and_do_not_overlap(height, width):
    boxes = [
        (min(y0, height - 1), min(y1, height), min(x0, width - 1), min(x1, width))
        for y0, y1, x0, x1 in CROWDED
    ]
    masks = _box_masks(height, width, boxes)
    labels = [f"class{i} {90 - i}%" for i in range(len(masks))]
    layout = visualizer.label_layout(masks, labels)
    placed = [box for box in layout if box is not None]
    assert len(layout) == len(masks) and placed[0] == layout[0]  # the best-scoring one first
    for box in placed:
        assert 0 <= box.x0 < box.x1 <= width and 0 <= box.y0 < box.y1 <= height
    for i, a in enumerate(placed):
        for b in placed[i + 1 :]:
            assert a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0, (a, b)
    if height >= 120:  # room for every label
        assert len(placed) == len(masks) and [b.text for b in placed] == labels
    # Drawn where laid out: each box is filled with its instance's colour (text aside).
    colors = visualizer.instance_colors(len(masks))
    out = visualizer.draw_instances(np.zeros((height, width, 3), np.uint8), masks, colors, labels)
    for box, color in zip(layout, colors):
        if box is not None:
            area = out[box.y0 : box.y1, box.x0 : box.x1]
            assert (area == color).all(axis=-1).mean() > 0.4


def test_a_label_wider_than_the_frame_is_shortened():
    masks = _box_masks(17, 31, [(5, 10, 5, 10)])
    (box,) = visualizer.label_layout(masks, ["a very long class name 99%"])
    assert box.x1 <= 31 and "a very long class name 99%".startswith(box.text) and box.text


# --- .mp4: H.264 through PyAV, or OpenCV's mp4v ---------------------------------------------
class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.text = ""

    def emit(self, record):
        self.text += record.getMessage() + "\n"


def _write_mp4(path, video_backend, size=(17, 31), count=3):
    """Write ``count`` frames of (H, W) ``size``; returns the writer and its log lines (a
    handler on the demo's logger itself: the demo's setup_logger stops propagation)."""
    frames = [np.full((*size, 3), 40 * i, np.uint8) for i in range(count)]
    logger, lines = logging.getLogger("video_mask2former.demo"), _Lines()
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        with video_io.FrameWriter(path, None, fps=6.0, video_backend=video_backend) as writer:
            for frame in frames:
                writer.write(frame)
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    return writer, lines.text


@pytest.mark.skipif(
    not video_io.h264_available(), reason="needs PyAV with libx264 (pip install av)"
)
def test_mp4_is_h264_with_odd_frame_sizes_padded(tmp_path):
    """The default writer makes a video that browsers play: H.264 (avc1), yuv420p, its index at
    the start; a 31x17 video is padded to 32x18 (yuv420p needs even sizes)."""
    import av

    path = tmp_path / "out.mp4"
    path.write_bytes(b"previous")
    writer, log = _write_mp4(str(path), video_backend=None)
    assert "H.264" in writer.codec and "H.264" in log and "padded from 31x17" in log
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_tag == "avc1"
        assert (stream.width, stream.height) == (32, 18)
        assert stream.codec_context.pix_fmt == "yuv420p"
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 3 and abs(int(decoded[2][16, 30, 0]) - 80) <= 6  # last pixels kept
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart
    assert os.listdir(tmp_path) == ["out.mp4"]  # the temporary was renamed


def test_mp4_without_pyav_falls_back_to_opencv_mp4v(tmp_path, monkeypatch):
    import cv2

    monkeypatch.setattr(video_io, "h264_available", lambda: False)
    path = str(tmp_path / "out.mp4")
    writer, log = _write_mp4(path, video_backend=None)
    assert "mp4v" in writer.codec and "pip install av" in log and log.count("\n") == 1
    capture = cv2.VideoCapture(path)
    size = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    capture.release()
    assert size == (32, 18) and count == 3  # OpenCV alone crops a 31x17 video to 30x16
    with open(path, "rb") as f:
        assert b"mp4v" in f.read()  # the sample entry of the video track
    with pytest.raises(ValueError, match="needs PyAV"):
        video_io.FrameWriter(path, None, fps=6.0, video_backend="pyav")


@pytest.mark.parametrize("video_backend", ["pyav", "opencv"])
def test_an_interrupted_mp4_leaves_the_previous_file(tmp_path, video_backend):
    if video_backend == "pyav" and not video_io.h264_available():
        pytest.skip("needs PyAV with libx264 (pip install av)")
    path = tmp_path / "out.mp4"
    path.write_bytes(b"previous")
    with pytest.raises(KeyboardInterrupt):
        with video_io.FrameWriter(str(path), None, 6.0, video_backend=video_backend) as writer:
            writer.write(np.zeros((18, 32, 3), np.uint8))
            raise KeyboardInterrupt
    assert path.read_bytes() == b"previous" and os.listdir(tmp_path) == ["out.mp4"]

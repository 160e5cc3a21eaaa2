"""Bad frames against every inference entry point: one table, so that the modes cannot disagree.

Each row is (what is wrong, how to build the bad frame, the error type, text the message must
hold). The bad frame is frame 1 of a two-frame video whose frame 0 is a valid 32x32 uint8 frame;
every entry point (the whole video, the windowed mode, ``predict_window``, a stream) must refuse
it with the same one-line error naming frame 1, before the network runs. A second table holds the
valid kinds of frame, which every entry point must take and give the same result for.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from tests.modeling.tiny_video_model import build_tiny_model, random_video
from video_mask2former.data.frame_checks import FrameError, FrameSizeError
from video_mask2former.inference.streaming import StreamPolicy, collect_video_result

SIZE = 32


def _good():
    return random_video(1, SIZE, SIZE, seed=1)[0]  # (3, H, W) uint8


def _float_frame(value=None):
    frame = _good().float()
    if value is not None:
        frame[1, 5, 7] = value
    return frame


# (what is wrong, the bad frame, the error, text the message must hold)
BAD_FRAMES = [
    ("float tensor in 0..1", lambda: _good().float() / 255, FrameError, "looks like a 0..1 image"),
    (
        "float array in 0..1",
        lambda: np.random.default_rng(0).random((SIZE, SIZE, 3), dtype=np.float32),
        FrameError,
        "multiply it by 255",
    ),
    (
        "uint16 array (16-bit pixels)",
        lambda: _good().permute(1, 2, 0).numpy().astype(np.uint16) * 257,
        FrameError,
        "dtype uint16.*convert it to uint8",
    ),
    (
        "uint16 tensor",
        lambda: torch.from_numpy(_good().numpy().astype(np.uint16)),
        FrameError,
        "dtype torch.uint16",
    ),
    (
        "int32 array above 255",
        lambda: _good().permute(1, 2, 0).numpy().astype(np.int32) * 16,
        FrameError,
        "values in 0..4080.*0..255",
    ),
    ("float above 255", lambda: _float_frame(300.0), FrameError, "values in 0..300"),
    ("normalised (negative) float", lambda: _float_frame(-1.5), FrameError, "not normalised"),
    ("NaN pixel", lambda: _float_frame(float("nan")), FrameError, "NaN or infinite"),
    ("inf pixel", lambda: _float_frame(float("inf")), FrameError, "NaN or infinite"),
    ("-inf pixel", lambda: _float_frame(float("-inf")), FrameError, "NaN or infinite"),
    ("bool tensor", lambda: _good() > 100, FrameError, "dtype torch.bool"),
    (
        "RGBA tensor (4, H, W)",
        lambda: torch.zeros(4, SIZE, SIZE, dtype=torch.uint8),
        FrameError,
        r"shape \(4, 32, 32\) \(RGBA: drop the alpha channel",
    ),
    (
        "RGBA array (H, W, 4)",
        lambda: np.zeros((SIZE, SIZE, 4), np.uint8),
        FrameError,
        "RGBA: drop the alpha channel",
    ),
    (
        "HWC tensor",
        lambda: _good().permute(1, 2, 0),
        FrameError,
        r"channels last: tensors are \(3, H, W\)",
    ),
    (
        "CHW array",
        lambda: _good().numpy(),
        FrameError,
        r"channels first: numpy frames are \(H, W, 3\)",
    ),
    ("grayscale array", lambda: np.zeros((SIZE, SIZE), np.uint8), FrameError, "grayscale"),
    ("grayscale tensor", lambda: torch.zeros(1, SIZE, SIZE), FrameError, "grayscale"),
    ("0x0 tensor", lambda: torch.zeros(3, 0, 0, dtype=torch.uint8), FrameError, r"empty \(0x0"),
    ("0x0 array", lambda: np.zeros((0, 0, 3), np.uint8), FrameError, r"empty \(0x0"),
    ("batch tensor", lambda: _good()[None], FrameError, "a batch"),
    ("a list", lambda: _good().tolist(), FrameError, r"builtins.list.*expected an \(H, W, 3\)"),
    ("None", lambda: None, FrameError, "NoneType"),
    ("PIL image", lambda: Image.new("RGB", (SIZE, SIZE)), FrameError, "PIL.Image"),
    (
        "frame of another size",
        lambda: random_video(1, 24, 40, seed=2)[0],
        FrameSizeError,
        "is 40x24 .*frame 0 is 32x32: all frames of a video must have one size",
    ),
]


def _whole_video(model, frames):
    model.window_size = 0
    return model([{"image": frames}])


def _forward_windowed(model, frames):
    model.window_size = 2
    try:
        return model([{"image": frames}])
    finally:
        model.window_size = 0


def _inference_windowed(model, frames):
    return model.inference_windowed(iter(frames), (SIZE, SIZE), window_size=2)


def _predict_window(model, frames):
    return model.predict_window(frames)


def _stream(model, frames, transform=None):
    stream = model.stream(2, transform=transform, policy=StreamPolicy.report_everything(15))
    return collect_video_result(stream.run(frames))


def _stream_with_transform(model, frames):
    return _stream(model, frames, transform=lambda frame: frame)


ENTRY_POINTS = {
    "whole video": _whole_video,
    "forward, window_size 2": _forward_windowed,
    "inference_windowed": _inference_windowed,
    "predict_window": _predict_window,
    "stream": _stream,
    "stream with a transform": _stream_with_transform,
}


@pytest.fixture(scope="module")
def model():
    return build_tiny_model().eval()


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("what, build, error, text", BAD_FRAMES, ids=[row[0] for row in BAD_FRAMES])
def test_bad_frame_is_refused_by_every_entry_point(model, entry, what, build, error, text):
    predict = ENTRY_POINTS[entry]
    with torch.no_grad(), pytest.raises(error, match=f"frame 1 of .*{text}") as info:
        predict(model, [_good(), build()])
    assert "\n" not in str(info.value)


def _to_array(frame):
    return frame.permute(1, 2, 0).numpy()


# (what, how a valid uint8 (3, H, W) frame is given): every entry point gives the same result.
VALID_FRAMES = [
    ("uint8 tensor", lambda f: f),
    ("float32 tensor", lambda f: f.float()),
    ("float64 tensor", lambda f: f.double()),
    ("int64 tensor", lambda f: f.long()),
    ("uint8 array", _to_array),
    ("float32 array", lambda f: _to_array(f).astype(np.float32)),
    (
        "non-contiguous BGR-flipped array",
        lambda f: np.ascontiguousarray(_to_array(f)[:, :, ::-1])[:, :, ::-1],
    ),
]


@pytest.mark.parametrize("entry", ["whole video", "inference_windowed", "stream"])
@pytest.mark.parametrize("what, convert", VALID_FRAMES, ids=[row[0] for row in VALID_FRAMES])
def test_valid_frame_kinds_give_the_same_result(model, entry, what, convert):
    frames = random_video(2, SIZE, SIZE, seed=4)
    predict = ENTRY_POINTS[entry]
    with torch.no_grad():
        expected = predict(model, frames)
        got = predict(model, [convert(f) for f in frames])
    assert got["pred_scores"] == expected["pred_scores"]
    assert got["pred_labels"] == expected["pred_labels"]
    for a, b in zip(got["pred_masks"], expected["pred_masks"]):
        a, b = (m.to_tensor() if hasattr(m, "to_tensor") else m for m in (a, b))
        assert torch.equal(a, b)


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_all_black_float_frame_is_accepted(model, entry):
    """0 is black on the 0..1 and the 0..255 scales alike: not refused as a 0..1 image."""
    with torch.no_grad():
        ENTRY_POINTS[entry](model, [_good(), torch.zeros(3, SIZE, SIZE)])


@pytest.mark.parametrize("window_size", [0, 2])
@pytest.mark.parametrize(
    "height, width",
    [(0, 0), (-5, SIZE), ("32", SIZE), (SIZE, 2.5), (None, SIZE), (True, SIZE)],
    ids=["zero", "negative", "string", "float", "none", "bool"],
)
def test_bad_output_size_in_the_video_dict_is_one_line(model, window_size, height, width):
    """ "height" / "width" set the masks' size: checked before the network runs, in both modes
    (was an error from deep inside torch: "Input and output sizes should be greater than 0")."""
    model.window_size = window_size
    try:
        with pytest.raises(ValueError, match=r"the video's 'height' / 'width' .*two integers >= 1"):
            model([{"image": [_good(), _good()], "height": height, "width": width}])
    finally:
        model.window_size = 0

"""One table of bad inputs of the export (tools/export_model.py) and of the ONNX predictor
(``OnnxWindowPredictor``), without detectron2.

Each row is (what is wrong, how it is built, text the error must hold): the export's arguments
are refused before the model is built, and an ONNX file that is not this project's window network,
or does not fit the arguments it is opened with, is refused at once with one line naming it.
"""

import importlib.util
import os

import pytest
import torch

from tests.modeling.tiny_video_model import NUM_CLASSES
from tests.onnx_helpers import HEIGHT, WIDTH
from video_mask2former.export import METADATA_KEYS, OnnxModelError, OnnxWindowPredictor

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _export_tool():
    path = os.path.join(REPO_ROOT, "tools", "export_model.py")
    spec = importlib.util.spec_from_file_location("export_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the export's arguments: refused before the model is built (small sizes: the old code
# exported before failing) ---
EXPORT_ROWS = [
    ("--frames 0", ["--frames", "0"], "the number of frames T of the example window"),
    ("--frames -3", ["--frames", "-3"], "must be an integer >= 1, got -3"),
    ("--frames 2000", ["--frames", "2000"], "must be at most 1024, got 2000"),
    ("--height 0", ["--height", "0"], "the frame height H of the example window"),
    ("--width 0", ["--width", "0"], "the frame width W of the example window"),
    ("a missing output folder", ["--output", "{tmp}/missing/x.onnx"], "does not exist"),
    ("an output that is a folder", ["--output", "{tmp}"], "it is a folder"),
    ("KEY VALUE overrides without --config-file", ["MODEL.WEIGHTS", "x"], "need --config-file"),
]


@pytest.mark.parametrize(
    "args, text", [r[1:] for r in EXPORT_ROWS], ids=[r[0] for r in EXPORT_ROWS]
)
def test_export_refuses_arguments(args, text, tmp_path, capsys):
    argv = ["--format", "onnx", "--num-classes", "3", "--height", "32", "--width", "32"]
    argv += ["--frames", "1", "--output", str(tmp_path / "x.onnx")]
    argv += [a.format(tmp=tmp_path) for a in args]  # later flags win
    with pytest.raises(SystemExit) as caught:
        _export_tool().main(argv)
    assert caught.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert text in message and "error:" in message
    assert not (tmp_path / "x.onnx").exists()


# --- weights that cannot be used (without detectron2): one line, exit status 1, nothing written;
# the old export ended in a traceback ---
def _junk(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    return str(tmp_path / "junk.pth")


def _other_weights(tmp_path):
    torch.save({"model": {"other.weight": torch.zeros(2)}}, str(tmp_path / "other.pth"))
    return str(tmp_path / "other.pth")


WEIGHTS_ROWS = [
    ("a missing --weights", lambda tmp: str(tmp / "missing.pth"), "missing.pth does not exist"),
    ("--weights not a checkpoint", _junk, "junk.pth is not a readable checkpoint"),
    ("--weights of another model", _other_weights, "other.pth does not fit the model"),
]


@pytest.mark.parametrize(
    "build, text", [r[1:] for r in WEIGHTS_ROWS], ids=[r[0] for r in WEIGHTS_ROWS]
)
def test_export_refuses_weights_in_one_line(build, text, tmp_path, capsys):
    argv = ["--format", "onnx", "--num-classes", "3", "--height", "32", "--width", "32"]
    argv += ["--frames", "1", "--output", str(tmp_path / "x.onnx"), "--weights", build(tmp_path)]
    assert _export_tool().main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in lines if "error:" in line]) == 1
    assert ": error: " in lines[0] and text in lines[0] and "Traceback" not in "\n".join(lines)
    assert not (tmp_path / "x.onnx").exists()


# --- ONNX files ---
@pytest.fixture(scope="module")
def onnx_file(tiny_onnx_export):
    """The tiny model (K = 3, size divisibility 32) exported for HEIGHT x WIDTH frames."""
    return tiny_onnx_export[0]


def _edited(path, tmp_path, name, change):
    """A copy of ONNX file ``path`` whose metadata_props dict went through ``change``."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(path)
    props = {p.key: p.value for p in model.metadata_props}
    change(props)
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    out = str(tmp_path / name)
    onnx.save(model, out)
    return out


def _without_metadata(props):
    props.clear()


def _other_model(path, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["frames"], ["pred_logits"])],
        "other",
        [helper.make_tensor_value_info("frames", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("pred_logits", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    out = str(tmp_path / "other.onnx")
    onnx.save(model, out)
    return out


ONNX_ROWS = [
    (
        "K of the file differs from the config's",
        lambda path, tmp: OnnxWindowPredictor(path, num_classes=40),
        f"tiny.onnx predicts {NUM_CLASSES} classes, expected 40",
    ),
    (
        "size divisibility argument differs from the file's",
        lambda path, tmp: OnnxWindowPredictor(path, size_divisibility=1),
        "tiny.onnx was exported with size divisibility 32, expected 1",
    ),
    (
        "an older file without metadata, K from its outputs differs",
        lambda path, tmp: OnnxWindowPredictor(
            _edited(path, tmp, "old.onnx", _without_metadata), num_classes=40
        ),
        f"old.onnx predicts {NUM_CLASSES} classes, expected 40",
    ),
    (
        "an older file without metadata, its masks do not fit the size divisibility",
        lambda path, tmp: OnnxWindowPredictor(
            _edited(path, tmp, "old.onnx", _without_metadata), size_divisibility=1
        ),
        "which a size divisibility of 1 does not give",
    ),
    (
        "a metadata entry that is not a number",
        lambda path, tmp: OnnxWindowPredictor(
            _edited(
                path, tmp, "bad.onnx", lambda p: p.update({METADATA_KEYS["num_classes"]: "many"})
            )
        ),
        "bad.onnx: its metadata entry video_mask2former.num_classes is 'many'",
    ),
    (
        "a file of a newer format",
        lambda path, tmp: OnnxWindowPredictor(
            _edited(
                path, tmp, "new.onnx", lambda p: p.update({METADATA_KEYS["format_version"]: "99"})
            )
        ),
        "new.onnx: written with metadata format 99",
    ),
    (
        "an ONNX file of another model (right input name, wrong outputs)",
        lambda path, tmp: OnnxWindowPredictor(_other_model(path, tmp)),
        "other.onnx: not a video_mask2former window network: expected one input 'frames' "
        "(T, 3, H, W) and the outputs 'pred_logits', 'pred_masks', 'pred_embeds'",
    ),
]


@pytest.mark.parametrize("build, text", [r[1:] for r in ONNX_ROWS], ids=[r[0] for r in ONNX_ROWS])
def test_onnx_predictor_refuses(onnx_file, tmp_path, build, text):
    with pytest.raises(OnnxModelError) as caught:
        build(onnx_file, tmp_path)
    assert text in str(caught.value) and "\n" not in str(caught.value)


def test_onnx_file_carries_its_metadata_and_older_files_still_open(onnx_file, tmp_path):
    predictor = OnnxWindowPredictor(onnx_file)
    assert (predictor.num_classes, predictor.size_divisibility) == (NUM_CLASSES, 32)
    assert predictor.frame_size == (HEIGHT, WIDTH)
    assert predictor.metadata[METADATA_KEYS["format_version"]] == "1"
    old = OnnxWindowPredictor(_edited(onnx_file, tmp_path, "old.onnx", _without_metadata))
    assert (old.num_classes, old.size_divisibility) == (NUM_CLASSES, 32)  # from its shapes
    frames = list(torch.rand(2, 3, HEIGHT, WIDTH) * 255)
    assert old(frames).padded_size == predictor(frames).padded_size == (96, 128)

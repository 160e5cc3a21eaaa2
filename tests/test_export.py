"""The window network exported with torch.export and to ONNX (onnxruntime), and windowed
inference on the ONNX file."""

import logging
import os
import warnings

import pytest
import torch

import mask2former_ops
from tests.modeling.tiny_video_model import build_tiny_model
from tests.onnx_helpers import HEIGHT, WIDTH, example_frames, exporter_output
from video_mask2former.export import (
    OnnxWindowPredictor,
    WindowNetwork,
    deformable_attention_implementation,
    export_onnx,
    export_program,
    exporter_notices,
)
from video_mask2former.modeling.build import build_video_maskformer
from video_mask2former.inference.windowed import windowed_inference

ONNX_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def model():
    return build_tiny_model().eval()


def test_window_network_equals_the_model_window_prediction(model):
    frames = example_frames(3)
    with torch.no_grad():
        logits, masks, embeds = WindowNetwork(model)(frames)
        expected = model.predict_window(list(frames))
    assert masks.shape == expected.pred_masks.shape == (5, 3, 96 // 4, 128 // 4)
    torch.testing.assert_close(logits, expected.pred_logits)
    torch.testing.assert_close(masks, expected.pred_masks)
    torch.testing.assert_close(embeds, expected.pred_embeds)


def test_implementation_switch_is_restored(model):
    modules = [m for m in model.modules() if isinstance(m, mask2former_ops.MSDeformAttn)]
    assert modules and all(m.implementation == "auto" for m in modules)
    with deformable_attention_implementation(model, "pytorch"):
        assert all(m.implementation == "pytorch" for m in modules)
    assert all(m.implementation == "auto" for m in modules)


@pytest.mark.skipif(not mask2former_ops.is_compiled(), reason="needs mask2former_ops._C")
def test_torch_export_matches_and_takes_any_window_length(model):
    program = export_program(model, example_frames(3))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert "mask2former_ops.ms_deform_attn.default" in targets  # one node, not decomposed
    for num_frames in (3, 1, 5):
        frames = example_frames(num_frames, seed=num_frames)
        with torch.no_grad():
            expected = WindowNetwork(model)(frames)
            got = program.module()(frames)
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e)


@pytest.fixture(scope="module")
def onnx_export(tiny_onnx_export):
    """The tiny model (the ``model`` fixture's weights) exported to ONNX, and what the export
    showed."""
    return tiny_onnx_export


@pytest.fixture(scope="module")
def onnx_file(onnx_export):
    return onnx_export[0]


def test_onnx_export_shows_only_what_needs_action(onnx_export):
    """No "[torch.onnx] Run decompositions..." progress lines, no "Skipping constant folding"
    notices, no FutureWarning about PyTorch's internals (the old export showed all three)."""
    _, shown = onnx_export
    assert shown["text"].getvalue() == ""
    assert [r.getMessage() for r in shown["records"].records] == []
    assert [str(w.message) for w in shown["warnings"]] == []


def test_exporter_notices_keeps_errors_and_other_warnings():
    logger = logging.getLogger("onnxscript.optimizer._constant_folding")
    for verbose in (False, True):
        with exporter_output() as shown, exporter_notices(verbose=verbose):
            logger.warning("Skipping constant folding for op Split with multiple outputs.")
            logger.error("an exporter error")
            warnings.warn("deprecated internals", FutureWarning)
            warnings.warn("a traced value may be wrong", UserWarning)
        messages = [r.getMessage() for r in shown["records"].records]
        shown_warnings = [str(w.message) for w in shown["warnings"]]
        assert "an exporter error" in messages
        assert "a traced value may be wrong" in shown_warnings
        assert ("deprecated internals" in shown_warnings) == verbose
        assert ("Skipping constant folding" in " ".join(messages)) == verbose
    assert logging.getLogger("onnxscript").level == logging.NOTSET  # restored


def test_onnx_matches_pytorch_within_tolerance(model, onnx_file):
    predictor = OnnxWindowPredictor(onnx_file, size_divisibility=model.size_divisibility)
    for num_frames in (2, 4, 1):
        frames = example_frames(num_frames, seed=10 + num_frames)
        with torch.no_grad():
            expected = model.predict_window(list(frames))
        got = predictor(list(frames))
        assert got.padded_size == expected.padded_size and got.image_size == expected.image_size
        for name in ("pred_logits", "pred_masks", "pred_embeds"):
            diff = (getattr(got, name) - getattr(expected, name)).abs().max().item()
            assert diff < ONNX_TOLERANCE, f"{name} (T={num_frames}): max abs diff {diff}"


def test_windowed_inference_on_onnx_equals_pytorch(model, onnx_file):
    predictor = OnnxWindowPredictor(onnx_file, size_divisibility=model.size_divisibility)
    frames = list(example_frames(5, seed=3))  # windows of 2, 2 and 1 frames
    with torch.no_grad():
        expected = windowed_inference(model.predict_window, frames, 2, (HEIGHT, WIDTH), topk=4)
    got = windowed_inference(predictor, frames, 2, (HEIGHT, WIDTH), topk=4)
    assert got["pred_labels"] == expected["pred_labels"]
    assert got["pred_track_ids"] == expected["pred_track_ids"]
    torch.testing.assert_close(
        torch.tensor(got["pred_scores"]), torch.tensor(expected["pred_scores"]), atol=1e-4, rtol=0
    )
    for g, e in zip(got["pred_masks"], expected["pred_masks"]):
        # masks agree except where a logit sits within float noise of the threshold
        disagree = (g.to_tensor() != e.to_tensor()).float().mean().item()
        assert disagree < 1e-3


def test_onnx_predictor_rejects_frames_of_another_size(onnx_file):
    predictor = OnnxWindowPredictor(onnx_file)
    with pytest.raises(ValueError, match=f"exported for {HEIGHT}x{WIDTH} frames, got 64x64"):
        predictor(list(example_frames(2, height=64, width=64)))


def test_onnx_predictor_rejects_a_file_that_is_not_a_window_network(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["out"])],
        "other",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "other.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match=r"other\.onnx: not a video_mask2former window network"):
        OnnxWindowPredictor(str(path))


def test_onnx_predictor_names_a_file_that_is_not_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "weights.onnx"
    path.write_bytes(b"not an onnx file")
    with pytest.raises(ValueError, match=r"weights\.onnx: not a loadable ONNX model"):
        OnnxWindowPredictor(str(path))
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        OnnxWindowPredictor(str(tmp_path / "missing.onnx"))


def test_onnx_of_the_official_r50_network_on_the_parity_weights(tmp_path):
    """The paper's R50 network with the parity fixture's deterministic weights: onnxruntime
    within ONNX_TOLERANCE of PyTorch on the fixture's video."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from tests.conftest import FIXTURES_DIR
    from tests.parity_weights import deterministic_state_dict

    fixture = torch.load(
        os.path.join(FIXTURES_DIR, "parity", "r50_T3_96x128_seed2024.pt"), weights_only=True
    )
    model = build_video_maskformer("R50")
    model.load_state_dict(deterministic_state_dict(model))
    model.eval()
    frames = torch.stack([f.float() for f in fixture["video"]])  # (3, 3, 96, 128)
    path = str(tmp_path / "r50.onnx")
    export_onnx(model, frames, path)
    got = OnnxWindowPredictor(path)(list(frames))
    with torch.no_grad():
        expected = model.predict_window(list(frames))
    for name in ("pred_logits", "pred_masks", "pred_embeds"):
        diff = (getattr(got, name) - getattr(expected, name)).abs().max().item()
        assert diff < ONNX_TOLERANCE, f"{name}: max abs diff {diff}"
    # and PyTorch here is the official network: its logits are the fixture's
    torch.testing.assert_close(expected.pred_logits, fixture["pred_logits"], atol=1e-3, rtol=0)


def test_a_one_frame_example_exports_a_graph_for_any_window(model, tmp_path):
    """--frames 1: torch.export would make T a constant; the export traces two copies."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path = str(tmp_path / "t1.onnx")
    export_onnx(model, example_frames(1), path)
    predictor = OnnxWindowPredictor(path)
    for num_frames in (1, 3):
        frames = example_frames(num_frames, seed=20 + num_frames)
        with torch.no_grad():
            expected = model.predict_window(list(frames))
        diff = (predictor(list(frames)).pred_masks - expected.pred_masks).abs().max().item()
        assert diff < ONNX_TOLERANCE
    program = export_program(model, example_frames(1))
    with torch.no_grad():
        got = program.module()(example_frames(2, seed=5))
        expected = WindowNetwork(model)(example_frames(2, seed=5))
    torch.testing.assert_close(got[1], expected[1])
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # no temporary

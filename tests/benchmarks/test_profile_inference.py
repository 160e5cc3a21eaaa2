"""The profile of whole-video inference on the tiny model: the per-part table, the labels it adds
and removes, and the skipping of a precision that is slow here."""

import json

import pytest
import torch

import mask2former_ops
from benchmarks import flops, profile_inference
from benchmarks.profile_inference import CALL_LABEL, NETWORK_LABEL, part_table
from tests.modeling.tiny_video_model import build_tiny_model, random_video


def _parts(rows):
    return {row["part"].strip(): row for row in rows}


def test_part_table_derives_postprocessing_and_sums_to_the_total():
    ranges = {CALL_LABEL: 100.0, NETWORK_LABEL: 90.0, "preprocess": 5.0, "backbone": 40.0,
              "pixel_decoder": 30.0, "transformer_decoder": 15.0}  # fmt: skip
    parts = _parts(part_table(ranges, deform_ms=12.0))
    assert parts["postprocess"]["ms"] == pytest.approx(5.0)  # call - network - preprocess
    assert parts["other"]["ms"] == pytest.approx(5.0)  # the head's glue
    assert parts["total"]["ms"] == 100.0 and parts["backbone"]["share"] == pytest.approx(0.4)
    assert parts["deformable attention op (in pixel decoder)"]["ms"] == 12.0
    # a model that records its own post-processing range: that range is used
    own = _parts(part_table(dict(ranges, postprocess=3.0), deform_ms=None))
    assert own["postprocess"]["ms"] == 3.0 and own["other"]["ms"] == pytest.approx(7.0)
    assert own["deformable attention op (in pixel decoder)"]["share"] is None


def test_profile_of_the_tiny_model_splits_the_call_into_parts():
    model = build_tiny_model().eval()
    video = {"image": random_video(2, 32, 32), "height": 32, "width": 32}
    result = profile_inference.profile_once(model, video, torch.device("cpu"), "none")
    rows = result["parts"]
    parts = _parts(rows)
    total = parts["total"]["ms"]
    disjoint = [r["ms"] for r in rows if not r["part"].startswith(" ") and r["part"] != "total"]
    assert total > 0 and sum(disjoint) <= total * (1 + 1e-6)
    for name in ("preprocess", "backbone", "pixel_decoder", "transformer_decoder", "postprocess"):
        assert 0 < parts[name]["ms"] < total, name
    deform = parts["deformable attention op (in pixel decoder)"]["ms"]
    if mask2former_ops.is_compiled():
        assert 0 < deform <= parts["pixel_decoder"]["ms"]
    # the labels are removed after the run
    assert "forward" not in vars(model.backbone) and "predict" not in vars(model)


def _fake_peaks(bf16_tflops):
    return lambda device, amps: {"fp32": {"tflops": 0.4, "size": 256},
                                 "bf16": {"tflops": bf16_tflops, "size": 256}}  # fmt: skip


@pytest.mark.parametrize("force", [False, True])
def test_bf16_is_skipped_when_its_matmul_is_slow(monkeypatch, tmp_path, force):
    monkeypatch.setattr(
        profile_inference, "build_model", lambda *a, **k: (build_tiny_model().eval(), None)
    )
    monkeypatch.setattr(profile_inference, "measure_peaks", _fake_peaks(0.001))
    out = tmp_path / "prof.json"
    argv = ["--device", "cpu", "--frames", "2", "--height", "32", "--width", "32", "--amp",
            "none", "bf16", "--json", str(out)] + (["--force-bf16"] if force else [])  # fmt: skip
    profile_inference.main(argv)
    report = json.loads(out.read_text())
    assert [r["amp"] for r in report["results"]] == (["none", "bf16"] if force else ["none"])
    assert ("bf16" in report["skipped"]) is not force
    assert report["machine"]["torch_cpu_capability"]


def test_flops_count_the_deformable_attention_by_hand():
    # value (N=1, S, M=2, D=8), locations (N=1, Lq=3, M=2, L=4, P=5, 2)
    assert flops.deform_attn_flops((1, 30, 2, 8), (4, 2), (4,), (1, 3, 2, 4, 5, 2), None) == (
        flops.DEFORM_ATTN_FLOPS_PER_SAMPLE * 3 * 2 * 4 * 5 * 8
    )
    model = build_tiny_model().eval()
    video = [{"image": random_video(2, 32, 32)}]
    with torch.no_grad():
        counted = flops.count_flops(lambda: model(video))
    assert counted["total"] > counted["by_operator"].get("aten.convolution", 0) > 0
    if mask2former_ops.is_compiled():
        assert counted["deform_attn"] > 0

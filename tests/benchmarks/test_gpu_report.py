"""benchmarks/gpu_report.py pieces that run without a GPU: test counts, the report, stage
failures. (The GPU stages themselves run only on a GPU machine; the official code's patches are
tested in test_benchmark_vs_official.py.)"""

import json
import re

import pytest

from benchmarks import gpu_report
from benchmarks.gpu_report_format import markdown_table, write_report


def _cells(text: str) -> str:
    """``text`` with runs of spaces collapsed (tables pad their columns to one width)."""
    return re.sub(r" +", " ", text)


def test_junit_counts(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text(
        '<testsuites><testsuite tests="10" failures="1" errors="1" skipped="3" time="2.5">'
        "</testsuite></testsuites>"
    )
    assert gpu_report.junit_counts(str(path)) == {
        "passed": 5,
        "failed": 2,
        "skipped": 3,
        "seconds": 2.5,
    }
    assert gpu_report.junit_counts(str(tmp_path / "missing.xml")) == {}


def test_markdown_table_formats_numbers_and_missing_values():
    table = markdown_table([{"a": 1.23456, "b": None}], ["a", "b"], {"a": ".2f"})
    lines = _cells(table).splitlines()
    assert lines[0] == "| a | b |" and lines[2] == "| 1.23 | — |"
    assert re.fullmatch(r"\|-+\|-+\|", lines[1])


def test_report_lists_failed_stages_and_figures(tmp_path):
    stages = {
        "env": {"ok": True, "seconds": 1, "result": {"gpu": "NVIDIA H200", "torch": "2.11"}},
        "tests": {"ok": False, "seconds": 3, "error": "RuntimeError('pytest exit 1')"},
    }
    (tmp_path / "stages.json").write_text(json.dumps(stages))
    ops = {
        "copy_bandwidth_gb_per_s": {"cuda": 4000.0},
        "rows": [
            {
                "device": "cuda",
                "shapes": "paper",
                "dtype": "float32",
                "impl": "cuda",
                "pass": "fwd",
                "ms": 0.1,
                "speedup_vs_original": 2.0,
                "speedup_vs_pytorch": 30.0,
                "gb_per_s": 640.0,
                "fraction_of_copy_bandwidth": 0.16,
                "peak_mib": 20.0,
            }
        ],
    }
    (tmp_path / "ops.json").write_text(json.dumps(ops))
    summary = write_report(str(tmp_path))
    text = _cells((tmp_path / "gpu_report.md").read_text())
    assert summary["sections"] == ["ops"]
    assert "NVIDIA H200" in text and "| tests | FAILED |" in text and "pytest exit 1" in text
    assert "| paper | float32 | cuda | fwd | 0.100 | 2.00 | 30.0 | 640 | 16.0 | 20 |" in text
    assert json.loads((tmp_path / "gpu_report.json").read_text())["figures"]["ops"] == ops


def test_stages_fail_without_a_gpu_and_are_reported(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: this checks the no-GPU behaviour")
    code = gpu_report.main(["--out", str(tmp_path), "--stages", "env", "sanitizer", "report"])
    status = json.loads((tmp_path / "stages.json").read_text())
    assert code == 1 and status["env"]["ok"] and status["report"]["ok"]
    assert not status["sanitizer"]["ok"]


def test_report_has_the_kernel_self_check(tmp_path):
    (tmp_path / "stages.json").write_text(json.dumps({"kernels": {"ok": True, "seconds": 2}}))
    check = {
        "device": "cuda:0",
        "dtype": "bfloat16",
        "pass_": "backward",
        "layout": "vectorised",
        "result": "mismatch",
        "max_diff": 0.5,
        "relative_diff": 0.25,
        "tolerance": 0.03,
        "worst": "grad_value (D=512)",
        "seconds": 0.004,
    }
    (tmp_path / "kernels.json").write_text(json.dumps({"checks": [check], "paths": []}))
    summary = write_report(str(tmp_path))
    text = _cells((tmp_path / "gpu_report.md").read_text())
    assert summary["sections"] == ["kernels"]
    assert (
        "| cuda:0 | bfloat16 | backward | vectorised | mismatch | 0.5 | 0.25 | 0.03 "
        "| grad_value (D=512) | 4.0 |" in text
    )


def test_kernel_stage_fails_without_a_gpu(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: this checks the no-GPU behaviour")
    code = gpu_report.main(["--out", str(tmp_path), "--stages", "kernels"])
    status = json.loads((tmp_path / "stages.json").read_text())
    assert code == 1 and not status["kernels"]["ok"]

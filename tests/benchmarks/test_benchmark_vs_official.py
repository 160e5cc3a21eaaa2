"""The benchmark against the official code: source patching, parity, ratios against the float32
references, targets, skipped slow modes and the children's commands (no detectron2)."""

import os

import pytest

from benchmarks import benchmark_vs_official, official_source
from benchmarks.vs_official import report
from benchmarks.common import ROOT
from benchmarks.official_source import SourcePatch

FAKE_PATCHES = (
    SourcePatch(path="pkg/a.py", old="old_call(", new="new_call(", count=2, why="test"),
    SourcePatch(path="pkg/b.cu", old="x.type()", new="x.scalar_type()", count=1, why="test"),
)


def _fake_tree(root):
    os.makedirs(root / "pkg" / "__pycache__")
    (root / "pkg" / "a.py").write_text("old_call(1)\nold_call(2)\n")
    (root / "pkg" / "b.cu").write_text("f(x.type());\n")
    (root / "pkg" / "__pycache__" / "a.pyc").write_text("stale")
    (root / "pkg" / "op.so").write_text("stale build")
    return root


def test_prepare_official_source_patches_a_copy(tmp_path):
    src = _fake_tree(tmp_path / "src")
    dst = tmp_path / "dst"
    official_source.prepare_official_source(str(src), str(dst), FAKE_PATCHES)
    assert (dst / "pkg" / "a.py").read_text() == "new_call(1)\nnew_call(2)\n"
    assert (dst / "pkg" / "b.cu").read_text() == "f(x.scalar_type());\n"
    assert (src / "pkg" / "a.py").read_text() == "old_call(1)\nold_call(2)\n"  # source untouched
    assert not (dst / "pkg" / "__pycache__").exists() and not (dst / "pkg" / "op.so").exists()
    assert not official_source.is_prepared(str(src), str(dst))  # not the official patches
    # a prepared copy is replaced by a new call; any other non-empty folder is refused
    official_source.prepare_official_source(str(src), str(dst), FAKE_PATCHES)
    with pytest.raises(FileExistsError, match="not a prepared official copy"):
        official_source.prepare_official_source(str(src), str(src), FAKE_PATCHES)


def test_patch_with_an_unexpected_count_names_the_file(tmp_path):
    src = _fake_tree(tmp_path / "src")
    (src / "pkg" / "a.py").write_text("old_call(1)\n")
    with pytest.raises(ValueError, match=r"a\.py: expected 2 occurrence"):
        official_source.prepare_official_source(str(src), str(tmp_path / "dst"), FAKE_PATCHES)


def test_official_patches_apply_to_the_official_files(tmp_path):
    """Each patch names a file of the official tree and changes its text."""
    for patch in official_source.OFFICIAL_PATCHES:
        assert patch.old != patch.new and patch.count >= 1 and patch.why
        path = tmp_path / patch.path
        os.makedirs(path.parent, exist_ok=True)
        path.write_text(patch.old * patch.count)
        official_source.apply_patch(str(tmp_path), patch)
        assert path.read_text() == patch.new * patch.count


def _inference(scores, labels, areas, ms=10.0, mb=100.0):
    return {"scores": scores, "labels": labels, "mask_areas": areas, "ms_per_frame": ms,
            "peak_mb": mb}  # fmt: skip


def test_parity_compares_sorted_scores():
    ours = _inference([0.5, 0.3, 0.2], [1, 2, 3], [10, 20, 30])
    # the same top-k in another order (the official topk is unsorted), a tiny difference
    official = _inference([0.2, 0.5, 0.30001], [3, 1, 2], [30, 10, 20])
    check = report.parity(ours, official, atol=1e-4, strict=True)
    assert check["passed"] and check["labels_match"]
    assert check["max_abs_score_diff"] == pytest.approx(1e-5)
    assert check["max_rel_mask_area_diff"] == 0
    far = _inference([0.5, 0.3, 0.1], [1, 2, 4], [10, 20, 30])
    check = report.parity(ours, far, atol=1e-4, strict=True)
    assert check["passed"] is False and not check["labels_match"]
    assert report.parity(ours, far, atol=1e-4, strict=False)["passed"] is None
    assert report.parity(ours, {"error": "x"}, atol=1e-4, strict=True) is None


def _row(benchmark, mode, ours, official=None, backbone="R50"):
    row = {"benchmark": benchmark, "backbone": backbone, "mode": mode, "ours": ours}
    return dict(row, official=official) if official is not None else row


PEAKS = {"fp32": {"tflops": 0.5, "size": 2048}, "bf16": {"tflops": 2.0, "size": 2048}}


def test_rows_give_ratios_against_the_float32_references_and_report_failures():
    fp32 = _row("inference", "fp32", dict(_inference([0.5], [1], [10], ms=30.0, mb=300.0),
                                          flops_per_video=6e9),
                _inference([0.5], [1], [10], ms=60.0, mb=200.0))  # fmt: skip
    bf16 = _row("inference", "bf16", _inference([0.49], [2], [10], ms=15.0, mb=250.0))
    skipped = {"benchmark": "inference", "backbone": "R50", "mode": "compiled-bf16",
               "skipped": "bf16 matmul slow"}  # fmt: skip
    steps = [_row("training", "fp32", {"s_per_step": 2.0, "peak_mb": 1000.0},
                  {"error": "torch.OutOfMemoryError: CUDA out of memory."}),
             _row("training", "bf16", {"s_per_step": 0.8, "peak_mb": 900.0})]  # fmt: skip
    rows = [fp32, bf16, skipped, *steps]
    report.add_comparisons(rows, parity_atol=1e-4, frames=2, peaks=PEAKS)
    assert fp32["time_ratio"] == pytest.approx(0.5) and fp32["memory_ratio"] == pytest.approx(1.5)
    assert bf16["time_ratio"] == pytest.approx(0.25) and bf16["vs_ours_fp32"] == pytest.approx(0.5)
    # 6 GFLOP in 2 frames x 30 ms = 0.1 TFLOP/s; bf16 against the bf16 peak
    assert fp32["tflops"] == pytest.approx(0.1) and fp32["peak_tflops"] == 0.5
    assert bf16["tflops"] == pytest.approx(0.2) and bf16["peak_tflops"] == 2.0
    assert fp32["parity"]["passed"] and bf16["parity"]["passed"] is None
    assert bf16["parity"]["labels_agree"] == 0.0 and fp32["parity"]["labels_agree"] == 1.0
    assert steps[0]["time_ratio"] is None and steps[1]["vs_ours_fp32"] == pytest.approx(0.4)
    assert report.parity_summary(rows) is True
    table = report.format_table(rows, "cpu")
    assert "| 0.25x " in table and "| 1.50x " in table and "| 0.200 (10% of 2.00) " in table
    assert "official failed: torch.OutOfMemoryError" in table and "top-10 scores" in table
    assert "skipped: bf16 matmul slow" in table
    checked = {t["target"]: t for t in report.targets(rows)}
    best = checked["inference, best mode vs official fp32"]
    assert best["mode"] == "bf16" and best["value"] == pytest.approx(0.25) and best["met"]
    assert checked["inference, fp32 vs official fp32"]["met"] is True  # 0.5 <= 0.5
    assert checked["training step, bf16 vs ours fp32"]["value"] == pytest.approx(0.4)
    assert "0.250x (mode bf16; target <= 0.25x): met" in report.format_targets(report.targets(rows))


def test_targets_not_met_and_not_measured():
    rows = [_row("inference", "fp32", _inference([0.5], [1], [10], ms=51.0),
                 _inference([0.5], [1], [10], ms=100.0))]  # fmt: skip
    report.add_comparisons(rows, parity_atol=1e-4, frames=2, peaks=PEAKS)
    checked = {t["target"]: t["met"] for t in report.targets(rows)}
    assert checked == {"inference, best mode vs official fp32": False,
                       "inference, fp32 vs official fp32": False,
                       "training step, bf16 vs ours fp32": None}  # fmt: skip


def test_label_agreement_counts_common_labels():
    assert report.label_agreement([1, 2, 2, 3], [2, 1, 3, 3]) == 0.75
    assert report.label_agreement([], [1]) is None


def test_slow_modes_are_planned_as_skipped_and_never_run(monkeypatch, tmp_path):
    args = benchmark_vs_official.parse_args(
        ["--device", "cpu", "--official-src", "x", "--infer-modes", "none", "bf16", "compiled",
         "--train-backbones", "R50", "--train-amp", "none", "bf16"]
    )  # fmt: skip
    slow = {"fp32": {"tflops": 0.4, "size": 2048}, "bf16": {"tflops": 0.001, "size": 256}}
    rows = benchmark_vs_official.plan_settings(args, slow)
    assert [(r["benchmark"], r["mode"], "skipped" in r) for r in rows] == [
        ("inference", "fp32", False), ("inference", "bf16", True),
        ("inference", "compiled", False), ("training", "fp32", False),
        ("training", "bf16", True),
    ]  # fmt: skip
    calls = []
    monkeypatch.setattr(
        benchmark_vs_official,
        "run_child",
        lambda args, stage, impl, backbone, mode, *rest: calls.append((stage, impl, mode))
        or {"ms_per_frame": 1.0, "peak_mb": 1.0},
    )
    official = {"root": "/copy", "op": "stub", "op_path": None, "error": None}
    benchmark_vs_official.run_benchmarks(args, official, rows, str(tmp_path))
    # the official code runs in float32 only, never compiled; nothing runs in bf16
    assert calls == [("weights", "ours", "fp32"), ("inference", "ours", "fp32"),
                     ("inference", "official", "fp32"), ("inference", "ours", "compiled"),
                     ("training", "ours", "fp32"), ("training", "official", "fp32")]  # fmt: skip
    forced = benchmark_vs_official.parse_args(["--impls", "ours", "--force-bf16"])
    assert not any("skipped" in r for r in benchmark_vs_official.plan_settings(forced, slow))


def test_error_line_is_the_childs_last_line():
    error = benchmark_vs_official.ChildFailed("label: Traceback\n  File x\nValueError: bad", 1)
    assert benchmark_vs_official._error_line(error) == "ValueError: bad"
    multi_line = benchmark_vs_official.ChildFailed(
        "label: Traceback\n  File x\n    raise ModuleNotFoundError(info)\n"
        "ModuleNotFoundError: \n\nPlease compile:\n\t`sh make.sh`\n",
        1,
    )
    assert (
        benchmark_vs_official._error_line(multi_line)
        == "ModuleNotFoundError: Please compile: `sh make.sh`"
    )
    killed = benchmark_vs_official.ChildFailed("label: ", -9)
    assert benchmark_vs_official._error_line(killed) == "killed by signal 9 label:"


OFFICIAL_SRC = os.path.join(ROOT, ".gpu_carry", "Mask2Former")


@pytest.mark.skipif(not os.path.isdir(OFFICIAL_SRC), reason="no official Mask2Former checkout")
def test_official_patches_apply_to_the_official_checkout(tmp_path):
    dst = tmp_path / "official"
    official_source.prepare_official_source(OFFICIAL_SRC, str(dst))
    assert official_source.is_prepared(OFFICIAL_SRC, str(dst))
    for patch in official_source.OFFICIAL_PATCHES:
        assert patch.new in (dst / patch.path).read_text()


def test_official_children_import_the_prepared_copy_through_their_environment(monkeypatch):
    """The official code and its built op come first on the child's PYTHONPATH (no sys.path
    edit); our own children get only the repository."""
    calls = []
    monkeypatch.setattr(
        benchmark_vs_official,
        "run_json_child",
        lambda command, **kwargs: calls.append((command, kwargs)) or {"ms_per_frame": 1.0},
    )
    args = benchmark_vs_official.parse_args(["--impls", "ours", "--device", "cpu"])
    official = {"root": "/copy", "op": "build", "op_path": "/copy/ops", "error": None}
    for impl in ("official", "ours"):
        benchmark_vs_official.run_child(args, "inference", impl, "R50", "fp32", "w.pt", official)
    (command, kwargs), (_, ours) = calls
    assert command[1:3] == ["-m", "benchmarks.benchmark_vs_official"]
    assert command[command.index("--mode") + 1] == "fp32" and "--flops" in command
    assert kwargs["extra_paths"] == ["/copy", "/copy/ops"] and ours["extra_paths"] == []


def test_the_childs_module_imports_neither_implementation():
    """A child running the official code imports benchmarks.benchmark_vs_official first: had
    that imported video_mask2former, its detectron2 registration would clash with the official
    one's ('D2SwinTransformer' already registered) before the official model is built."""
    import subprocess
    import sys

    from benchmarks.common import child_env

    code = (
        "import sys, benchmarks.benchmark_vs_official; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('video_mask2former', 'mask2former', 'mask2former_video', 'detectron2')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_child_environment_puts_the_repository_and_extra_paths_first(monkeypatch):
    from benchmarks.common import child_env

    monkeypatch.setenv("PYTHONPATH", "/user/path")
    paths = child_env(["/copy"])["PYTHONPATH"].split(os.pathsep)
    assert paths == [ROOT, "/copy", "/user/path"]


def test_defaults_by_device_and_the_same_precision_note():
    gpu = benchmark_vs_official.parse_args(["--impls", "ours"])
    assert gpu.infer_modes == ["fp32", "bf16"] and gpu.official_amp == ["none", "fp16", "bf16"]
    cpu = benchmark_vs_official.parse_args(["--impls", "ours", "--device", "cpu"])
    assert cpu.infer_modes == ["fp32", "bf16", "compiled", "fp32-no-cache"]
    assert cpu.official_amp == ["none"]
    both = benchmark_vs_official.parse_args(["--device", "cpu", "--official-src", "src"])
    runs_official = [benchmark_vs_official._runs_official(both, m) for m in both.infer_modes]
    assert runs_official == [True, False, False, False]  # our options are not the official's
    old_flag = benchmark_vs_official.parse_args(["--impls", "ours", "--infer-amp", "none", "bf16"])
    assert old_flag.infer_modes == ["fp32", "bf16"]
    rows = [_row("inference", "fp32", _inference([0.5], [1], [10], ms=30.0),
                 _inference([0.5], [1], [10], ms=60.0)),
            _row("inference", "bf16", _inference([0.5], [1], [10], ms=20.0),
                 _inference([0.5], [1], [10], ms=40.0))]  # fmt: skip
    report.add_comparisons(rows, parity_atol=1e-4, frames=2, peaks=PEAKS)
    assert rows[1]["time_ratio"] == pytest.approx(1 / 3)  # against the official fp32
    assert "vs official bf16: 0.50x" in report.format_table(rows, "cuda")

"""The benchmark against the official code: source patching, parity and ratios (no detectron2)."""

import os

import pytest

from benchmarks import benchmark_vs_official, official_source
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
    check = benchmark_vs_official.parity(ours, official, atol=1e-4, strict=True)
    assert check["passed"] and check["labels_match"]
    assert check["max_abs_score_diff"] == pytest.approx(1e-5)
    assert check["max_rel_mask_area_diff"] == 0
    far = _inference([0.5, 0.3, 0.1], [1, 2, 4], [10, 20, 30])
    check = benchmark_vs_official.parity(ours, far, atol=1e-4, strict=True)
    assert check["passed"] is False and not check["labels_match"]
    assert benchmark_vs_official.parity(ours, far, atol=1e-4, strict=False)["passed"] is None
    assert benchmark_vs_official.parity(ours, {"error": "x"}, atol=1e-4, strict=True) is None


def test_rows_give_ratios_and_report_failures():
    args = benchmark_vs_official.parse_args(["--impls", "ours", "--device", "cpu"])
    ok = {"benchmark": "inference", "backbone": "R50", "amp": "none",
          "ours": _inference([0.5], [1], [10], ms=30.0, mb=300.0),
          "official": _inference([0.5], [1], [10], ms=60.0, mb=200.0)}  # fmt: skip
    failed = {"benchmark": "training", "backbone": "swin_tiny", "amp": "fp16",
              "ours": {"s_per_step": 0.5, "peak_mb": 1000.0},
              "official": {"error": "torch.OutOfMemoryError: CUDA out of memory."}}  # fmt: skip
    for row in (ok, failed):
        benchmark_vs_official._add_comparison(args, row)
    assert ok["time_ratio"] == pytest.approx(0.5) and ok["memory_ratio"] == pytest.approx(1.5)
    assert failed["time_ratio"] is None and failed["memory_ratio"] is None
    assert benchmark_vs_official.parity_summary([ok, failed]) is True
    table = benchmark_vs_official.format_table([ok, failed], "cpu")
    assert "| 0.50 " in table and "| 1.50 " in table
    assert "official failed: torch.OutOfMemoryError" in table and "top-10 scores" in table


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
        benchmark_vs_official.run_child(args, "inference", impl, "R50", "none", "w.pt", official)
    (command, kwargs), (_, ours) = calls
    assert command[1:3] == ["-m", "benchmarks.benchmark_vs_official"]
    assert kwargs["extra_paths"] == ["/copy", "/copy/ops"] and ours["extra_paths"] == []


def test_child_environment_puts_the_repository_and_extra_paths_first(monkeypatch):
    from benchmarks.common import child_env

    monkeypatch.setenv("PYTHONPATH", "/user/path")
    paths = child_env(["/copy"])["PYTHONPATH"].split(os.pathsep)
    assert paths == [ROOT, "/copy", "/user/path"]

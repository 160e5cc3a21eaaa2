"""Comparisons and the printed report of the benchmark against the official code.

Every ratio is against a float32 reference measured in the same run: this project's time in each
mode over the official float32 time ("vs official fp32"), over this project's float32 time ("vs ours
fp32"); the top-10 of every inference mode against the official float32 top-10 (parity). Rows are
dicts: ``benchmark`` ("inference" / "training"), ``backbone``, ``mode``, ``ours`` and ``official``
(a child's result, or ``{"error": ...}``; ``official`` only where it ran) or ``skipped`` (why).
"""

from collections import Counter
from typing import Dict, List, Optional

from tabulate import tabulate

from benchmarks.modes import amp_of

# The targets: (name, the row figure, at most).
TARGETS = (
    ("inference, best mode vs official fp32", "best_vs_official", 0.25),
    ("inference, fp32 vs official fp32", "fp32_vs_official", 0.5),
    ("training step, bf16 vs ours fp32", "training_bf16_vs_fp32", 0.5),
)
# Characters of an error or skip reason kept in the printed table.
TABLE_ERROR_CHARS = 60
# The float32 mode: the reference of every ratio.
REFERENCE_MODE = "fp32"


def ratio(ours: dict, official: dict, key: str) -> Optional[float]:
    """``ours[key] / official[key]``, or None when either is missing (a failed setting)."""
    if not ours or not official or key not in ours or key not in official or not official[key]:
        return None
    return ours[key] / official[key]


def label_agreement(ours_labels: List[int], official_labels: List[int]) -> Optional[float]:
    """Share of the top-k labels in common (as multisets): 1.0 when both top-k hold the same
    labels, whatever their order; None when either is empty."""
    if not ours_labels or not official_labels:
        return None
    common = sum((Counter(ours_labels) & Counter(official_labels)).values())
    return common / max(len(ours_labels), len(official_labels))


def parity(ours: dict, official: dict, atol: float, strict: bool) -> Optional[dict]:
    """Compare the top-k of ours and the official on the same video and weights.

    The top-k are compared sorted by score: the k largest scores are a continuous function of
    the logits, unlike their order among near-ties (the official ``topk`` is also unsorted).

    Args:
        ours, official (dict): inference results with ``scores``, ``labels``, ``mask_areas``.
        atol (float): allowed absolute difference of the sorted scores.
        strict (bool): whether ``passed`` is judged (fp32) or left None (reduced precision).

    Returns:
        dict or None (a side failed): ``max_abs_score_diff``, ``labels_match`` (same label
        multiset), ``labels_agree`` (:func:`label_agreement`), ``max_rel_mask_area_diff``
        (entries of equal rank and label), ``passed``.
    """
    if not ours or not official or "scores" not in ours or "scores" not in official:
        return None
    ranked = [sorted(zip(r["scores"], r["labels"], r["mask_areas"]), reverse=True)
              for r in (ours, official)]  # fmt: skip
    if len(ranked[0]) != len(ranked[1]) or not ranked[0]:
        return {"passed": False, "reason": f"top-k sizes {len(ranked[0])} and {len(ranked[1])}"}
    diff = max(abs(a[0] - b[0]) for a, b in zip(*ranked))
    area_diffs = [abs(a[2] - b[2]) / max(a[2], b[2], 1) for a, b in zip(*ranked) if a[1] == b[1]]
    return {
        "max_abs_score_diff": diff,
        "labels_match": Counter(ours["labels"]) == Counter(official["labels"]),
        "labels_agree": label_agreement(ours["labels"], official["labels"]),
        "max_rel_mask_area_diff": max(area_diffs) if area_diffs else None,
        "passed": diff <= atol if strict else None,
    }


def _time_key(row: dict) -> str:
    return "ms_per_frame" if row["benchmark"] == "inference" else "s_per_step"


def _references(rows: List[dict]) -> Dict[tuple, dict]:
    """(benchmark, backbone) -> its fp32 row."""
    return {(r["benchmark"], r["backbone"]): r for r in rows if r["mode"] == REFERENCE_MODE}


def achieved_tflops(ours: dict, flops: Optional[int], frames: int) -> Optional[float]:
    """TFLOP/s of an inference result given the FLOPs of one video of ``frames`` frames."""
    if not flops or not ours or "ms_per_frame" not in ours:
        return None
    return flops / (ours["ms_per_frame"] * frames / 1e3) / 1e12


def add_comparisons(rows: List[dict], *, parity_atol: float, frames: int, peaks: dict) -> None:
    """Add to each row its ratios, parity and achieved TFLOP/s (in place).

    Args:
        rows: see the module docstring.
        parity_atol: allowed top-10 score difference in fp32.
        frames: T of the inference video (for TFLOP/s).
        peaks: :func:`benchmarks.hardware.measure_peaks` (``{"fp32": {"tflops": ...}, ...}``).
    """
    references = _references(rows)
    for row in rows:
        reference = references.get((row["benchmark"], row["backbone"]), {})
        ours, key = row.get("ours"), _time_key(row)
        official_fp32 = reference.get("official")
        row["time_ratio"] = ratio(ours, official_fp32, key)
        row["vs_ours_fp32"] = ratio(ours, reference.get("ours"), key)
        row["memory_ratio"] = ratio(ours, official_fp32, "peak_mb")
        if row["benchmark"] == "inference":
            strict = row["mode"] == REFERENCE_MODE
            row["parity"] = parity(ours, official_fp32, parity_atol, strict=strict)
            flops = (reference.get("ours") or {}).get("flops_per_video")
            row["tflops"] = achieved_tflops(ours, flops, frames)
            peak = peaks.get("fp32" if amp_of(row["mode"]) == "none" else amp_of(row["mode"]))
            row["peak_tflops"] = peak["tflops"] if peak else None
        elif ours and ours.get("losses") and (row.get("official") or {}).get("losses"):
            # Informational: same weights, batch and seed, so the first step's summed losses are
            # close (the losses sample points at random: equal only if both draw alike).
            first, official_first = ours["losses"][0], row["official"]["losses"][0]
            row["first_loss_rel_diff"] = abs(first - official_first) / max(
                abs(official_first), 1e-12
            )


def targets(rows: List[dict]) -> List[dict]:
    """The issue's targets from compared rows: ``target``, ``value`` (None: not measured),
    ``at_most``, ``met`` (None: not measured), ``mode`` (the mode the value is of)."""
    inference = [r for r in rows if r["benchmark"] == "inference" and r.get("time_ratio")]
    best = min(inference, key=lambda r: r["time_ratio"], default=None)
    fp32 = next((r for r in inference if r["mode"] == REFERENCE_MODE), None)
    bf16_steps = [r for r in rows if r["benchmark"] == "training" and r["mode"] == "bf16"]
    training = next((r for r in bf16_steps if r.get("vs_ours_fp32")), None)
    values = {
        "best_vs_official": (best and best["time_ratio"], best and best["mode"]),
        "fp32_vs_official": (fp32 and fp32["time_ratio"], REFERENCE_MODE),
        "training_bf16_vs_fp32": (training and training["vs_ours_fp32"], "bf16"),
    }
    result = []
    for name, key, at_most in TARGETS:
        value, mode = values[key]
        met = None if value is None else value <= at_most
        result.append({"target": name, "mode": mode, "value": value, "at_most": at_most,
                       "met": met})  # fmt: skip
    return result


def parity_summary(rows: List[dict]) -> Optional[bool]:
    """Whether every judged (fp32) parity check passed; None if none was judged."""
    verdicts = [
        row["parity"]["passed"]
        for row in rows
        if row.get("parity") and row["parity"].get("passed") is not None
    ]
    return all(verdicts) if verdicts else None


def _notes(row: dict, device: str) -> str:
    if row.get("skipped"):
        return f"skipped: {row['skipped']}"
    notes = []
    for impl in ("ours", "official"):
        result = row.get(impl) or {}
        if "error" in result:
            notes.append(f"{impl} failed: {result['error'][:TABLE_ERROR_CHARS]}")
        if device == "cuda" and result.get("official_deform_attn_pytorch_calls"):
            notes.append("official fell back to its PyTorch deform-attn")
        if result.get("official_oom_cpu_retries"):
            notes.append("official re-ran on the CPU after OOM")
        if device == "cuda" and result.get("ours_cuda_kernels") is False:
            notes.append("ours without CUDA kernels")
        if impl == "ours" and result.get("first_call_s") and "compiled" in row["mode"]:
            notes.append(f"first call (compilation) {result['first_call_s']:.0f} s")
    same = ratio(row.get("ours"), row.get("official"), _time_key(row))
    if same is not None and row["mode"] != REFERENCE_MODE:
        notes.append(f"vs official {row['mode']}: {same:.2f}x")
    if row.get("first_loss_rel_diff") is not None:
        notes.append(f"first-step loss rel. diff {row['first_loss_rel_diff']:.1e}")
    check = row.get("parity")
    if check and "max_abs_score_diff" in check:
        verdict = {True: "ok", False: "MISMATCH", None: "info"}[check["passed"]]
        notes.append(f"top-10 scores max|diff| {check['max_abs_score_diff']:.1e} {verdict}")
    elif check:
        notes.append(f"parity failed: {check['reason']}")
    return "; ".join(notes)


def _number(result: Optional[dict], key: str, digits: int) -> str:
    if not result:
        return "-"
    return f"{result[key]:.{digits}f}" if key in result else "failed" if "error" in result else "-"


def _fraction(value: Optional[float], digits: int = 2, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def _tflops_cell(row: dict) -> str:
    if row.get("tflops") is None:
        return "-"
    peak = row.get("peak_tflops")
    share = f" ({100 * row['tflops'] / peak:.0f}% of {peak:.2f})" if peak else ""
    return f"{row['tflops']:.3f}{share}"


def format_table(rows: List[dict], device: str) -> str:
    """The rows as a GitHub Markdown table, ready for README: time per frame (inference) or per
    step (training), the ratios against the fp32 references (below 1: faster / smaller), peak
    memory, achieved TFLOP/s against the matmul peak of the mode's dtype, top-10 label agreement
    with the official fp32 result, notes."""
    header = ["benchmark", "backbone", "mode", "ours", "official", "vs official fp32",
              "vs ours fp32", "ours peak MB", "official peak MB", "memory vs official fp32",
              "TFLOP/s (% of matmul peak)", "top-10 labels = official", "notes"]  # fmt: skip
    body = []
    for row in rows:
        ours, official = row.get("ours"), row.get("official")
        key, digits, unit = (("ms_per_frame", 1, "ms/frame") if row["benchmark"] == "inference"
                             else ("s_per_step", 3, "s/step"))  # fmt: skip
        agree = (row.get("parity") or {}).get("labels_agree")
        body.append([
            f"{row['benchmark']} ({unit})", row["backbone"], row["mode"],
            _number(ours, key, digits), _number(official, key, digits),
            _fraction(row.get("time_ratio"), suffix="x"),
            _fraction(row.get("vs_ours_fp32"), suffix="x"),
            _number(ours, "peak_mb", 0), _number(official, "peak_mb", 0),
            _fraction(row.get("memory_ratio"), suffix="x"), _tflops_cell(row),
            _fraction(None if agree is None else 100 * agree, 0, "%"),
            _notes(row, device),
        ])  # fmt: skip
    return tabulate(body, headers=header, tablefmt="github", disable_numparse=True)


def format_targets(checked: List[dict]) -> str:
    """The targets as lines: ``- name: 0.31x (mode bf16; target <= 0.25x): NOT MET``."""
    lines = []
    for target in checked:
        verdict = {True: "met", False: "NOT MET", None: "not measured"}[target["met"]]
        value = "-" if target["value"] is None else f"{target['value']:.3f}x"
        lines.append(f"- {target['target']}: {value} (mode {target['mode'] or '-'}; target <= "
                     f"{target['at_most']:g}x): {verdict}")  # fmt: skip
    return "\n".join(lines)

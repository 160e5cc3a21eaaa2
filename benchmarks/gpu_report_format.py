"""The Markdown and JSON report of :mod:`benchmarks.gpu_report`, from what its stages wrote.

Each stage's figures are read from ``OUT/<stage>.json`` (written by the benchmark it ran) and its
status from ``OUT/stages.json``; a stage that did not run or failed is listed with its error, so
the report always says what is missing.
"""

import json
import os
from typing import Dict, List, Optional, Sequence

from benchmarks.common import table


def markdown_table(rows: Sequence[Dict], columns: Sequence[str], formats: Dict[str, str]) -> str:
    """A Markdown table of ``rows`` (dicts) over ``columns``; ``formats`` maps a column to a
    format spec for numbers (default ``g``); None prints as '—'."""
    body = [[row.get(column) for column in columns] for row in rows]
    return table(body, headers=list(columns), floatfmt=[formats.get(c, "g") for c in columns])


def _load(out: str, name: str) -> Optional[Dict]:
    path = os.path.join(out, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _ops_section(ops: Dict) -> List[str]:
    lines = [
        "## Deformable attention (`benchmarks/benchmark_ms_deform_attn.py --device cuda`)",
        "",
        "Copy bandwidth (device to device, read + write): "
        + ", ".join(f"{d}: {v:.0f} GB/s" for d, v in ops["copy_bandwidth_gb_per_s"].items()),
        "",
    ]
    rows = []
    for row in ops["rows"]:
        if row["device"] == "cuda":
            fraction = row.get("fraction_of_copy_bandwidth")
            rows.append(
                dict(row, **{"% of copy": 100 * fraction if fraction is not None else None})
            )
    lines.append(
        markdown_table(
            rows,
            [
                "shapes",
                "dtype",
                "impl",
                "pass",
                "ms",
                "speedup_vs_original",
                "speedup_vs_pytorch",
                "gb_per_s",
                "% of copy",
                "peak_mib",
            ],
            {
                "ms": ".3f",
                "speedup_vs_original": ".2f",
                "speedup_vs_pytorch": ".1f",
                "gb_per_s": ".0f",
                "% of copy": ".1f",
                "peak_mib": ".0f",
            },
        )
    )
    return lines


def _kernels_section(kernels: Dict) -> List[str]:
    """The first-use check of every CUDA layout, dtype and pass (``mask2former_ops``)."""
    rows = [dict(c, ms=c["seconds"] * 1e3) for c in kernels["checks"]]
    return [
        "## Kernel self-check (`mask2former_ops.check_kernels('cuda')`)",
        "",
        markdown_table(
            rows,
            [
                "device",
                "dtype",
                "pass_",
                "layout",
                "result",
                "max_diff",
                "relative_diff",
                "tolerance",
                "worst",
                "ms",
            ],
            {"max_diff": ".3g", "relative_diff": ".3g", "tolerance": "g", "ms": ".1f"},
        ),
        "",
    ]


def _profile_section(profile: Dict) -> List[str]:
    lines = [
        f"## Profile (`benchmarks/profile_inference.py`, {profile['backbone']}, "
        f"T={profile['frames']}, {profile['size'][0]}x{profile['size'][1]})",
        "",
    ]
    for result in profile["results"]:
        lines += [
            f"amp={result['amp']}: {result['wall_ms']:.0f} ms wall "
            f"({result['wall_ms'] / profile['frames']:.1f} ms/frame); deformable attention "
            f"{100 * result['deformable_attention_share']:.1f}% of device time",
            "",
            markdown_table(
                result["top"][:12],
                ["name", "calls", "self_ms", "share"],
                {"self_ms": ".2f", "share": ".3f"},
            ),
            "",
        ]
    return lines


def _rows_section(title: str, figures: Dict) -> List[str]:
    """A generic table of a benchmark's ``rows`` (list of flat dicts)."""
    rows = figures.get("rows") if isinstance(figures, dict) else figures
    if not rows:
        return [f"## {title}", "", "```", json.dumps(figures, indent=1)[:4000], "```", ""]
    columns = [k for k in rows[0] if not isinstance(rows[0][k], (dict, list))]
    floats = {c: ".3g" for c in columns}
    return [f"## {title}", "", markdown_table(rows, columns, floats), ""]


def write_report(out: str) -> Dict:
    """Write ``OUT/gpu_report.md`` and ``OUT/gpu_report.json``; return a summary."""
    stages = _load(out, "stages") or {}
    env = (stages.get("env") or {}).get("result") or {}
    lines = ["# GPU report", ""]
    if env:
        lines += [
            f"GPU: {env.get('gpu')} (compute capability {env.get('capability')}, "
            f"{env.get('gpu_memory_gib') or 0:.0f} GiB); driver: {env.get('nvidia_smi')}; "
            f"torch {env.get('torch')} (CUDA {env.get('torch_cuda')}, cuDNN {env.get('cudnn')}); "
            f"Python {env.get('python')}; nvcc: {env.get('nvcc')}; {env.get('cpu_count')} CPUs.",
            "",
        ]
    stage_rows = []
    for name, status in stages.items():
        detail = status.get("error") or json.dumps(status.get("result"), default=str)
        detail = detail.replace("|", "\\|")[:300] if name not in ("ops", "e2e", "long") else ""
        stage_rows.append(
            {
                "stage": name,
                "status": "ok" if status.get("ok") else "FAILED",
                "seconds": status.get("seconds"),
                "result / error": detail,
            }
        )
    columns = ["stage", "status", "seconds", "result / error"]
    lines += ["## Stages", "", markdown_table(stage_rows, columns, {}), ""]
    figures = {}
    for name, title in (
        ("kernels", None),
        ("ops", None),
        ("e2e", "This project against the official code"),
        ("long", "Long videos, windowed inference"),
        ("profile", None),
    ):
        data = _load(out, name)
        if data is None:
            continue
        figures[name] = data
        if name == "kernels":
            lines += _kernels_section(data)
        elif name == "ops":
            lines += _ops_section(data) + [""]
        elif name == "profile":
            lines += _profile_section(data)
        else:
            lines += _rows_section(title, data)
    with open(os.path.join(out, "gpu_report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out, "gpu_report.json"), "w") as f:
        json.dump({"env": env, "stages": stages, "figures": figures}, f, indent=1, default=str)
    return {"markdown": os.path.join(out, "gpu_report.md"), "sections": sorted(figures)}

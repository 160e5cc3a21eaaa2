#!/usr/bin/env python
"""One command for a GPU machine: build, test, benchmark, and write a report of the figures.

Run from the repository root on a machine with an NVIDIA GPU and a CUDA-enabled torch; it needs
no network (the dependencies this project and detectron2 need beyond torch can come as wheels):

    python -m benchmarks.gpu_report --out gpu_report \\
        --wheels WHEELS_DIR --detectron2-src DETECTRON2_CHECKOUT --official-src MASK2FORMER_CHECKOUT

Stages (``--stages``, default all, in this order); each runs in its own process with its own time
limit, its log goes to ``OUT/logs/<stage>.log``, and a failed stage is recorded and the next runs:

- ``env``: GPU, driver, CUDA, torch and Python versions.
- ``build``: installs the wheels into ``WORK/site``; builds, in parallel, ``mask2former_ops._C``
  in place for the GPU present (``TORCH_CUDA_ARCH_LIST`` from its compute capability, e.g. 9.0 on
  Hopper), the official Mask2Former deformable-attention op (a copy in ``WORK`` with only the
  changes current PyTorch needs, ``benchmarks/official_source.py``) and detectron2
  (a copy in ``WORK``, its CPU ops: the models use none of its CUDA ops).
- ``kernels``: the first-use check of ``mask2former_ops`` (``mask2former_ops.check_kernels``) on
  every CUDA layout (vectorised, scalar), dtype and pass, against the PyTorch path; prints
  ``mask2former_ops.kernel_status()`` and writes it to ``OUT/kernels.json``.
- ``tests``: the op's tests (CUDA cases included) and the model tests, on the GPU.
- ``sanitizer``: the large-case and vectorised-kernel tests under ``compute-sanitizer`` (memcheck).
- ``ops``: ``benchmarks/benchmark_ms_deform_attn.py`` on CUDA against the original kernel.
- ``e2e``: ``benchmarks/benchmark_vs_official.py``, this project against the official code.
- ``long``: ``benchmarks/benchmark_inference.py`` on CUDA, windowed inference up to 3,000
  frames.
- ``profile``: ``benchmarks/profile_inference.py`` (``torch.profiler`` over whole-video
  inference), the operators that take the time.
- ``report``: ``OUT/gpu_report.md`` and ``OUT/gpu_report.json`` from what the stages wrote
  (:mod:`benchmarks.gpu_report_format`).

``WORK`` (``--work``, default ``.gpu_build/``) keeps the builds; a second run reuses them.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

from benchmarks.common import ROOT, child_env
from benchmarks.gpu_report_format import write_report
from benchmarks.official_source import OFFICIAL_OPS_DIR, is_prepared, prepare_official_source

STAGES = (
    "env",
    "build",
    "kernels",
    "tests",
    "sanitizer",
    "ops",
    "e2e",
    "long",
    "profile",
    "report",
)
# Wall-clock limit of each stage, seconds.
STAGE_TIMEOUTS = {
    "env": 60,
    "build": 600,
    "kernels": 120,
    "tests": 600,
    "sanitizer": 600,
    "ops": 600,
    "e2e": 900,
    "long": 900,
    "profile": 300,
    "report": 60,
}


def stage_timeout(args: argparse.Namespace, stage: str) -> float:
    """A stage's time limit: its own, cut to what is left of ``--deadline-seconds``."""
    left = args.deadline_seconds - (time.perf_counter() - args.started)
    return max(10.0, min(STAGE_TIMEOUTS[stage], left))


def log_path(out: str, stage: str) -> str:
    return os.path.join(out, "logs", f"{stage}.log")


def stage_env_vars(args: argparse.Namespace) -> Dict[str, str]:
    """The environment of the stages' children: the repository, the installed wheels and
    detectron2 first on PYTHONPATH (:func:`benchmarks.common.child_env`), unbuffered output."""
    paths = [os.path.join(args.work, "site")]
    if args.detectron2_src:
        paths.append(os.path.join(args.work, "detectron2"))
    return dict(
        child_env(paths),
        PYTHONUNBUFFERED="1",
        MAX_JOBS=os.environ.get("MAX_JOBS", str(os.cpu_count() or 4)),
    )


def run_logged(command: List[str], log, env: Dict[str, str], timeout: float, cwd: str = ROOT):
    """Run ``command`` with its output appended to ``log``; return its exit code (124: timeout)."""
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
        )
        return done.returncode
    except subprocess.TimeoutExpired:
        log.write(f"\n[gpu_report] timed out after {timeout:.0f} s\n")
        return 124


def cuda_arch_list() -> str:
    """TORCH_CUDA_ARCH_LIST for the visible GPU (e.g. '9.0' on an H100 / H200)."""
    import torch

    major, minor = torch.cuda.get_device_capability()
    return f"{major}.{minor}"


def stage_env(args, log) -> Dict:
    import torch

    facts = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "capability": (
            ".".join(map(str, torch.cuda.get_device_capability()))
            if torch.cuda.is_available()
            else None
        ),
        "gpu_memory_gib": (
            torch.cuda.get_device_properties(0).total_memory / 2**30
            if torch.cuda.is_available()
            else None
        ),
        "cpu_count": os.cpu_count(),
    }
    for name, command in (
        (
            "nvidia_smi",
            [
                "nvidia-smi",
                "--query-gpu=name,driver_version,clocks.max.sm,power.limit",
                "--format=csv,noheader",
            ],
        ),
        ("nvcc", ["nvcc", "--version"]),
    ):
        try:
            output = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
            facts[name] = output.strip().splitlines()[-1] if output.strip() else None
        except (OSError, subprocess.TimeoutExpired) as error:
            facts[name] = f"unavailable: {error}"
    log.write(json.dumps(facts, indent=1) + "\n")
    return facts


def stage_build(args, log) -> Dict:
    env = stage_env_vars(args)
    env["TORCH_CUDA_ARCH_LIST"] = os.environ.get("TORCH_CUDA_ARCH_LIST") or cuda_arch_list()
    os.makedirs(args.work, exist_ok=True)
    result = {"torch_cuda_arch_list": env["TORCH_CUDA_ARCH_LIST"]}
    if args.wheels:
        wheels = sorted(
            os.path.join(args.wheels, f) for f in os.listdir(args.wheels) if f.endswith(".whl")
        )
        code = run_logged(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                "--no-compile",
                "--upgrade",
                "--target",
                os.path.join(args.work, "site"),
                *wheels,
            ],
            log,
            env,
            timeout=300,
        )
        result["wheels"] = code == 0
    builds = {"mask2former_ops": ([sys.executable, "setup.py", "build_ext", "--inplace"], ROOT, {})}
    if args.official_src:
        # A patched copy (benchmarks/official_source.py: only what current PyTorch needs), built
        # in a child so that it compiles in parallel with the rest.
        official = os.path.join(args.work, "official")
        if not is_prepared(args.official_src, official):
            prepare_official_source(args.official_src, official)
        build = f"import benchmarks.official_source as o; o.build_official_ops({official!r})"
        builds["official_ops"] = ([sys.executable, "-c", build], ROOT, {})
    if args.detectron2_src:
        d2 = os.path.join(args.work, "detectron2")
        if not os.path.isdir(d2):
            shutil.copytree(args.detectron2_src, d2)
        # CPU ops only (no visible GPU at build time): the models here use none of its CUDA ops.
        builds["detectron2"] = (
            [sys.executable, "setup.py", "build_ext", "--inplace"],
            d2,
            {"CUDA_VISIBLE_DEVICES": ""},
        )
    processes = {}
    for name, (command, cwd, extra) in builds.items():
        build_log = open(log_path(args.out, f"build_{name}"), "w")
        processes[name] = (
            subprocess.Popen(
                command, cwd=cwd, env=dict(env, **extra), stdout=build_log, stderr=subprocess.STDOUT
            ),
            build_log,
            time.perf_counter(),
        )
    for name, (process, build_log, start) in processes.items():
        try:
            code = process.wait(timeout=max(10.0, stage_timeout(args, "build") - 30))
        except subprocess.TimeoutExpired:
            process.kill()
            code = 124
        build_log.close()
        result[name] = {"ok": code == 0, "seconds": round(time.perf_counter() - start, 1)}
        log.write(f"build {name}: exit {code}\n")
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mask2former_ops as m; print(m.is_compiled(), m.cuda_kernels_built(), "
            "m.cuda_available())",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    result["mask2former_ops_check"] = check.stdout.strip() or check.stderr.strip()[-300:]
    if not result["mask2former_ops"]["ok"] or check.stdout.strip() != "True True True":
        raise RuntimeError(f"mask2former_ops did not build with CUDA kernels: {result}")
    return result


# Run in a child (the freshly built extension): check every CUDA layout, dtype and pass (not
# strict: every mismatch is listed), print the status and write it as JSON to argv[1].
KERNEL_CHECK = """
import json, sys
import mask2former_ops as m
m.set_strict(False)
records = m.check_kernels("cuda")
print(m.kernel_status())
with open(sys.argv[1], "w") as f:
    json.dump(m.kernel_status().to_dict(), f, indent=1)
sys.exit(0 if all(r.result == "ok" for r in records) else 3)
"""


def stage_kernels(args, log) -> Dict:
    json_path = os.path.join(args.out, "kernels.json")
    command = [sys.executable, "-c", KERNEL_CHECK, json_path]
    code = run_logged(
        command, log, stage_env_vars(args), timeout=stage_timeout(args, "kernels") - 5
    )
    if not os.path.exists(json_path):
        raise RuntimeError(f"the kernel check exited {code} without a status")
    with open(json_path) as f:
        status = json.load(f)
    failed = [c for c in status["checks"] if c["result"] != "ok"]
    if code != 0 or failed:
        raise RuntimeError(f"kernel check exited {code}; mismatches: {failed}")
    return {"checked": len(status["checks"]), "mismatches": 0}


def run_pytest(
    args,
    log,
    name: str,
    pytest_args: List[str],
    prefix: List[str] = (),
    extra_env: Optional[Dict[str, str]] = None,
) -> Dict:
    junit = os.path.join(args.out, "logs", f"{name}.xml")
    command = [
        *prefix,
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        *pytest_args,
    ]
    code = run_logged(
        command,
        log,
        dict(stage_env_vars(args), **(extra_env or {})),
        timeout=stage_timeout(args, name) - 5,
    )
    counts = junit_counts(junit)
    counts["exit_code"] = code
    if code not in (0, 5):
        raise RuntimeError(f"{name}: pytest exit {code}: {counts}")
    return counts


def junit_counts(path: str) -> Dict:
    import xml.etree.ElementTree as ET

    if not os.path.exists(path):
        return {}
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    tests, failures, errors, skipped = (
        int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")
    )
    return {
        "passed": tests - failures - errors - skipped,
        "failed": failures + errors,
        "skipped": skipped,
        "seconds": float(suite.get("time", 0)),
    }


def stage_tests(args, log) -> Dict:
    return run_pytest(args, log, "tests", ["tests/ops", "tests/modeling", "tests/checkpoint"])


def stage_sanitizer(args, log) -> Dict:
    sanitizer = shutil.which("compute-sanitizer")
    if sanitizer is None:
        raise RuntimeError("compute-sanitizer is not on PATH")
    # Without the caching allocator every tensor is its own allocation, so memcheck sees an
    # access past a tensor's end instead of landing in a neighbouring cached block.
    return run_pytest(
        args,
        log,
        "sanitizer",
        ["tests/ops/test_ms_deform_attn_cuda.py", "-k", "large or vectorised or gradcheck"],
        prefix=[sanitizer, "--tool", "memcheck", "--error-exitcode", "97"],
        extra_env={"PYTORCH_NO_CUDA_MEMORY_CACHING": "1"},
    )


def run_benchmark(args, log, stage: str, module: str, benchmark_args: List[str]) -> Dict:
    """Run ``python -m benchmarks.<module>`` with ``--json OUT/<stage>.json``; its figures."""
    json_path = os.path.join(args.out, f"{stage}.json")
    command = [sys.executable, "-m", f"benchmarks.{module}", *benchmark_args, "--json", json_path]
    code = run_logged(command, log, stage_env_vars(args), timeout=stage_timeout(args, stage) - 5)
    if code != 0:
        raise RuntimeError(f"benchmarks.{module} exited {code}")
    with open(json_path) as f:
        return json.load(f)


def stage_ops(args, log) -> Dict:
    tool_args = [
        "--device",
        "cuda",
        "--shapes",
        "paper",
        "video36",
        "--iters",
        "50",
        "--warmup",
        "5",
    ]
    ops = os.path.join(args.work, "official", OFFICIAL_OPS_DIR)
    if os.path.isdir(ops):
        tool_args += ["--original-ops", ops]
    return run_benchmark(args, log, "ops", "benchmark_ms_deform_attn", tool_args)


def stage_e2e(args, log) -> Dict:
    tool_args = list(args.e2e_args)
    if args.official_src:
        tool_args += ["--official-src", args.official_src]
        tool_args += ["--official-work", os.path.join(args.work, "official")]
    return run_benchmark(args, log, "e2e", "benchmark_vs_official", tool_args)


def stage_long(args, log) -> Dict:
    benchmark_args = ["--device", "cuda", "--amp", "bf16", "--frames", *map(str, args.long_frames),
                      "--window-sizes", "10", "--modes", "windowed"]  # fmt: skip
    return run_benchmark(args, log, "long", "benchmark_inference", benchmark_args + args.long_args)


def stage_profile(args, log) -> Dict:
    benchmark_args = ["--device", "cuda", "--frames", "36", "--amp", "none", "bf16"]
    return run_benchmark(args, log, "profile", "profile_inference", benchmark_args)


def stage_report(args, log) -> Dict:
    return write_report(args.out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=str, required=True, help="folder for the report and logs")
    parser.add_argument(
        "--work",
        type=str,
        default=os.path.join(ROOT, ".gpu_build"),
        help="folder for installed wheels and builds (kept between runs)",
    )
    parser.add_argument("--stages", type=str, nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument(
        "--wheels",
        type=str,
        default=None,
        help="folder of wheels to install first (pycocotools, fvcore, ...)",
    )
    parser.add_argument(
        "--detectron2-src",
        type=str,
        default=None,
        help="detectron2 source checkout (copied into WORK and built there)",
    )
    parser.add_argument(
        "--official-src",
        type=str,
        default=None,
        help="official Mask2Former checkout (commit 9b0651c) for the comparisons",
    )
    parser.add_argument(
        "--deadline-seconds",
        type=float,
        default=float("inf"),
        help="stop starting work after this many seconds (stages are cut short)",
    )
    parser.add_argument(
        "--long-frames",
        type=int,
        nargs="+",
        default=[100, 1000, 3000],
        help="video lengths of the windowed long-video benchmark",
    )
    parser.add_argument(
        "--long-args",
        type=str,
        nargs="*",
        default=[],
        help="extra arguments of benchmarks/benchmark_inference.py (the long stage)",
    )
    parser.add_argument(
        "--e2e-args",
        type=str,
        nargs="*",
        default=[],
        help="extra arguments of benchmarks/benchmark_vs_official.py",
    )
    args = parser.parse_args(argv)
    args.started = time.perf_counter()
    args.out = os.path.abspath(args.out)
    args.work = os.path.abspath(args.work)
    for name in ("wheels", "detectron2_src", "official_src"):
        if getattr(args, name):
            setattr(args, name, os.path.abspath(getattr(args, name)))
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)

    status_path = os.path.join(args.out, "stages.json")
    status = {}
    if os.path.exists(status_path):
        with open(status_path) as f:
            status = json.load(f)
    for stage in [s for s in STAGES if s in args.stages]:
        if stage_timeout(args, stage) <= 10.0 and stage != "report":
            status[stage] = {"ok": False, "error": "skipped: --deadline-seconds reached"}
            continue
        start = time.perf_counter()
        with open(log_path(args.out, stage), "a") as log:
            try:
                result = globals()[f"stage_{stage}"](args, log)
                status[stage] = {"ok": True, "result": result}
            except Exception as error:  # a failed stage is reported; the others still run
                log.write(f"\n[gpu_report] stage {stage} failed: {error!r}\n")
                status[stage] = {"ok": False, "error": repr(error)[-2000:]}
        status[stage]["seconds"] = round(time.perf_counter() - start, 1)
        print(
            f"[gpu_report] {stage}: {'ok' if status[stage]['ok'] else 'FAILED'} "
            f"({status[stage]['seconds']} s)",
            flush=True,
        )
        with open(status_path, "w") as f:
            json.dump(status, f, indent=1, default=str)
    return 0 if all(s["ok"] for s in status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Installs ``video_mask2former`` and ``mask2former_ops`` and builds ``mask2former_ops._C``.

Install (after ``pip install -r requirements.txt``, which provides torch)::

    pip install --no-build-isolation -e .

``--no-build-isolation`` makes the build use the installed torch. Like detectron2, this file never
asks pip for torch or torchvision: a requirement here would let pip replace the pinned build (or
the user's own CUDA build) with another one. torch comes from the user or ``requirements.txt``.

Dependencies (``INSTALL_REQUIRES`` and ``EXTRAS_REQUIRE`` below; the lower bounds are those of
``requirements.txt``, so after it this install adds no package):

- ``install_requires``: what the core imports (``video_mask2former`` without detectron2,
  ``mask2former_ops``), so that ``pip install .`` next to a torch gives a library that imports.
- ``[export]``: ONNX export and ONNX Runtime (``video_mask2former.export``,
  ``tools/export_model.py``).
- ``[hf]``: safetensors files and Hugging Face Hub downloads (``video_mask2former.hf``).
- ``[d2]``: the PyPI packages that the detectron2 layer (``video_mask2former.d2``,
  ``train_net_video.py``, ``demo_video/``) loads besides detectron2, which is not on PyPI and is
  built from source with ``--no-deps`` (README).
- ``[bench]``: the measurement scripts of ``benchmarks/`` (not installed: run from a checkout as
  ``python -m benchmarks.NAME``), which print their tables with tabulate.
- ``[test]``: ``python -m pytest tests`` (with ``[export]``, ``[hf]`` and ``[bench]``: the tests
  of ``benchmarks/``; transformers for the checks of its layout; torchvision for the
  weight-conversion tests, from the user like torch).

The extension ``mask2former_ops._C``:

- CPU kernels are always built (when torch is importable at build time).
- CUDA kernels are added when a CUDA toolkit is found (``CUDA_HOME``/``CUDA_PATH`` or ``nvcc`` on
  ``PATH``) and torch was built with CUDA. No GPU is needed to compile them.
- ``FORCE_CUDA=1`` requires the CUDA kernels (the build fails without a toolkit);
  ``FORCE_CUDA=0`` builds the CPU kernels only.
- ``TORCH_CUDA_ARCH_LIST`` selects the GPU architectures. When it is unset and no GPU is visible,
  ``DEFAULT_CUDA_ARCH_LIST`` ("8.0;9.0+PTX": A100, H100, and PTX that later GPUs compile on load)
  is used; with a visible GPU, torch targets that GPU.
- ``MAX_JOBS`` limits parallel compile jobs when ``ninja`` is installed.

Without torch at build time the packages install without the extension; ``mask2former_ops`` then
runs its pure-PyTorch path (``mask2former_ops.is_compiled()`` is False).
"""

import glob
import importlib.util
import os
import re
import shutil
import site
import subprocess
import sys

from setuptools import find_packages, setup

DEFAULT_CUDA_ARCH_LIST = "8.0;9.0+PTX"

INSTALL_REQUIRES = [
    # Clip transforms (data/transforms.py: fvcore.transforms).
    "fvcore>=0.1.5",
    "numpy>=1.24",
    "opencv-python-headless>=4.8",
    "Pillow>=9.0",
    "pycocotools>=2.0.7",
    "scipy>=1.10",
    # Strict JPEG decoding (video_mask2former/data/frames.py).
    "simplejpeg>=1.6",
    # The printed tables of the tools and benchmarks (data/inspect.py, benchmarks/common.py).
    "tabulate",
    # Progress bars of the demo's loops (video_mask2former/demo/online.py); fvcore needs it too.
    "tqdm>=4.60",
]
EXPORT_REQUIRES = ["onnx>=1.17", "onnxscript>=0.5", "onnxruntime>=1.20"]
HF_REQUIRES = ["safetensors>=0.4", "huggingface_hub>=0.30"]
EXTRAS_REQUIRE = {
    "export": EXPORT_REQUIRES,
    "hf": HF_REQUIRES,
    # The printed tables of benchmarks/ (tabulate, as detectron2 prints its tables; also a core
    # requirement now, kept here so that existing `[bench]` installs keep working).
    "bench": ["tabulate"],
    # The histograms of tools/inspect_dataset.py --plot (video_mask2former/data/inspect.py).
    "plot": ["matplotlib"],
    # detectron2 is not on PyPI: it is built from source with --no-deps (README). These are its
    # PyPI dependencies that the plugin and scripts load (tabulate: d2/joint.py)
    # and av, the demo's H.264 writer (video_mask2former/visualization/video_io.py; OpenCV's mp4v
    # without it).
    "d2": [
        "av>=12",
        "cloudpickle",
        "omegaconf>=2.1,<2.4",
        "packaging",
        "PyYAML>=6.0",
        "tabulate",
    ],
    # transformers: the checks of its layout (tests/checkpoint/test_hf.py); packaging:
    # tests/test_packaging.py; av: the H.264 writer's tests (tests/visualization/, skipped
    # without it).
    "test": ["pytest>=7.0", "packaging", "transformers>=5.23", "av>=12"]
    + EXPORT_REQUIRES
    + HF_REQUIRES
    + ["tabulate"],  # [bench]: the tests of benchmarks/
}
CSRC = os.path.join("mask2former_ops", "csrc")


def _log(message: str) -> None:
    print(f"[setup.py] {message}", file=sys.stderr)


def _cuda_root_from_nvcc(nvcc: str) -> list:
    """Candidate toolkit roots for an ``nvcc`` found on PATH (it may be a wrapper script)."""
    candidates = [os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))]
    dryrun = subprocess.run(
        [nvcc, "--dryrun", "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"^#\$ TOP=(.+)$", dryrun.stdout + dryrun.stderr, flags=re.MULTILINE)
    if match:
        candidates.append(os.path.normpath(match.group(1).strip()))
    candidates.append("/usr/local/cuda")
    return candidates


def _find_cuda_home():
    """The CUDA toolkit root (holding include/cuda_runtime_api.h), or None."""
    for key in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(key):
            return os.environ[key]
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    for root in _cuda_root_from_nvcc(nvcc):
        if os.path.isfile(os.path.join(root, "include", "cuda_runtime_api.h")):
            return root
    return None


def _pip_cuda_include_dirs() -> list:
    """Include dirs of the ``nvidia-*`` wheels (e.g. cusparse.h that torch's CUDA headers need)."""
    roots = site.getsitepackages() + [site.getusersitepackages()]
    found = []
    for root in roots:
        for pattern in ("nvidia/cu*/include", "nvidia/*/include"):
            found += sorted(glob.glob(os.path.join(root, pattern)))
    return list(dict.fromkeys(path for path in found if os.path.isdir(path)))


def _extension_setup() -> dict:
    """``ext_modules`` and ``cmdclass`` for mask2former_ops._C (empty without torch)."""
    if importlib.util.find_spec("torch") is None:
        _log("torch is not importable: installing without mask2former_ops._C (pure-PyTorch path)")
        return {}

    force_cuda = os.environ.get("FORCE_CUDA", "")
    if force_cuda not in ("", "0", "1"):
        raise ValueError(f"FORCE_CUDA must be unset, 0 or 1, got {force_cuda!r}")
    cuda_home = _find_cuda_home() if force_cuda != "0" else None
    if cuda_home is not None:
        # torch.utils.cpp_extension reads CUDA_HOME when imported.
        os.environ["CUDA_HOME"] = cuda_home

    import torch
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    with_cuda = force_cuda == "1" or (
        force_cuda == "" and cuda_home is not None and torch.version.cuda is not None
    )
    if force_cuda == "1" and cuda_home is None:
        raise RuntimeError(
            "FORCE_CUDA=1 but no CUDA toolkit was found: set CUDA_HOME or put nvcc on PATH"
        )

    sources = [
        os.path.join(CSRC, "bindings.cpp"),
        os.path.join(CSRC, "cpu", "ms_deform_attn_cpu.cpp"),
        os.path.join(CSRC, "cpu", "block_cache.cpp"),
    ]
    include_dirs = [os.path.abspath(CSRC)]
    # -fopenmp lets at::parallel_for use torch's OpenMP threads in the CPU kernels.
    extra_compile_args = {"cxx": ["-O3", "-fopenmp"]}
    extra_link_args = ["-fopenmp"]
    if with_cuda:
        if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
            os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_CUDA_ARCH_LIST
        sources.append(os.path.join(CSRC, "cuda", "ms_deform_attn_cuda.cu"))
        # The toolkit's own headers first, then the wheels' (only for headers it lacks).
        include_dirs += [os.path.join(cuda_home, "include")] + _pip_cuda_include_dirs()
        extra_compile_args["nvcc"] = ["-O3"]
        extension = CUDAExtension(
            "mask2former_ops._C",
            sources=sources,
            include_dirs=include_dirs,
            define_macros=[("WITH_CUDA", None)],
            extra_compile_args=extra_compile_args,
            extra_link_args=extra_link_args,
        )
        _log(
            f"building mask2former_ops._C with CUDA kernels (CUDA_HOME={cuda_home}, "
            f"TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', '<visible GPU>')})"
        )
    else:
        extension = CppExtension(
            "mask2former_ops._C",
            sources=sources,
            include_dirs=include_dirs,
            extra_compile_args=extra_compile_args,
            extra_link_args=extra_link_args,
        )
        _log("building mask2former_ops._C with CPU kernels only (no CUDA toolkit or FORCE_CUDA=0)")
    return {"ext_modules": [extension], "cmdclass": {"build_ext": BuildExtension}}


setup(
    name="video_mask2former",
    version="0.1.0",
    description="Mask2Former for video instance segmentation, with a detectron2 plugin",
    packages=find_packages(
        include=("video_mask2former*", "mask2former_ops*"),
        exclude=("tests*", "configs*", "datasets*", "demo_video*", "tools*", "benchmarks*"),
    ),
    package_data={
        "mask2former_ops": ["csrc/*.h", "csrc/*.cpp", "csrc/*/*.h", "csrc/*/*.cpp", "csrc/*/*.cu"]
    },
    python_requires=">=3.8",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    zip_safe=False,
    **_extension_setup(),
)

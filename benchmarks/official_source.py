"""A runnable copy of the official Mask2Former source, for benchmarks that compare against it.

The official code (facebookresearch/Mask2Former, commit 9b0651c) needs a few textual fixes to
import and build with current torch. :func:`prepare_official_source` copies the official tree to a
scratch folder and applies :data:`OFFICIAL_PATCHES` there (the official tree itself is never
modified, and no official code is part of this project); :func:`build_official_ops` compiles its
deformable-attention op ``MultiScaleDeformableAttention`` in that copy.
"""

import glob
import hashlib
import json
import os
import shutil
import site
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import List, Optional

# Folder of the official op MultiScaleDeformableAttention (sources and setup.py).
OFFICIAL_OPS_DIR = os.path.join("mask2former", "modeling", "pixel_decoder", "ops")
# Written in a prepared copy: where it came from and which patches it has.
STAMP_FILE = ".benchmark_official_source.json"
# A default toolkit location, used when CUDA_HOME is unset: torch otherwise takes the parent of the
# `nvcc` found on PATH, which is wrong when that `nvcc` is a wrapper script (e.g. /usr/local/bin).
DEFAULT_CUDA_HOME = "/usr/local/cuda"


@dataclass(frozen=True)
class SourcePatch:
    """One textual replacement in the official tree.

    Attributes:
        path (str): file, relative to the official repository root.
        old (str): text to replace; must occur exactly ``count`` times.
        new (str): replacement.
        count (int): expected occurrences (a different count means a different official commit).
        why (str): the reason for the patch.
    """

    path: str
    old: str
    new: str
    count: int
    why: str


OFFICIAL_PATCHES = (
    SourcePatch(
        path=os.path.join(OFFICIAL_OPS_DIR, "src", "cuda", "ms_deform_attn_cuda.cu"),
        old="AT_DISPATCH_FLOATING_TYPES(value.type(),",
        new="AT_DISPATCH_FLOATING_TYPES(value.scalar_type(),",
        count=2,
        why="current torch no longer converts the deprecated Tensor::type() to the ScalarType "
        "that the AT_DISPATCH macros take, so the official CUDA op does not compile without it "
        "(the other deprecated calls, .type().is_cuda() and .data<T>(), only warn)",
    ),
    SourcePatch(
        path=os.path.join("mask2former_video", "data_video", "datasets", "ytvis_api", "ytvos.py"),
        old="import matplotlib.pyplot as plt\n"
        "from matplotlib.collections import PatchCollection\n"
        "from matplotlib.patches import Polygon\n",
        new="try:  # benchmark patch: matplotlib is only used by YTVOS.showAnns\n"
        "    import matplotlib.pyplot as plt\n"
        "    from matplotlib.collections import PatchCollection\n"
        "    from matplotlib.patches import Polygon\n"
        "except ImportError:\n"
        "    pass\n",
        count=1,
        why="`import mask2former_video` imports its YouTube-VIS API, whose module-level "
        "matplotlib import serves only to draw annotations (YTVOS.showAnns); matplotlib is "
        "not a dependency of either project",
    ),
)


def _patches_digest(patches) -> str:
    text = json.dumps([asdict(patch) for patch in patches], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def apply_patch(root: str, patch: SourcePatch) -> None:
    """Apply ``patch`` to the tree at ``root`` in place.

    Raises:
        ValueError: the file does not contain ``patch.old`` exactly ``patch.count`` times.
    """
    path = os.path.join(root, patch.path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    found = text.count(patch.old)
    if found != patch.count:
        raise ValueError(
            f"{path}: expected {patch.count} occurrence(s) of {patch.old!r}, found {found}; is "
            "this the official Mask2Former at commit 9b0651c?"
        )
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(patch.old, patch.new))


def prepare_official_source(src: str, dst: str, patches=OFFICIAL_PATCHES) -> None:
    """Copy the official repository ``src`` to ``dst`` and apply ``patches`` to the copy.

    Args:
        src (str): official Mask2Former checkout (commit 9b0651c).
        dst (str): folder to create; an existing one is replaced only if it is empty or an
            earlier call made it (it holds :data:`STAMP_FILE`).
        patches (sequence of SourcePatch): the replacements.

    Raises:
        FileExistsError: ``dst`` exists and was not made by this function.
        ValueError: a patch does not apply (see :func:`apply_patch`).
    """
    if os.path.exists(dst):
        if os.listdir(dst) and not os.path.isfile(os.path.join(dst, STAMP_FILE)):
            raise FileExistsError(
                f"{dst} exists and is not a prepared official copy (no {STAMP_FILE}); "
                "choose an empty or new folder"
            )
        shutil.rmtree(dst)
    ignore = shutil.ignore_patterns(".git", "__pycache__", "build", "*.so")
    shutil.copytree(src, dst, ignore=ignore)
    for patch in patches:
        apply_patch(dst, patch)
    stamp = {"src": os.path.abspath(src), "patches": _patches_digest(patches)}
    with open(os.path.join(dst, STAMP_FILE), "w") as f:
        json.dump(stamp, f)


def is_prepared(src: str, dst: str) -> bool:
    """Whether ``dst`` is a copy of ``src`` prepared with the current :data:`OFFICIAL_PATCHES`."""
    try:
        with open(os.path.join(dst, STAMP_FILE)) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return False
    return stamp == {"src": os.path.abspath(src), "patches": _patches_digest(OFFICIAL_PATCHES)}


def built_official_op(root: str) -> Optional[str]:
    """The compiled ``MultiScaleDeformableAttention`` library in a prepared copy, or None."""
    found = glob.glob(os.path.join(root, OFFICIAL_OPS_DIR, "MultiScaleDeformableAttention*.so"))
    return found[0] if found else None


def _pip_cuda_include_dirs() -> List[str]:
    """Include dirs of the ``nvidia-*`` wheels (torch's CUDA headers include e.g. cusparse.h);
    the project's setup.py adds the same for ``mask2former_ops``."""
    found = []
    for root in site.getsitepackages() + [site.getusersitepackages()]:
        for pattern in ("nvidia/cu*/include", "nvidia/*/include"):
            found += sorted(glob.glob(os.path.join(root, pattern)))
    return list(dict.fromkeys(path for path in found if os.path.isdir(path)))


def build_official_ops(root: str) -> str:
    """Compile the official CUDA op in the prepared copy ``root`` (``setup.py build_ext``).

    The official setup.py builds only with CUDA (``FORCE_CUDA=1`` lets it build where no GPU is
    visible); it builds ``--inplace``, next to its sources. ``TORCH_CUDA_ARCH_LIST`` (needed where
    no GPU is visible) and ``MAX_JOBS`` are taken from the environment. The build log is
    ``build.log`` in the op folder.

    Returns:
        str: the folder to put on ``sys.path`` to import ``MultiScaleDeformableAttention``.

    Raises:
        RuntimeError: the build failed (the message names the log and its last line).
    """
    ops_dir = os.path.join(root, OFFICIAL_OPS_DIR)
    env = dict(os.environ, FORCE_CUDA="1")
    if not env.get("CUDA_HOME") and os.path.isdir(DEFAULT_CUDA_HOME):
        env["CUDA_HOME"] = DEFAULT_CUDA_HOME
    env["CPATH"] = os.pathsep.join(_pip_cuda_include_dirs() + [env.get("CPATH", "")])
    log_path = os.path.join(ops_dir, "build.log")
    with open(log_path, "w") as log:
        done = subprocess.run(
            [sys.executable, "setup.py", "build_ext", "--inplace"],
            cwd=ops_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0 or built_official_op(root) is None:
        with open(log_path) as log:
            lines = [line.strip() for line in log if line.strip()]
        last = lines[-1] if lines else "(empty log)"
        hint = (
            ""
            if env.get("TORCH_CUDA_ARCH_LIST")
            else " (where no GPU is visible, set TORCH_CUDA_ARCH_LIST)"
        )
        raise RuntimeError(f"building the official op failed{hint}, see {log_path}: {last}")
    return ops_dir

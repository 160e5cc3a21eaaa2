#!/usr/bin/env bash
# CI: the wheel that `python -m build` makes installs and imports in a fresh virtual environment
# that already has the pinned torch pair (what a user with their own torch does: `pip install .`).
#
# 1. Builds the wheel from a copy of the files git tracks (or would track), so that the checkout
#    gets no build/ or *.egg-info and the wheel holds what a clean clone holds. FORCE_CUDA=0: CPU
#    kernels only (the CUDA kernels are compiled by .ci/run's main install).
# 2. Creates a venv without system site-packages and makes the torch/torchvision installed here
#    visible in it, with torch's own dependencies (read from their metadata, recursively): their
#    folders and .dist-info folders are symlinked, so pip sees them installed and downloads nothing
#    of the 5 GB. torchvision's other dependencies (numpy, Pillow) are not linked: the wheel must
#    bring them.
# 3. `pip install WHEEL` (the declared dependencies come from the index), then, from outside the
#    repository, imports the packages, runs a tiny model and `pip check`. Fails (non-zero) when a
#    dependency the code imports is not declared.
# 4. Installs the [export,hf] extras; 5. when detectron2 is importable here, the [d2] extra and
#    the detectron2 layer, train_net_video.py and demo_video/ (imported from the copy of step 1).
#
# Run after .ci/run's install (needs torch, torchvision, setuptools; installs `build` if
# absent). Temporary files are removed on exit.
set -euo pipefail
START=$SECONDS
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/check_wheel.XXXXXX")"
log() { echo "[check_wheel] $* ($((SECONDS - START)) s)"; }
# rm -rf removes the venv's symlinks, not what they point to.
trap 'rm -rf "$WORK"; log "exit, temporary files removed"' EXIT

"$PYTHON" -c "import build" 2>/dev/null || "$PYTHON" -m pip install -q build

# 1. The wheel, built from a copy of the checkout.
mkdir "$WORK/src" "$WORK/dist"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard) \
    | "$PYTHON" -c '
import os, shutil, sys
root, dest = sys.argv[1:]
for rel in filter(None, sys.stdin.buffer.read().decode().split("\0")):
    src = os.path.join(root, rel)
    if os.path.isfile(src):  # a tracked file deleted in the working tree is skipped
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel))
' "$ROOT" "$WORK/src"
(cd "$WORK/src" && FORCE_CUDA=0 "$PYTHON" -m build --wheel --no-isolation --outdir "$WORK/dist" \
    >"$WORK/build.log" 2>&1) || { tail -n 40 "$WORK/build.log"; exit 1; }
WHEEL="$(ls "$WORK"/dist/*.whl)"
log "built $(basename "$WHEEL")"

# 2. A fresh venv that sees this machine's torch pair.
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
# The venv's own setuptools may be older than torch requires; torch's (linked below) replaces it.
"$VPY" -m pip uninstall -q -y setuptools
VSITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$PYTHON" - "$VSITE" <<'EOF'
import importlib.metadata as md
import os
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

venv_site = sys.argv[1]


def closure(name, extras, dists, visited):
    """Adds to ``dists`` the installed distributions that ``name[extras]`` needs, itself included."""
    dist = md.distribution(name)
    key = canonicalize_name(dist.metadata["Name"])
    if (key, extras) in visited:
        return
    visited.add((key, extras))
    dists[key] = dist
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("",) + extras):
            continue
        closure(req.name, tuple(sorted(req.extras)), dists, visited)


# torch and everything it needs; torchvision alone (its numpy and Pillow must come from the wheel).
dists = {}
closure("torch", (), dists, set())
dists["torchvision"] = md.distribution("torchvision")
linked = set()
for key, dist in sorted(dists.items()):
    site_dir = str(dist.locate_file(""))
    for path in dist.files or []:
        top = path.parts[0]
        if top in ("..", "__pycache__") or top in linked:
            continue
        source = os.path.join(site_dir, top)
        target = os.path.join(venv_site, top)
        if os.path.exists(source) and not os.path.lexists(target):
            os.symlink(source, target)
        linked.add(top)
print(f"[check_wheel] linked {len(dists)} distributions into the venv: " + " ".join(sorted(dists)))
EOF
log "venv ready"

# 3. Install the wheel; run the checks from outside the repository.
cd "$WORK"
export PYTHONDONTWRITEBYTECODE=1
"$VPY" -m pip install -q "$WHEEL"
log "installed the wheel"
"$VPY" -m pip check
"$VPY" - <<'EOF'
import importlib.util

import torch

import mask2former_ops
import video_mask2former
import video_mask2former.data
import video_mask2former.evaluation
import video_mask2former.modeling
from video_mask2former.modeling.build import build_video_maskformer

assert "site-packages" in video_mask2former.__file__, video_mask2former.__file__
assert not video_mask2former.HAS_DETECTRON2
assert mask2former_ops.is_compiled(), "the wheel has no mask2former_ops._C"
for module in ("video_mask2former.export", "video_mask2former.hf"):
    importlib.import_module(module)

torch.manual_seed(0)
model = build_video_maskformer(
    "R50", num_classes=3, num_queries=5, hidden_dim=32, nheads=4, dim_feedforward=64,
    dec_layers=2, conv_dim=32, mask_dim=32, transformer_enc_layers=1,
    transformer_dim_feedforward=64, train_num_points=64,
).eval()
frames = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(2)]
with torch.no_grad():
    result = model([{"image": frames}])
assert tuple(result["image_size"]) == (64, 64), result["image_size"]
print(f"[check_wheel] imports and a tiny forward pass OK: {len(result['pred_scores'])} instances")
EOF
log "core checks passed"

# 4. The optional extras install next to it and resolve.
"$VPY" -m pip install -q "$WHEEL[export,hf]"
"$VPY" -m pip check
"$VPY" -c 'import huggingface_hub, onnx, onnxruntime, onnxscript, safetensors.torch'
log "the [export,hf] extras install"

# 5. The detectron2 layer with the [d2] extra, when detectron2 is installed here (not on PyPI).
D2_PARENT="$("$PYTHON" -c 'import detectron2, os; print(os.path.dirname(os.path.dirname(detectron2.__file__)))' 2>/dev/null || true)"
if [ -n "$D2_PARENT" ]; then
    "$VPY" -m pip install -q "$WHEEL[d2]"
    echo "$D2_PARENT" >"$VSITE/detectron2_source.pth"
    # The scripts are not in the wheel: imported from the copy the wheel was built from (the same
    # snapshot of the checkout), after the installed packages.
    "$VPY" - "$WORK/src" <<'EOF'
import sys

import video_mask2former
import video_mask2former.d2
import video_mask2former.d2.demo.cli
import video_mask2former.d2.joint
import video_mask2former.demo.online

assert video_mask2former.HAS_DETECTRON2
assert "site-packages" in video_mask2former.__file__, video_mask2former.__file__
sys.path += [sys.argv[1], sys.argv[1] + "/demo_video"]
import demo  # noqa: E402
import train_net_video  # noqa: E402

print("[check_wheel] the detectron2 layer, train_net_video.py and demo_video/ import with [d2]")
EOF
    "$VPY" -m pip check
    log "detectron2 checks passed"
else
    echo "[check_wheel] detectron2 is not installed: the [d2] extra is not checked"
fi
log "done"

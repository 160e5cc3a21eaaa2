"""tools/evaluate_vps.py and tools/evaluate_vss.py against the reference implementations.

Each case of ``tests/fixtures/video_seg_reference/`` holds synthetic VIPSeg-layout (``vps/``) and
VSPW-layout (``vss/``) ground truth and predictions; ``expected.json`` holds what the reference
scripts printed for them (VIPSeg's ``eval_vpq_vspw.py`` and ``eval_stq_vspw.py``, deeplab2's numpy
STQ, the VSPW authors' mIoU and ``VC_perclip.py``), run outside this repository by the folder's
``generate.py`` (see its README.md). Every number must agree within ``TOLERANCE`` (0..100 scale).

Set ``VIDEO_SEG_REFERENCE_CASES`` to a folder that ``generate.py --random N`` wrote to run the same
comparison on other cases.
"""

import importlib.util
import json
import os

import pytest

from tests.conftest import FIXTURES_DIR

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VPS_SCRIPT = os.path.join(ROOT, "tools", "evaluate_vps.py")
VSS_SCRIPT = os.path.join(ROOT, "tools", "evaluate_vss.py")
CASES_DIR = os.environ.get(
    "VIDEO_SEG_REFERENCE_CASES", os.path.join(FIXTURES_DIR, "video_seg_reference")
)
with open(os.path.join(CASES_DIR, "expected.json")) as _f:
    EXPECTED = json.load(_f)["cases"]
CASES = sorted(EXPECTED)
# The references print full-precision floats; the only differences left are float rounding.
TOLERANCE = 1e-6
WINDOW_SIZES = (1, 2, 4, 6, 8)
# The flat keys that --json must write (issue 20 / the shared interface); further keys that the
# reference also gives (SQ and RQ per window size, things and stuff) are compared when written.
VPS_KEYS = (
    ["VPQ", "VPQ_thing", "VPQ_stuff", "VPQ_SQ", "VPQ_RQ", "STQ", "AQ", "SQ"]
    + [f"VPQ@{n}" for n in WINDOW_SIZES]
    + [f"VPQ_thing@{n}" for n in WINDOW_SIZES]
    + [f"VPQ_stuff@{n}" for n in WINDOW_SIZES]
)
VSS_KEYS = ["mIoU", "mVC8", "mVC16"]


def _main(script, *args):
    """Run ``script``'s ``main(argv)`` in this process (one import for all the cases)."""
    assert os.path.isfile(script), f"{os.path.relpath(script, ROOT)} does not exist (issue 20)"
    name = os.path.splitext(os.path.basename(script))[0]
    if name not in _SCRIPTS:
        spec = importlib.util.spec_from_file_location(f"_reference_test_{name}", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _SCRIPTS[name] = module
    status = _SCRIPTS[name].main(list(args))
    assert status == 0, f"{name} {' '.join(args)} exited with {status}"


_SCRIPTS = {}


def _vps_scores(case, tmp_path, *extra):
    vps = os.path.join(CASES_DIR, case, "vps")
    out = tmp_path / "vps.json"
    _main(
        VPS_SCRIPT,
        "--gt-json",
        os.path.join(vps, "panoptic_gt.json"),
        "--gt-dir",
        os.path.join(vps, "panomasksRGB"),
        "--pred-json",
        os.path.join(vps, "pred", "pred.json"),
        "--pred-dir",
        os.path.join(vps, "pred", "pan_pred"),
        "--json",
        str(out),
        *extra,
    )
    return json.loads(out.read_text())


def _disagreements(ours, reference, required):
    """Lines naming each key that is missing or differs by more than TOLERANCE."""
    lines = [
        f"{key}: missing from --json (has {sorted(ours)})" for key in required if key not in ours
    ]
    for key, value in reference.items():
        if key in ours and not abs(ours[key] - value) <= TOLERANCE:
            lines.append(
                f"{key}: ours {ours[key]!r} reference {value!r} ({ours[key] - value:+.3g})"
            )
    return lines


@pytest.mark.parametrize("case", CASES)
def test_evaluate_vps_equals_the_reference_scripts(case, tmp_path):
    """VPQ as eval_vpq_vspw.py, STQ / AQ / SQ as deeplab2's numpy STQ with crowd as instance 0."""
    ours = _vps_scores(case, tmp_path)
    bad = _disagreements(ours, EXPECTED[case]["vps"], VPS_KEYS)
    assert not bad, f"case {case}:\n" + "\n".join(bad)


@pytest.mark.parametrize("case", CASES)
def test_evaluate_vps_vipseg_numbering_equals_eval_stq_vspw(case, tmp_path):
    """--stq-vipseg-numbering gives eval_stq_vspw.py's STQ / AQ / SQ and leaves VPQ alone."""
    ours = _vps_scores(case, tmp_path, "--stq-vipseg-numbering")
    reference = dict(EXPECTED[case]["vps"], **EXPECTED[case]["vps_vipseg_numbering"])
    bad = _disagreements(ours, reference, VPS_KEYS)
    assert not bad, f"case {case} (--stq-vipseg-numbering):\n" + "\n".join(bad)


@pytest.mark.parametrize("case", CASES)
def test_evaluate_vss_equals_the_vspw_authors_scripts(case, tmp_path):
    """mIoU as the VSPW authors' Evaluator, mVC8 / mVC16 as their VC_perclip.py."""
    vss = os.path.join(CASES_DIR, case, "vss")
    out = tmp_path / "vss.json"
    _main(
        VSS_SCRIPT,
        "--gt-root",
        vss,
        "--split",
        os.path.join(vss, "val.txt"),
        "--pred-dir",
        os.path.join(vss, "pred"),
        "--json",
        str(out),
    )
    bad = _disagreements(json.loads(out.read_text()), EXPECTED[case]["vss"], VSS_KEYS)
    assert not bad, f"case {case}:\n" + "\n".join(bad)


def test_the_cases_exercise_every_rule():
    """The fixtures hold what the rules treat specially (so a regeneration cannot lose it)."""
    if "VIDEO_SEG_REFERENCE_CASES" in os.environ:
        pytest.skip("coverage is a property of the committed cases")
    facts = [EXPECTED[c]["facts"] for c in CASES]
    total = {key: sum(f[key] for f in facts) for key in facts[0] if key != "frames_per_video"}
    assert all(v > 0 for v in total.values()), total
    lengths = [n for f in facts for n in f["frames_per_video"]]
    assert min(lengths) == 1 and any(n < 8 for n in lengths) and any(8 <= n < 16 for n in lengths)
    assert all(max(f["frames_per_video"]) > 16 for f in facts)  # every case has mVC16 windows
    # Crowd, the first listed segment and pred-void pixels make the two STQ numberings differ.
    assert any(
        abs(EXPECTED[c]["vps"]["AQ"] - EXPECTED[c]["vps_vipseg_numbering"]["AQ"]) > 1 for c in CASES
    )
    assert any(f["gt_void_pixels"] == 0 and f["gt_crowd_segments"] == 0 for f in facts)

"""tools/evaluate_ytvis.py: table, OUT.json, and clean errors on bad input."""

import json
import os
import subprocess
import sys

from tests.conftest import DATA_DIR
from video_mask2former.evaluation import STAT_KEYS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tools", "evaluate_ytvis.py")
CASE = os.path.join(DATA_DIR, "ytvis_eval", "case3")


def _run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, env=env)


def test_cli_writes_the_twelve_numbers(tmp_path):
    out = tmp_path / "scores.json"
    proc = _run("--gt", CASE + "_gt.json", "--results", CASE + "_results.json", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(out.read_text())
    with open(CASE + "_stats.json") as f:
        expected = json.load(f)
    assert list(scores) == list(STAT_KEYS)
    assert all(abs(scores[k] - expected[k]) < 1e-4 for k in STAT_KEYS)
    assert "AR100" in proc.stdout


def test_cli_bad_input_exits_with_a_message(tmp_path):
    results = json.loads(open(CASE + "_results.json").read())
    results[3]["segmentations"] = results[3]["segmentations"][:-1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(results))
    proc = _run("--gt", CASE + "_gt.json", "--results", str(bad))
    assert proc.returncode != 0
    assert "entry 3 (video" in proc.stderr and "Traceback" not in proc.stderr
    unreadable = tmp_path / "trunc.json"
    unreadable.write_text("[{")
    proc = _run("--gt", CASE + "_gt.json", "--results", str(unreadable))
    assert proc.returncode != 0 and "not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr

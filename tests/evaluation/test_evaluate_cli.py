"""tools/evaluate_ytvis.py: table, OUT.json, and clean errors on bad input.

The first test runs the script as a user does (a Python process of its own); the others call its
``main`` in this process (the same arguments, output and exit status, without a second start of
Python, NumPy and pycocotools for each).
"""

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys

from tests.conftest import FIXTURES_DIR
from video_mask2former.evaluation import STAT_KEYS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tools", "evaluate_ytvis.py")
CASE = os.path.join(FIXTURES_DIR, "ytvis_eval", "case3")


def _run_process(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, env=env)


def _cli():
    spec = importlib.util.spec_from_file_location("evaluate_ytvis_cli", SCRIPT)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


def _run(*args):
    """The script's ``main(args)`` in this process, as a CompletedProcess (exit status, stdout,
    stderr); an exception that escapes ``main`` fails the test as a traceback would."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = _cli().main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())


def test_cli_writes_the_twelve_numbers(tmp_path):
    out = tmp_path / "scores.json"
    proc = _run_process(
        "--gt", CASE + "_gt.json", "--results", CASE + "_results.json", "--json", str(out)
    )
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


def test_cli_corrupt_ground_truth_rle_is_an_error_not_a_score(tmp_path):
    data = json.loads(open(CASE + "_gt.json").read())
    ann = next(a for a in data["annotations"] if a["segmentations"][1] is not None)
    ann["segmentations"][1]["counts"] = "!!garbage"  # pycocotools: an area of ~4e9 pixels
    bad = tmp_path / "gt.json"
    bad.write_text(json.dumps(data))
    proc = _run("--gt", str(bad), "--results", CASE + "_results.json")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{bad}: annotation {ann['id']} of video {ann['video_id']}, frame 1" in proc.stderr
    assert "not a valid compressed RLE string" in proc.stderr


def test_cli_scores_a_2022_folder_short_and_long_apart(tmp_path):
    from video_mask2former.data.synthetic import generate_synthetic_ytvis
    from video_mask2former.evaluation.ytvis2022 import combine_2022_split

    short, _ = generate_synthetic_ytvis(num_videos=2, num_frames=3, height=24, width=32, seed=0)
    long, _ = generate_synthetic_ytvis(num_videos=1, num_frames=9, height=24, width=32, seed=1)
    for name, dataset in combine_2022_split(short, long).items():
        (tmp_path / name).write_text(json.dumps(dataset))
    keys = ("video_id", "category_id", "segmentations")
    results = [dict({k: a[k] for k in keys}, score=1.0) for a in short["annotations"]]
    (tmp_path / "results.json").write_text(json.dumps(results))
    out = tmp_path / "scores.json"
    proc = _run(
        "--gt", str(tmp_path), "--results", str(tmp_path / "results.json"), "--json", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(out.read_text())
    assert (scores["AP_S"], scores["AP_L"], scores["AP"]) == (1.0, 0.0, 0.5)
    assert "AP (mean of AP_S and AP_L): 0.500" in proc.stdout


def test_cli_checks_the_output_location_before_scoring(tmp_path):
    """--json where no file can be written (a file in the way of its folder): one error line,
    exit 2, before any scoring (no table printed)."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    out = blocker / "scores.json"
    proc = _run("--gt", CASE + "_gt.json", "--results", CASE + "_results.json", "--json", str(out))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"cannot write --json {out}" in proc.stderr and "AR100" not in proc.stdout


def test_cli_on_a_read_only_disk(tmp_path, monkeypatch, capsys):
    """A read-only disk (simulated: creating a file fails with EROFS, as it does there) is found
    before scoring; the existing output is left as it was."""
    import errno
    import tempfile

    cli = _cli()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = tmp_path / "scores.json"
    out.write_text("previous scores")
    code = cli.main(["--gt", CASE + "_gt.json", "--results", CASE + "_results.json",
                     "--json", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2 and "AR100" not in captured.out
    assert f"error: cannot write --json {out}: Read-only file system" in captured.err
    assert out.read_text() == "previous scores"


def test_cli_replaces_the_output_only_with_scores(tmp_path):
    """A bad results file leaves an existing --json file whole and no temporary file behind; a
    good run replaces it."""
    out = tmp_path / "scores.json"
    out.write_text("previous scores")
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    proc = _run("--gt", CASE + "_gt.json", "--results", str(bad), "--json", str(out))
    assert proc.returncode == 2 and out.read_text() == "previous scores"
    assert sorted(os.listdir(tmp_path)) == ["bad.json", "scores.json"]
    proc = _run("--gt", CASE + "_gt.json", "--results", CASE + "_results.json", "--json", str(out))
    assert proc.returncode == 0 and list(json.loads(out.read_text())) == list(STAT_KEYS)
    assert sorted(os.listdir(tmp_path)) == ["bad.json", "scores.json"]

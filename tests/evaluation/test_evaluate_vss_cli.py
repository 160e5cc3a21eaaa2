"""tools/evaluate_vss.py and evaluate_vss end to end on tiny VSPW-layout folders written here: the
authors' numbers through the files, the printed table, --json, and one row per bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.evaluation.test_vss_metrics import REFERENCE, random_case
from video_mask2former.evaluation.vss_eval import evaluate_vss

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tools", "evaluate_vss.py")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import evaluate_vss as cli  # noqa: E402

SEED = 2  # REFERENCE case: videos of 8, 9, 16, 17 and 3 frames


def _frame_name(t):
    return f"{t:08d}"


def write_case(root, videos, *, names=None):
    """``root/gt`` (VSPW layout, masks = the stored values) and ``root/pred``; returns both."""
    gt_root, pred_dir = os.path.join(root, "gt"), os.path.join(root, "pred")
    names = names or [f"video_{v}" for v in range(len(videos))]
    for name, (gt, pred) in zip(names, videos):
        for sub in ("origin", "mask"):
            os.makedirs(os.path.join(gt_root, "data", name, sub))
        os.makedirs(os.path.join(pred_dir, name))
        for t, (g, p) in enumerate(zip(gt, pred)):
            stem = _frame_name(t)
            image = np.zeros((*g.shape, 3), dtype=np.uint8)
            Image.fromarray(image).save(
                os.path.join(gt_root, "data", name, "origin", stem + ".jpg")
            )
            Image.fromarray(g, mode="L").save(
                os.path.join(gt_root, "data", name, "mask", stem + ".png")
            )
            Image.fromarray(p, mode="L").save(os.path.join(pred_dir, name, stem + ".png"))
    with open(os.path.join(gt_root, "val.txt"), "w") as f:
        f.write("".join(n + "\n" for n in names))
    return gt_root, pred_dir


@pytest.fixture
def case(tmp_path):
    lengths, size, p_change, *_ = REFERENCE[SEED]
    return write_case(str(tmp_path), random_case(SEED, lengths, size, p_change))


def test_cli_reproduces_the_authors_numbers_through_the_files(case, tmp_path):
    gt_root, pred_dir = case
    out = tmp_path / "out" / "scores.json"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = ["--gt-root", gt_root, "--split", "val.txt", "--pred-dir", pred_dir, "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, SCRIPT, *args, "--workers", "2"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(out.read_text())
    _, _, _, miou, vc8, vc16, _ = REFERENCE[SEED]
    assert list(scores) == ["mIoU", "mVC8", "mVC16"]
    assert scores == pytest.approx({"mIoU": 100 * miou, "mVC8": 100 * vc8, "mVC16": 100 * vc16})
    assert "mVC16" in proc.stdout and f"{100 * vc8:.2f}" in proc.stdout
    assert "5 videos, 53 frames" in proc.stdout and "16 frames: 1" in proc.stdout


def test_workers_give_the_same_floats(case):
    gt_root, pred_dir = case
    one = evaluate_vss(gt_root, "val.txt", pred_dir, workers=1)
    two = evaluate_vss(gt_root, os.path.join(gt_root, "val.txt"), pred_dir, workers=2)
    assert one["mVC8"] == two["mVC8"] and one["mIoU"] == two["mIoU"]
    assert one["num_windows"] == {8: 18, 16: 1} and len(one["IoU_per_class"]) == 124


def test_undefined_vc_is_null_and_na(tmp_path, capsys):
    rs = np.random.RandomState(0)
    gt = rs.randint(1, 4, size=(3, 4, 5)).astype(np.uint8)  # 3 frames: no window of 8 or 16
    gt_root, pred_dir = write_case(str(tmp_path), [(gt, gt - 1)])
    out = tmp_path / "s.json"
    argv = ["--gt-root", gt_root, "--split", "val.txt", "--pred-dir", pred_dir, "--json", str(out)]
    assert cli.main(argv + ["--workers", "1"]) == 0
    assert json.loads(out.read_text()) == {"mIoU": 100.0, "mVC8": None, "mVC16": None}
    assert "n/a" in capsys.readouterr().out


def _rewrite(path, array, mode="L"):
    Image.fromarray(array, mode=mode).save(path)


def _pred(pred_dir, video=0, t=0):
    return os.path.join(pred_dir, f"video_{video}", _frame_name(t) + ".png")


def _gt(gt_root, sub, video=0, t=0, ext=".png"):
    return os.path.join(gt_root, "data", f"video_{video}", sub, _frame_name(t) + ext)


def _drop_video(gt_root, pred_dir):
    os.rename(os.path.join(pred_dir, "video_3"), os.path.join(pred_dir, "elsewhere"))


def _drop_frame(gt_root, pred_dir):
    os.remove(_pred(pred_dir, 1, 4))


def _extra_frame(gt_root, pred_dir):
    _rewrite(os.path.join(pred_dir, "video_1", "99999999.png"), np.zeros((6, 8), np.uint8))


def _pred_size(gt_root, pred_dir):
    _rewrite(_pred(pred_dir, 2, 5), np.zeros((6, 7), np.uint8))


def _class_out_of_range(gt_root, pred_dir):
    pred = np.zeros((6, 8), np.uint8)
    pred[2, 3] = 124
    _rewrite(_pred(pred_dir, 0, 2), pred)


def _rgb_prediction(gt_root, pred_dir):
    _rewrite(_pred(pred_dir, 0, 1), np.zeros((6, 8, 3), np.uint8), mode="RGB")


def _mask_size_in_video(gt_root, pred_dir):
    # frame 3 of video 4: mask, frame and prediction all 5x4 (the rest of the video is 8x6)
    _rewrite(_gt(gt_root, "mask", 4, 2), np.ones((4, 5), np.uint8))
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(_gt(gt_root, "origin", 4, 2, ".jpg"))
    _rewrite(_pred(pred_dir, 4, 2), np.zeros((4, 5), np.uint8))


def _no_pred_dir(gt_root, pred_dir):
    os.rename(pred_dir, pred_dir + "_moved")


def _bad_mask_value(gt_root, pred_dir):
    mask = np.ones((6, 8), np.uint8)
    mask[0, 0] = 200
    _rewrite(_gt(gt_root, "mask", 1, 0), mask)


BAD_INPUTS = [
    # (what is wrong, how to build it, text the error must contain)
    ("a video missing from the predictions", _drop_video, "video 'video_3'"),
    ("a frame missing", _drop_frame, "video_1/00000004.png (video 'video_1', frame '00000004')"),
    ("an extra frame", _extra_frame, "frame '99999999') is not a frame of the ground truth"),
    ("a prediction of another size", _pred_size, "frame '00000005') is 7x6 (WxH)"),
    ("a class index >= K", _class_out_of_range, "frame '00000002') holds values [124]"),
    ("an RGB prediction", _rgb_prediction, "frame '00000001') is a PNG image of mode 'RGB'"),
    ("a mask of another size", _mask_size_in_video, "the video's first mask is 8x6"),
    ("no prediction folder", _no_pred_dir, "Missing prediction folder"),
    ("a mask value above K", _bad_mask_value, "frame '00000000') holds values [200]"),
]


@pytest.mark.parametrize("what, build, message", BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS])
def test_cli_bad_input_is_one_error_line(case, tmp_path, capsys, what, build, message):
    gt_root, pred_dir = case
    build(gt_root, pred_dir)
    out = tmp_path / "scores.json"
    out.write_text("previous")
    argv = ["--gt-root", gt_root, "--split", "val.txt", "--pred-dir", pred_dir]
    assert cli.main(argv + ["--json", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert out.read_text() == "previous"  # not truncated


def test_cli_bad_options(case, tmp_path, capsys):
    gt_root, pred_dir = case
    argv = ["--gt-root", gt_root, "--split", "val.txt", "--pred-dir", pred_dir]
    assert cli.main(argv + ["--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert cli.main(argv + ["--workers", "0"]) == 2
    assert "workers must be >= 1" in capsys.readouterr().err
    assert cli.main(argv[:3] + ["missing.txt", *argv[4:]]) == 2
    assert "missing.txt" in capsys.readouterr().err

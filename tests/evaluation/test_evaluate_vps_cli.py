"""tools/evaluate_vps.py and evaluation/vps_eval.py end to end on tiny VIPSeg-layout files written
here: the table, the --json keys and values, the worker pool, and one row per bad input (an
``error:`` line naming the video and frame, exit status 2, an existing --json left untouched)."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from video_mask2former.data.vps import Segment, write_id_png
from video_mask2former.evaluation.vpq import VPQAccumulator
from video_mask2former.evaluation.vps_eval import evaluate_vps

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tools", "evaluate_vps.py")
CATEGORIES = [
    {"id": 1, "name": "person", "isthing": 1, "color": [220, 20, 60]},
    {"id": 5, "name": "car", "isthing": 1, "color": [0, 0, 142]},
    {"id": 10, "name": "sky", "isthing": 0, "color": [70, 130, 180]},
]


def _load_cli():
    spec = importlib.util.spec_from_file_location("evaluate_vps_cli", SCRIPT)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


CLI = _load_cli()


def _video(frames):
    """frames: list of (gt ids, {id: (category, crowd)}, pred ids, {id: category})."""
    return [(np.array(g), gs, np.array(p), ps) for g, gs, p, ps in frames]


# two videos of 4 x 6 frames: v1 (3 frames) has a person (7) crossing the sky (3), predicted
# with a track switch in frame 2 and a crowd; v2 (2 frames) is predicted perfectly
SKY, PERSON, CAR, CROWD = 3, 7, 9, 11
V1 = _video(
    [
        (
            [[3, 3, 3, 3, 3, 3], [3, 7, 7, 3, 3, 3], [3, 7, 7, 3, 11, 11], [0, 0, 0, 0, 0, 0]],
            {SKY: (10, 0), PERSON: (1, 0), CROWD: (1, 1)},
            [[4, 4, 4, 4, 4, 4], [4, 8, 8, 4, 4, 4], [4, 8, 8, 4, 8, 8], [0, 0, 4, 4, 0, 0]],
            {4: 10, 8: 1},
        ),
        (
            [[3, 3, 3, 3, 3, 3], [3, 3, 7, 7, 3, 3], [3, 3, 7, 7, 3, 3], [0, 0, 0, 0, 0, 0]],
            {SKY: (10, 0), PERSON: (1, 0)},
            [[4, 4, 4, 4, 4, 4], [4, 4, 8, 8, 4, 4], [4, 4, 8, 8, 4, 4], [0, 0, 0, 0, 0, 0]],
            {4: 10, 8: 1},
        ),
        (
            [[3, 3, 3, 3, 3, 3], [3, 3, 3, 7, 7, 3], [3, 3, 3, 7, 7, 3], [0, 0, 0, 0, 0, 0]],
            {SKY: (10, 0), PERSON: (1, 0)},
            [[4, 4, 4, 4, 4, 4], [4, 4, 4, 6, 6, 4], [4, 4, 4, 6, 6, 4], [0, 0, 0, 0, 0, 0]],
            {4: 10, 6: 1},
        ),
    ]
)
V2 = _video(
    [
        (
            [[9, 9, 3, 3, 3, 3]] * 4,
            {CAR: (5, 0), SKY: (10, 0)},
            [[2, 2, 1, 1, 1, 1]] * 4,
            {2: 5, 1: 10},
        ),
    ]
    * 2
)


def _write_case(root, videos):
    """Write ground truth (gt.json, gt/) and predictions (pred.json, pred/) under ``root``."""
    gt = {"videos": [], "annotations": [], "categories": CATEGORIES}
    pred = {"annotations": []}
    for video_id, frames in videos.items():
        for side in ("gt", "pred"):
            os.makedirs(os.path.join(root, side, video_id), exist_ok=True)
        images, gt_frames, pred_frames = [], [], []
        for t, (g, gs, p, ps) in enumerate(frames):
            name = f"{t:05d}.png"
            write_id_png(os.path.join(root, "gt", video_id, name), g)
            write_id_png(os.path.join(root, "pred", video_id, name), p)
            images.append({"id": f"{t:05d}", "file_name": name, "height": 4, "width": 6})
            segments = [
                {"id": k, "category_id": c, "iscrowd": crowd, "area": int((g == k).sum())}
                for k, (c, crowd) in gs.items()
            ]
            gt_frames.append({"image_id": f"{t:05d}", "file_name": name, "segments_info": segments})
            pred_frames.append(
                {
                    "image_id": f"{t:05d}",
                    "file_name": name,
                    "segments_info": [{"id": k, "category_id": c} for k, c in ps.items()],
                }
            )
        gt["videos"].append({"video_id": video_id, "images": images})
        gt["annotations"].append({"video_id": video_id, "annotations": gt_frames})
        pred["annotations"].append({"video_id": video_id, "annotations": pred_frames})
    for name, data in (("gt.json", gt), ("pred.json", pred)):
        with open(os.path.join(root, name), "w") as f:
            json.dump(data, f)


@pytest.fixture
def case(tmp_path):
    root = str(tmp_path)
    _write_case(root, {"v1": V1, "v2": V2})
    return root


def _args(root, *extra):
    return [
        "--gt-json",
        os.path.join(root, "gt.json"),
        "--gt-dir",
        os.path.join(root, "gt"),
        "--pred-json",
        os.path.join(root, "pred.json"),
        "--pred-dir",
        os.path.join(root, "pred"),
        *extra,
    ]


def _expected_vpq(sizes):
    """The same frames through VPQAccumulator directly."""
    acc = VPQAccumulator(CATEGORIES, sizes)
    for video_id, frames in (("v1", V1), ("v2", V2)):
        gt = [
            (g, {k: Segment(k, c, bool(cr)) for k, (c, cr) in gs.items()}) for g, gs, _, _ in frames
        ]
        acc.add_video(gt, [(p, ps) for _, _, p, ps in frames], video_id=video_id)
    return acc.result()


def test_cli_prints_the_table_and_writes_the_scores(case, capsys):
    out = os.path.join(case, "out", "scores.json")
    assert CLI.main(_args(case, "--window-sizes", "1", "2", "--workers", "1", "--json", out)) == 0
    table = capsys.readouterr().out
    assert "1 frames" in table and "2 frames" in table and "mean" in table and "STQ" in table
    with open(out) as f:
        scores = json.load(f)
    expected = _expected_vpq((1, 2))
    assert set(scores) == set(expected) | {"STQ", "AQ", "SQ"}
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value, abs=1e-12), key
    # by hand, windows of 2 (v1[0:2], v1[1:3], v2[0:2]): person 7 in v1[0:2] matches 8 with
    # IoU 8 / (10 + 8 - 8) = 0.8 (8 also covers the 2 crowd pixels); in v1[1:3] the switch from 8
    # to 6 leaves IoU 4 / 8 = 0.5 each (not a match): FN 1, FP 2 -> PQ 0.8 / 2.5; car: PQ 1
    assert scores["VPQ_thing@2"] == pytest.approx(100 * (0.8 / 2.5 + 1.0) / 2)
    # windows of 1: the person of frame 0 has IoU 4 / 6, the rest is perfect
    assert scores["VPQ_thing@1"] == pytest.approx(100 * ((2 / 3 + 2) / 3 + 1.0) / 2)
    assert [k for k in scores if k.startswith("VPQ@")] == ["VPQ@1", "VPQ@2"]
    assert not [n for n in os.listdir(os.path.dirname(out)) if n.endswith(".tmp")]


def test_perfect_prediction_scores_100(tmp_path):
    root = str(tmp_path)
    perfect = [(g, gs, g, {k: c for k, (c, _) in gs.items()}) for g, gs, _, _ in V2]
    _write_case(root, {"v2": perfect})
    scores = evaluate_vps(*_args_positional(root), window_sizes=(1, 2), workers=1)
    for key in ("VPQ", "VPQ_thing", "VPQ_stuff", "VPQ_SQ", "VPQ_RQ", "STQ", "AQ", "SQ"):
        assert scores[key] == pytest.approx(100.0), key


def _args_positional(root):
    return (
        os.path.join(root, "gt.json"),
        os.path.join(root, "gt"),
        os.path.join(root, "pred.json"),
        os.path.join(root, "pred"),
    )


def test_workers_give_the_same_floats(case):
    one = evaluate_vps(*_args_positional(case), window_sizes=(1, 2), workers=1)
    two = evaluate_vps(*_args_positional(case), window_sizes=(1, 2), workers=2)
    assert one == two


def test_vipseg_numbering_is_passed_to_stq(case):
    # v1 lists the sky first (instance 0 under the script's numbering, a stuff segment, so
    # no change); v2 lists the car first: its tube becomes a crowd and leaves AQ
    default = evaluate_vps(*_args_positional(case), window_sizes=(1,), workers=1)
    vipseg = evaluate_vps(
        *_args_positional(case), window_sizes=(1,), workers=1, stq_vipseg_numbering=True
    )
    assert vipseg["AQ"] != default["AQ"]
    assert vipseg["SQ"] == default["SQ"]
    assert {k: v for k, v in vipseg.items() if k.startswith("VPQ")} == {
        k: v for k, v in default.items() if k.startswith("VPQ")
    }


def test_no_stuff_is_null_in_json_and_na_in_table(tmp_path, capsys):
    root = str(tmp_path)
    things_only = [
        (np.where(g == SKY, 0, g), {k: v for k, v in gs.items() if k != SKY}, p, ps)
        for g, gs, p, ps in V1
    ]
    things_only = [
        (g, gs, np.where(p == 4, 0, p), {8: 1} if 8 in ps else {6: 1})
        for g, gs, p, ps in things_only
    ]
    _write_case(root, {"v1": things_only})
    out = os.path.join(root, "scores.json")
    assert CLI.main(_args(root, "--window-sizes", "1", "--workers", "1", "--json", out)) == 0
    assert "n/a" in capsys.readouterr().out
    with open(out) as f:
        scores = json.load(f)
    assert scores["VPQ_stuff"] is None and scores["VPQ_stuff@1"] is None
    assert not math.isnan(scores["VPQ_thing"])


def test_script_runs(case):
    """The file itself, as a user runs it (one subprocess; the rest call main())."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run(
        [sys.executable, SCRIPT, *_args(case, "--window-sizes", "1", "2", "--workers", "2")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert "mean" in run.stdout


# ------------------------------------------------------------------ bad inputs
def _edit_json(name, edit):
    def apply(root):
        path = os.path.join(root, name)
        with open(path) as f:
            data = json.load(f)
        edit(data)
        with open(path, "w") as f:
            json.dump(data, f)

    return apply


def _pred_frames(data, video="v1"):
    return next(a for a in data["annotations"] if a["video_id"] == video)["annotations"]


def _write_png(side, video, frame, ids):
    def apply(root):
        write_id_png(os.path.join(root, side, video, f"{frame:05d}.png"), np.array(ids))

    return apply


def _remove(relative):
    return lambda root: os.remove(os.path.join(root, relative))


def _grey_png(root):
    from PIL import Image

    Image.fromarray(np.zeros((4, 6), np.uint8)).save(os.path.join(root, "pred", "v1", "00001.png"))


def _nothing(root):
    pass


def _drop_video(data):
    data["annotations"] = [a for a in data["annotations"] if a["video_id"] != "v2"]


def _extra_video(data):
    data["annotations"].append({"video_id": "v9", "annotations": []})


def _drop_frame(data):
    _pred_frames(data).pop()


def _swap_frames(data):
    frames = _pred_frames(data)
    frames[0], frames[1] = frames[1], frames[0]


def _unknown_category(data):
    _pred_frames(data)[1]["segments_info"][0]["category_id"] = 77


def _unlisted_segment(data):
    _pred_frames(data)[1]["segments_info"].pop()


def _unlisted_gt_segment(data):
    next(a for a in data["annotations"] if a["video_id"] == "v2")["annotations"][1][
        "segments_info"
    ].pop(0)


BAD_INPUTS = [
    # (what is wrong, how to build it, extra arguments, texts the error must contain)
    ("video not predicted", _edit_json("pred.json", _drop_video), [], ["'v2'", "no prediction"]),
    ("video not in gt", _edit_json("pred.json", _extra_video), [], ["['v9']", "not in the ground"]),
    ("frame missing", _edit_json("pred.json", _drop_frame), [], ["'v1'", "2 predicted frames"]),
    ("frames reordered", _edit_json("pred.json", _swap_frames), [], ["'v1'", "frame 0", "00001"]),
    ("unknown category", _edit_json("pred.json", _unknown_category), [], ["'v1'", "77"]),
    (
        "pred PNG id not in JSON",
        _edit_json("pred.json", _unlisted_segment),
        [],
        ["'v1'", "00001.png", "pred", "not in its segments list"],
    ),
    (
        "gt PNG id not in JSON",
        _edit_json("gt.json", _unlisted_gt_segment),
        [],
        ["'v2'", "00001.png", "gt", "not in its segments list"],
    ),
    (
        "pred JSON id not in PNG",
        _write_png("pred", "v1", 1, [[4] * 6] * 4),
        [],
        ["'v1'", "00001.png", "[8] have no pixel"],
    ),
    (
        "pred PNG of another size",
        _write_png("pred", "v1", 2, [[4] * 5] * 4),
        [],
        ["'v1'", "00002.png", "same size"],
    ),
    ("pred PNG missing", _remove("pred/v1/00002.png"), [], ["'v1'", "00002.png", "Missing"]),
    ("pred PNG grey", _grey_png, [], ["'v1'", "00001.png", "RGB"]),
    ("gt json missing", _remove("gt.json"), [], ["gt.json"]),
    ("window too long", _nothing, ["--window-sizes", "1", "4"], ["[4]", "longest has 3"]),
    ("window zero", _nothing, ["--window-sizes", "0"], ["window_sizes"]),
    ("workers zero", _nothing, ["--workers", "0"], ["--workers"]),
]


@pytest.mark.parametrize(
    "what, build, extra, texts", BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS]
)
def test_bad_input(case, capsys, what, build, extra, texts):
    build(case)
    out = os.path.join(case, "scores.json")
    with open(out, "w") as f:
        f.write("previous")
    code = CLI.main(
        _args(case, "--workers", "1", "--window-sizes", "1", "2", "--json", out, *extra)
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for text in texts:
        assert text in err, (text, err)
    with open(out) as f:
        assert f.read() == "previous"  # not truncated
    assert [n for n in os.listdir(case) if n.endswith(".tmp")] == []


def test_json_folder_is_an_error(case, capsys):
    assert CLI.main(_args(case, "--json", case)) == 2
    assert "is a folder" in capsys.readouterr().err


def test_bad_input_in_a_worker_names_the_frame(case):
    # the error is raised in a worker process and reaches the caller intact
    _edit_json("pred.json", _unlisted_segment)(case)
    with pytest.raises(ValueError, match="video 'v1', frame 00001.png"):
        evaluate_vps(*_args_positional(case), window_sizes=(1,), workers=2)

"""demo_video/demo.py with panoptic and semantic configs (the vps / vss smoke schedules, random
weights, CPU): drawn frames, --save-masks folders that the scorers read (several videos into one
folder), --online equal to the offline windowed mode, the README's commands in a subprocess, and
a table of bad inputs."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import requires_detectron2
from tests.d2.test_demo import RUN_TIMEOUT_S, demo  # noqa: F401  (fixture)

pytestmark = requires_detectron2

NUM_FRAMES, HEIGHT, WIDTH = 3, 64, 80
# Random weights score every query low: keep them all so that the maps have segments.
KEEP_ALL = ("MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD", "0.0")
KEEP_ALL += ("MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD", "0.0")


def _config(kind):
    from tests.d2.helpers import CONFIG_DIR

    name = f"video_maskformer2_R18_{kind}_synthetic_smoke.yaml"
    return os.path.join(CONFIG_DIR, "quick_schedules", name)


@pytest.fixture(scope="module")
def seg_data(tmp_path_factory):
    """Synthetic VIPSeg-layout and VSPW-layout sets (2 val videos of 3 frames, 64 x 80) and
    random weights of the vps and vss smoke models."""
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from tests.d2.helpers import video_cfg
    from video_mask2former.data.synthetic_video_seg import write_synthetic_vps, write_synthetic_vss

    root = tmp_path_factory.mktemp("video_seg")
    sizes = dict(num_train_videos=1, num_val_videos=2, num_frames=NUM_FRAMES)
    vps = write_synthetic_vps(str(root / "vps"), height=HEIGHT, width=WIDTH, **sizes)["val"]
    vss = write_synthetic_vss(str(root / "vss"), height=HEIGHT, width=WIDTH, **sizes)["val"]
    weights = {}
    for kind in ("vps", "vss"):
        torch.manual_seed(0)
        model = build_model(video_cfg(_config(kind)))
        DetectionCheckpointer(model, str(root)).save(f"{kind}_model")
        weights[kind] = str(root / f"{kind}_model.pth")
    with open(vps[0]) as f:
        vps_videos = [v["video_id"] for v in json.load(f)["videos"]]
    with open(os.path.join(vss[0], vss[1])) as f:
        vss_videos = f.read().split()
    return {
        "vps": vps,
        "vss": vss,
        "weights": weights,
        "vps_videos": vps_videos,
        "vss_videos": vss_videos,
    }


def _argv(data, kind, *args, opts=()):
    return [
        "--config-file",
        _config(kind),
        *args,
        "--opts",
        "MODEL.DEVICE",
        "cpu",
        "MODEL.WEIGHTS",
        data["weights"][kind],
        *KEEP_ALL,
        *opts,
    ]


def _vps_frames(data, video):
    return os.path.join(data["vps"][1], video)


def _vss_frames(data, video):
    return os.path.join(data["vss"][0], "data", video, "origin")


def _pngs(folder):
    from PIL import Image

    return {name: np.asarray(Image.open(os.path.join(folder, name))) for name in os.listdir(folder)}


def test_panoptic_offline_and_online_masks_are_scored(demo, seg_data, tmp_path):  # noqa: F811
    from video_mask2former.data.vps import load_vps_predictions
    from video_mask2former.evaluation.vps_eval import evaluate_vps

    first, second = seg_data["vps_videos"]
    pred, vis = str(tmp_path / "pred"), tmp_path / "vis"
    assert (
        demo.main(
            _argv(
                seg_data,
                "vps",
                "--input",
                _vps_frames(seg_data, first),
                "--output",
                str(vis),
                "--save-masks",
                pred,
            )
        )
        == 0
    )
    assert sorted(os.listdir(vis)) == sorted(os.listdir(_vps_frames(seg_data, first)))
    # The second video, windowed, into the same folder: pred.json then lists both.
    argv = ("--input", _vps_frames(seg_data, second), "--save-masks", pred, "--window-size", "2")
    assert demo.main(_argv(seg_data, "vps", *argv)) == 0
    videos = load_vps_predictions(os.path.join(pred, "pred.json"), categories=range(6))
    assert sorted(videos) == sorted([first, second])
    assert all(len(v.frames) == NUM_FRAMES and v.frames[0].segments for v in videos.values())
    gt_json, _, gt_dir = seg_data["vps"]
    scores = evaluate_vps(
        gt_json,
        gt_dir,
        os.path.join(pred, "pred.json"),
        os.path.join(pred, "pan_pred"),
        window_sizes=(1, 2),
        workers=1,
    )
    assert 0.0 <= scores["VPQ"] <= 100.0 and 0.0 <= scores["STQ"] <= 100.0
    # --online with the same window: the same maps and segments, frame by frame.
    online = str(tmp_path / "online")
    argv = ("--online", "--input", _vps_frames(seg_data, second), "--save-masks", online)
    assert demo.main(_argv(seg_data, "vps", *argv, "--window-size", "2")) == 0
    folder = os.path.join("pan_pred", second)
    offline_pngs, online_pngs = _pngs(os.path.join(pred, folder)), _pngs(
        os.path.join(online, folder)
    )
    assert offline_pngs.keys() == online_pngs.keys() and len(offline_pngs) == NUM_FRAMES
    assert all(np.array_equal(offline_pngs[k], online_pngs[k]) for k in offline_pngs)
    online_video = load_vps_predictions(os.path.join(online, "pred.json"))[second]
    assert online_video == videos[second]


def test_semantic_offline_and_online_masks_are_scored(demo, seg_data, tmp_path):  # noqa: F811
    from video_mask2former.data.vss import read_vss_prediction
    from video_mask2former.evaluation.vss_eval import evaluate_vss

    pred = str(tmp_path / "pred")
    for video in seg_data["vss_videos"]:  # data/<video>/origin: the video id is <video>
        argv = ("--input", _vss_frames(seg_data, video), "--save-masks", pred)
        assert demo.main(_argv(seg_data, "vss", *argv, "--output", str(tmp_path / "v.mp4"))) == 0
    root, split = seg_data["vss"]
    scores = evaluate_vss(root, split, pred, num_classes=6, workers=1)
    assert 0.0 <= scores["mIoU"] <= 100.0 and scores["num_frames"] == 2 * NUM_FRAMES
    assert (tmp_path / "v.mp4").stat().st_size > 0
    video = seg_data["vss_videos"][0]
    for name in os.listdir(os.path.join(pred, video)):
        assert read_vss_prediction(os.path.join(pred, video, name), 6).shape == (HEIGHT, WIDTH)
    # --online, window 1, against the offline mode with the same window.
    windowed, online = str(tmp_path / "windowed"), str(tmp_path / "online")
    for out, extra in ((windowed, ()), (online, ("--online",))):
        argv = ("--input", _vss_frames(seg_data, video), "--save-masks", out, *extra)
        assert demo.main(_argv(seg_data, "vss", *argv, "--window-size", "1")) == 0
    a, b = _pngs(os.path.join(windowed, video)), _pngs(os.path.join(online, video))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_readme_commands_panoptic_demo_then_evaluate_vps(seg_data, tmp_path):
    """The README's commands, in subprocesses: the demo writes an .mp4 and a prediction folder,
    tools/evaluate_vps.py scores it."""
    from tests.d2.helpers import REPO_ROOT

    video = seg_data["vps_videos"][0]
    pred = str(tmp_path / "pred")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    demo_cmd = [sys.executable, os.path.join(REPO_ROOT, "demo_video", "demo.py")]
    demo_cmd += _argv(
        seg_data,
        "vps",
        "--input",
        _vps_frames(seg_data, video),
        "--output",
        str(tmp_path / "vis.mp4"),
        "--save-masks",
        pred,
    )
    proc = subprocess.run(
        demo_cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Wrote the panoptic masks of video '{video}' to {pred}" in proc.stdout
    gt_json = _one_video_ground_truth(seg_data["vps"][0], video, str(tmp_path / "gt.json"))
    gt_dir = seg_data["vps"][2]
    scores_json = str(tmp_path / "scores.json")
    eval_cmd = [sys.executable, os.path.join(REPO_ROOT, "tools", "evaluate_vps.py")]
    eval_cmd += ["--gt-json", gt_json, "--gt-dir", gt_dir, "--pred-json", f"{pred}/pred.json"]
    eval_cmd += ["--pred-dir", f"{pred}/pan_pred", "--window-sizes", "1", "2", "--workers", "1"]
    eval_cmd += ["--json", scores_json]
    proc = subprocess.run(
        eval_cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(scores_json) as f:
        scores = json.load(f)
    assert 0.0 <= scores["VPQ"] <= 100.0 and 0.0 <= scores["STQ"] <= 100.0


def _one_video_ground_truth(json_file, video, out):
    """The ground truth of ``json_file`` restricted to ``video`` (the demo predicts one)."""
    with open(json_file) as f:
        data = json.load(f)
    for key in ("videos", "annotations"):
        data[key] = [entry for entry in data[key] if entry["video_id"] == video]
    with open(out, "w") as f:
        json.dump(data, f)
    return out


# --- bad inputs: (what is wrong, how to build the arguments, error type, text) ---------------
PREVIOUS = "the previous run's output\n"


def _existing(tmp_path, name):
    path = tmp_path / name
    path.write_text(PREVIOUS)
    return str(path)


ROWS = [
    (
        "panoptic --save-masks is an existing file, found before the (missing) weights",
        lambda d, tmp: _argv(
            d,
            "vps",
            "--input",
            _vps_frames(d, d["vps_videos"][0]),
            "--save-masks",
            _existing(tmp, "masks.json"),
            opts=("MODEL.WEIGHTS", str(tmp / "missing.pth")),
        ),
        "OSError",
        "masks.json is a file: a panoptic model writes a folder of masks there",
    ),
    (
        "semantic --video-id with a path separator",
        lambda d, tmp: _argv(
            d,
            "vss",
            "--input",
            _vss_frames(d, d["vss_videos"][0]),
            "--save-masks",
            str(tmp / "pred"),
            "--video-id",
            "a/b",
        ),
        "UsageError",
        "--video-id: video id 'a/b' cannot name a folder of predictions",
    ),
    (
        "instances: a --video-id that is not an integer",
        lambda d, tmp: [
            "--config-file",
            _instance_config(),
            "--input",
            _vps_frames(d, d["vps_videos"][0]),
            "--save-masks",
            _existing(tmp, "m.json"),
            "--video-id",
            "abc",
            "--opts",
            "MODEL.DEVICE",
            "cpu",
        ],
        "UsageError",
        "--video-id 'abc': the YouTube-VIS results.json of video instances needs an integer",
    ),
    (
        "panoptic --output and --save-masks the same folder",
        lambda d, tmp: _argv(
            d,
            "vps",
            "--input",
            _vps_frames(d, d["vps_videos"][0]),
            "--save-masks",
            str(tmp / "out"),
            "--output",
            str(tmp / "out"),
        ),
        "UsageError",
        "are the same file",
    ),
    (
        "panoptic, an existing pred.json that is not a prediction file",
        lambda d, tmp: _argv(
            d,
            "vps",
            "--input",
            _vps_frames(d, d["vps_videos"][0]),
            "--save-masks",
            os.path.dirname(_existing_pred_json(tmp)),
        ),
        "VideoSegFormatError",
        "pred.json as JSON",
    ),
]


def _instance_config():
    from tests.d2.helpers import SMOKE_CONFIG

    return SMOKE_CONFIG


def _existing_pred_json(tmp_path):
    (tmp_path / "pred").mkdir()
    return _existing(tmp_path, os.path.join("pred", "pred.json"))


@pytest.mark.parametrize("build, error, text", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_demo_refuses(demo, seg_data, tmp_path, build, error, text):  # noqa: F811
    argv = build(seg_data, tmp_path)
    previous = [p for p in map(str, tmp_path.rglob("*")) if os.path.isfile(p)]
    with pytest.raises((ValueError, OSError)) as caught:
        demo.main(argv)
    names = [cls.__name__ for cls in type(caught.value).__mro__]
    assert error in names, f"{type(caught.value).__name__}: {caught.value}"
    assert text in str(caught.value) and "\n" not in str(caught.value)
    for path in previous:
        with open(path) as f:
            assert f.read() == PREVIOUS, f"{path} was changed"
    assert not [p for p in map(str, tmp_path.rglob("*")) if ".partial" in p]


def test_panoptic_from_an_onnx_file_matches_pytorch(demo, seg_data, tmp_path):  # noqa: F811
    """--onnx-model with a panoptic config: the config's task is applied to the ONNX network's
    outputs, giving PyTorch's maps (up to float rounding) in the same layout."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import torch

    from tests.d2.helpers import video_cfg
    from video_mask2former.d2 import build_inference_model
    from video_mask2former.data.vps import load_vps_predictions
    from video_mask2former.export import export_onnx

    cfg = video_cfg(_config("vps"), ["MODEL.WEIGHTS", seg_data["weights"]["vps"], *KEEP_ALL])
    onnx_file = str(tmp_path / "vps.onnx")
    export_onnx(build_inference_model(cfg), torch.zeros(2, 3, HEIGHT, WIDTH), onnx_file)
    video = seg_data["vps_videos"][0]
    runs = {}
    for name, extra in (("pytorch", ()), ("onnx", ("--onnx-model", onnx_file))):
        out = str(tmp_path / name)
        argv = ("--input", _vps_frames(seg_data, video), "--save-masks", out, *extra)
        assert demo.main(_argv(seg_data, "vps", *argv)) == 0
        runs[name] = (
            load_vps_predictions(os.path.join(out, "pred.json"))[video],
            _pngs(os.path.join(out, "pan_pred", video)),
        )
    (torch_video, torch_pngs), (onnx_video, onnx_pngs) = runs["pytorch"], runs["onnx"]
    assert [f.file_name for f in onnx_video.frames] == [f.file_name for f in torch_video.frames]
    for name, ids in torch_pngs.items():
        assert (onnx_pngs[name] == ids).all(axis=-1).mean() > 0.99

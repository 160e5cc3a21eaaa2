"""MODEL.INFERENCE_PRECISION / MODEL.COMPILE: the keys, their checks, --eval-only's autocast
(train_net_video.inference_autocast), the demo's --precision and the predictor's precision."""

import numpy as np
import pytest
import torch

from tests.conftest import requires_detectron2
from video_mask2former import precision

pytestmark = requires_detectron2


def test_defaults():
    from tests.d2.helpers import video_cfg

    cfg = video_cfg()
    assert cfg.MODEL.INFERENCE_PRECISION == "auto" and cfg.MODEL.COMPILE is False


@pytest.mark.parametrize("value", ["bfloat16", "FP32", "half", ""])
def test_bad_precision_is_a_config_error_naming_the_key_and_the_values(value):
    from video_mask2former.d2.config import ConfigError, get_video_cfg

    with pytest.raises(ConfigError, match="MODEL.INFERENCE_PRECISION must be one of auto, fp32"):
        get_video_cfg(opts=["MODEL.INFERENCE_PRECISION", value])


@pytest.mark.parametrize(
    "value, device, amp, expected",
    [
        ("auto", "cpu", True, None),  # AMP is a CUDA setting: the CPU default is float32
        ("auto", "cuda", True, torch.float16),  # the official evaluation
        ("auto", "cuda", False, None),
        ("fp32", "cuda", True, None),
        ("bf16", "cpu", False, torch.bfloat16),
        ("fp16", "cuda", False, torch.float16),
    ],
)
def test_eval_only_autocast_follows_the_key(value, device, amp, expected, monkeypatch):
    import train_net_video
    from tests.d2.helpers import video_cfg

    cfg = video_cfg(opts=["MODEL.INFERENCE_PRECISION", value, "SOLVER.AMP.ENABLED", amp])
    cfg.MODEL.DEVICE = device
    seen = []
    monkeypatch.setattr(
        precision.torch, "autocast", lambda device_type, dtype: seen.append((device_type, dtype))
    )
    train_net_video.inference_autocast(cfg)
    assert seen == ([] if expected is None else [(device, expected)])


def test_demo_precision_argument_sets_the_key():
    from tests.d2.test_demo import demo_argv
    from video_mask2former.d2.demo import cli

    parser = cli.get_parser()
    cfg = cli.setup_cfg(parser.parse_args(demo_argv("--input", "x", "--precision", "bf16")))
    assert cfg.MODEL.INFERENCE_PRECISION == "bf16"
    cfg = cli.setup_cfg(parser.parse_args(demo_argv("--input", "x")))
    assert cfg.MODEL.INFERENCE_PRECISION == "auto"


def test_demo_bad_precision_is_a_usage_error(capsys):
    from video_mask2former.d2.demo import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.get_parser().parse_args(["--input", "x", "--precision", "bfloat16"])
    assert exit_info.value.code == 2
    assert "--precision: invalid choice: 'bfloat16'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def smoke_weights(tmp_path_factory):
    from tests.d2.test_demo import weights

    return weights.__wrapped__(tmp_path_factory)


def _predict(weights, value):
    from tests.d2.helpers import SMOKE_CONFIG, video_cfg
    from video_mask2former.d2.demo.predictor import VideoPredictor

    cfg = video_cfg(SMOKE_CONFIG, ["MODEL.WEIGHTS", weights, "MODEL.INFERENCE_PRECISION", value])
    predictor = VideoPredictor(cfg)
    dtypes = []
    predict = predictor.model.predict
    predictor.model.predict = lambda *a, **k: _record(dtypes, predict(*a, **k))
    frames = [np.random.default_rng(t).integers(0, 256, (48, 64, 3), np.uint8) for t in range(2)]
    return predictor(frames, (48, 64)), dtypes


def _record(dtypes, outputs):
    dtypes.append(outputs["pred_masks"].dtype)
    return outputs


def test_predictor_runs_bf16_on_a_fast_cpu_and_fp32_with_a_warning_on_a_slow_one(
    smoke_weights, monkeypatch
):
    monkeypatch.setattr(precision, "_warned", set())
    monkeypatch.delenv(precision.ALLOW_SLOW_ENV, raising=False)
    reference, dtypes = _predict(smoke_weights, "fp32")
    assert dtypes == [torch.float32]
    monkeypatch.setattr(precision, "cpu_runs_fast", lambda dtype: True)
    _, dtypes = _predict(smoke_weights, "bf16")
    assert dtypes == [torch.bfloat16]
    monkeypatch.setattr(precision, "cpu_runs_fast", lambda dtype: False)
    with pytest.warns(precision.SlowPrecisionWarning, match="runs in float32 instead"):
        result, dtypes = _predict(smoke_weights, "bf16")
    assert dtypes == [torch.float32]
    assert result["pred_labels"] == reference["pred_labels"]
    assert result["pred_scores"] == pytest.approx(reference["pred_scores"], abs=1e-6)


@pytest.mark.parametrize("window_size", [0, 1])
def test_predictor_runs_the_whole_video_within_the_cpu_block_cache(
    smoke_weights, window_size, monkeypatch
):
    """The demo's offline predictor keeps the windows' linking and masks in the block cache, as
    the model's own modes do (the network alone in it would leave their peak on top of it)."""
    from mask2former_ops.cpu_cache import cpu_cache_stats
    from tests.d2.helpers import SMOKE_CONFIG, video_cfg
    from video_mask2former.d2.demo import predictor as predictor_module
    from video_mask2former.inference import modes

    if not cpu_cache_stats()["available"]:
        pytest.skip("mask2former_ops._C is not built")
    installed = []
    for module, name in ((predictor_module, "windowed_inference"), (modes, "_postprocess_video")):
        original = getattr(module, name)

        def recording(*args, _original=original, **kwargs):
            installed.append(cpu_cache_stats()["installed"])
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, recording)
    opts = ["MODEL.WEIGHTS", smoke_weights, "MODEL.MASK_FORMER.TEST.WINDOW_SIZE", window_size]
    predictor = predictor_module.VideoPredictor(video_cfg(SMOKE_CONFIG, opts))
    frames = [np.random.default_rng(t).integers(0, 256, (48, 64, 3), np.uint8) for t in range(2)]
    predictor(frames, (48, 64))
    assert installed == [1]

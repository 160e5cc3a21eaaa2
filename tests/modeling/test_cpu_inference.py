"""CPU inference paths of the model: the Conv2d inference copy (FrozenBN folded, channels-last),
channels-last frames, the bf16 path, the slow-CPU fallback, the profile labels, the compile option,
the CPU block cache.

Tolerances: the folded / channels-last network differs from the module as written by float32
rounding only (outputs within 1e-4 absolute on the tiny model's O(1) values); bf16 keeps the top
labels of fp32 and scores within 0.05 (bf16 has 8 bits of mantissa: ~4e-3 relative per op).
"""

import warnings

import pytest
import torch
from torch import nn

from mask2former_ops.cpu_cache import cpu_cache_stats, empty_cpu_cache
from tests.modeling.tiny_video_model import build_tiny_model, random_video
from video_mask2former import precision
from video_mask2former.inference.modes import network_outputs
from video_mask2former.modeling.layers import Conv2d, FrozenBatchNorm2d
from video_mask2former.structures import ShapeSpec


def _frozen_bn(channels: int, seed: int) -> FrozenBatchNorm2d:
    generator = torch.Generator().manual_seed(seed)
    norm = FrozenBatchNorm2d(channels)
    norm.weight.copy_(torch.rand(channels, generator=generator) + 0.5)
    norm.bias.copy_(torch.randn(channels, generator=generator))
    norm.running_mean.copy_(torch.randn(channels, generator=generator))
    norm.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
    return norm


class FrozenBNBackbone(nn.Module):
    """Conv2d + FrozenBatchNorm2d layers (the ResNet's kind) giving res2..res5."""

    channels = {"res2": 8, "res3": 16, "res4": 24, "res5": 32}
    size_divisibility = 0

    def __init__(self):
        super().__init__()
        self.stem = Conv2d(3, 8, kernel_size=4, stride=4, bias=False, norm=_frozen_bn(8, 1))
        self.res3 = Conv2d(8, 16, 3, stride=2, padding=1, bias=False, norm=_frozen_bn(16, 2))
        self.res4 = Conv2d(16, 24, 3, stride=2, padding=1, norm=_frozen_bn(24, 3))
        self.res5 = Conv2d(24, 32, 3, stride=2, padding=1, bias=False, norm=_frozen_bn(32, 4))

    def output_shape(self):
        return {
            name: ShapeSpec(channels=c, stride=4 * 2**i)
            for i, (name, c) in enumerate(self.channels.items())
        }

    def forward(self, x):
        res2 = torch.relu(self.stem(x))
        res3 = torch.relu(self.res3(res2))
        res4 = torch.relu(self.res4(res3))
        return {"res2": res2, "res3": res3, "res4": res4, "res5": self.res5(res4)}


def _model(**kwargs):
    torch.manual_seed(0)
    model = build_tiny_model(backbone=FrozenBNBackbone()).eval()
    for name, value in kwargs.items():
        setattr(model, name, value)
    return model


def _raw(model, video, grad: bool = False):
    with torch.set_grad_enabled(grad):
        outputs, _, _ = network_outputs(model, [video])
    return {name: outputs[name].detach() for name in ("pred_logits", "pred_masks", "pred_embeds")}


def test_conv_inference_copy_equals_conv_then_frozen_bn():
    conv = Conv2d(6, 10, 3, padding=1, norm=_frozen_bn(10, 0)).eval()
    x = torch.randn(2, 6, 9, 11)
    expected = conv.norm(torch.nn.functional.conv2d(x, conv.weight, conv.bias, padding=1))
    with torch.no_grad():
        got = conv(x)
    weight, _, folded = conv.inference_weights()
    assert folded and weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)


def test_inference_copy_follows_new_weights():
    """A weight loaded after the first call is used by the next one (the copy is re-made)."""
    conv = Conv2d(4, 4, 1, bias=False, norm=_frozen_bn(4, 0)).eval()
    x = torch.randn(1, 4, 5, 5)
    with torch.no_grad():
        conv(x)
        conv.load_state_dict({**conv.state_dict(), "norm.bias": torch.full((4,), 7.0)})
        after_bias = conv(x)
        conv.weight.mul_(2)
        after_weight = conv(x)
    with torch.enable_grad():
        expected = conv(x)  # the module as written
    assert torch.allclose(after_weight, expected, atol=1e-5)
    assert not torch.allclose(after_bias, after_weight, atol=1e-3)


def test_cpu_inference_path_matches_module_as_written_and_keeps_the_state_dict():
    """no_grad eval (folded BN, channels-last frames and weights) vs autograd on (as written)."""
    model = _model()
    before = {k: (v.clone(), v.stride()) for k, v in model.state_dict().items()}
    video = {"image": random_video(2, 32, 32)}
    fast = _raw(model, video)
    written = _raw(model, video, grad=True)
    plain = _raw(_model(channels_last=False), video)
    for name in fast:
        assert torch.allclose(fast[name], written[name], atol=1e-4), name
        assert torch.allclose(fast[name], plain[name], atol=1e-4), name
    after = model.state_dict()
    assert list(after) == list(before)
    for key, (value, stride) in before.items():
        assert torch.equal(after[key], value) and after[key].stride() == stride, key


def test_training_after_inference_uses_the_trainable_weights():
    model = _model()
    with torch.no_grad():
        network_outputs(model, [{"image": random_video(2, 32, 32)}])
    model.train()
    images = torch.randn(2, 3, 32, 32)
    outputs = model.predict(images, 2, keep_aux=False)
    outputs["pred_masks"].sum().backward()
    assert model.backbone.stem.weight.grad is not None
    assert model.backbone.stem._inference_weights is None


def _top(result, k=3):
    return result["pred_labels"][:k], result["pred_scores"][:k]


def test_bf16_path_gives_the_fp32_top_labels(monkeypatch):
    monkeypatch.setattr(precision, "cpu_runs_fast", lambda dtype: True)
    model = _model()
    video = {"image": random_video(2, 32, 32, seed=3)}
    with torch.no_grad():
        reference = model([video])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            raw = _raw(model, video)
            result = model([video])
    assert raw["pred_masks"].dtype == torch.bfloat16  # the network did run in bf16
    labels, scores = _top(result)
    ref_labels, ref_scores = _top(reference)
    assert labels == ref_labels
    assert max(abs(a - b) for a, b in zip(scores, ref_scores)) < 0.05


def test_slow_cpu_warns_once_and_runs_fp32(monkeypatch):
    monkeypatch.setattr(precision, "cpu_runs_fast", lambda dtype: False)
    monkeypatch.setattr(precision, "_warned", set())
    monkeypatch.delenv(precision.ALLOW_SLOW_ENV, raising=False)
    model = _model()
    video = {"image": random_video(2, 32, 32)}
    reference = _raw(model, video)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.warns(precision.SlowPrecisionWarning, match="CPU capability"):
            first = _raw(model, video)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a second call does not warn again
            _raw(model, video)
    assert first["pred_masks"].dtype == torch.float32
    for name in first:
        assert torch.equal(first[name], reference[name]), name


@pytest.mark.parametrize("opt_in", ["argument", "environment"])
def test_slow_cpu_runs_bf16_when_opted_in(monkeypatch, opt_in):
    monkeypatch.setattr(precision, "cpu_runs_fast", lambda dtype: False)
    monkeypatch.setattr(precision, "_warned", set())
    model = _model()
    if opt_in == "argument":
        model.allow_slow_low_precision = True
    else:
        monkeypatch.setenv(precision.ALLOW_SLOW_ENV, "1")
    with torch.autocast("cpu", dtype=torch.bfloat16), warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = _raw(model, {"image": random_video(2, 32, 32)})
    assert raw["pred_masks"].dtype == torch.bfloat16


def test_profile_has_one_range_per_part():
    model = _model()
    with torch.no_grad(), torch.profiler.profile() as profile:
        model([{"image": random_video(2, 32, 32)}])
    names = {event.key for event in profile.key_averages()}
    assert {"backbone", "pixel_decoder", "transformer_decoder", "postprocess"} <= names


def test_compile_option_compiles_the_network_once_for_inference(monkeypatch):
    compiled = []

    def fake_compile(function):
        compiled.append(function)
        return function

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = _model(compile_network=True)
    video = {"image": random_video(2, 32, 32)}
    with torch.no_grad():
        first = model([video])
        second = model([video])
    assert len(compiled) == 1 and first["pred_labels"] == second["pred_labels"]
    model.train()
    model.predict(torch.randn(2, 3, 32, 32), 2, keep_aux=False)  # training: not compiled
    assert len(compiled) == 1


def test_inference_options_pass_through_the_builder():
    from video_mask2former.modeling.build import build_video_maskformer

    with torch.device("meta"):
        model = build_video_maskformer(
            "R50",
            allow_slow_low_precision=True,
            compile_network=True,
            channels_last=False,
            cache_cpu_blocks=False,
        )
    assert model.allow_slow_low_precision and model.compile_network and not model.channels_last
    assert not model.cache_cpu_blocks


@pytest.mark.parametrize("channels_last", [False, True])
def test_mask_features_are_laid_out_once_for_every_layer(channels_last):
    """The mask heads multiply a view: (B, C_m, T*h*w) of the features laid out once."""
    from video_mask2former.modeling.transformer_decoder import _frames_as_matrix, _matrix_friendly

    x = torch.randn(2 * 3, 4, 5, 6)  # (B*T, C_m, h, w)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    videos = x.view(2, 3, 4, 5, 6)
    laid_out = _matrix_friendly(videos)
    assert (laid_out.data_ptr() == videos.data_ptr()) == channels_last  # a copy only if needed
    matrix = _frames_as_matrix(laid_out)
    assert matrix.data_ptr() == laid_out.data_ptr()  # a view: no copy per layer
    assert torch.equal(matrix, videos.transpose(1, 2).reshape(2, 4, 3 * 5 * 6))


needs_block_cache = pytest.mark.skipif(
    not cpu_cache_stats()["available"], reason="mask2former_ops._C is not built"
)


@needs_block_cache
def test_block_cache_serves_cpu_inference_only():
    model = _model()
    installed = []
    network = model._network

    def recording_network(*args):
        installed.append(cpu_cache_stats()["installed"])
        return network(*args)

    model._network = recording_network
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        model.predict(images, 2, keep_aux=False)  # eval, no autograd: the cache
    model.predict(images, 2, keep_aux=False)  # autograd on: as written
    model.cache_cpu_blocks = False
    with torch.no_grad():
        model.predict(images, 2, keep_aux=False)
    model.cache_cpu_blocks = True
    model.train()
    with torch.no_grad():
        model.predict(images, 2, keep_aux=False)
    assert installed == [1, 0, 0, 0]
    assert cpu_cache_stats()["installed"] == 0


@needs_block_cache
def test_block_cache_changes_no_result_and_training_returns_its_memory():
    video = {"image": random_video(2, 384, 384)}  # intermediates of 1 MiB and more
    empty_cpu_cache()
    before = cpu_cache_stats()
    model = _model()
    cached = _raw(model, video)
    after = cpu_cache_stats()
    again = _raw(model, video)  # from blocks the first call used and freed
    plain = _raw(_model(cache_cpu_blocks=False), video)
    assert after["hits"] > before["hits"] and after["reserved_bytes"] > 0
    for name in cached:
        assert torch.equal(cached[name], plain[name]), name
        assert torch.equal(again[name], plain[name]), name
    del cached, again
    _model().train()
    assert cpu_cache_stats()["reserved_bytes"] == 0


@needs_block_cache
@pytest.mark.parametrize("window_size", [0, 2])
def test_block_cache_covers_the_whole_inference_call(window_size, monkeypatch):
    """Post-processing and window linking run within the cache too (their peak would otherwise
    come on top of the cache's reserved memory), whole video and windowed alike."""
    from video_mask2former.inference import modes

    installed = []
    for name in ("_postprocess_video", "windowed_inference"):
        original = getattr(modes, name)

        def recording(*args, _original=original, **kwargs):
            installed.append(cpu_cache_stats()["installed"])
            return _original(*args, **kwargs)

        monkeypatch.setattr(modes, name, recording)
    model = _model(window_size=window_size)
    model([{"image": random_video(4, 32, 32)}])
    model.cache_cpu_blocks = False
    model([{"image": random_video(4, 32, 32)}])
    assert installed == [1, 0]


@needs_block_cache
def test_block_cache_covers_a_streams_windows(monkeypatch):
    """A stream's windows (network, linking, masks) run within the cache, pushed frame by frame,
    and nothing between pushes does."""
    from video_mask2former.inference.streaming import VideoStream

    installed = []
    report = VideoStream._report

    def recording(self, *args):
        installed.append(cpu_cache_stats()["installed"])
        return report(self, *args)

    monkeypatch.setattr(VideoStream, "_report", recording)
    model = _model()
    stream = model.stream(window_size=2)
    for frame in random_video(4, 32, 32):
        stream.push(frame)
        assert cpu_cache_stats()["installed"] == 0
    assert installed == [1, 1]

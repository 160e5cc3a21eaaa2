"""The machine's description and matmul peak, and the skipping of precisions that are slow here
(:mod:`benchmarks.hardware`, :mod:`benchmarks.modes`)."""

import pytest
import torch

from benchmarks import hardware, modes


def test_matmul_peak_is_positive_and_stays_small():
    peak = hardware.matmul_tflops(torch.float32, "cpu", sizes=(32, 64))
    assert peak["tflops"] > 0 and peak["size"] in (32, 64) and peak["seconds"] >= 0


def test_a_slow_matmul_stops_the_growth(monkeypatch):
    calls = []
    monkeypatch.setattr(hardware, "_timed_matmul", lambda a, b, device: calls.append(len(a)) or 1.0)
    peak = hardware.matmul_tflops(torch.float32, "cpu", sizes=(16, 32, 64))
    assert calls == [16] and peak["size"] == 16  # one untimed call, no repeats, no larger size


def _peaks(fp32: float, bf16: float) -> dict:
    return {"fp32": {"tflops": fp32, "size": 256}, "bf16": {"tflops": bf16, "size": 256}}


def test_modes_slower_than_float32_are_skipped_with_the_reason():
    names = ["fp32", "bf16", "compiled", "compiled-bf16"]
    kept, skipped = hardware.split_modes(names, modes.amp_of, _peaks(0.4, 0.001))
    assert kept == ["fp32", "compiled"] and set(skipped) == {"bf16", "compiled-bf16"}
    assert "bf16 matmul 1 GFLOP/s < float32 400 GFLOP/s" in skipped["bf16"]
    assert hardware.split_modes(names, modes.amp_of, _peaks(0.4, 0.001), force=True)[0] == names
    assert hardware.split_modes(names, modes.amp_of, _peaks(0.4, 2.6)) == (names, {})


def test_measure_peaks_measures_each_reduced_precision_once(monkeypatch):
    dtypes = []
    monkeypatch.setattr(
        hardware, "matmul_tflops", lambda dtype, device: dtypes.append(dtype) or {"tflops": 1.0}
    )
    peaks = hardware.measure_peaks("cpu", ["none", "bf16", "bf16", "fp16"])
    assert list(peaks) == ["fp32", "bf16", "fp16"]
    assert dtypes == [torch.float32, torch.bfloat16, torch.float16]


def test_cpu_flags_and_model_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: Some CPU\nflags\t\t: fpu avx2 fma amx_bf16\n")
    flags = hardware.cpu_flags(str(info))
    assert flags["avx2"] and flags["amx_bf16"] and not flags["avx512_bf16"]
    assert hardware.cpu_model(str(info)) == "Some CPU"
    assert hardware.cpu_flags(str(tmp_path / "missing")) == {}
    line = hardware.machine_line(
        {"cpu_model": "Some CPU", "cpu_flags": flags, "torch_cpu_capability": "AVX2", "threads": 2}
    )
    assert "flags avx2 fma amx_bf16 (not: avx512f" in line and "2 threads" in line


def test_modes_are_named_and_applied_in_one_place():
    assert modes.mode_name("none") == "fp32" and modes.amp_of("compiled-bf16") == "bf16"
    with pytest.raises(ValueError, match="unknown mode 'int8'"):
        modes.mode_name("int8")

    model = torch.nn.Module()  # the switches of a VideoMaskFormer, as attributes
    with modes.apply_mode(model, "fp32", torch.device("cpu"))():
        assert not torch.is_autocast_enabled("cpu")
    assert model.compile_network is False
    with modes.apply_mode(model, "compiled-bf16", torch.device("cpu"))():
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert torch.is_autocast_enabled("cpu")
    assert model.compile_network is True
    assert model.allow_slow_low_precision is True  # a low-precision mode runs only when chosen
    assert model.cache_cpu_blocks is True
    with modes.apply_mode(model, "fp32-no-cache", torch.device("cpu"))():
        assert not torch.is_autocast_enabled("cpu")
    assert model.cache_cpu_blocks is False and model.compile_network is False

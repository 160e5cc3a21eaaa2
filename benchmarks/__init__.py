"""Speed, memory and accuracy measurements, and the GPU report (not part of the installed library).

Run each from the repository root as a module, e.g. ``python -m benchmarks.benchmark_inference
--help``: a benchmark that reports a peak memory runs every setting in a fresh child process of
itself, and they all share :mod:`benchmarks.common` (child processes, peak memory, synthetic
inputs, model building, tables), which ``python -m`` makes importable without any ``sys.path``
edit. The user-facing command lines (evaluation, conversion, export) are in ``tools/``.

- ``benchmark_inference``: whole-video, windowed and streaming inference: time per frame, peak
  memory, stream latency, and the post-processing alone;
- ``benchmark_inference_ap``: AP of the same modes on synthetic videos (needs detectron2);
- ``benchmark_ms_deform_attn``: the deformable-attention op's kernels;
- ``benchmark_vs_official``: this project (fp32, bf16, compiled) against the official code
  (inference and training), with FLOPs and the achieved share of the matmul peak; its parts are
  in ``vs_official/`` (inputs, models, what a child measures, the report);
- ``benchmark_rle``, ``benchmark_eval``, ``benchmark_frame_reading``: mask encoding, the
  YouTube-VIS metric and annotation loading, strict frame reading;
- ``profile_inference``: ``torch.profiler`` over whole-video inference: time per part
  (backbone, pixel decoder, deformable attention, transformer decoder, post-processing) and per
  operator;
- ``joint_training_experiment``: joint video + image training on synthetic data (README);
- ``hardware`` (CPU model and flags, the measured matmul peak per dtype, skipping precisions
  that are slow on the machine), ``modes`` (fp32 / bf16 / compiled, applied in one function),
  ``flops`` (FLOPs of a call, the deformable attention counted by hand): shared helpers;
- ``gpu_report``: one command on a GPU machine: build, test, benchmark, report.
"""

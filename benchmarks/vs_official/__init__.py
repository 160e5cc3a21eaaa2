"""This project against the official Mask2Former video code, the parts of
``python -m benchmarks.benchmark_vs_official`` (the command line and the parent process):

- :mod:`.inputs`: the synthetic video and training batch, the same in every child (seeded);
- :mod:`.models`: building ours or the official model with the shared weights;
- :mod:`.measure`: what a child process measures (inference, training step, FLOPs);
- :mod:`.report`: ratios, parity with the official results, targets, the printed table.
"""

"""Tests of the benchmarks (benchmarks/): their measurements on tiny inputs, their tables."""

"""Evaluation: pure metric functions and intrinsic benchmarks."""

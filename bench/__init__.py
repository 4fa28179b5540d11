"""Benchmarks: each script prints its numbers and the baseline it compares against, measured in the same run."""

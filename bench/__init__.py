"""Benchmarks that print their ratios against a baseline measured in the same run."""

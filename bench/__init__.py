"""Benchmarks with same-run baselines: `python -m bench [--quick] [--only SCENARIO ...]`.

See bench/README.md for what each scenario measures and how to read `bench/results.json`.
"""

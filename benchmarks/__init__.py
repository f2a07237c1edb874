"""Benchmark scripts of ocp_learn, run from the repository root.

Each ``bench_*.py`` is a module with ``main(argv)``; run one as
``python -m benchmarks.bench_core`` or through the manifest
(:mod:`benchmarks.manifest`) with ``ocp-learn bench ID|all [--quick]``.
"""

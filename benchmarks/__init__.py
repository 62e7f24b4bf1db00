"""Benchmark suite: every ``benchmarks/bench_*.py`` module contributes entries.

A benchmark module exposes ``run(quick: bool = False) -> list[dict]``; each entry is
``{"name", "value", "unit", "baseline_name", "baseline_value", "ratio", "target", "notes"}``
(baseline measured in the same run, side by side; ``ratio`` = value / baseline_value or the
speed-up as the entry defines it in ``notes``). ``python -m benchmarks`` runs them all and
writes ``build/bench/results.json`` with machine info and the git revision.
"""

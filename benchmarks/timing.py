"""Timing helper for benchmarks: best-of-N wall time of a callable."""
from __future__ import annotations

import time


def best_time(fn, repeats: int = 3, warmup: int = 1, clock=time.perf_counter) -> float:
    """Minimum time [s] of ``fn()`` over ``repeats`` runs after ``warmup`` runs.

    ``clock``: ``time.perf_counter`` (wall) or ``time.process_time`` (this process's CPU time,
    less sensitive to other load on a shared machine).
    """
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def entry(name: str, value: float, unit: str, baseline_name: str | None = None,
          baseline_value: float | None = None, ratio: float | None = None, target: str = "", notes: str = "") -> dict:
    """One benchmark result row (see benchmarks)."""
    if ratio is None and baseline_value:
        ratio = value / baseline_value
    return {"name": name, "value": float(value), "unit": unit, "baseline_name": baseline_name,
            "baseline_value": None if baseline_value is None else float(baseline_value),
            "ratio": None if ratio is None else float(ratio), "target": target, "notes": notes}

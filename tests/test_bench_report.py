"""bench/report.py's reading of the "PostgreSQL within 1.5x of SQLite" target: the worst factor
over the figures that have a target of their own, whichever way each figure is better."""

from __future__ import annotations

from typing import Any

from bench.report import postgres_factor


def doc(**figures: tuple[float, float]) -> dict[str, Any]:
    """``scenario__figure=(sqlite, postgres)`` medians."""
    results: dict[str, dict[str, Any]] = {"sqlite": {}, "postgres": {}}
    for key, pair in figures.items():
        scenario, figure = key.split("__")
        for db, value in zip(("sqlite", "postgres"), pair):
            results[db].setdefault(scenario, {"figures": {}})["figures"][figure] = {
                "median": value, "min": value, "max": value}
    return {"results": results}


def test_the_worst_figure_with_a_target_is_the_verdict() -> None:
    # throughput (higher is better): 1,000 against 800 is 1.25x; the hop (lower is better):
    # 2 against 3.2 ms is 1.6x; the hop's p99 has no target and is left out at 3x
    d = doc(throughput__tasks_per_s=(1000, 800), latency__hop_p50_ms=(2.0, 3.2),
            latency__hop_p99_ms=(2.0, 6.0))
    factor, label = postgres_factor(d)
    assert round(factor, 2) == 1.6 and label == "2 chain hop p50"
    # PostgreSQL faster on one figure, slower on the other: the slower one counts
    d = doc(throughput__tasks_per_s=(1000, 1200), metrics__scrape_ms=(4.0, 8.4))
    factor, label = postgres_factor(d)
    assert round(factor, 2) == 2.1 and label.startswith("8 /metrics scrape")


def test_no_verdict_without_both_databases() -> None:
    d = doc(throughput__tasks_per_s=(1000, 800))
    del d["results"]["postgres"]
    assert postgres_factor(d) is None

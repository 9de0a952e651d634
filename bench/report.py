"""The targets and the table printed at the end of a run (Markdown: it goes into
``docs/performance.md`` as is)."""

from __future__ import annotations

from typing import Any

# (scenario, figure, label, unit, better, ratio to the bare loop: "throughput" | "rtt" | None)
FIGURES: list[tuple[str, str, str, str, str, str | None]] = [
    ("throughput", "tasks_per_s", "1 throughput", "tasks/s", "higher", "throughput"),
    ("latency", "hop_p50_ms", "2 chain hop p50", "ms", "lower", "rtt"),
    ("latency", "hop_p99_ms", "2 chain hop p99", "ms", "lower", "rtt"),
    ("latency", "hop_user_ms", "2 chain: first start to last end / hops", "ms", "lower", "rtt"),
    ("fanout", "seconds", "3 fan-out 500 + fan-in", "s", "lower", None),
    ("fanout", "tasks_per_s", "3 fan-out rate", "tasks/s", "higher", "throughput"),
    ("fanout", "reduce_hop_ms", "3 fan-in hop (500 results)", "ms", "lower", "rtt"),
    ("many_graphs", "graphs_per_s", "4 many graphs", "graphs/s", "higher", None),
    ("many_graphs", "tasks_per_s", "4 many graphs, tasks", "tasks/s", "higher", "throughput"),
    ("many_graphs", "tasks_vs_one_graph", "4 many graphs : one 1,000-task graph (same run)", "x",
     "higher", None),
    ("nesting", "seconds", "5 nesting 100 x 2 deep", "s", "lower", None),
    ("scale", "kb_per_graph", "6 scheduler memory / graph", "KB", "lower", None),
    ("scale", "cpu_ms_per_event_100", "6 CPU / event, 100 graphs", "ms", "lower", None),
    ("scale", "cpu_ms_per_event_10000", "6 CPU / event, 10,000 graphs", "ms", "lower", None),
    ("scale", "cost_ratio", "6 CPU / event 10,000 : 100", "x", "lower", None),
    ("scale", "net_cpu_ms_per_event_100", "6 CPU / event less periodic work, 100", "ms", "lower",
     None),
    ("scale", "net_cpu_ms_per_event_10000", "6 CPU / event less periodic work, 10,000", "ms",
     "lower", None),
    ("scale", "net_cost_ratio", "6 CPU / event less periodic work 10,000 : 100", "x", "lower",
     None),
    ("scale", "idle_cpu_ms_per_s_100", "6 idle CPU, 100 graphs", "ms/s", "lower", None),
    ("scale", "idle_cpu_ms_per_s_10000", "6 idle CPU, 10,000 graphs", "ms/s", "lower", None),
    ("console", "key_to_screen_ms", "7 console key -> screen", "ms", "lower", None),
    ("console", "key_to_screen_p95_ms", "7 console key -> screen p95", "ms", "lower", None),
    ("console", "rss_mb", "7 console memory (RSS)", "MB", "lower", None),
    ("console", "rss_growth_mb", "7 console memory growth in 12 s", "MB", "lower", None),
    ("console", "events_per_s_received", "7 console events taken in", "events/s", "higher",
     None),
    ("metrics", "scrape_ms", "8 /metrics scrape, 10,000 active graphs", "ms", "lower", None),
    ("metrics", "scrape_p95_ms", "8 /metrics scrape p95", "ms", "lower", None),
    ("metrics", "scrape_max_ms", "8 /metrics scrape max", "ms", "lower", None),
    ("shapes", "expand_to_queued_s", "9 map: source done -> 10,000 copies queued", "s", "lower",
     None),
    ("shapes", "copies_per_s", "9 map: copies run", "tasks/s", "higher", "throughput"),
    ("shapes", "static_tasks_per_s", "9 static 1,000 fan-out (mean of before and after)",
     "tasks/s", "higher", "throughput"),
    ("shapes", "copies_vs_static", "9 map copies : static fan-out", "x", "higher", None),
    ("shapes", "kb_per_copy", "9 scheduler memory / copy", "KB", "lower", None),
    ("shapes", "loop_level_ms", "9 builder loop, 50 deep: per level", "ms", "lower", None),
    ("retention", "growth_after_steady", "10 retention: store size, later max : steady state",
     "x", "lower", None),
    ("retention", "steady_mb", "10 retention: store size at steady state", "MB", "lower", None),
    ("retention", "end_mb", "10 retention: store size at the end", "MB", "lower", None),
    ("retention", "graphs_kept_max", "10 retention: graphs kept (max after steady state)",
     "graphs", "lower", None),
    ("retention", "graphs_per_s", "10 retention: graphs submitted", "graphs/s", "higher", None),
]

# targets on SQLite: figure -> (comparison, value, ratio comparison or None)
TARGETS: dict[str, dict[str, Any]] = {
    "throughput.tasks_per_s": {"min": 1000, "min_one_way": 0.40},
    "latency.hop_p50_ms": {"max": 3.0, "max_ratio": 2.0},
    "latency.hop_user_ms": {"max_ratio": 2.0},
    "many_graphs.tasks_vs_one_graph": {"min": 0.8},
    "nesting.seconds": {"max": 5.0},
    "scale.kb_per_graph": {"max": 10.0},
    "scale.cost_ratio": {"max": 1.2},
    "metrics.scrape_ms": {"max": 50.0},
    "shapes.copies_vs_static": {"min": 0.9},
    "retention.growth_after_steady": {"max": 1.2},
    "postgres_vs_sqlite": {"max_factor": 1.5},
}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _figure(doc: dict[str, Any], db: str, scenario: str, figure: str) -> dict[str, float] | None:
    result = doc["results"].get(db, {}).get(scenario)
    if not result or "figures" not in result:
        return None
    return result["figures"].get(figure)


def _ratio(doc: dict[str, Any], db: str, scenario: str, figure: str, kind: str | None,
           median: float) -> float | None:
    """The figure against the bare loop: the median of the per-run ratios where each run had
    its own bare loop just before it (paired), else against the suite's bare loop."""
    if kind is None:
        return None
    paired = _figure(doc, db, scenario, f"{figure}_x_bare")
    if paired is not None:
        return paired["median"]
    base = doc["limit"]["throughput" if kind == "throughput" else "rtt_p50_ms"]["median"]
    return median / base if base else None


def _one_way(doc: dict[str, Any], db: str, scenario: str, figure: str, kind: str | None,
             median: float) -> float | None:
    """A rate against the bare one-way message rate (paired when the run had its own)."""
    if kind != "throughput":
        return None
    paired = _figure(doc, db, scenario, f"{figure}_x_one_way")
    if paired is not None:
        return paired["median"]
    base = doc["limit"].get("one_way", {}).get("median")
    return median / base if base else None


def _verdict(key: str, median: float, ratio: float | None,
             one_way: float | None = None) -> str:
    target = TARGETS.get(key)
    if not target:
        return ""
    parts, ok = [], True
    if "min" in target:
        parts.append(f">= {target['min']:g}")
        ok &= median >= target["min"]
    if "max" in target:
        parts.append(f"<= {target['max']:g}")
        ok &= median <= target["max"]
    if "min_ratio" in target and ratio is not None:
        parts.append(f">= {target['min_ratio']:.0%} bare")
        ok &= ratio >= target["min_ratio"]
    if "min_one_way" in target and one_way is not None:
        parts.append(f">= {target['min_one_way']:.0%} one-way")
        ok &= one_way >= target["min_one_way"]
    if "max_ratio" in target and ratio is not None:
        parts.append(f"<= {target['max_ratio']:g}x bare")
        ok &= ratio <= target["max_ratio"]
    return f"{', '.join(parts)} {'PASS' if ok else 'MISS'}"


def postgres_factor(doc: dict[str, Any]) -> tuple[float, str] | None:
    """The worst PostgreSQL : SQLite factor (> 1: PostgreSQL slower) over the figures that
    have a target of their own (``TARGETS``), with that figure's label; None without both
    databases. The "PostgreSQL within 1.5x of SQLite" target is read on these figures."""
    worst: tuple[float, str] | None = None
    for scenario, figure, label, _, better, _ in FIGURES:
        if f"{scenario}.{figure}" not in TARGETS:
            continue
        sq = _figure(doc, "sqlite", scenario, figure)
        pg = _figure(doc, "postgres", scenario, figure)
        if not (sq and pg and sq["median"] and pg["median"]):
            continue
        f = pg["median"] / sq["median"] if better == "lower" else sq["median"] / pg["median"]
        if worst is None or f > worst[0]:
            worst = (f, label)
    return worst


def _cell(fig: dict[str, float] | None) -> str:
    if fig is None:
        return "-"
    if fig["runs"] == 1:
        return _fmt(fig["median"])
    return f"{_fmt(fig['median'])} ({_fmt(fig['min'])}-{_fmt(fig['max'])})"


def render(doc: dict[str, Any]) -> str:
    lim = doc["limit"]
    lines = [
        f"Bare aio-pika loop (persistent, confirmed, prefetch 100, "
        f"{doc.get('machine', {}).get('event_loop', 'asyncio')}): "
        f"{_fmt(lim['throughput']['median'])} round trips/s "
        f"({_fmt(lim['throughput']['min'])}-{_fmt(lim['throughput']['max'])}), "
        f"round trip p50 {_fmt(lim['rtt_p50_ms']['median'])} ms, "
        f"p99 {_fmt(lim['rtt_p99_ms']['median'])} ms; one-way "
        f"{_fmt(lim.get('one_way', {}).get('median'))} messages/s",
        "",
        "\"x bare\": for scenarios 1-4 the median of each run's figure divided by the bare "
        "loop measured just before that run (the machine's speed drifts); else against the "
        "loop above.",
        "",
        "| scenario | unit | SQLite median (min-max) | x bare | x one-way "
        "| PostgreSQL median (min-max) | x bare | x one-way | PG : SQLite | target (SQLite) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    factor_max = TARGETS["postgres_vs_sqlite"]["max_factor"]
    for scenario, figure, label, unit, better, kind in FIGURES:
        sq = _figure(doc, "sqlite", scenario, figure)
        pg = _figure(doc, "postgres", scenario, figure)
        if sq is None and pg is None:
            continue
        sq_ratio = _ratio(doc, "sqlite", scenario, figure, kind, sq["median"]) if sq else None
        pg_ratio = _ratio(doc, "postgres", scenario, figure, kind, pg["median"]) if pg else None
        factor = ""
        if sq and pg and sq["median"] and pg["median"]:
            f = pg["median"] / sq["median"] if better == "lower" else sq["median"] / pg["median"]
            factor = f"{f:.2f}x slower" if f >= 1 else f"{1 / f:.2f}x faster"
            if f > factor_max:
                factor += " MISS"
        sq_one = _one_way(doc, "sqlite", scenario, figure, kind, sq["median"]) if sq else None
        pg_one = _one_way(doc, "postgres", scenario, figure, kind, pg["median"]) if pg else None
        verdict = _verdict(f"{scenario}.{figure}", sq["median"], sq_ratio, sq_one) if sq else ""
        lines.append(f"| {label} | {unit} | {_cell(sq)} | {_fmt(sq_ratio)} | {_fmt(sq_one)} | "
                     f"{_cell(pg)} | {_fmt(pg_ratio)} | {_fmt(pg_one)} | {factor} | {verdict} |")
    worst = postgres_factor(doc)
    if worst is not None:
        lines.append(f"\nPostgreSQL : SQLite over the figures with a target: worst "
                     f"{worst[0]:.2f}x ({worst[1]}), "
                     f"{'PASS' if worst[0] <= factor_max else 'MISS'} (<= {factor_max}x)")
    errors = [(db, name, r["error"]) for db, by in doc["results"].items()
              for name, r in by.items() if "error" in r]
    notes = [(db, name, note) for db, by in doc["results"].items()
             for name, r in by.items() for note in r.get("notes", [])]
    for db, name, error in errors:
        lines.append(f"\n{db} {name}: ERROR {error.splitlines()[0] if error else ''}")
    for db, name, reason in [(db, name, r["not_measured"]) for db, by in doc["results"].items()
                             for name, r in by.items() if "not_measured" in r]:
        lines.append(f"\n{db} {name}: not measured ({reason})")
    for db, name, note in notes:
        lines.append(f"\n{db} {name}: {note}")
    for db, reason in doc.get("skipped", {}).items():
        lines.append(f"\n{db}: skipped ({reason})")
    if "peers" in doc:
        lines += ["", *render_peers(doc)]
    return "\n".join(lines)


def render_peers(doc: dict[str, Any]) -> list[str]:
    """wgops (SQLite, this run) beside Celery on the same shapes, and the ratios."""
    peers = doc["peers"]
    if "skipped" in peers:
        return [f"peers: skipped ({peers['skipped']})"]
    rate = _figure(doc, "sqlite", "throughput", "tasks_per_s")
    hop = _figure(doc, "sqlite", "latency", "hop_user_ms")
    lines = ["| shape | wgops (SQLite) | " + " | ".join(
        f"{name} | wgops : {name}" for name in peers) + " |",
        "|---|---|" + "---|---|" * len(peers)]
    for label, fig, key, better in (("1,000 independent no-ops, tasks/s", rate, "tasks_per_s",
                                     "higher"),
                                    ("chain of 200, per hop (ms)", hop, "hop_user_ms", "lower")):
        mine = fig["median"] if fig else None
        cells = []
        for result in peers.values():
            theirs = result.get(key)
            if "error" in result or theirs is None:
                cells += [f"error: {result.get('error', '?')}", "-"]
                continue
            ratio = None if mine is None else (mine / theirs if better == "higher"
                                               else theirs / mine)
            cells += [_fmt(theirs), "-" if ratio is None else f"{ratio:.2f}x"
                      + (" ahead" if ratio >= 1 else " behind")]
        lines.append(f"| {label} | {_fmt(mine)} | " + " | ".join(cells) + " |")
    return lines

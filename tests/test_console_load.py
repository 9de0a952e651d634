"""The console under load: 10,000 graphs in the store and 500 events/s on the broker.

The measurement is the benchmark's scenario 7 (``bench.console_load.measure``): a separate
process publishes the events, the console runs with its live backend, and the time from a key
press to its effect (cursor moved) and the growth of the process's memory are measured.
"""

from __future__ import annotations

import pytest

from bench.console_load import measure
from bench.load import GRAPHS, RATE, seed
from wgops.store.config import Settings
from wgops.store.db import Store
from wgops.store.migrations import migrate


@pytest.mark.slow
async def test_responsive_and_bounded_with_10000_graphs_and_500_events_per_second(
        wgops_env: dict[str, str]) -> None:
    settings = Settings.load()
    store = Store(settings.db_url).connect()
    migrate(store)
    with store.write():
        seed(GRAPHS)
    store.close()
    figures = await measure()          # the benchmark's scenario 7, on this installation
    sent, received = figures["events_sent"], figures["events_received"]
    p95 = figures["key_to_screen_p95_ms"] / 1000
    growth = figures["rss_growth_mb"] * 2**20
    report = (f"keys p50 {figures['key_to_screen_ms']:.1f} ms p95 {p95 * 1000:.1f} ms; "
              f"rss {figures['rss_mb'] - figures['rss_growth_mb']:.0f} -> "
              f"{figures['rss_mb']:.0f} MiB; events sent {sent} received {received}")
    print(report)
    assert sent >= RATE * 8, report
    assert received >= sent * 0.9, report
    assert p95 < 0.1, report
    assert growth < 64 * 2**20, report

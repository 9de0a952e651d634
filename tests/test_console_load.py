"""The console under load: 10,000 graphs in the store and 500 events/s on the broker.

The measurement is the benchmark's scenario 7 (``bench.console_load.measure``): a separate
process publishes the events, the console runs with its live backend, keys are pressed. What
is checked here is that it keeps up and stays bounded; how fast it answers a key is a figure
of ``make bench`` (a target, not a test: this machine's speed drifts).
"""

from __future__ import annotations

import pytest

from bench.console_load import PRESSES, measure
from bench.load import GRAPHS, RATE, seed
from wgops.store.config import Settings
from wgops.store.db import Store
from wgops.store.migrations import migrate


@pytest.mark.slow
@pytest.mark.serial                 # it measures keeping up: other tests' load would skew it
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
    growth = figures["rss_growth_mb"] * 2**20
    report = (f"rss {figures['rss_mb'] - figures['rss_growth_mb']:.0f} -> "
              f"{figures['rss_mb']:.0f} MiB; events sent {sent} received {received}")
    print(report)
    assert sent >= RATE * 8, report
    assert received >= sent * 0.9, report
    assert figures["keys_answered"] == PRESSES, report      # each within 5 s, or it raised
    assert growth < 64 * 2**20, report

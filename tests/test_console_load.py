"""The console under load: 10,000 graphs in the store and 500 events/s on the broker.

A separate process publishes the events (so the publisher does not share the console's event
loop); the console runs with its live backend. Measured: the time from a key press to its
effect (cursor moved), the event loop's lag, and the growth of the process's memory.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from textual import events

from bench.load import GRAPHS, PUBLISHER, RATE, seed
from console.app import WgopsApp
from console.data.backend import LiveBackend
from console.widgets.graphs import GraphsTable
from store.config import Settings
from store.db import Store
from store.migrations import migrate

ROOT = Path(__file__).resolve().parent.parent
@pytest.mark.slow
async def test_responsive_and_bounded_with_10000_graphs_and_500_events_per_second(
        wgops_env: dict[str, str]) -> None:
    settings = Settings.load()
    store = Store(settings.db_url).connect()
    migrate(store)
    with store.write():
        seed(GRAPHS)
    store.close()
    app = WgopsApp(LiveBackend(settings, Store(settings.db_url)))
    proc = psutil.Process()
    async with app.run_test(size=(160, 46)) as pilot:
        table = app.screen.query_one(GraphsTable)
        deadline = time.monotonic() + 20
        while table.row_count < 200 or not (app.status and app.status.broker.ok):
            assert time.monotonic() < deadline, "the console did not load"
            await pilot.pause(0.1)
        publisher = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, settings.broker_url,
             f"{settings.namespace}.events", str(RATE), "12", str(GRAPHS)],
            env=os.environ, stdout=subprocess.PIPE, text=True)
        try:
            await pilot.pause(2.0)             # let the flow settle
            rss_start = proc.memory_info().rss
            lags: list[float] = []
            latencies: list[float] = []
            for i in range(40):
                before = table.cursor_row
                key = "j" if i % 20 < 10 else "k"
                t0 = time.perf_counter()
                # what the terminal driver does on a key press (pilot.press would also wait
                # for the app to go idle, which it never does under a steady event flow)
                app.post_message(events.Key(key, key))
                while table.cursor_row == before:
                    assert time.perf_counter() - t0 < 5, "the key press had no effect"
                    await asyncio.sleep(0.001)
                latencies.append(time.perf_counter() - t0)
                t1 = time.perf_counter()
                await asyncio.sleep(0.2)
                lags.append(time.perf_counter() - t1 - 0.2)
            rss_end = proc.memory_info().rss
            sent = int(publisher.communicate(timeout=30)[0].strip() or 0)
        finally:
            if publisher.poll() is None:
                publisher.kill()
                publisher.wait()
        received = app.backend.buffer.total
    p50 = statistics.median(latencies)
    p95 = sorted(latencies)[int(len(latencies) * 0.95) - 1]
    report = (f"keys p50 {p50 * 1000:.1f} ms p95 {p95 * 1000:.1f} ms max "
              f"{max(latencies) * 1000:.1f} ms; loop lag max {max(lags) * 1000:.1f} ms; "
              f"rss {rss_start / 2**20:.0f} -> {rss_end / 2**20:.0f} MiB; events sent {sent} "
              f"received {received}")
    print(report)
    assert sent >= RATE * 8, report
    assert received >= sent * 0.9, report
    assert p95 < 0.1, report
    assert rss_end - rss_start < 64 * 2**20, report

"""Scenario 7, run in a process of its own (``python -m bench.console_load``): the console
with 10,000 graphs stored and 500 events/s on the broker.

A publisher subprocess sends the events (it does not share the console's event loop); the
console runs with its live backend under Textual's ``App.run_test`` pilot. A key press ("j"/"k"
in the graphs table) is posted as the terminal driver posts it (``pilot.press`` would wait for
the app to go idle, which it never does under a steady event flow) and timed until the table's
cursor has moved; the next frame (at most 1/60 s later) draws it. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import psutil

from bench.load import GRAPHS, PUBLISHER, RATE, seed

PRESSES = 40


async def measure() -> dict[str, Any]:
    from textual import events

    from wgops.console.app import WgopsApp
    from wgops.console.data.backend import LiveBackend
    from wgops.console.widgets.graphs import GraphsTable
    from wgops.store.config import Settings
    from wgops.store.db import Store

    settings = Settings.load()
    proc = psutil.Process()
    rss_before_app = proc.memory_info().rss
    app = WgopsApp(LiveBackend(settings, Store(settings.db_url)))
    async with app.run_test(size=(160, 46)) as pilot:
        table = app.screen.query_one(GraphsTable)
        deadline = time.monotonic() + 30
        while table.row_count < 200 or not (app.status and app.status.broker.ok):
            if time.monotonic() > deadline:
                raise RuntimeError("the console did not load its graphs within 30 s")
            await pilot.pause(0.1)
        publisher = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, settings.broker_url, f"{settings.namespace}.events",
             str(RATE), "12", str(GRAPHS)], env=os.environ, stdout=subprocess.PIPE, text=True)
        try:
            await pilot.pause(2.0)
            rss_start = proc.memory_info().rss
            latencies: list[float] = []
            for i in range(PRESSES):
                before = table.cursor_row
                key = "j" if i % 20 < 10 else "k"
                t0 = time.perf_counter()
                app.post_message(events.Key(key, key))
                while table.cursor_row == before:
                    if time.perf_counter() - t0 > 5:
                        raise RuntimeError("a key press had no effect within 5 s")
                    await asyncio.sleep(0.0005)
                latencies.append(time.perf_counter() - t0)
                await asyncio.sleep(0.2)
            rss_end = proc.memory_info().rss
            sent = int(publisher.communicate(timeout=30)[0].strip() or 0)
        finally:
            if publisher.poll() is None:
                publisher.kill()
                publisher.wait()
        received = app.backend.buffer.total
    ordered = sorted(latencies)
    return {"key_to_screen_ms": 1000 * statistics.median(latencies),
            "key_to_screen_p95_ms": 1000 * ordered[int(0.95 * len(ordered)) - 1],
            "rss_mb": rss_end / 2**20, "rss_growth_mb": (rss_end - rss_start) / 2**20,
            "app_mb": (rss_start - rss_before_app) / 2**20,
            "events_sent": sent, "events_received": received, "keys_answered": len(latencies)}


def main() -> None:
    from wgops.store.config import Settings
    from wgops.store.db import Store
    from wgops.store.migrations import migrate

    if sys.argv[1:] == ["seed"]:
        store = Store(Settings.load().db_url).connect()
        migrate(store)
        with store.write():
            seed()
        store.close()
        return
    print(json.dumps(asyncio.run(measure())))


if __name__ == "__main__":
    main()

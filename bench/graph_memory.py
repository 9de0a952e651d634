"""What a scheduler's Python objects cost per parked graph, line by line (tracemalloc).

``python -m bench.graph_memory [graphs]`` (default 3,000): stores that many of scenario 6's
parked 10-task graphs in a fresh SQLite file, claims and loads each the way a scheduler does
(``loading.claim_and_load``, then a :class:`GraphRun` sharing one :class:`Interner`), marks
the first task queued, and prints the bytes traced per graph and the lines that allocated
them. No broker, no daemon: what the scale scenario's RSS figure adds on top (SQLite's page
cache, the allocator's slack) is not in it.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.scenarios import _parked_doc
from wgops.daemon.graphrun import GraphRun
from wgops.daemon.interning import Interner
from wgops.store import loading
from wgops.store.db import Store
from wgops.store.document import normalise
from wgops.store.graphs import create_graph
from wgops.store.migrations import migrate


def main(graphs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'memory.sqlite'}")
        store.connect()
        migrate(store)
        docs = [normalise(_parked_doc(f"parked-{g}"), f"parked-{g}") for g in range(graphs)]
        with store.write():
            ids = [create_graph(doc).id for doc in docs]
        del docs
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        start = tracemalloc.get_traced_memory()[0]
        runs: dict[int, GraphRun] = {}
        strings = Interner()
        now = time.time()
        for gid in ids:
            with store.write():
                rows = loading.claim_and_load(gid, "memory", now) or []
            for row in rows:
                runs[row.id] = run = GraphRun(row, now, strings)
                for node in run.ready():
                    node.state = "queued"
        del rows
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - start
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        print(f"{len(runs)} graphs: {held / graphs:.0f} bytes per graph")
        for stat in after.compare_to(before, "lineno")[:12]:
            if stat.size_diff > 0:
                print(f"{stat.size_diff / graphs:8.0f} B {stat.count_diff / graphs:6.1f} objects"
                      f"  {stat.traceback}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)

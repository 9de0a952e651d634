"""The Python twin of ``fanout.yaml``: split the work into four chunks, fetch and transform
each in parallel, then reduce the partial sums to one total - the branches built in a loop."""

from __future__ import annotations

import wgops
from wgops.examples import tasks

PARTS = 4


def graph() -> wgops.Graph:
    g = wgops.Graph("fanout", description="split / fetch / transform / reduce over four parallel "
              "branches", inputs={"n": 40, "source": "archive"})
    split = g.task("split", tasks.chunk, {"n": g.inputs["n"], "parts": PARTS})
    fetched = [g.task(f"fetch{i}", tasks.fetch, {"ids": split["chunks"][i],
                                                  "source": g.inputs["source"]}, retries=1)
               for i in range(PARTS)]
    squared = [g.task(f"square{i}", tasks.square, {"records": fetch["records"]})
               for i, fetch in enumerate(fetched)]
    total = g.task("total", tasks.total, {"values": [s["sum"] for s in squared]})
    return g.outputs(total=total["total"], count=total["count"])

"""The Python twin of ``hello.json``: the smallest graph, two tasks one after the other."""

from __future__ import annotations

import wgops
from wgops.examples import tasks


def graph() -> wgops.Graph:
    g = wgops.Graph("hello", description="The smallest graph, in JSON: two tasks, one after the "
              "other.", inputs={"structure": "C"})
    start = g.task("start", tasks.noop)
    relax = g.task("relax", tasks.relax, {"structure": g.inputs["structure"]}, after=[start])
    return g.outputs(energy=relax["energy"])

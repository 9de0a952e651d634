"""The Python twin of ``sweep.yaml``: a map over the points a first task returns, the lowest
energy of the copies' results, and a report only when the grid was fine enough."""

from __future__ import annotations

import wgops
from wgops.examples import tasks


def graph() -> wgops.Graph:
    g = wgops.Graph("sweep", inputs={"structure": "Si", "points": 7})
    grid = g.task("grid", tasks.lattice_grid, {"structure": g.inputs["structure"],
                                               "points": g.inputs["points"]})
    energy = g.task("energy", tasks.energy_at, {"a": wgops.ITEM,
                                                "structure": g.inputs["structure"]},
                    map=grid["points"], retries=1)
    best = g.task("best", tasks.lowest, {"results": energy})
    g.task("coarse", tasks.lowest, {"results": energy, "tolerance": 0.001}, after=[best])
    report = g.shell("report", f"echo best a={best['a']} energy={best['energy']}",
                     when=best["fine"])
    return g.outputs(a=best["a"], energy=best["energy"], report=report["stdout"])

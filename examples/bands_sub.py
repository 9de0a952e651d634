"""The Python twin of ``bands_sub.yaml``: the bands part of the bands example, a graph of its
own (the parent passes ``density`` and ``lattice``; the defaults let it run alone)."""

from __future__ import annotations

import wgops
from wgops.examples import tasks


def graph() -> wgops.Graph:
    g = wgops.Graph("bands_sub", inputs={"density": [1.0] * 8, "lattice": "fcc", "nbands": 4})
    path = g.task("path", tasks.kpath, {"lattice": g.inputs["lattice"], "points": 16})
    bands = g.task("bands", tasks.bands, {"density": g.inputs["density"],
                                          "kpoints": path["kpoints"],
                                          "nbands": g.inputs["nbands"]})
    gap = g.task("gap", tasks.gap, {"bands": bands["bands"], "occupied": 2})
    return g.outputs(bands=bands["bands"], labels=path["labels"], gap=gap["gap"])

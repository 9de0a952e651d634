"""The Python twin of ``converge.yaml``: a convergence loop as a builder that returns the next
step's graph until the lattice has converged."""

from __future__ import annotations

import wgops
from wgops.examples import tasks


def graph() -> wgops.Graph:
    g = wgops.Graph("converge", inputs={"start": 6.0, "target": 5.43})
    relax = g.build("relax", tasks.relax_loop, {"a": g.inputs["start"],
                                                "target": g.inputs["target"], "step": 0.6,
                                                "tolerance": 0.001})
    return g.outputs(a=relax["a"], steps=relax["steps"])

"""The Python twin of ``bands.yaml``: relax the crystal, converge its charge density, write a
report, then compute the bands in a nested graph (``bands_sub.yaml``, next to this file)."""

from __future__ import annotations

from pathlib import Path

import wgops
from wgops.examples import tasks

HERE = Path(__file__).parent


def graph() -> wgops.Graph:
    g = wgops.Graph("bands", description="relax -> scf -> report -> bands (nested graph) for one "
              "crystal", priority=0, inputs={"structure": "Si", "ecut": 30}, base=HERE)
    relax = g.task("relax", tasks.relax, {"structure": g.inputs["structure"], "steps": 12},
                   retries=2, retry_delay=0.5)
    scf = g.task("scf", tasks.scf, {"structure": relax["structure"], "ecut": g.inputs["ecut"]},
                 timeout=60)
    report = g.shell("report", f"echo structure={g.inputs['structure']} energy={scf['energy']} "
                               f"iterations={scf['iterations']}")
    bands = g.graph("bands", "bands_sub.yaml", {"density": scf["density"], "lattice": "fcc"},
                    after=[report])
    return g.outputs(energy=scf["energy"], report=report["stdout"], bands=bands["bands"],
                     gap=bands["gap"])

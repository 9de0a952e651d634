"""From Python, end to end: build a graph in code, submit it, wait for it, print its outputs.

Against a running installation (``wgops init``, then ``wgops daemon start``), as a script::

    python -m wgops.examples.from_python Si Ge C

or cell by cell in a notebook (the blocking client runs an event loop of its own, on a thread,
so it works where the notebook's loop already runs)::

    import wgops
    from wgops.examples.from_python import crystals

    client = wgops.Client()                       # the installation the CLI would use
    graph_id = client.submit(crystals(["Si", "Ge"]))["id"]
    done = client.wait(graph_id, timeout=120)     # the `wgops graph show --json` document
    done["outputs"]                               # {"Si": {"energy": ..., "gap": ...}, ...}
    client.close()

In an ``async`` program (or a notebook cell with top-level ``await``) the same reads
``async with wgops.AsyncClient() as client: ... await client.wait(graph_id)``.
"""

from __future__ import annotations

import sys

import wgops
from wgops.examples import bands_sub, tasks


def crystals(structures: list[str], ecut: float = 30) -> wgops.Graph:
    """Relax and converge each crystal in parallel, then compute its bands in a nested graph
    (the twin of ``bands_sub.yaml``); the outputs are each crystal's energy and band gap."""
    g = wgops.Graph("crystals", inputs={"ecut": ecut})
    bands_graph = bands_sub.graph()
    outputs = {}
    for name in structures:
        relax = g.task(f"relax_{name}", tasks.relax, {"structure": name}, retries=1)
        scf = g.task(f"scf_{name}", tasks.scf, {"structure": relax["structure"],
                                                "ecut": g.inputs["ecut"]})
        bands = g.graph(f"bands_{name}", bands_graph, {"density": scf["density"]})
        outputs[name] = {"energy": scf["energy"], "gap": bands["gap"]}
    return g.outputs(**outputs)


def main(argv: list[str] | None = None) -> int:
    structures = (sys.argv[1:] if argv is None else argv) or ["Si", "Ge", "C"]
    graph = crystals(structures)
    with wgops.Client() as client:
        submitted = client.submit(graph)
        print(f"submitted graph {submitted['id']} ({submitted['name']}); waiting for it ...")
        done = client.wait(submitted["id"], timeout=300)
    print(f"graph {done['id']} {done['state']}")
    for name, values in (done["outputs"] or {}).items():
        print(f"  {name:6} energy {values['energy']:10.4f}   gap {values['gap']:.4f}")
    if done["error"]:
        print(f"  error: {done['error']['message']}")
    return 0 if done["state"] == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())

"""Example task functions: they look like real work and finish in milliseconds.

Every function is deterministic (no clocks, no randomness without a seed taken from the
arguments), takes keyword arguments from a task's ``args`` and returns JSON-serialisable data.
The default allow-list (``wgops.examples.tasks:*``) lets workers run them.

For the demo (``examples/demo_*.yaml``) the pipeline functions also take two pacing
arguments, off by default so the examples stay instant in tests: ``seconds`` (how long a real
run would take: the task sleeps about that long, ±30 %) and ``fail_rate`` (the chance that an
attempt fails with a transient error, for retries to be seen; the only randomness here).

Two families:

* a materials-science pipeline: :func:`relax` -> :func:`scf` -> :func:`kpath` -> :func:`bands`
  -> :func:`gap` (``examples/bands.yaml`` and ``examples/bands_sub.yaml``);
* a data job that fans out and back in: :func:`chunk` -> :func:`fetch` (async) ->
  :func:`square` -> :func:`total` (``examples/fanout.yaml``);
* shapes decided at run time: :func:`lattice_grid` -> :func:`energy_at` mapped over its
  points -> :func:`lowest` (``examples/sweep.yaml``), and :func:`relax_loop`, a builder whose
  graph builds the next step until the lattice has converged (``examples/converge.yaml``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import math
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# Lattice constants in ångström of a few diamond/zinc-blende crystals (experimental values).
LATTICE = {"Si": 5.431, "Ge": 5.658, "C": 3.567, "GaAs": 5.653, "InP": 5.869, "SiC": 4.360}


def _seed(*parts: Any) -> float:
    """A stable number in [0, 1) derived from the arguments (``hash()`` is salted per process)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _lattice(structure: str | dict[str, Any]) -> tuple[str, float]:
    if isinstance(structure, dict):
        return str(structure.get("formula", "X")), float(structure.get("a", 5.0))
    name = str(structure)
    return name, LATTICE.get(name, 4.0 + 2.0 * _seed(name))


def _pause(seconds: float) -> float:
    return max(0.0, float(seconds)) * random.uniform(0.7, 1.3) if seconds else 0.0


def _transient(name: str, fail_rate: float) -> None:
    if fail_rate and random.random() < float(fail_rate):
        raise RuntimeError(f"{name}: transient failure (simulated, fail_rate={fail_rate})")


def paced(func: F) -> F:
    """Give a task function the demo's ``seconds`` and ``fail_rate`` arguments."""
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def run_async(*args: Any, seconds: float = 0.0, fail_rate: float = 0.0,
                            **kwargs: Any) -> Any:
            await asyncio.sleep(_pause(seconds))
            _transient(func.__name__, fail_rate)
            return await func(*args, **kwargs)
        return run_async  # type: ignore[return-value]

    @functools.wraps(func)
    def run(*args: Any, seconds: float = 0.0, fail_rate: float = 0.0, **kwargs: Any) -> Any:
        time.sleep(_pause(seconds))
        _transient(func.__name__, fail_rate)
        return func(*args, **kwargs)
    return run  # type: ignore[return-value]


# -- materials science -------------------------------------------------------------------------


@paced
def relax(structure: str | dict[str, Any], steps: int = 8, force_tol: float = 1e-3) \
        -> dict[str, Any]:
    """Relax the lattice of ``structure`` (a formula such as ``"Si"``, or a mapping).

    Returns ``{"structure": {"formula", "a", "steps"}, "energy"}``: a damped walk towards the
    equilibrium lattice constant on a Morse-like energy curve.
    """
    formula, a0 = _lattice(structure)
    target = a0 * (1.0 + 0.01 * (_seed(formula, "eq") - 0.5))
    a = a0 * 1.03
    taken = 0
    for taken in range(1, max(1, int(steps)) + 1):  # noqa: B007 - the count is the result
        force = a - target
        if abs(force) < force_tol:
            break
        a -= 0.6 * force
    energy = -4.0 * (1.0 - (1.0 - math.exp(-(a - target))) ** 2) - _seed(formula, "e")
    return {"structure": {"formula": formula, "a": round(a, 6), "steps": taken},
            "energy": round(energy, 6)}


@paced
def scf(structure: str | dict[str, Any], ecut: float = 30.0, grid: int = 8) -> dict[str, Any]:
    """Self-consistent field: iterate a charge density to convergence.

    Returns ``{"energy", "density", "iterations"}``; ``density`` is a list of ``grid`` numbers
    that sums to the number of valence electrons (8 per cell here).
    """
    formula, a = _lattice(structure)
    grid = max(2, int(grid))
    density = [1.0] * grid
    iterations = 0
    for iterations in range(1, 51):  # noqa: B007 - the count is the result
        shaped = [1.0 + 0.5 * math.cos(2 * math.pi * i / grid + a) for i in range(grid)]
        norm = 8.0 / sum(shaped)
        new = [0.5 * d + 0.5 * s * norm for d, s in zip(density, shaped)]
        change = max(abs(n - d) for n, d in zip(new, density))
        density = new
        if change < 1e-6:
            break
    energy = -7.9 - 0.01 * ecut / 30.0 - 0.1 * _seed(formula, round(a, 4))
    return {"energy": round(energy, 6), "density": [round(d, 6) for d in density],
            "iterations": iterations}


@paced
def kpath(lattice: str = "fcc", points: int = 12) -> dict[str, Any]:
    """The high-symmetry path through the Brillouin zone, sampled with ``points`` points."""
    labels = {"fcc": ["L", "G", "X", "W", "K", "G"], "bcc": ["G", "H", "N", "G", "P"],
              "sc": ["G", "X", "M", "G", "R"]}.get(lattice, ["G", "X"])
    points = max(len(labels), int(points))
    return {"labels": labels, "kpoints": [round(i / (points - 1), 6) for i in range(points)]}


@paced
def bands(density: list[float], kpoints: list[float] | None = None, nbands: int = 4) \
        -> dict[str, Any]:
    """Band energies along ``kpoints`` from a converged ``density``.

    Returns ``{"bands": [[e(k) for k in kpoints] for each band]}`` in eV.
    """
    kpoints = kpoints if kpoints is not None else [i / 10 for i in range(11)]
    scale = sum(density) / max(1, len(density))
    out = []
    for n in range(max(1, int(nbands))):
        offset = -3.0 + 2.0 * n + (1.1 if n >= 2 else 0.0)
        out.append([round(offset + scale * 0.5 * math.cos(math.pi * (k + n / 2)), 4)
                    for k in kpoints])
    return {"bands": out}


@paced
def gap(bands: list[list[float]], occupied: int = 2) -> dict[str, Any]:
    """The band gap between the top of band ``occupied - 1`` and the bottom of ``occupied``."""
    valence = max(bands[occupied - 1])
    conduction = min(bands[occupied])
    return {"gap": round(conduction - valence, 4), "direct": bands[occupied - 1].index(valence)
            == bands[occupied].index(conduction)}


# -- a data job: fan-out and fan-in ------------------------------------------------------------


@paced
def chunk(n: int, parts: int = 4) -> dict[str, Any]:
    """Split ``range(n)`` into ``parts`` contiguous chunks: ``{"chunks": [[...], ...]}``."""
    n, parts = int(n), max(1, int(parts))
    size = math.ceil(n / parts) if n else 0
    return {"chunks": [list(range(i * size, min(n, (i + 1) * size))) for i in range(parts)],
            "n": n}


@paced
async def fetch(ids: list[int], source: str = "archive") -> dict[str, Any]:
    """Fetch the records ``ids`` from ``source`` (an ``async def`` task: awaits simulated I/O)."""
    await asyncio.sleep(0.002)
    return {"records": [{"id": i, "value": round(10 * _seed(source, i), 3)} for i in ids]}


@paced
def square(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Transform: square each record's value; ``{"values": [...], "sum": float}``."""
    values = [round(r["value"] ** 2, 6) for r in records]
    return {"values": values, "sum": round(sum(values), 6)}


@paced
def total(values: list[float]) -> dict[str, Any]:
    """Reduce: the sum, count and mean of ``values``."""
    numbers = [float(v) for v in values]
    return {"total": round(sum(numbers), 6), "count": len(numbers),
            "mean": round(sum(numbers) / len(numbers), 6) if numbers else None}


# -- shapes decided at run time ----------------------------------------------------------------


@paced
def lattice_grid(structure: str | dict[str, Any], points: int = 7, spread: float = 0.04) \
        -> dict[str, Any]:
    """Trial lattice constants around ``structure``'s: ``{"points": [...], "n"}`` — how many
    is known only when this runs, so the next step maps over them."""
    _, a0 = _lattice(structure)
    n = max(1, int(points))
    step = 2 * spread * a0 / max(1, n - 1)
    values = [round(a0 * (1 - spread) + i * step, 6) for i in range(n)]
    return {"points": values, "n": n}


@paced
def energy_at(a: float, structure: str = "Si") -> dict[str, Any]:
    """The energy of one trial lattice constant (a parabola around the equilibrium)."""
    formula, a0 = _lattice(structure)
    target = a0 * (1.0 + 0.01 * (_seed(formula, "eq") - 0.5))
    return {"a": a, "energy": round(-4.0 + 2.5 * (float(a) - target) ** 2, 8)}


def lowest(results: list[dict[str, Any]], tolerance: float = 0.1) -> dict[str, Any]:
    """The lowest of the mapped results, and whether the grid was fine enough to stop."""
    best = min(results, key=lambda r: r["energy"])
    spacing = abs(results[1]["a"] - results[0]["a"]) if len(results) > 1 else 0.0
    return {"a": best["a"], "energy": best["energy"], "fine": spacing <= tolerance}


def relax_loop(a: float, target: float, step: float = 0.6, tolerance: float = 1e-3,
               level: int = 0) -> dict[str, Any]:
    """A builder: one relaxation step as a graph, and — while not converged — a build task
    for the next step (a loop written as a graph that builds the next graph)."""
    nxt = round(float(a) + float(step) * (float(target) - float(a)), 8)
    doc: dict[str, Any] = {"name": f"relax-step-{level}", "tasks": {
        "step": {"run": "wgops.examples.tasks:energy_at", "args": {"a": nxt}}}}
    if abs(nxt - float(target)) > float(tolerance):
        doc["tasks"]["next"] = {"build": "wgops.examples.tasks:relax_loop", "args": {
            "a": nxt, "target": target, "step": step, "tolerance": tolerance,
            "level": level + 1}}
        doc["outputs"] = {"a": "${next.a}", "steps": "${next.steps}"}
    else:
        doc["outputs"] = {"a": nxt, "steps": level + 1}
    return doc


def word_count(text: str) -> dict[str, Any]:
    """Count the words and lines of ``text`` (for example a shell task's stdout)."""
    return {"words": len(text.split()), "lines": len(text.splitlines())}


def noop(**_: Any) -> None:
    """Do nothing (returns ``None``): a placeholder or a pure ordering point."""
    return None

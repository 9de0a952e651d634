"""The shape of the code: one import name, dependencies one way, no cycles, no UI in the core.

``wgops.store`` <- ``wgops.daemon`` <- the API (``wgops.Graph``, ``wgops.Client``) <-
``wgops.console``; click and textual only in the console.
Imports inside functions count as much as those at the top of a module: they are read from the
source (``ast``), so a cycle hidden in a function is still a cycle.
"""

from __future__ import annotations

import ast
import graphlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the import name of each folder of the repository (pyproject.toml's package-dir)
FOLDERS = {"wgops": "wgops", "store": "wgops.store", "daemon": "wgops.daemon",
           "console": "wgops.console", "examples": "wgops.examples"}
BARE = {"store", "daemon", "console", "examples"}

PROBE = r"""
import importlib, json, pkgutil, sys
packages = sys.argv[1].split(",")
names = []
for package in packages:
    module = importlib.import_module(package)
    names.append(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
        names.append(info.name)
print(json.dumps({"imported": names, "loaded": sorted(sys.modules)}))
"""


def probe(*packages: str) -> dict[str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, ",".join(packages)], cwd="/",
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def top_level(loaded: list[str]) -> set[str]:
    return {name.split(".")[0] for name in loaded}


def modules() -> dict[str, Path]:
    """Every module of the package: its dotted name -> its file."""
    out: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


def imported(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The package modules ``path`` imports anywhere in its source (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(path, name, known) for name, path in known.items()}


def test_one_import_name_and_no_bare_layer_imports() -> None:
    """Code anywhere (tests and benchmarks too) imports ``wgops.store``, never ``store``."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        if ".venv" in path.parts or "bench" in path.parts and "results" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names
                          if n.split(".")[0] in BARE]
    assert offenders == []


def test_no_import_cycles() -> None:
    graph = import_graph()
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_the_cycle_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from wgops.store import db\n    import wgops.daemon.broker\n")
    known = {"wgops.store": Path(), "wgops.store.db": Path(), "wgops.daemon.broker": Path(),
             "wgops.x": source}
    assert imported(source, "wgops.x", known) == {"wgops.store.db", "wgops.daemon.broker"}


API = {"wgops.graph", "wgops.references", "wgops.client", "wgops.aclient"}   # the public API


@pytest.mark.parametrize("layer,forbidden", [
    ("wgops.store", {"wgops.daemon", "wgops.console", *API}),
    ("wgops.daemon", {"wgops.console", *API}),
    ("wgops.graph", {"wgops.daemon", "wgops.console"}),       # the builder needs no broker
    ("wgops.aclient", {"wgops.console"}),
])
def test_layers_point_one_way(layer: str, forbidden: set[str]) -> None:
    offenders = {name: sorted(t for t in targets if t.startswith(tuple(forbidden)))
                 for name, targets in import_graph().items() if name.startswith(layer)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_store_and_daemon_load_no_ui() -> None:
    result = probe("wgops.store", "wgops.daemon")
    assert "wgops.store.migrations.m0001_initial" in result["imported"]
    assert "wgops.daemon.protocol" in result["imported"]
    assert not top_level(result["loaded"]) & {"textual", "click", "rich"}
    assert not [m for m in result["loaded"] if m.startswith("wgops.console")]


def test_store_alone_loads_neither_daemon_nor_console() -> None:
    loaded = probe("wgops.store")["loaded"]
    assert not top_level(loaded) & {"textual", "click", "aio_pika", "circus"}
    assert not [m for m in loaded if m.startswith(("wgops.daemon", "wgops.console"))]


def test_examples_import_cleanly() -> None:
    assert "wgops.examples.tasks" in probe("wgops.examples")["imported"]

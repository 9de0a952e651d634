"""Dependencies point one way: store <- daemon <- console; UI libraries stay in console/."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

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
    proc = subprocess.run([sys.executable, "-c", PROBE, ",".join(packages)], cwd=str(ROOT),
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def top_level(loaded: list[str]) -> set[str]:
    return {name.split(".")[0] for name in loaded}


def test_store_and_daemon_load_no_ui() -> None:
    result = probe("store", "daemon")
    assert "store.migrations.m0001_initial" in result["imported"]
    assert "daemon.protocol" in result["imported"]
    assert not top_level(result["loaded"]) & {"textual", "click", "rich", "console"}


def test_store_alone_loads_neither_daemon_nor_console() -> None:
    result = probe("store")
    assert not top_level(result["loaded"]) & {"daemon", "console", "textual", "click",
                                              "aio_pika", "circus"}


def test_examples_import_cleanly() -> None:
    assert "examples.tasks" in probe("examples")["imported"]


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package,forbidden", [
    ("store", {"daemon", "console", "textual", "click"}),
    ("daemon", {"console", "textual", "click"}),
])
def test_no_import_statement_points_the_wrong_way(package: str, forbidden: set[str]) -> None:
    """Also the lazy imports inside functions, which the probe above cannot see."""
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & forbidden)
                 for p in (ROOT / package).rglob("*.py") if _imports(p) & forbidden}
    assert offenders == {}

"""A short run of the chaos soak (``python -m bench.soak``): it runs, and keeps its promises.

Half a minute, 20 graphs, the seeded fault schedule (kills, restarts of its private RabbitMQ
and PostgreSQL, cuts of its namespace hosts); the soak exits 1 when a graph is lost, ends with
other outputs or a finished task runs twice. Needs what the soak needs (root for namespaces,
``ip``, PostgreSQL's ``initdb`` and ``rabbitmq-server``); it makes its own servers, so it
shares nothing with the other tests, but it starts many processes: it runs alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hosts import unavailable

ROOT = Path(__file__).resolve().parent.parent
REASON = unavailable() or (None if shutil.which("rabbitmq-server") or Path(
    "/usr/lib/rabbitmq/bin/rabbitmq-server").exists() else "no rabbitmq-server") or (
    None if shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    else "no initdb")

pytestmark = [pytest.mark.skipif(REASON is not None, reason=REASON or ""), pytest.mark.slow,
              pytest.mark.serial]


@pytest.mark.timeout(600)
def test_a_short_soak_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.run([sys.executable, "-m", "bench.soak", "--minutes", "0.5", "--graphs",
                           "20", "--seed", "2", "--json", str(out)], capture_output=True,
                          text=True, timeout=600, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["graphs"] == 20 and result["finished_right"] == 20, result
    assert result["graphs_lost"] == 0 and result["finished_tasks_run_twice"] == 0
    assert result["doctor"] is not None and result["doctor"]["ok"], result["doctor"]
    assert "graphs lost (not finished): 0" in proc.stdout

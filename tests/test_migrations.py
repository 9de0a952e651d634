"""Migrations are serialised across processes: daemons and ``wgops init`` started at the same
moment on a new database all come up, on SQLite and on PostgreSQL, and the schema is made
once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cluster import Cluster

ROOT = Path(__file__).resolve().parent.parent


def test_daemons_and_inits_started_together_on_a_new_database(wgops_env: dict[str, str],
                                                              db_url: str,
                                                              tmp_path: Path) -> None:
    env = {**wgops_env, "WGOPS_DB_URL": db_url}
    cluster = Cluster(env, tmp_path)              # nothing initialised the database
    try:
        inits = [subprocess.Popen([sys.executable, "-m", "wgops", "init"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=str(ROOT)) for _ in range(4)]
        daemons = [cluster.scheduler(wait=False), cluster.worker(slots=1, wait=False),
                   cluster.scheduler(wait=False), cluster.worker(slots=1, wait=False)]
        for proc in inits:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            assert "Traceback" not in err
        for proc in daemons:
            cluster.wait_daemon("scheduler" if proc in daemons[::2] else "worker", proc.pid,
                                timeout=60)
        from wgops.store.migrations import latest
        from wgops.store.models import SchemaVersion

        versions = cluster.db(lambda: [v.version for v in SchemaVersion.select()])
        assert sorted(versions) == list(range(1, latest() + 1))
        gid = cluster.submit({"name": "after", "tasks": {"a": {"run": "tests.tasks:noop"}}})
        assert cluster.wait_graph(gid)["state"] == "finished"
    finally:
        cluster.close()

"""Database passwords in every form a URL can carry them never appear anywhere: command output
(success and every error), ``daemon status``, the daemons' logs and the console's screen.

PostgreSQL here trusts local connections, so any password connects: the URLs below are real
working configurations, not just strings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.cluster import Cluster

ROOT = Path(__file__).resolve().parent.parent
SECRET = "Pg5ecret"


def cli(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "wgops", *args], env=env, capture_output=True,
                          text=True, timeout=60, cwd=str(ROOT))
    return f"{args} -> {proc.returncode}\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_database_passwords_are_never_shown(wgops_env: dict[str, str], pg_url: str,
                                            tmp_path: Path, form: str) -> None:
    parts = urlsplit(pg_url)
    url = (f"postgresql://postgres:{SECRET}@{parts.hostname}:{parts.port}{parts.path}"
           if form == "userinfo" else f"{pg_url}?password={SECRET}&connect_timeout=5")
    env = {**wgops_env, "WGOPS_DB_URL": url}
    outputs = [cli(env, "init"), cli(env, "daemon", "status"),
               cli(env, "daemon", "status", "--json")]
    cluster = Cluster(env, tmp_path)
    try:
        scheduler = cluster.scheduler()
        cluster.worker(slots=1)
        gid = cluster.submit({"name": "s", "tasks": {"a": {"run": "tests.tasks:noop"}}})
        assert cluster.wait_graph(gid)["state"] == "finished"
        status = json.loads(cluster.cli("daemon", "status", "--json").stdout)
        assert SECRET not in status["database"]["url"] and status["database"]["ok"]
        outputs += [cli(env, "graph", "show", str(gid)), cli(env, "doctor"),
                    cli(env, "daemon", "status")]
        cluster.stop(scheduler)
    finally:
        cluster.close()
    # the database unreachable (a closed port), and malformed forms: errors name the URL masked
    down = url.replace(f":{parts.port}/", ":1/")
    for bad_url in (down, f"postgresql://postgres:{SECRET}/x@127.0.0.1/db",
                    f"postgresql://postgres:{SECRET}#x@127.0.0.1/db",
                    f"postgresql://postgres:{SECRET}?x@127.0.0.1/db"):
        bad = {**env, "WGOPS_DB_URL": bad_url}
        for args in (("init",), ("graph", "list"), ("doctor",), ("daemon", "status", "--json")):
            outputs.append(cli(bad, *args))
    assert any("***" in o and "unreachable" in o for o in outputs), outputs
    assert any("is not a valid URL" in o and "-> 2" in o for o in outputs), outputs
    logs = [p.read_text(errors="replace") for p in cluster.logs.values()]
    assert any("database postgresql://" in log for log in logs)   # the first line, masked
    for where, texts in (("CLI output", outputs), ("daemon logs", logs)):
        leaks = [t for t in texts if SECRET in t]
        assert not leaks, f"the password appears in {where}: {leaks[0][:3000]}"
    assert not [o for o in outputs if "Traceback" in o or "internal error" in o], outputs


async def test_the_console_shows_the_database_masked(wgops_env: dict[str, str],
                                                     pg_url: str) -> None:
    from wgops.console.app import WgopsApp
    from wgops.console.data.backend import LiveBackend
    from wgops.store.config import Settings
    from wgops.store.db import Store
    from wgops.store.migrations import migrate

    parts = urlsplit(pg_url)
    url = f"postgresql://postgres:{SECRET}@{parts.hostname}:{parts.port}{parts.path}"
    settings = Settings.load(env={**wgops_env, "WGOPS_DB_URL": url})
    store = Store(settings.db_url).connect()
    migrate(store)
    store.close()
    app = WgopsApp(LiveBackend(settings, Store(settings.db_url)))
    async with app.run_test(size=(160, 46)) as pilot:
        await pilot.pause(1.0)
        screen = app.export_screenshot()
    assert "postgres:***@" in screen and SECRET not in screen

"""``wgops demo --headless``: daemons up, the examples run to the end, a summary, nothing left."""

from __future__ import annotations

import psutil

from tests.conftest import wgops


def processes_of(home: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "daemon" in (proc.info["cmdline"] or []) and \
                    proc.environ().get("WGOPS_HOME") == home:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_headless_demo_runs_the_examples_and_stops_its_daemons(
        wgops_env: dict[str, str]) -> None:
    env = {**wgops_env, "WGOPS_SHELL": "off"}     # the demo turns shell tasks on itself
    out = wgops("demo", "--headless", env=env, timeout=150)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    summary = {line.split()[1]: line.split()[2] for line in lines
               if line[:1].isdigit() or line.strip()[:1].isdigit()}
    assert summary == {"bands": "finished", "fanout": "finished", "shell_job": "finished",
                       "sweep": "finished", "converge": "finished",
                       "hello": "finished"}, out.stdout
    assert "daemons stopped" in out.stdout
    assert processes_of(wgops_env["WGOPS_HOME"]) == []

"""Headless daemon mode: a real circus arbiter running real scheduler and worker processes.

Every test stops what it started: through ``wgops daemon stop`` first, then by PID (never by
name) for anything still alive, and asserts with psutil that no process is left.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.cluster import wait_for
from tests.conftest import wgops

pytestmark = pytest.mark.timeout(120)

STATUS_KEYS = {"broker", "database", "schedulers", "workers", "queues"}
SCHEDULER_KEYS = {"id", "pid", "alive", "graphs"}
WORKER_KEYS = {"id", "pid", "alive", "slots", "busy", "pools"}

GRAPH = """\
name: daemon-mode
tasks:
  hello:
    shell: "echo hi"
  add:
    run: tests.tasks:add
    args: {a: 1, b: 2}
outputs: {said: "${hello.stdout}", sum: "${add}"}
"""

# Makes every new ``daemon run worker`` process exit at once while the flag file exists.
CRASH_SITE = """\
import os
flag = os.environ.get("WGOPS_TEST_CRASH_FLAG", "")
if flag and os.path.exists(flag):
    with open("/proc/self/cmdline", "rb") as fh:
        if b"worker" in fh.read().split(b"\\0"):
            os._exit(3)
"""


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Installation:
    """One WGOPS_HOME driven through the real CLI; remembers every process it saw."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.home = Path(env["WGOPS_HOME"])
        self.seen: set[psutil.Process] = set()

    def run(self, *args: str, check: bool = False, timeout: float = 90) \
            -> Any:
        return wgops(*args, env=self.env, check=check, timeout=timeout)

    def arbiter_pid(self) -> int | None:
        try:
            return int((self.home / "circus" / "circusd.pid").read_text())
        except (OSError, ValueError):
            return None

    def track(self) -> None:
        """Remember the arbiter and every process below it."""
        pid = self.arbiter_pid()
        if pid is None:
            return
        try:
            arbiter = psutil.Process(pid)
            self.seen.update({arbiter, *arbiter.children(recursive=True)})
        except psutil.Error:
            pass

    def status(self, full: bool = False) -> dict[str, Any]:
        proc = self.run("daemon", "status", "--json", *(["--all"] if full else []), check=True)
        assert "Traceback" not in proc.stderr
        data = json.loads(proc.stdout)
        self.track()
        return data

    def live(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.status()[f"{kind}s"] if d["alive"]]

    def start(self, *args: str) -> None:
        proc = self.run("daemon", "start", *args)
        self.track()
        assert proc.returncode == 0, proc.stderr
        assert "started" in proc.stdout, proc.stdout

    def teardown(self) -> None:
        self.track()
        try:
            if self.arbiter_pid() is not None:
                self.run("daemon", "stop", "--timeout", "30")
        finally:
            left = [p for p in self.seen if alive(p)]
            for proc in left:
                proc.kill()          # by PID (psutil checks it is still the same process)
            psutil.wait_procs(left, timeout=10)
        assert not left, f"processes left after stop: {[p.pid for p in left]}"


@pytest.fixture
def installation(wgops_env: dict[str, str]) -> Iterator[Installation]:
    inst = Installation({**wgops_env, "WGOPS_GRACE": "5"})
    try:
        yield inst
    finally:
        inst.teardown()


def assert_contract(data: dict[str, Any]) -> None:
    assert set(data) == STATUS_KEYS
    assert set(data["broker"]) == {"url", "ok"} and set(data["database"]) == {"url", "ok"}
    for item in data["schedulers"]:
        assert set(item) == SCHEDULER_KEYS
    for item in data["workers"]:
        assert set(item) == WORKER_KEYS
    for queue in data["queues"]:
        assert set(queue) == {"name", "messages", "consumers"}


def test_status_when_nothing_runs(installation: Installation) -> None:
    proc = installation.run("daemon", "status")
    assert proc.returncode == 0, proc.stderr
    assert f"no arbiter running for {installation.home}" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "guest:***@" in proc.stdout and "guest:guest@" not in proc.stdout

    data = installation.status()
    assert_contract(data)
    assert data["schedulers"] == [] and data["workers"] == []

    # (other tests may restart the shared broker: allow for that, and say why if it is down)
    def reachable() -> dict[str, Any] | None:
        full = installation.status(full=True)
        print(full["broker"])
        return full if full["broker"]["ok"] else None

    full = wait_for(reachable, timeout=20, what="the broker to be reachable")
    assert full["arbiter"]["running"] is False
    assert full["arbiter"]["error"] == f"no arbiter running for {installation.home}"

    stop = installation.run("daemon", "stop")
    assert stop.returncode == 0 and "no arbiter running" in stop.stdout
    incr = installation.run("daemon", "incr", "worker")
    assert incr.returncode == 2
    assert incr.stderr.count("\n") == 1 and "no arbiter running" in incr.stderr


def test_unreachable_broker_fails_fast_and_starts_nothing(installation: Installation) -> None:
    installation.env["WGOPS_BROKER_URL"] = "amqp://guest:secret@127.0.0.1:1/"
    proc = installation.run("daemon", "start", timeout=30)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and "unreachable" in proc.stderr
    assert "secret" not in proc.stderr
    assert installation.arbiter_pid() is None

    data = installation.status()
    assert data["broker"] == {"url": "amqp://guest:***@127.0.0.1:1/", "ok": False}


def test_lifecycle_start_run_scale_crash_restart_stop(installation: Installation,
                                                       tmp_path: Path) -> None:
    installation.start("--schedulers", "1", "--workers", "2", "--slots", "2")
    arbiter = installation.arbiter_pid()
    assert arbiter is not None

    again = installation.run("daemon", "start", "--workers", "5")
    assert again.returncode == 0 and "already running" in again.stdout
    assert installation.arbiter_pid() == arbiter

    data = installation.status()
    assert_contract(data)
    assert data["broker"]["ok"] and data["database"]["ok"]
    children = {p.pid for p in psutil.Process(arbiter).children(recursive=True)}
    schedulers = [d for d in data["schedulers"] if d["alive"]]
    workers = [d for d in data["workers"] if d["alive"]]
    assert len(schedulers) == 1 and len(workers) == 2
    assert all(d["pid"] in children for d in schedulers + workers)
    assert all(d["slots"] == 2 and d["pools"] == ["default"] for d in workers)
    queues = {q["name"]: q for q in data["queues"]}
    ns = installation.env["WGOPS_NAMESPACE"]
    assert queues[f"{ns}.tasks.default"]["consumers"] == 2
    assert queues[f"{ns}.graphs"]["consumers"] == 1

    doc = tmp_path / "graph.yaml"
    doc.write_text(GRAPH)
    submit = installation.run("graph", "submit", str(doc), "--wait", "--timeout", "60",
                              "--json", check=True)
    result = json.loads(submit.stdout)
    assert result["state"] == "finished"
    assert result["outputs"]["sum"] == 3 and result["outputs"]["said"].strip() == "hi"

    installation.run("daemon", "incr", "worker", check=True)
    assert len(installation.live("worker")) == 3
    installation.run("daemon", "decr", "worker", check=True)
    wait_for(lambda: len(installation.live("worker")) == 2, what="two workers after decr")

    before = {d["pid"] for d in installation.live("worker")}
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        pids = {d["pid"] for d in installation.live("worker")}
        return len(pids) == 2 and victim not in pids and bool(pids - before)

    wait_for(replaced, what="circus to replace the worker")

    old = {d["pid"] for d in installation.live("worker") + installation.live("scheduler")}
    installation.run("daemon", "restart", check=True)
    new = {d["pid"] for d in installation.live("worker") + installation.live("scheduler")}
    assert len(new) == 3 and not new & old

    stop = installation.run("daemon", "stop", check=True)
    assert "stopped" in stop.stdout
    assert not [p.pid for p in installation.seen if alive(p)]
    assert installation.arbiter_pid() is None
    after = installation.run("daemon", "status", check=True)
    assert "no arbiter running" in after.stdout


def test_two_installations_side_by_side(installation: Installation, tmp_path: Path) -> None:
    # the second home is too long for a Unix socket path: its arbiter listens on TCP
    from tests.broker_cleanup import USED

    long_home = tmp_path / ("x" * 60) / ("y" * 40) / "home"
    other_ns = installation.env["WGOPS_NAMESPACE"] + "b"
    USED.add(other_ns)                     # purged with the session's other namespaces
    other = Installation({**installation.env, "WGOPS_HOME": str(long_home),
                          "WGOPS_NAMESPACE": other_ns})
    try:
        installation.start("--schedulers", "1", "--workers", "1")
        other.start("--schedulers", "0", "--workers", "2")
        one, two = installation.status(full=True), other.status(full=True)
        assert one["arbiter"]["endpoint"].startswith("ipc://")
        assert two["arbiter"]["endpoint"].startswith("tcp://127.0.0.1:")
        assert one["arbiter"]["pid"] != two["arbiter"]["pid"]
        assert len([d for d in one["workers"] if d["alive"]]) == 1
        assert [d for d in two["schedulers"] if d["alive"]] == []
        assert len([d for d in two["workers"] if d["alive"]]) == 2
        assert not {d["pid"] for d in one["workers"]} & {d["pid"] for d in two["workers"]}

        installation.run("daemon", "stop", check=True)
        assert len(other.live("worker")) == 2
        other.run("daemon", "incr", "scheduler", check=True)
        assert len(other.live("scheduler")) == 1
    finally:
        other.teardown()


def test_crash_loop_is_stopped_and_shown_as_flapping(installation: Installation,
                                                     tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(CRASH_SITE)
    flag = tmp_path / "crash"
    installation.env["PYTHONPATH"] = f"{site}{os.pathsep}{installation.env['PYTHONPATH']}"
    installation.env["WGOPS_TEST_CRASH_FLAG"] = str(flag)
    installation.start("--workers", "1")
    victim = installation.live("worker")[0]["pid"]
    flag.write_text("crash")
    os.kill(victim, signal.SIGKILL)

    def flapping() -> bool:
        full = installation.status(full=True)
        return full["arbiter"]["watchers"]["worker"]["state"] == "flapping"

    wait_for(flapping, timeout=40, interval=0.3, what="the worker watcher to be flapping")
    text = installation.run("daemon", "status", check=True).stdout
    assert "worker flapping" in text


@pytest.mark.skipif(not (Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists()
                         or __import__("shutil").which("rabbitmq-server")),
                    reason="rabbitmq-server is not installed")
def test_managed_broker(installation: Installation, tmp_path: Path) -> None:
    installation.env["WGOPS_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:1/"
    proc = installation.run("daemon", "start", "--managed-broker", timeout=90)
    installation.track()
    assert proc.returncode == 0, proc.stderr
    node = json.loads((installation.home / "rabbitmq" / "node.json").read_text())
    assert node["node"].startswith("wgops-") and node["node"].endswith("@localhost")
    config = (installation.home / "config.toml").read_text()
    assert f'broker_url = "{node["url"]}"' in config
    installation.env["WGOPS_BROKER_URL"] = node["url"]
    full = installation.status(full=True)
    assert full["broker"]["ok"] and full["arbiter"]["watchers"]["rabbitmq"]["state"] == "running"
    doc = tmp_path / "graph.yaml"
    doc.write_text(GRAPH)
    submit = installation.run("graph", "submit", str(doc), "--wait", "--timeout", "60",
                              "--json", check=True)
    assert json.loads(submit.stdout)["state"] == "finished"
    installation.run("daemon", "stop", check=True)
    assert not [p.pid for p in installation.seen if alive(p)]


def test_generated_configuration(tmp_path: Path) -> None:
    from wgops.daemon.circus_config import Layout, Plan, daemon_command, render_ini
    from wgops.store.config import Settings

    settings = Settings(home=tmp_path / "h", grace=7)
    layout = Layout(settings.home)
    ini = render_ini(settings, layout, Plan(2, 3, 5, ("a", "b")), layout.new_endpoints(),
                     "/venv/bin/python", "/work")
    assert f"endpoint = ipc://{layout.dir}/endpoint.sock" in ini
    assert "graceful_timeout = 17.0" in ini and "stop_signal = TERM" in ini
    assert "numprocesses = 2" in ini and "numprocesses = 3" in ini
    assert "use = wgops.daemon.flapping.CrashLoopGuard" in ini
    assert f"stdout_stream.filename = {layout.logs}/worker.log" in ini
    assert "stdout_stream.max_bytes" in ini and "stdout_stream.backup_count" in ini
    assert "--slots 5 --pool a --pool b 2>&1" in daemon_command("/p", "worker", Plan(1, 1, 5,
                                                                                     ("a", "b")))
    assert "[watcher:metrics]" not in ini
    with_metrics = render_ini(settings, layout, Plan(metrics_port=9999), layout.new_endpoints(),
                              "/venv/bin/python", "/work")
    assert "[watcher:metrics]" in with_metrics
    assert "-m wgops metrics --host 127.0.0.1 --port 9999 2>&1" in with_metrics
    assert f"stdout_stream.filename = {layout.logs}/metrics.log" in with_metrics
    long = Layout(tmp_path / ("z" * 120))
    assert all(v.startswith("tcp://127.0.0.1:") for v in long.new_endpoints().values())


def test_metrics_exporter_as_a_watcher(installation: Installation) -> None:
    import socket
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        refused = installation.run("daemon", "start", "--metrics-port", str(port))
        assert refused.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in \
            refused.stderr, refused.stderr
        assert installation.arbiter_pid() is None
    installation.start("--metrics-port", str(port))
    text = installation.run("daemon", "status", check=True).stdout
    assert "metrics running 1/1" in text, text
    assert "metrics" in installation.status(full=True)["arbiter"]["watchers"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        body = reply.read().decode()
    values = {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples
              if not s.labels}
    assert values["wgops_workers"] == 1 and values["wgops_schedulers"] == 1
    assert "metrics" in installation.run("daemon", "logs", "metrics", check=True).stdout
    installation.run("daemon", "stop", check=True)
    assert not [p.pid for p in installation.seen if alive(p)]

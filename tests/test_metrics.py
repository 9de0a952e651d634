"""The Prometheus exporter: ``wgops metrics`` against a real installation (broker, database,
scheduler and worker processes), read with prometheus_client's own text parser and, where
Debian's prometheus package provides it, ``promtool check metrics``."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster import Cluster, wait_for
from tests.conftest import ROOT, wgops

pytestmark = pytest.mark.timeout(120)

NAMES = {"wgops_graphs", "wgops_tasks", "wgops_task_duration_seconds", "wgops_queue_messages",
         "wgops_queue_consumers", "wgops_workers", "wgops_schedulers", "wgops_worker_slots",
         "wgops_pool_running", "wgops_pool_max_running", "wgops_up", "wgops_build_info"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.status == 200
        return reply.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def families(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


class Exporter:
    """``wgops metrics`` as a subprocess, stopped by PID."""

    def __init__(self, env: dict[str, str], tmp: Path, port: int | None = None):
        self.port = port or free_port()
        self.log = tmp / f"metrics-{self.port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wgops", "metrics", "--port", str(self.port)], env=env,
                stdout=out, stderr=subprocess.STDOUT, cwd=str(ROOT))

    def wait_up(self) -> str:
        def answers() -> str | None:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                return scrape(self.port)
            except (urllib.error.URLError, ConnectionError):
                return None
        return wait_for(answers, 30, 0.1, "the exporter to answer")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def exporter_of(tmp_path: Path) -> Iterator[Any]:
    started: list[Exporter] = []

    def start(env: dict[str, str], port: int | None = None) -> Exporter:
        exp = Exporter(env, tmp_path, port)
        started.append(exp)
        return exp
    yield start
    for exp in started:
        exp.stop()


# -- the events side, in process ----------------------------------------------------------------


def event(topic: str, **data: Any) -> bytes:
    return json.dumps({"type": "event", "v": 1, "topic": topic, "ts": 1.0, "graph": 1,
                       "task": 2, "data": data}).encode()


def test_task_events_feed_counters_and_the_histogram() -> None:
    from wgops.daemon.metrics import TaskEvents

    registry = CollectorRegistry()
    events = TaskEvents(registry)
    for body in (event("task.queued", pool="default"),
                 event("task.running", pool="default", worker="w", attempt=1),
                 event("task.queued", pool="default", worker="w", attempt=1, duration=0.2),
                 event("task.finished", pool="gpu", worker="w", attempt=2, duration=3.0),
                 event("task.failed", pool="gpu", worker="w", attempt=1, duration=0.02),
                 event("task.skipped"), event("graph.finished"), event("task.running", child=3),
                 b"not json", b"[1]", event("task.finished", pool=7),
                 event("task.finished", pool="gpu", duration="slow")):
        events.observe(body)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)
    assert value("wgops_tasks_total", pool="default", state="queued") == 1
    assert value("wgops_tasks_total", pool="default", state="running") == 1
    assert value("wgops_tasks_total", pool="default", state="retried") == 1
    assert value("wgops_tasks_total", pool="gpu", state="finished") == 2
    assert value("wgops_tasks_total", pool="gpu", state="failed") == 1
    assert value("wgops_task_duration_seconds_count", pool="gpu") == 2
    assert value("wgops_task_duration_seconds_sum", pool="gpu") == pytest.approx(3.02)
    assert value("wgops_task_duration_seconds_bucket", pool="gpu", le="0.05") == 1
    assert value("wgops_task_duration_seconds_count", pool="default") == 1
    assert events.seen == 6


# -- a real installation ---------------------------------------------------------------------


def test_metrics_of_a_real_installation(cluster: Cluster, exporter_of: Any,
                                        tmp_path: Path) -> None:
    cluster.scheduler()
    cluster.worker(slots=3, pools=("default", "licence"))
    cluster.cli("pool", "set", "licence", "--max-running", "2")
    exporter = exporter_of(cluster.env)
    exporter.wait_up()
    # it answers at once; the broker counts as up once its subscription has connected
    # (wgops_up 0 until then, which a loaded machine can make last a few seconds)
    wait_for(lambda: samples(scrape(exporter.port))[
        ("wgops_up", (("component", "broker"),))] == 1, 30, 0.2, "the broker up")
    wait_for(lambda: exporter.proc.poll() is None and "wgops_queue_messages{" in scrape(
        exporter.port), 30, 0.2, "queue depths")

    marker = tmp_path / "flaky"
    doc = {"name": "observed", "tasks": {
        "a": {"run": "tests.tasks:add", "args": {"a": 1, "b": 2}},
        "b": {"run": "tests.tasks:flaky", "args": {"marker": str(marker)}, "retries": 1},
        "c": {"run": "tests.tasks:add", "args": {"a": "${a}", "b": 1}, "pool": "licence"},
        "d": {"run": "tests.tasks:boom", "after": ["a"]}}}
    gid = cluster.submit(doc)
    assert cluster.wait_graph(gid)["state"] == "failed"

    def counted() -> dict[Any, float] | None:
        s = samples(scrape(exporter.port))
        done = s.get(("wgops_tasks_total", (("pool", "default"), ("state", "finished"))), 0)
        idle = s.get(("wgops_worker_slots", (("state", "busy"),))) == 0    # a heartbeat later
        return s if done >= 2 and idle else None
    s = wait_for(counted, 30, 0.2, "the task events to be counted and the slots free")
    text = scrape(exporter.port)
    assert NAMES <= set(families(text)), set(families(text))
    assert families(text)["wgops_task_duration_seconds"] == "histogram"
    assert families(text)["wgops_tasks"] == "counter"

    def get(name: str, **labels: str) -> float | None:
        return s.get((name, tuple(sorted(labels.items()))))
    assert get("wgops_tasks_total", pool="default", state="finished") == 2     # a, b
    assert get("wgops_tasks_total", pool="licence", state="finished") == 1     # c
    assert get("wgops_tasks_total", pool="default", state="retried") == 1      # b's first try
    assert get("wgops_tasks_total", pool="default", state="failed") == 1       # d
    assert get("wgops_task_duration_seconds_count", pool="default") == 4
    assert get("wgops_task_duration_seconds_count", pool="licence") == 1
    assert get("wgops_graphs", state="failed") == 1
    assert get("wgops_graphs", state="running") == 0
    assert get("wgops_schedulers") == 1 and get("wgops_workers") == 1
    assert get("wgops_worker_slots", state="busy") == 0
    assert get("wgops_worker_slots", state="free") == 3
    assert get("wgops_pool_running", pool="default") == 0
    assert get("wgops_pool_max_running", pool="licence") == 2
    assert get("wgops_pool_max_running", pool="default") is None         # unlimited: absent
    ns = cluster.env["WGOPS_NAMESPACE"]
    assert get("wgops_queue_messages", queue=f"{ns}.tasks.default") == 0
    assert get("wgops_queue_consumers", queue=f"{ns}.tasks.default") == 1
    assert get("wgops_queue_consumers", queue=f"{ns}.graphs") == 1
    assert get("wgops_up", component="database") == 1
    assert get("wgops_build_info", version=_version()) == 1
    assert not [k for k in s if any(name in ("graph", "id", "task") for name, _ in k[1])]

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (scripts/ensure-promtool.sh takes it from Debian's "
                    "prometheus package)")
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), \
        check.stdout + check.stderr


def _version() -> str:
    from wgops import __version__

    return __version__


def test_a_scrape_asks_for_the_queues_of_the_pools_its_own_read_finds(
        wgops_env: dict[str, str]) -> None:
    """The store is read while the broker is asked for the queues of the pools known from the
    last scrape; a pool the read brings in is asked for after, one gone is left out."""
    import asyncio

    from wgops.daemon.broker import Broker
    from wgops.daemon.metrics import Gauges, StoreReader
    from wgops.daemon.protocol import Names
    from wgops.daemon.subscription import EventSubscription
    from wgops.store import liveness
    from wgops.store.config import Settings
    from wgops.store.db import Store
    from wgops.store.migrations import migrate
    from wgops.store.models import Worker

    settings = Settings.load(env=wgops_env)
    names = Names(settings.namespace)

    async def declare() -> None:
        broker = await Broker(settings, "test-metrics").connect()
        try:
            for name in (names.graphs, names.dead, names.tasks("default"), names.tasks("gpu")):
                await broker.declare(name)
        finally:
            await broker.close()
    asyncio.run(declare())
    store = Store(settings.db_url).connect()
    migrate(store)
    reader = StoreReader(settings)
    subscription = EventSubscription(settings, "metrics-test", lambda body: None,
                                     bindings=("task.#",))
    subscription.start()
    try:
        wait_for(lambda: subscription.connected, 30, 0.1, "the subscription to connect")
        gauges = Gauges(settings, reader, subscription)

        def queues() -> set[str]:
            counts, depths = gauges._read()
            assert counts is not None and depths is not None
            return set(depths)
        everyday = {names.graphs, names.dead, names.tasks("default")}
        assert queues() == everyday
        liveness.heartbeat_worker("w-gpu", 1, 2, ["gpu"], [])
        assert queues() == everyday | {names.tasks("gpu")}      # new in the read: asked after
        assert queues() == everyday | {names.tasks("gpu")}      # known: asked with the rest
        Worker.delete().where(Worker.id == "w-gpu").execute()
        assert queues() == everyday                             # asked for, but gone
    finally:
        subscription.stop()
        reader.close()
        store.close()


def test_scrape_answers_while_broker_and_database_are_down(wgops_env: dict[str, str],
                                                           exporter_of: Any) -> None:
    env = {**wgops_env, "WGOPS_BROKER_URL": "amqp://guest:secret@127.0.0.1:1/",
           "WGOPS_DB_URL": "postgresql://postgres:secret@127.0.0.1:1/nothing"}
    exporter = exporter_of(env)
    s = samples(exporter.wait_up())
    assert s[("wgops_up", (("component", "broker"),))] == 0
    assert s[("wgops_up", (("component", "database"),))] == 0
    assert not [k for k in s if k[0] in ("wgops_graphs", "wgops_workers", "wgops_queue_messages")]
    exporter.stop()
    log = exporter.log.read_text()
    assert "secret" not in log and "***" in log


def test_a_port_in_use_exits_2_naming_it(wgops_env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = wgops("metrics", "--port", str(port), env=wgops_env, timeout=30)
    assert proc.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_grafana_dashboard_names_only_exported_metrics() -> None:
    import re

    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"\bwgops_[a-z_]+", e)}
    exported = NAMES - {"wgops_tasks", "wgops_task_duration_seconds"} | {
        "wgops_tasks_total", "wgops_task_duration_seconds_bucket"}
    assert used and used <= exported, used - exported
